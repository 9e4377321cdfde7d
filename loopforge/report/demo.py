"""``loopforge demo``: a realistic multi-PR history recorded through the Action's pipeline, then the report.

The history (repository ``acme/widgets``, eleven weeks ending today) is made of webhook payloads built from the
bundled ``loopforge/demo_data/templates.json`` (real ``@octokit/webhooks-examples`` payloads, trimmed; see
``tests/fixtures/make_demo_templates.py``) and run, in order, through the same route-and-record function the
Action and ``loopforge replay`` use (``loopforge.github.recorder.route_and_record``, with an offline pull-request
lookup). Pull requests are judged by the bundled policy (``demo_data/policy.yml``: infrastructure changes need two
approvals from the security approvers and their ``governance-approved`` label) exactly as the Action judges
them: the policy is a guard of the service, each PR event's evaluation is recorded as ``policy.evaluated``, and a
merge the policy forbade is recorded as a violation. The facts the Action would read from GitHub's API (changed
files, reviews, who added a label, CI per workflow) come from the events themselves.

Six stories are always there — a clean merge; a CI failure and its retry; changes requested, then approved; an
abandoned PR; a governed high-risk PR that merges once approved; a bypass merge recorded as a violation — and
fourteen more merges, retries and closures drawn from a fixed seed, so the charts have something to show. Every
event carries a fixed workflow run id, so running the demo twice records nothing twice.
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

from loopforge.github.events import Event, PullRequest, parse_event
from loopforge.github.lookup import OfflineLookup
from loopforge.github.recorder import RunInfo, route_and_record
from loopforge.github.render import SummaryView, render_summary
from loopforge.paths import path_of
from loopforge.policy import PolicyGuard, load_policy
from loopforge.policy.context import ChangedFile, CheckState, FakeContext, LabelEvent, Review
from loopforge.repository.base import Repository
from loopforge.service import LoopService
from loopforge.states import OPEN_PR_STATES, LoopState
from loopforge.trail import utcnow

REPO = "acme/widgets"
SERVER = "https://github.com"
WEEKS = 11
S = LoopState
HOUR = timedelta(hours=1)


def _data(name: str) -> str:
    return resources.files("loopforge.demo_data").joinpath(name).read_text(encoding="utf-8")


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Pull:
    number: int
    title: str
    author: str
    body: str = ""
    files: list[str] = field(default_factory=lambda: ["src/widgets/core.py"])
    labels: list[str] = field(default_factory=list)
    pushes: int = 1
    merged: bool | None = None

    @property
    def sha(self) -> str:
        return hashlib.sha1(f"{self.number}:{self.pushes}".encode()).hexdigest()  # a fake commit id

    @property
    def branch(self) -> str:
        return f"{self.author}/change-{self.number}"


class History:
    """Builds the payloads of the demo, in time order."""

    def __init__(self, start: datetime) -> None:
        self.templates: dict[str, Any] = json.loads(_data("templates.json"))
        self.start = start
        self.events: list[tuple[datetime, str, dict[str, Any]]] = []
        self.ci_run = 7_001_000_000
        self.next_number = 1
        self.files: dict[int, list[str]] = {}  # changed files per PR (the Action reads them from the API)
        self.showcase = 0  # the PR whose check-run markdown the demo writes: the bypass merge

    # ---------------------------------------------------------------------------------------------- payloads
    def _base(self, key: str, sender: str) -> dict[str, Any]:
        payload: dict[str, Any] = copy.deepcopy(self.templates[key])
        owner, name = REPO.split("/")
        payload["repository"].update({"full_name": REPO, "name": name, "html_url": f"{SERVER}/{REPO}",
                                      "id": 910_000_001, "private": False, "default_branch": "main"})
        payload["repository"]["owner"].update({"login": owner, "type": "Organization"})
        payload["sender"] = self._user(sender)
        return payload

    def _user(self, login: str) -> dict[str, Any]:
        return {"login": login, "id": 100 + sum(map(ord, login)), "type": "User"}

    def _add(self, at: datetime, event: str, payload: dict[str, Any]) -> None:
        self.events.append((at, event, payload))

    def _issue_payload(self, key: str, number: int, title: str, at: datetime, sender: str,
                       **fields: Any) -> dict[str, Any]:
        """An ``issues`` payload from template ``key`` about issue ``number`` (not a PR), updated at ``at``."""
        p = self._base(key, sender)
        p["issue"].update({"number": number, "title": title, "labels": [],
                           "html_url": f"{SERVER}/{REPO}/issues/{number}", "updated_at": _iso(at), **fields})
        p["issue"].pop("pull_request", None)
        return p

    def issue(self, at: datetime, title: str, author: str) -> int:
        number = self.next_number
        self.next_number += 1
        self._add(at, "issues", self._issue_payload("issues.opened", number, title, at, author, state="open",
                                                    state_reason=None, user=self._user(author),
                                                    created_at=_iso(at), closed_at=None))
        return number

    def assign(self, at: datetime, number: int, assignee: str, title: str, by: str) -> None:
        p = self._issue_payload("issues.assigned", number, title, at, by, state="open")
        p["assignee"] = self._user(assignee)
        self._add(at, "issues", p)

    def close_issue(self, at: datetime, number: int, title: str, by: str, reason: str = "completed") -> None:
        p = self._issue_payload("issues.opened", number, title, at, by, state="closed", state_reason=reason,
                                closed_at=_iso(at))
        p["action"] = "closed"
        self._add(at, "issues", p)

    def pull(self, title: str, author: str, closes: int | None = None, **kw: Any) -> Pull:
        number = self.next_number
        self.next_number += 1
        body = f"{title}.\n\nFixes #{closes}" if closes else f"{title}."
        pr = Pull(number, title, author, body, **kw)
        self.files[number] = pr.files
        return pr

    def _pr_payload(self, key: str, pr: Pull, at: datetime, sender: str, *, state: str = "open") -> dict[str, Any]:
        p = self._base(key, sender)
        p["number"] = pr.number
        p["pull_request"].update({
            "number": pr.number, "title": pr.title, "body": pr.body, "state": state, "draft": False,
            "html_url": f"{SERVER}/{REPO}/pull/{pr.number}", "user": self._user(pr.author),
            "labels": [{"id": 1000 + i, "name": n, "color": "ededed", "default": False, "description": None}
                       for i, n in enumerate(pr.labels)],
            "updated_at": _iso(at), "merged": bool(pr.merged), "merged_at": None, "merged_by": None,
            "closed_at": None, "additions": 12 * pr.pushes, "deletions": 3, "changed_files": len(pr.files),
        })
        for side, ref, sha in (("head", pr.branch, pr.sha), ("base", "main", "f" * 40)):
            p["pull_request"][side].update({"ref": ref, "sha": sha, "label": f"acme:{ref}"})
            p["pull_request"][side]["repo"] = copy.deepcopy(p["repository"])
            p["pull_request"][side]["user"] = self._user("acme")
        return p

    def open_pr(self, at: datetime, pr: Pull) -> None:
        self._add(at, "pull_request", self._pr_payload("pull_request.opened", pr, at, pr.author))

    def push(self, at: datetime, pr: Pull) -> None:
        before = pr.sha
        pr.pushes += 1
        p = self._pr_payload("pull_request.synchronize", pr, at, pr.author)
        p.update({"before": before, "after": pr.sha})
        self._add(at, "pull_request", p)

    def request_review(self, at: datetime, pr: Pull, reviewer: str) -> None:
        p = self._pr_payload("pull_request.review_requested", pr, at, pr.author)
        p["requested_reviewer"] = self._user(reviewer)
        self._add(at, "pull_request", p)

    def label(self, at: datetime, pr: Pull, name: str, by: str) -> None:
        pr.labels.append(name)
        p = self._pr_payload("pull_request.labeled", pr, at, by)
        p["label"] = {"id": 2000 + len(pr.labels), "name": name, "color": "ededed", "default": False,
                      "description": None}
        self._add(at, "pull_request", p)

    def review(self, at: datetime, pr: Pull, reviewer: str, state: str) -> None:
        p = self._pr_payload("pull_request_review.submitted", pr, at, reviewer)
        p["review"].update({"id": 500_000 + len(self.events), "state": state, "user": self._user(reviewer),
                            "commit_id": pr.sha, "submitted_at": _iso(at),
                            "html_url": f"{SERVER}/{REPO}/pull/{pr.number}#pullrequestreview-{len(self.events)}",
                            "body": None})
        self._add(at, "pull_request_review", p)

    def ci(self, at: datetime, pr: Pull, conclusion: str | None, *, attempt: int = 1) -> None:
        key = "workflow_run.completed" if conclusion else "workflow_run.requested"
        p = self._base(key, pr.author)
        if attempt == 1 and conclusion is None:
            self.ci_run += 1
        p["workflow_run"].update({
            "id": self.ci_run, "name": "CI", "head_sha": pr.sha, "head_branch": pr.branch, "event": "pull_request",
            "status": "completed" if conclusion else "queued", "conclusion": conclusion, "run_attempt": attempt,
            "html_url": f"{SERVER}/{REPO}/actions/runs/{self.ci_run}", "updated_at": _iso(at),
            "created_at": _iso(at), "run_started_at": _iso(at),
            "pull_requests": [{"number": pr.number, "head": {"ref": pr.branch, "sha": pr.sha},
                               "base": {"ref": "main", "sha": "f" * 40}}],
        })
        self._add(at, "workflow_run", p)

    def close_pr(self, at: datetime, pr: Pull, by: str, *, merged: bool) -> None:
        pr.merged = merged
        p = self._pr_payload("pull_request.closed", pr, at, by, state="closed")
        p["pull_request"].update({"merged": merged, "closed_at": _iso(at),
                                  "merged_at": _iso(at) if merged else None,
                                  "merged_by": self._user(by) if merged else None})
        self._add(at, "pull_request", p)

    # ---------------------------------------------------------------------------------------------- stories
    def ci_cycle(self, at: datetime, pr: Pull, minutes: float, conclusion: str = "success") -> datetime:
        self.ci(at, pr, None)
        done = at + timedelta(minutes=minutes)
        self.ci(done, pr, conclusion)
        return done

    def issue_and_pr(self, at: datetime, title: str, author: str, assignee: str,
                     **kw: Any) -> tuple[int, Pull, datetime]:
        number = self.issue(at, title, author)
        at += timedelta(hours=3)
        self.assign(at, number, assignee, title, author)
        at += timedelta(hours=20)
        pr = self.pull(title, assignee, closes=number, **kw)
        self.open_pr(at, pr)
        return number, pr, at


Story = Callable[[History, datetime], None]


def _clean_merge(h: History, at: datetime) -> None:
    n, pr, at = h.issue_and_pr(at, "Add CSV export of widgets", "carol", "dave")
    at = h.ci_cycle(at + 0.2 * HOUR, pr, 9)
    h.request_review(at + HOUR, pr, "erin")
    h.review(at + 5 * HOUR, pr, "erin", "approved")
    h.close_pr(at + 6 * HOUR, pr, "dave", merged=True)
    h.close_issue(at + 6.1 * HOUR, n, pr.title, "dave")


def _ci_retry(h: History, at: datetime) -> None:
    n, pr, at = h.issue_and_pr(at, "Fix rounding in price totals", "erin", "carol")
    at = h.ci_cycle(at + 0.1 * HOUR, pr, 12, "failure")
    h.ci(at + 2 * HOUR, pr, None, attempt=2)  # the failed run is re-run
    h.ci(at + 2.2 * HOUR, pr, "success", attempt=2)
    h.request_review(at + 3 * HOUR, pr, "dave")
    h.review(at + 20 * HOUR, pr, "dave", "approved")
    h.close_pr(at + 21 * HOUR, pr, "carol", merged=True)
    h.close_issue(at + 21.1 * HOUR, n, pr.title, "carol")


def _changes_requested(h: History, at: datetime) -> None:
    n, pr, at = h.issue_and_pr(at, "Paginate the widget list API", "dave", "erin")
    at = h.ci_cycle(at + 0.1 * HOUR, pr, 10)
    h.request_review(at + HOUR, pr, "carol")
    h.review(at + 26 * HOUR, pr, "carol", "changes_requested")
    h.push(at + 50 * HOUR, pr)
    at = h.ci_cycle(at + 50.1 * HOUR, pr, 11)
    h.review(at + 18 * HOUR, pr, "carol", "approved")
    h.close_pr(at + 19 * HOUR, pr, "erin", merged=True)
    h.close_issue(at + 19.1 * HOUR, n, pr.title, "erin")


def _abandoned(h: History, at: datetime) -> None:
    n, pr, at = h.issue_and_pr(at, "Switch the cache to Redis", "carol", "dave")
    at = h.ci_cycle(at + 0.1 * HOUR, pr, 14, "failure")
    h.close_pr(at + 72 * HOUR, pr, "dave", merged=False)
    h.close_issue(at + 73 * HOUR, n, pr.title, "carol", reason="not_planned")


def _governed(h: History, at: datetime) -> None:
    n, pr, at = h.issue_and_pr(at, "Open the widget API to the partner VPC", "erin", "carol",
                               files=["infra/terraform/network.tf", "infra/terraform/variables.tf"])
    at = h.ci_cycle(at + 0.1 * HOUR, pr, 16)
    h.request_review(at + HOUR, pr, "alice")
    h.review(at + 8 * HOUR, pr, "alice", "approved")
    h.review(at + 30 * HOUR, pr, "bob", "approved")
    h.label(at + 31 * HOUR, pr, "governance-approved", "bob")
    h.close_pr(at + 32 * HOUR, pr, "carol", merged=True)
    h.close_issue(at + 32.1 * HOUR, n, pr.title, "carol")


def _bypass(h: History, at: datetime) -> None:
    pr = h.pull("Raise the database connection limit", "dave", files=["infra/terraform/db.tf"])
    h.showcase = pr.number
    h.open_pr(at, pr)
    at = h.ci_cycle(at + 0.1 * HOUR, pr, 13)
    h.request_review(at + HOUR, pr, "alice")
    h.review(at + 4 * HOUR, pr, "alice", "approved")
    h.close_pr(at + 5 * HOUR, pr, "dave", merged=True)  # an admin merged it: one approval, no label


def _routine(title: str, rng: random.Random) -> Story:
    author, worker, reviewer = rng.sample(["carol", "dave", "erin", "frank", "grace"], 3)
    draws = [rng.random() for _ in range(12)]
    spans = [rng.uniform(1, 60) for _ in range(12)]

    def story(h: History, at: datetime) -> None:
        n, pr, at = h.issue_and_pr(at, title, author, worker)
        conclusion = "failure" if draws[0] < 0.35 else "success"
        at = h.ci_cycle(at + 0.1 * HOUR, pr, 6 + spans[0] / 5, conclusion)
        pushes = 0
        while conclusion == "failure" and pushes < 3:
            pushes += 1
            h.push(at + spans[pushes] / 3 * HOUR, pr)
            conclusion = "failure" if draws[pushes] < 0.3 else "success"
            at = h.ci_cycle(at + (spans[pushes] / 3 + 0.1) * HOUR, pr, 6 + spans[pushes] / 5, conclusion)
        if conclusion == "failure":
            h.close_pr(at + 30 * HOUR, pr, worker, merged=False)
            return
        h.request_review(at + HOUR, pr, reviewer)
        at += spans[5] * HOUR
        if draws[5] < 0.3:
            h.review(at, pr, reviewer, "changes_requested")
            at += spans[6] / 2 * HOUR
            h.push(at, pr)
            at = h.ci_cycle(at + 0.1 * HOUR, pr, 6 + spans[7] / 5) + spans[8] * HOUR
        h.review(at, pr, reviewer, "approved")
        h.close_pr(at + (0.5 + spans[9] / 8) * HOUR, pr, worker, merged=True)
        h.close_issue(at + (8.6 + spans[9] / 8) * HOUR, n, title, worker)

    return story


ROUTINE = ["Speed up widget search", "Add dark mode to the dashboard", "Retry webhook deliveries",
           "Document the import format", "Validate widget sizes", "Cache price lookups", "Log slow queries",
           "Support bulk delete", "Upgrade the HTTP client", "Add audit log export", "Fix time zones in reports",
           "Trim unused dependencies", "Add a health endpoint", "Warn before quota is reached"]


def build_history(end: datetime, seed: int = 13) -> History:
    """The demo's events, oldest first, for the ``WEEKS`` weeks before ``end``. Stories run in the order they
    start, so issue and PR numbers grow with time as on GitHub."""
    h = History(end - timedelta(weeks=WEEKS))
    t0 = h.start.replace(hour=9, minute=0, second=0, microsecond=0)
    rng = random.Random(seed)
    stories: list[tuple[datetime, Story]] = [
        (t0, _clean_merge), (t0 + timedelta(days=2), _ci_retry), (t0 + timedelta(days=9), _changes_requested),
        (t0 + timedelta(days=16), _abandoned), (t0 + timedelta(days=30), _governed),
        (t0 + timedelta(days=44), _bypass)]
    for i, title in enumerate(ROUTINE):
        start = t0 + timedelta(days=3 + i * 4.6 + rng.random() * 3, hours=rng.randint(0, 6))
        stories.append((start, _routine(title, rng)))
    for start, story in sorted(stories, key=lambda s: s[0]):
        story(h, start)
    h.events.sort(key=lambda e: e[0])
    return h


# -------------------------------------------------------------------------------------------------- recording
@dataclass
class Facts:
    """What the Action would read from GitHub's API about one PR, gathered from the events so far."""

    reviews: dict[str, Review] = field(default_factory=dict)
    labels: list[LabelEvent] = field(default_factory=list)
    workflows: dict[tuple[str, str], CheckState] = field(default_factory=dict)  # (name, head sha)


