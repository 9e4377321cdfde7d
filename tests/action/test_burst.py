"""A burst of 50 events for one pull request, delivered in order and in random orders.

The events are real payloads (tests/fixtures/lifecycle and @octokit/webhooks-examples) with the fewest changes
that make them one story: PR #2 (``Fixes #1``, so the record is issue #1's) opens as a draft, gets five pushes
(heads A-F), two or three workflows per head (requested, then completed with success or failure), reviews
(changes requested, approved, dismissed), labels, review requests, draft/ready flips, and closes merged.

* In order, through the in-process pipeline (``route_and_record``, ``OfflineLookup``; MemoryRepository
  and SQLite give the same trail): every event applies or is a note.
* In 20 seeded random orders: the final state is the same (``merged``) and every difference from in-order
  delivery is an entry the rules allow — the rule is spelled out in ``test_random_orders``.
* Once through the real Action (``loopforge.action.run`` in-process, branch store, fake GitHub), one random
  order, 4 deliveries at a time.

The merge is a fact, recorded whatever the state, and nothing moves a merged record. Facts only move forward in
time (a PR snapshot older than the one recorded, a "requested" after its run "completed", a review older than
the reviewer's latest or than its dismissal change nothing), so without the merge too the end state does not
depend on the order; two deliveries that both imply the merge record it once.
"""

from __future__ import annotations

import copy
import io
import json
import random
import tempfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from loopforge import LoopService, LoopState, Outcome, action
from loopforge.github.client import make_github
from loopforge.github.events import parse_event
from loopforge.github.lookup import OfflineLookup
from loopforge.github.recorder import RunInfo, route_and_record
from loopforge.repository import MemoryRepository, Repository, SQLiteRepository
from loopforge.repository.branch import BranchRepository
from loopforge.states import is_allowed
from loopforge.trail import LoopTransition
from tests.action_harness import parse_output_file
from tests.fakegithub import FakeGitHub
from tests.fakegithub.fixtures import assert_clean
from tests.paths import LIFECYCLE_FILES, lifecycle_event, webhook_examples

S = LoopState
LIFECYCLE = {p.stem[:2]: lifecycle_event(p.stem[:2]) for p in LIFECYCLE_FILES}
EXAMPLES = webhook_examples()
REPO = "Codertocat/Hello-World"
RID = f"{REPO}#1"  # the PR body says "Fixes #1": the record is the issue's
PR_NUMBER = 2
T0 = datetime(2019, 5, 15, 15, 20, 33, tzinfo=UTC)
HEADS = {"A": LIFECYCLE["03"]["pull_request"]["head"]["sha"],
         **{h: (c * 40) for h, c in zip("BCDEF", "bcdef", strict=True)}}

Delivery = tuple[int, str, dict[str, Any]]  # (index in the true order, event name, payload)


def _example(event: str, action: str) -> dict[str, Any]:
    return copy.deepcopy(next(ex for e in EXAMPLES if e["name"] == event for ex in e["examples"]
                              if ex.get("action") == action))


