"""Routing an event to its record and recording the steps its plan implies (shared by the Action and replay).

``route_and_record`` is the whole path for one event (``loopforge replay`` and the tests use it); the Action
runs its two halves, ``route`` and ``record_event``, as separate steps because it loads the PR's policy facts
in between (``loopforge.action.pipeline``).

Idempotency: every entry an event writes carries a key derived from the workflow run and the event
(``gh:<run id>:<event kind>#...``); the last one carries ``...#done``. A re-run of the same workflow run finds
``#done`` and records nothing; a run that was cut off half-way re-derives from what was stored and completes
only the missing steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from loopforge.github.events import Event, PullRequest, linked_issues
from loopforge.github.lifecycle import FACTS_KEY, Plan, Step, plan_event
from loopforge.github.lookup import PullLookup
from loopforge.github.merge_judgement import check_vetoes, merge_basis
from loopforge.records import LoopRecord
from loopforge.service import LoopService, TransitionResult, Veto
from loopforge.states import LoopState
from loopforge.trail import LoopTransition, Outcome


@dataclass
class Route:
    record_id: str
    ref: str
    issue_record: bool
    pr: PullRequest | None
    linked: list[str] = field(default_factory=list)


@dataclass
class RunInfo:
    run_id: str
    run_attempt: str = "1"
    server_url: str = "https://github.com"

    def run_url(self, repo: str) -> str | None:
        if not self.run_id or not self.run_id.isdigit():
            return None
        return f"{self.server_url.rstrip('/')}/{repo}/actions/runs/{self.run_id}/attempts/{self.run_attempt}"


@dataclass
class Recorded:
    outcome: str  # applied / rejected / duplicate / ignored
    record: LoopRecord | None
    previous_state: LoopState | None
    entries: list[LoopTransition] = field(default_factory=list)
    route: Route | None = None  # set by ``route_and_record``

    @property
    def violations(self) -> list[LoopTransition]:
        return [e for e in self.entries if e.outcome is Outcome.VIOLATION]


def route(event: Event, lookup: PullLookup, server_url: str = "https://github.com") -> Route | None:
    """The record an event belongs to: an issue's own record; for a PR, the record of the first issue its body
    closes, else the PR's own record. CI events find their PR from ``pull_requests`` or by head SHA."""
    server = server_url.rstrip("/")
    if event.issue is not None:
        return Route(f"{event.repo}#{event.issue.number}",
                     event.issue.html_url or f"{server}/{event.repo}/issues/{event.issue.number}", True, None)
    pr = event.pull_request
    if pr is None:
        for number in event.pull_numbers:
            pr = lookup.get_pull(number)
            if pr is not None:
                break
    if pr is None and event.ci_sha:
        candidates = [p for p in lookup.pulls_for_sha(event.ci_sha) if p.head.sha == event.ci_sha]
        candidates.sort(key=lambda p: (p.state != "open", p.number))
        pr = candidates[0] if candidates else None
    if pr is None:
        return None
    linked = linked_issues(pr.body, event.repo)
    if linked:
        owner_repo, issue_number = linked[0].rsplit("#", 1)
        return Route(linked[0], f"{server}/{owner_repo}/issues/{issue_number}", True, pr, linked)
    return Route(f"{event.repo}#{pr.number}", pr.html_url or f"{server}/{event.repo}/pull/{pr.number}", False, pr)