@dataclass
class DemoResult:
    events: int
    recorded: int
    violations: int
    records: list[str]
    showcase: str


def _context(event: Event, pr: PullRequest, facts: Facts, files: list[str]) -> FakeContext:
    workflows = {name: state for (name, sha), state in facts.workflows.items() if sha == pr.head.sha}
    return FakeContext(number=pr.number, title=pr.title, body=pr.body or "", author=pr.user.login if pr.user else "",
                       base_ref=pr.base.ref, head_ref=pr.head.ref, head_sha=pr.head.sha, draft=pr.draft,
                       labels=[label.name for label in pr.labels], repo=event.repo,
                       files=[ChangedFile(filename=f, additions=6, deletions=1) for f in files],
                       review_list=list(facts.reviews.values()), label_event_list=list(facts.labels),
                       workflows=workflows, checks={}, issues={}, teams=None, permissions=None)


def _learn(event: Event, facts: Facts) -> None:
    if event.review is not None and event.review.user is not None:
        facts.reviews[event.review.user.login] = Review(user=event.review.user.login,
                                                        state=event.review.state.upper(),
                                                        commit_id=event.review.commit_id,
                                                        submitted_at=event.review.submitted_at)
    if event.kind == "pull_request.labeled" and event.label and event.actor:
        facts.labels.append(LabelEvent(label=event.label, actor=event.actor, created_at=event.occurred_at))
    if event.ci_name and event.ci_sha:
        status = "completed" if event.ci_status != "pending" else "queued"
        facts.workflows[(event.ci_name, event.ci_sha)] = CheckState(
            name=event.ci_name, status=status, conclusion=event.ci_conclusion, kind="workflow")