def _ts(minute: int) -> str:
    return (T0 + timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Story:
    """Builds the burst, keeping the PR's state as it was when each event happened."""

    def __init__(self) -> None:
        self.head = "A"
        self.draft = True
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.run_ids: dict[tuple[str, str], int] = {}  # (workflow, head) -> workflow run id

    def snapshot(self, *, merged: bool = False) -> dict[str, Any]:
        t = len(self.events)
        pr = copy.deepcopy(LIFECYCLE["07"]["pull_request"] if merged else LIFECYCLE["03"]["pull_request"])
        pr["head"]["sha"] = HEADS[self.head]
        pr["draft"] = self.draft
        pr["updated_at"] = _ts(t)
        if merged:
            pr.update({"state": "closed", "merged": True, "closed_at": _ts(t), "merged_at": _ts(t)})
        return pr

    def pull_request(self, action: str, **extra: Any) -> None:
        payload = copy.deepcopy(LIFECYCLE["03"]) if action == "opened" else _example("pull_request", action)
        payload["pull_request"] = self.snapshot(merged=action == "closed")
        payload.update(extra)
        self.events.append(("pull_request", payload))

    def synchronize(self, head: str) -> None:
        before = HEADS[self.head]
        self.head = head
        self.pull_request("synchronize", before=before, after=HEADS[head])

    def set_draft(self, draft: bool) -> None:
        self.draft = draft
        self.pull_request("converted_to_draft" if draft else "ready_for_review")

    def label(self, name: str) -> None:
        payload = _example("pull_request", "labeled")
        self.pull_request("labeled", label={**payload["label"], "name": name})

    def review(self, user: str, state: str) -> None:
        """``state``: approved, changes_requested or dismissed."""
        if state == "dismissed":
            payload = _example("pull_request_review", "dismissed")
        else:
            payload = copy.deepcopy(LIFECYCLE["06"])
        payload["pull_request"] = self.snapshot()
        review = payload["review"]
        review.update({"id": 80_000 + len(self.events), "state": state, "commit_id": HEADS[self.head],
                       "submitted_at": _ts(len(self.events))})
        review["user"] = {**review["user"], "login": user}
        self.events.append(("pull_request_review", payload))

    def workflow(self, name: str, conclusion: str | None) -> None:
        """``conclusion`` None: the run was requested; else it completed with that conclusion."""
        payload = copy.deepcopy(LIFECYCLE["04"] if conclusion is None else LIFECYCLE["05"])
        run = payload["workflow_run"]
        sha = HEADS[self.head]
        run_id = self.run_ids.setdefault((name, self.head), 30_001 + len(self.run_ids))
        run.update({"id": run_id, "name": name, "head_sha": sha,
                    "updated_at": _ts(len(self.events)), "conclusion": conclusion,
                    "status": "queued" if conclusion is None else "completed"})
        run["pull_requests"][0]["head"]["sha"] = sha
        self.events.append(("workflow_run", payload))


def burst() -> list[Delivery]:
    """The 50 events in the order they happened (the comments give their indices)."""
    s = _Story()
    s.pull_request("opened")                                                     # 0: head A, draft
    s.label("enhancement")                                                       # 1
    s.workflow("CI", None), s.workflow("Lint", None)                             # 2, 3
    s.workflow("CI", "failure"), s.workflow("Lint", "success")                   # 4, 5
    s.synchronize("B")                                                           # 6
    s.workflow("CI", None), s.workflow("Lint", None)
    s.workflow("Lint", "success"), s.workflow("CI", "success")                   # 9, 10
    s.set_draft(False)                                                           # 11: ready for review
    s.pull_request("review_requested")
    s.review("alice", "changes_requested")                                       # 13
    s.synchronize("C")                                                           # 14
    s.workflow("CI", None), s.workflow("Lint", None)
    s.workflow("CI", "failure"), s.workflow("Lint", "success")
    s.set_draft(True)                                                            # 19: back to draft
    s.synchronize("D")                                                           # 20
    s.workflow("CI", None), s.workflow("Lint", None)
    s.workflow("CI", "success"), s.workflow("Lint", "success")
    s.set_draft(False)                                                           # 25
    s.pull_request("review_requested")
    s.review("alice", "dismissed")                                               # 27
    s.review("bob", "approved")
    s.label("ready")
    s.synchronize("E")                                                           # 30
    s.workflow("CI", None), s.workflow("Lint", None)
    s.workflow("CI", "success"), s.workflow("Lint", "failure")
    s.synchronize("F")                                                           # 35
    s.workflow("CI", None), s.workflow("Lint", None)
    s.workflow("CI", "success"), s.workflow("Lint", "success")                   # 38, 39
    s.review("carol", "changes_requested")                                       # 40
    s.review("bob", "approved")
    s.pull_request("review_requested")
    s.label("needs-docs")
    s.review("carol", "dismissed")                                               # 44
    s.review("carol", "approved")
    s.workflow("Deploy preview", None), s.workflow("Deploy preview", "success")  # 46, 47
    s.label("merge-queue")
    s.pull_request("closed")                                                     # 49: merged
    assert len(s.events) == 50, len(s.events)
    return [(i, name, payload) for i, (name, payload) in enumerate(s.events)]


# ---------------------------------------------------------------------------------------------- delivering
class Pipeline:
    """The Action's pipeline in-process (``route_and_record``), with ``OfflineLookup`` for the PR.

    ``live=True``: the lookup answers with the PR as it was when the event happened (events handled as they
    arrive, in order); ``live=False``: it answers with the PR as it is after the burst (merged, head F), which is
    what ``GET /pulls/2`` returns to the workflow runs of a burst delivered late and shuffled.
    """

    def __init__(self, repository: Repository | None = None, *, live: bool) -> None:
        self.service = LoopService(repository=repository or MemoryRepository())
        self.lookup = OfflineLookup()
        self.live = live
        if not live:
            last = burst()[-1]
            self.lookup.remember(parse_event(last[1], last[2]).pull_request)

    def deliver(self, deliveries: list[Delivery]) -> Pipeline:
        for index, name, payload in deliveries:
            event = parse_event(name, payload)
            if self.live:
                self.lookup.remember(event.pull_request)
            recorded = route_and_record(self.service, event, self.lookup, RunInfo(run_id=str(RUN_BASE + index)))
            assert recorded is not None and recorded.route is not None, (index, event.kind)
            assert recorded.route.record_id == RID, (index, event.kind)
        return self

    def trail(self) -> list[LoopTransition]:
        return self.service.history(RID)


RUN_BASE = 5000


def shuffled(seed: int, deliveries: list[Delivery] | None = None) -> list[Delivery]:
    order = list(deliveries if deliveries is not None else burst())
    random.Random(seed).shuffle(order)
    return order


def delivery_of(entry: LoopTransition) -> int:
    """The index (in the true order) of the delivery that wrote ``entry`` (keys are ``gh:<run id>:<kind>#...``)."""
    assert entry.idempotency_key is not None and entry.idempotency_key.startswith("gh:"), entry
    return int(entry.idempotency_key.split(":")[1]) - RUN_BASE


def effects(trail: list[LoopTransition]) -> dict[int, list[tuple[str, str | None, str, str | None]]]:
    """What each delivery recorded: (outcome, from, to, reason) of its entries, in order."""
    out: dict[int, list[tuple[str, str | None, str, str | None]]] = {}
    for e in trail:
        out.setdefault(delivery_of(e), []).append(
            (e.outcome.value, e.from_state.value if e.from_state else None, e.to_state.value, e.reason))
    return out


# ---------------------------------------------------------------------------------------------- the rules
def check_trail(trail: list[LoopTransition], deliveries: list[Delivery], *, concurrent: bool = False) -> None:
    """What holds for the trail of the burst in ANY order (see ``test_random_orders``).

    ``concurrent``: deliveries overlapped; then the merge may also be recorded again as a ``merged → merged``
    violation (a known bug: ``test_two_deliveries_that_imply_the_merge_at_once_record_it_once``)."""
    assert [e.sequence for e in trail] == list(range(1, len(trail) + 1))
    keys = Counter(e.idempotency_key for e in trail)
    assert None not in keys and set(keys.values()) == {1}, "an idempotency key was recorded twice"
    # every delivery is in the trail, exactly once: its last entry carries "#done"
    done = sorted(delivery_of(e) for e in trail if e.idempotency_key and e.idempotency_key.endswith("#done"))
    assert done == sorted(i for i, _, _ in deliveries)
    kinds = {i: f"{name}.{payload['action']}" for i, name, payload in deliveries}
    previous: LoopTransition | None = None
    for e in trail:
        assert e.idempotency_key is not None and e.idempotency_key.startswith(f"gh:{RUN_BASE + delivery_of(e)}:"
                                                                              f"{kinds[delivery_of(e)]}#")
        if previous is not None:  # one continuous story: each entry starts where the previous one left it
            assert e.from_state is previous.state_after, (previous, e)
        if e.outcome is Outcome.APPLIED:
            assert is_allowed(e.from_state, e.to_state), e
        elif e.outcome is Outcome.REJECTED:  # (a rejection derived from an event's facts names no rule)
            assert e.reason and e.state_after is e.from_state, e
        elif e.outcome is Outcome.VIOLATION:
            assert e.reason and e.rule, e
        else:
            assert e.outcome is Outcome.NOTED and e.from_state is e.to_state, e
        previous = e
    # the merge is a fact: recorded once (applied, or a violation naming its rule), and nothing moves after it
    merges = [i for i, e in enumerate(trail) if e.to_state is S.MERGED and e.outcome in (Outcome.APPLIED,
                                                                                        Outcome.VIOLATION)]
    again = [i for i in merges[1:] if trail[i].from_state is S.MERGED and trail[i].outcome is Outcome.VIOLATION]
    assert merges and (merges[1:] == again if concurrent else len(merges) == 1), merges
    after = range(merges[0] + 1, len(trail))
    assert all(trail[i].outcome in (Outcome.REJECTED, Outcome.NOTED) for i in after if i not in again)


def classify(entry: LoopTransition, trail: list[LoopTransition]) -> str:
    """The kind of an entry that differs from in-order delivery (every kind is one ``check_trail`` allows)."""
    if entry.outcome is Outcome.REJECTED:
        return "rejected, with its reason"
    if entry.outcome is Outcome.VIOLATION:
        return "violation, with its rule and reason"
    if entry.outcome is Outcome.APPLIED:
        return "applied (a move the table allows)"
    key = entry.idempotency_key or ""
    if entry.reason and "no longer the head" in entry.reason:
        return "noted: CI for an old head, not applied"
    if entry.reason:
        return "noted, with a reason"
    if key.endswith(":f"):  # the facts an event brought, kept next to the rejection of its move
        assert any(e.idempotency_key == key[:-2] and e.outcome is Outcome.REJECTED for e in trail), entry
        return "noted: facts of a rejected event"
    assert entry.trigger == key.split(":")[2].split("#")[0], entry  # the event's own note: nothing to change
    return "noted: already in the state its facts imply"


def differences(ordered: list[LoopTransition], trail: list[LoopTransition]) -> Counter[str]:
    """Classify, delivery by delivery, the entries that differ from what in-order delivery recorded."""
    expected = effects(ordered)
    kinds: Counter[str] = Counter()
    got = effects(trail)
    for index, recorded in got.items():
        if recorded != expected.get(index):
            kinds.update(classify(e, trail) for e in trail if delivery_of(e) == index)
    return kinds


# ---------------------------------------------------------------------------------------------- tests
ORDERS = 20
#: the states the record goes through when the 50 events arrive in order, as they happen
IN_ORDER_PATH = [S.ISSUE_CREATED, S.PR_DRAFT, S.PR_CREATED, S.CI_PASSED, S.AWAITING_REVIEW, S.CHANGES_REQUESTED,
                 S.CI_PENDING, S.CI_FAILED, S.PR_DRAFT, S.PR_CREATED, S.CI_PASSED, S.CHANGES_REQUESTED,
                 S.AWAITING_REVIEW, S.APPROVED, S.CI_PENDING, S.CI_FAILED, S.CI_PENDING, S.CI_PASSED, S.APPROVED,
                 S.CHANGES_REQUESTED, S.APPROVED, S.CI_PENDING, S.CI_PASSED, S.APPROVED, S.MERGED]


@pytest.fixture(scope="module")
def in_order() -> list[LoopTransition]:
    return Pipeline(live=True).deliver(burst()).trail()


def test_the_burst_is_fifty_real_events_for_one_pr() -> None:
    deliveries = burst()
    assert len(deliveries) == 50
    kinds = Counter(f"{name}.{payload['action']}" for _, name, payload in deliveries)
    assert kinds["pull_request.synchronize"] == 5 and kinds["pull_request.closed"] == 1
    assert kinds["workflow_run.requested"] == kinds["workflow_run.completed"] == 13
    assert set(kinds) >= {"pull_request.opened", "pull_request.labeled", "pull_request.review_requested",
                           "pull_request.ready_for_review", "pull_request.converted_to_draft",
                           "pull_request_review.submitted", "pull_request_review.dismissed"}
    for _, name, payload in deliveries:
        event = parse_event(name, payload)
        assert event.repo == REPO
        assert (event.pull_request.number if event.pull_request else event.pull_numbers[0]) == PR_NUMBER
    assert parse_event(*deliveries[-1][1:]).pull_request.merged  # type: ignore[union-attr]


def test_in_order(in_order: list[LoopTransition]) -> None:
    """Delivered as they happen, every event applies or is a note: no rejection, no violation."""
    check_trail(in_order, burst())
    assert [e.to_state for e in in_order if e.outcome is Outcome.APPLIED] == IN_ORDER_PATH
    assert not [e for e in in_order if e.outcome in (Outcome.REJECTED, Outcome.VIOLATION)]
    # the same on SQLite: the derivation does not depend on the store
    with tempfile.TemporaryDirectory() as tmp:
        repository = SQLiteRepository(Path(tmp) / "burst.db")
        on_sqlite = Pipeline(repository, live=True).deliver(burst()).trail()
        repository.close()
    assert effects(on_sqlite) == effects(in_order)


def test_random_orders(in_order: list[LoopTransition]) -> None:
    """20 shuffled deliveries of the burst (seeded), the PR looked up as it is after the burst.

    The rule this relies on: the merge is a fact. Whatever the order, the record ends ``merged`` like in order;
    the merge is recorded exactly once (applied, or a violation naming the rule it broke when it arrived before
    CI passed), and no event delivered after it moves the record (each is a rejection with its reason, or a
    note). Every delivery is in the trail exactly once, the chain verifies, the states form one continuous story
    through the table. Entries that differ from in-order delivery are: rejections with their reason, CI
    results for an old head noted as not applied, notes keeping the facts of a rejected event, notes of events
    whose facts imply the state the record is already in, a violation (an early merge), or moves the table allows
    derived from the facts known at that point (before the merge, the order decides which intermediate states the
    record passes through: see ``test_without_the_merge_...`` for why those can be wrong).
    """
    final = in_order[-1].state_after
    assert final is S.MERGED
    seen: Counter[str] = Counter()
    for seed in range(ORDERS):
        order = shuffled(seed)
        p = Pipeline(live=False).deliver(order)
        trail = p.trail()
        head = p.service.get(RID)
        assert head is not None and head.state is final, (seed, head.state if head else None)
        assert p.service.verify(RID).ok, seed
        check_trail(trail, order)
        seen.update(differences(in_order, trail))
    print("\nentries differing from in-order delivery, over 20 orders:")
    for kind, n in seen.most_common():
        print(f"  {n:5} {kind}")
    assert seen["noted: CI for an old head, not applied"] > 0  # the shuffles really deliver stale results


def test_without_the_merge_shuffled_orders_end_where_in_order_delivery_does() -> None:
    """The first 49 events (everything but the merge): in order the record ends ``approved``; shuffled, it should
    too (the module docstring of loopforge/github/lifecycle.py: "out-of-order or missed deliveries still end in
    the right state"). ``test_single_late_events_do_not_change_the_end`` pins the single-event cases."""
    prefix = burst()[:49]
    expected = Pipeline(live=True).deliver(prefix).trail()[-1].state_after
    assert expected is S.APPROVED
    finals = {}
    for seed in range(ORDERS):
        p = Pipeline(live=False)
        last = prefix[-1]
        p.lookup.remember(parse_event(last[1], last[2]).pull_request)  # GET /pulls/2 after event 48
        finals[seed] = p.deliver(shuffled(seed, prefix)).trail()[-1].state_after
    assert finals == dict.fromkeys(range(ORDERS), expected)


def move(deliveries: list[Delivery], index: int, before: int | None = None) -> list[Delivery]:
    """``deliveries`` with delivery ``index`` moved to the end (or just before delivery ``before``)."""
    item = next(d for d in deliveries if d[0] == index)
    out = [d for d in deliveries if d[0] != index]
    out.insert(len(out) if before is None else next(k for k, d in enumerate(out) if d[0] == before), item)
    return out


def _late(index: int, before: int | None, got: LoopState, why: str) -> Any:
    return pytest.param(index, before, id=f"{index}-{before}")


@pytest.mark.parametrize("index, before", [
    _late(1, None, S.PR_DRAFT, "the stale payload (head A, draft) replaces the facts; approved -> pr_draft is applied"),
    _late(35, None, S.CI_PENDING, "a synchronize to F delivered after F's CI results resets them to pending"),
    _late(38, 35, S.CI_PENDING, "CI on F completed, then its late 'requested': pending replaces passed"),
    _late(27, 13, S.CHANGES_REQUESTED, "alice's dismissal arrives before her review, which then still counts"),
])
def test_single_late_events_do_not_change_the_end(index: int, before: int | None) -> None:
    """ONE event of the first 49 delivered late (last, or just before ``before``), the PR looked up as after
    event 48 (open, head F, CI passed, approved by bob and carol). In order the record ends ``approved``; so it
    does here. Each case names the stale fact that used to win (and where the record wrongly ended)."""
    prefix = burst()[:49]
    p = Pipeline(live=False)
    p.lookup.remember(parse_event(prefix[-1][1], prefix[-1][2]).pull_request)
    end = p.deliver(move(prefix, index, before)).trail()[-1].state_after
    assert end is S.APPROVED, end


def test_random_orders_end_with_the_same_facts() -> None:
    def facts(service: LoopService) -> dict[str, Any]:
        head = service.get(RID)
        assert head is not None
        pr = head.metadata["github"]["pr"]
        return {k: pr[k] for k in ("head_sha", "state", "merged", "draft", "reviews")}

    expected = facts(Pipeline(live=True).deliver(burst()).service)
    assert expected["merged"] and expected["head_sha"] == HEADS["F"]
    got = {seed: facts(Pipeline(live=False).deliver(shuffled(seed)).service) for seed in range(ORDERS)}
    assert got == dict.fromkeys(range(ORDERS), expected)


# ---------------------------------------------------------------------------------------------- the real Action
ACTION_THREADS = 4


def run_action(deliveries: list[Delivery], tmp: Path, url: str, threads: int) -> dict[int, tuple[int, str, str]]:
    """Each delivery is one ``loopforge.action.run(env)`` as the runner would start it (its own event file, run
    id, outputs), ``threads`` at a time. Returns ``{index: (exit code, stdout, $GITHUB_OUTPUT)}``."""

    def one(delivery: Delivery) -> tuple[int, tuple[int, str, str]]:
        index, name, payload = delivery
        d = tmp / f"run{index}"
        d.mkdir()
        (d / "event.json").write_text(json.dumps(payload))
        (d / "output").write_text("")
        env = {"GITHUB_EVENT_NAME": name, "GITHUB_EVENT_PATH": str(d / "event.json"), "GITHUB_REPOSITORY": REPO,
               "GITHUB_RUN_ID": str(RUN_BASE + index), "GITHUB_RUN_ATTEMPT": "1", "GITHUB_API_URL": url,
               "GITHUB_SERVER_URL": "https://github.com", "GITHUB_WORKSPACE": str(d),
               "GITHUB_OUTPUT": str(d / "output"), "GITHUB_STEP_SUMMARY": str(d / "summary"),
               "INPUT_GITHUB-TOKEN": "ghs_burst", "INPUT_STORE": "branch", "INPUT_STATE-BRANCH": "loopforge-state"}
        out = io.StringIO()
        code = action.run(env, stream=out)
        return index, (code, out.getvalue(), (d / "output").read_text())

    with ThreadPoolExecutor(threads) as pool:
        return dict(pool.map(one, deliveries))


def test_random_order_through_the_action(tmp_path: Path, in_order: list[LoopTransition]) -> None:
    """ONE shuffled delivery through the real Action (``loopforge.action.run``, branch store, fake GitHub on
    127.0.0.1), 4 deliveries at a time as concurrent workflow runs would: the same rules as the in-process runs
    (but for the known double merge under concurrency), every run's exit code and error lines say what it
    recorded, and the state branch holds one commit per entry."""
    order = shuffled(2024)
    fake = FakeGitHub(owner="Codertocat", repo="Hello-World", default_branch="master")
    pr = LIFECYCLE["03"]["pull_request"]
    # GitHub after the burst: the PR is merged at head F (what GET /pulls/2 answers to every run)
    fake.add_pull(PR_NUMBER, HEADS["F"], base="master", body=pr["body"], title=pr["title"], user="Codertocat",
                  state="closed", merged=True, commits=[HEADS[h] for h in "ABCDEF"])
    # the merge names the commit it made on master (judged at its parent; the fixture's SHA is not in the fake)
    merge = fake.set_file("master", "merged.txt", "merged\n")
    for _index, _name, payload in order:
        if (payload.get("pull_request") or {}).get("merged"):
            payload["pull_request"]["merge_commit_sha"] = merge
    with fake.serve() as url:
        runs = run_action(order, tmp_path, url, ACTION_THREADS)
        store = BranchRepository((make_github("ghs_burst", url, for_tests=True), REPO))
        service = LoopService(repository=store)
        trail = service.history(RID)
        head = service.get(RID)
        report = service.verify(RID)
    assert_clean(fake)

    assert head is not None and head.state is S.MERGED
    assert report.ok, [str(p) for p in report.problems]
    check_trail(trail, order, concurrent=True)
    violated = {delivery_of(e) for e in trail if e.outcome is Outcome.VIOLATION}
    for index, (code, stdout, output) in runs.items():
        errors = [line for line in stdout.splitlines() if line.startswith("::error")]
        # exit 1 exactly when the run says why: it recorded a violation, or the gate blocked the merge (the PR
        # was, at that moment, in a state such as changes_requested); never an unexpected error
        assert (code == 1) == bool(errors) and code in (0, 1), (index, code, stdout)
        assert all("lifecycle violation" in line or "merge blocked" in line for line in errors), errors
        assert (index in violated) == any("lifecycle violation" in line for line in errors), (index, stdout)
        outputs = parse_output_file(output)
        assert outputs["record-id"] == RID and outputs["outcome"] in ("applied", "rejected"), outputs
    assert len(fake.branch_log("loopforge-state")) == len(trail)  # one commit per entry, none overwritten
    kinds = differences(in_order, trail)
    again = [e.idempotency_key for e in trail if e.outcome is Outcome.VIOLATION and e.from_state is S.MERGED]
    print(f"\nthe Action, {ACTION_THREADS} threads: {len(trail)} entries; differing from in-order: {dict(kinds)}; "
          f"merge recorded again: {again}; check runs per head: {[len(fake.check_runs(HEADS[h])) for h in 'ABCDEF']}")


class Interleaved(MemoryRepository):
    """A MemoryRepository that runs ``interrupt`` (once) just before the next append: another delivery that
    completes while this one is between reading the head and writing."""

    interrupt: Any = None

    def append(self, head: Any, entries: Any) -> None:
        interrupt, self.interrupt = self.interrupt, None
        if interrupt is not None:
            interrupt()
        super().append(head, entries)


def test_two_deliveries_that_imply_the_merge_at_once_record_it_once() -> None:
    """Events 0-47 in order, then the merge (event 49) and the Deploy-preview result on head F (event 47 again
    under another run id; GET /pulls/2 now answers "merged") handled at the same time: the second is handled
    completely while the first is about to write. Both imply ``merged``; it should be recorded once."""
    deliveries = burst()
    repository = Interleaved()
    p = Pipeline(repository, live=True).deliver(deliveries[:48])
    p.live = False
    p.lookup.remember(parse_event(deliveries[-1][1], deliveries[-1][2]).pull_request)
    late_ci = (99, deliveries[47][1], deliveries[47][2])
    repository.interrupt = lambda: p.deliver([late_ci])
    p.deliver([deliveries[49]])
    trail = p.trail()
    assert trail[-1].state_after is S.MERGED
    merges = [e for e in trail if e.to_state is S.MERGED and e.outcome in (Outcome.APPLIED, Outcome.VIOLATION)]
    assert [(e.from_state, e.outcome) for e in merges] == [(S.APPROVED, Outcome.APPLIED)], merges