def _evidence(event: Event, run: RunInfo, route_: Route, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    ev: dict[str, Any] = {"event": event.kind, "run_id": run.run_id, "run_attempt": run.run_attempt}
    url = run.run_url(event.repo)
    if url:
        ev["run_url"] = url
    if route_.pr is not None:
        ev["pr"] = route_.pr.number
        ev["head_sha"] = route_.pr.head.sha
    if route_.linked[1:]:
        ev["also_links"] = route_.linked[1:]
    if event.ci_name:
        ev["ci"] = {"name": event.ci_name[:200], "status": event.ci_status, "conclusion": event.ci_conclusion,
                    "sha": event.ci_sha}
        if event.ci_url:
            ev["ci"]["url"] = event.ci_url
    if event.review is not None:
        ev["review"] = {"state": event.review.state, "user": event.review.user.login if event.review.user else None}
    if event.label:
        ev["label"] = event.label[:200]
    if event.assignee:
        ev["assignee"] = event.assignee
    if event.merge_group is not None and event.queue is not None:
        ev["merge_group"] = {"head_sha": event.merge_group.head_sha, "base_sha": event.merge_group.base_sha,
                             "base_ref": event.queue.base[:200], "pr": event.queue.number}
        if event.queue_reason:
            ev["merge_group"]["reason"] = event.queue_reason
    if route_.pr is not None and route_.pr.merged and route_.pr.merge_commit_sha:
        ev["merge_commit_sha"] = route_.pr.merge_commit_sha
    if extra:
        ev.update(extra)
    return ev


def _metadata(plan: Plan) -> dict[str, Any]:
    meta: dict[str, Any] = {FACTS_KEY: plan.facts}
    pr = plan.facts.get("pr") or {}
    if pr.get("number") is not None:
        meta["pr_number"] = pr["number"]
        if pr.get("url"):
            meta["pr_url"] = pr["url"]
    return meta


def record_event(service: LoopService, event: Event, route_: Route, run: RunInfo, *,
                 check_name: str | None = None) -> Recorded:
    """Apply the plan of ``event`` to its record; never drops an event (a step that cannot apply is rejected).

    ``check_name``: the required check the Action posts; a merge is then also judged against the verdict that
    check last showed for the merged commit (``merge_judgement.check_vetoes``)."""
    repo = service.repository
    base_key = f"gh:{run.run_id}:{event.kind}"
    done_key = f"{base_key}#done"
    rid = route_.record_id
    head = repo.head(rid)
    if head is not None and repo.find_key(rid, done_key) is not None:
        return Recorded("duplicate", service.get(rid), head.state)
    previous = head.state if head else None
    plan = plan_event(event, previous, head.metadata if head else {}, route_.pr, issue_record=route_.issue_record)
    evidence = _evidence(event, run, route_)
    written: list[LoopTransition] = []
    common: dict[str, Any] = {"actor": event.actor, "occurred_at": event.occurred_at}

    if head is None:
        create_state = plan.create_state or (LoopState.ISSUE_CREATED if route_.issue_record
                                             else LoopState.PR_CREATED)
        only_create = event.kind == "issues.opened"
        record, created = service.get_or_create(
            route_.ref, repo=event.repo, state=create_state, metadata=_metadata(plan),
            trigger=event.kind if only_create else f"{event.kind} (record created)",
            evidence=evidence, idempotency_key=done_key if only_create else f"{base_key}#create",
            record_id=rid, **common)
        if created:
            written.extend(record.transitions[-1:])
        if only_create:
            return Recorded("applied", service.get(rid), None, written)
        plan = plan_event(event, record.state, record.metadata, route_.pr, issue_record=route_.issue_record)

    steps: list[Step] = plan.steps or [Step("note", None, event.kind, "no change to the lifecycle")]
    metadata = _metadata(plan)
    for i, step in enumerate(steps):
        key = done_key if i == len(steps) - 1 else f"{base_key}#{i}"
        kwargs: dict[str, Any] = {"evidence": evidence, "idempotency_key": key, **common}
        meta = metadata if i == 0 else None
        result: TransitionResult
        if step.kind == "note":
            result = service.note(rid, step.trigger, reason=step.reason, metadata=meta, **kwargs)
        elif step.kind == "reject":
            assert step.state is not None and step.reason is not None
            service.note(rid, f"{step.trigger} (facts)", metadata=meta, **{**kwargs, "idempotency_key": f"{key}:f"})
            result = service.reject(rid, step.state, step.trigger, step.reason, **kwargs)
        elif step.kind == "observe":
            assert step.state is not None
            vetoes: list[Veto] = []
            if step.state is LoopState.MERGED and check_name:
                after = {**(head.metadata if head else {}), **metadata}  # the verdicts kept before this event
                vetoes = check_vetoes(after, merge_basis(after), check_name)
            result = service.observe(rid, step.state, step.trigger, meta, violations=vetoes, **kwargs)
        else:
            assert step.state is not None
            result = service.transition(rid, step.state, step.trigger, meta, **kwargs)
            if not result.success and not result.duplicate and result.outcome is Outcome.REJECTED and meta:
                # the move was refused (a guard) but the facts still happened: keep them
                service.note(rid, f"{step.trigger} (facts)", metadata=meta,
                             **{**kwargs, "idempotency_key": f"{key}:f"})
        written.extend(e for e in result.entries if not result.duplicate)
    outcome = "rejected" if any(e.outcome is Outcome.REJECTED for e in written) else "applied"
    return Recorded(outcome, service.get(rid), previous, written)


#: steps a plan may have (``lifecycle.plan_event`` makes at most a few): their keys are read ahead of recording
MAX_STEPS = 6


def event_keys(event: Event, run: RunInfo) -> list[str]:
    """Every idempotency key ``record_event`` (and the Action's policy note) may look up or write for ``event``
    in workflow run ``run``, known before anything is read: a store that reads them together with the record's
    head (``BranchRepository.snapshot``) answers every key check of the event without a further request."""
    base = f"gh:{run.run_id}:{event.kind}"
    keys = [f"{base}#done", f"{base}#create", f"{base}#policy"]
    for i in range(MAX_STEPS):
        keys.append(f"{base}#{i}")
    keys += [f"{k}:f" for k in keys if not k.endswith(("#create", "#policy"))]
    return keys + [f"{k}#vetoed" for k in keys]


def route_and_record(service: LoopService, event: Event, lookup: PullLookup, run: RunInfo, *,
                     server_url: str = "https://github.com") -> Recorded | None:
    """Route ``event`` to its record and record it; None when it concerns no PR the lookup knows.

    The caller feeds the lookup (``OfflineLookup.remember`` for replay); ``Recorded.route`` says where it went.
    """
    routed = route(event, lookup, server_url)
    if routed is None:
        return None
    recorded = record_event(service, event, routed, run)
    recorded.route = routed
    return recorded