def record_history(repository: Repository, history: History,
                   wrap: Callable[[list[Any]], Iterable[Any]] | None = None) -> DemoResult:
    """Run the history's payloads through the Action's route-and-record path with the bundled policy (``wrap``
    may draw a progress bar over the events)."""
    policy = load_policy(_data("policy.yml"), ".github/loopforge.yml")
    lookup = OfflineLookup()
    pulls: dict[int, Facts] = {}
    recorded_entries = violations = 0
    records: dict[str, None] = {}
    showcase = ""
    events: Iterable[Any] = wrap(history.events) if wrap is not None else history.events
    for i, (_, name, payload) in enumerate(events):
        event = parse_event(name, payload)
        lookup.remember(event.pull_request)
        run = RunInfo(run_id=str(9_100_000_001 + i), server_url=SERVER)
        number = _pr_number(event, lookup)
        facts = pulls.setdefault(number, Facts()) if number is not None else Facts()
        _learn(event, facts)
        pr = event.pull_request or (lookup.get_pull(number) if number is not None else None)
        guard = None
        if pr is not None:
            guard = PolicyGuard(policy, _context(event, pr, facts, history.files.get(pr.number, [])))
        service = LoopService(repository=repository, guards=[guard] if guard else [])
        result = route_and_record(service, event, lookup, run, server_url=SERVER)
        if result is None or result.route is None or result.record is None:
            continue
        rid = result.route.record_id
        records.setdefault(rid, None)
        if number == history.showcase:
            showcase = rid
        recorded_entries += 0 if result.outcome == "duplicate" else len(result.entries)
        violations += 0 if result.outcome == "duplicate" else len(result.violations)
        if guard is not None and result.record.state in OPEN_PR_STATES and result.outcome != "duplicate":
            service.check(rid, S.MERGED, "gate")
            evaluation = guard.last_evaluation
            if evaluation is not None:
                service.note(rid, "policy.evaluated", reason=f"{evaluation.verdict}: {evaluation.reason}"[:500],
                             evidence={"policy": evaluation.as_dict(), "run_url": run.run_url(REPO)},
                             metadata=evaluation.record_metadata(),
                             idempotency_key=f"gh:{run.run_id}:{event.kind}#policy", actor=event.actor,
                             occurred_at=event.occurred_at)
                recorded_entries += 1
    return DemoResult(len(history.events), recorded_entries, violations, list(records), showcase)


def _pr_number(event: Event, lookup: OfflineLookup) -> int | None:
    if event.pull_request is not None:
        return event.pull_request.number
    for number in event.pull_numbers:
        return number
    if event.ci_sha:
        found = lookup.pulls_for_sha(event.ci_sha)
        return found[0].number if found else None
    return None


def check_run_markdown(repository: Repository, record_id: str) -> str:
    """The check-run summary of one record, as the Action renders it (its whole path, the newest entries)."""
    head = repository.head(record_id)
    if head is None:
        return ""
    entries = list(repository.entries(record_id))
    title = None
    for entry in reversed(entries):
        pr = (entry.metadata.get("github") or {}).get("pr") if isinstance(entry.metadata, dict) else None
        if isinstance(pr, dict) and pr.get("title"):
            title = str(pr["title"])
            break
    url = head.ref if head.ref.startswith("https://") else None
    view = SummaryView(record_id=record_id, title=title, url=url, state=head.state, outcome="demo",
                       entries=entries[-60:], path=path_of(entries),
                       run_url=entries[-1].evidence.get("run_url") if entries else None)
    return render_summary(view)


def history_end(now: datetime | None = None) -> datetime:
    """The demo ends at the start of today (UTC), so its report covers the last eleven weeks."""
    now = now or utcnow()
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def events(end: datetime | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
    """The demo's (event name, payload) pairs, oldest first (e.g. to write them out for ``loopforge replay``)."""
    for _, name, payload in build_history(history_end(end)).events:
        yield name, payload
