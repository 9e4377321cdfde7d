"""From a GitHub event to the lifecycle steps it implies (no HTTP here; see README "From event to transition").

The record keeps the facts LoopForge has seen about its current pull request in ``metadata["github"]`` (head
SHA, draft, CI results per workflow for that head, latest review per reviewer, review requested). Each event
updates those facts; the state the facts imply (``desired_state``) is then reached through the transition
table, stepping only through states the facts support (``plan``), so out-of-order or missed deliveries still
end in the right state without inventing history. A merge or a close is a fact: when the table forbids it, it
is recorded as a violation. Any other step that cannot be applied is recorded as a rejection with its reason.
"""

from __future__ import annotations

import copy
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from loopforge.github.events import Event, PullRequest
from loopforge.states import LoopState, is_allowed

S = LoopState
FACTS_KEY = "github"

StepKind = Literal["transition", "observe", "reject", "note", "create"]


@dataclass
class Step:
    """One thing to record for an event."""

    kind: StepKind
    state: LoopState | None  # target (None for a note)
    trigger: str
    reason: str | None = None


@dataclass
class Plan:
    """What an event means for one record: the facts after it and the steps to record."""

    create_state: LoopState | None  # create the record in this state if it does not exist
    steps: list[Step] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    pr_number: int | None = None
    head_sha: str | None = None


def _aggregate(runs: dict[str, Any]) -> str | None:
    if not runs:
        return None
    values = {(r.get("status") if isinstance(r, dict) else r) for r in runs.values()}
    if "failed" in values:
        return "failed"
    if "pending" in values:
        return "pending"
    return "passed"


def _iso(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if value else ""


def _newer_run(stored: dict[str, Any] | None, incoming: dict[str, Any]) -> bool:
    """Whether a CI result replaces the stored one for the same workflow and head: a later attempt of the same
    run, or a completion of the same attempt (a late "requested" never undoes "completed"), or a later run."""
    if not isinstance(stored, dict):
        return True
    if stored.get("run_id") is not None and stored.get("run_id") == incoming.get("run_id"):
        s_attempt, i_attempt = stored.get("attempt") or 1, incoming.get("attempt") or 1
        if i_attempt != s_attempt:
            return bool(i_attempt > s_attempt)
        return not (stored.get("status") != "pending" and incoming.get("status") == "pending")
    return str(incoming.get("at") or "") >= str(stored.get("at") or "")


def _apply_review(reviews: dict[str, Any], user: str, state: str, at: str, *, user_id: int | None = None,
                  commit_id: str | None = None) -> None:
    """Latest review per reviewer, by submission time; a dismissal wins a tie with the review it dismisses.
    The reviewer's immutable account id and the commit the review was for are kept when the payload has them
    (signed evidence names both: a login can change hands, an approval can be for an older commit)."""
    stored = reviews.get(user)
    if isinstance(stored, dict):
        s_at = str(stored.get("at") or "")
        if at < s_at or (at == s_at and stored.get("state") == "dismissed" and state != "dismissed"):
            return  # an older review (or the dismissed one) arriving late
    review: dict[str, Any] = {"state": state, "at": at}
    if user_id is not None:
        review["id"] = user_id
    if commit_id:
        review["commit_id"] = commit_id
    reviews[user] = review


def _merge_facts(facts: dict[str, Any], pr: PullRequest) -> None:
    """The facts of a merge, kept once (the first snapshot that shows the merge): the merge commit, who merged
    and when. Evidence of the merge (``loopforge.evidence``) is built from them."""
    if not pr.merged or facts.get("merge_commit_sha"):
        return
    if pr.merge_commit_sha:
        facts["merge_commit_sha"] = pr.merge_commit_sha
    if pr.merged_at:
        facts["merged_at"] = _iso(pr.merged_at)
    if pr.merged_by is not None:
        facts["merged_by"] = pr.merged_by.login
        if pr.merged_by.id is not None:
            facts["merged_by_id"] = pr.merged_by.id


def _review_state(value: Any) -> str | None:
    return str(value.get("state")) if isinstance(value, dict) else (str(value) if value else None)


def desired_state(facts: dict[str, Any]) -> LoopState | None:
    """The state the PR facts imply, or None when there is no pull request in the facts."""
    pr = facts.get("pr")
    if not pr:
        return None
    if pr.get("merged"):
        return S.MERGED
    if pr.get("state") == "closed":
        return S.PR_ABANDONED
    if pr.get("draft"):
        return S.PR_DRAFT
    ci = pr.get("ci") or {}
    status = ci.get("status") if ci.get("sha") == pr.get("head_sha") else None
    if status is None:
        return S.PR_CREATED
    if status == "pending":
        return S.CI_PENDING
    if status == "failed":
        return S.CI_FAILED
    decisions = {_review_state(v) for v in (pr.get("reviews") or {}).values()}
    if "changes_requested" in decisions:
        return S.CHANGES_REQUESTED
    if "approved" in decisions:
        return S.APPROVED
    if pr.get("review_requested"):
        return S.AWAITING_REVIEW
    return S.CI_PASSED


def supported_states(facts: dict[str, Any]) -> set[LoopState]:
    """States the facts show the PR has really been through (allowed as stepping stones)."""
    pr = facts.get("pr") or {}
    out: set[LoopState] = set()
    if pr:
        out.add(S.PR_CREATED)
    ci = pr.get("ci") or {}
    if ci.get("sha") and ci.get("sha") == pr.get("head_sha") and ci.get("status"):
        out.add(S.CI_PENDING)
        if ci.get("status") == "passed":
            out.add(S.CI_PASSED)
    return out


def plan_path(current: LoopState, desired: LoopState, stepping: set[LoopState]) -> list[LoopState] | None:
    """Shortest path ``current → … → desired`` through the table whose inner states are all in ``stepping``."""
    if current == desired:
        return []
    queue: deque[tuple[LoopState, list[LoopState]]] = deque([(current, [])])
    seen = {current}
    while queue:
        state, path = queue.popleft()
        for nxt in LoopState:
            if nxt in seen or not is_allowed(state, nxt):
                continue
            if nxt == desired:
                return [*path, nxt]
            if nxt in stepping:
                seen.add(nxt)
                queue.append((nxt, [*path, nxt]))
    return None


def _pr_facts(pr: PullRequest, old: dict[str, Any] | None) -> tuple[dict[str, Any], bool]:
    """The PR facts after seeing ``pr`` (a payload snapshot or the API's answer), and whether the snapshot was
    at least as new as what the record holds. A stale snapshot (an older ``updated_at``) changes nothing, and a
    merge, once seen, is never undone."""
    same_pr = bool(old) and old is not None and old.get("number") == pr.number
    facts: dict[str, Any] = copy.deepcopy(old) if same_pr and old else {}
    at = _iso(pr.updated_at)
    fresh = not facts or not at or at >= str(facts.get("updated_at") or "")
    if fresh and not facts.get("merged"):
        if facts.get("head_sha") != pr.head.sha:
            facts["ci"] = {}  # CI results belong to a head SHA
        facts.update({
            "number": pr.number, "url": pr.html_url, "head_sha": pr.head.sha, "head_ref": pr.head.ref,
            "base_ref": pr.base.ref, "draft": bool(pr.draft), "state": pr.state, "merged": bool(pr.merged),
            "title": pr.title[:300], "base_sha": pr.base.sha,
        })
        if pr.user is not None:
            facts["author"] = pr.user.login
            if pr.user.id is not None:
                facts["author_id"] = pr.user.id
        if at:
            facts["updated_at"] = at
    elif pr.merged and not facts.get("merged"):
        facts.update({"state": "closed", "merged": True})
    _merge_facts(facts, pr)
    facts.setdefault("reviews", {})
    facts.setdefault("review_requested", False)
    return facts, fresh


#: How many merge groups a record remembers (the newest; a PR re-queued many times forgets the oldest).
MAX_QUEUE_GROUPS = 10


def _plan_queue(event: Event, facts: dict[str, Any], pr: PullRequest, issue_record: bool) -> Plan:
    """``merge_group``: the record keeps the group's head SHA (the commit the queue tests and, if it lands,
    merges) with its base, so the merge is later judged against the verdict posted on that commit."""
    group, queue = event.merge_group, event.queue
    assert group is not None and queue is not None
    old_pr = facts.get("pr")
    create = S.ISSUE_CREATED if issue_record else (S.PR_DRAFT if pr.draft else S.PR_CREATED)
    if old_pr and old_pr.get("number") != pr.number and old_pr.get("state") == "open" and not old_pr.get("merged"):
        return Plan(create, [Step("note", None, event.kind, f"merge group for PR #{pr.number}, which this record "
                                                            f"does not follow")], facts, pr.number, pr.head.sha)
    prf, _fresh = _pr_facts(pr, old_pr)
    facts["pr"] = prf
    queued = dict(prf.get("queue") or {})
    groups: dict[str, Any] = dict(queued.get("groups") or {})
    at = _iso(event.occurred_at)
    sha = group.head_sha
    if event.action == "checks_requested":
        groups.pop(sha, None)
        groups[sha] = {"base_sha": group.base_sha, "base_ref": queue.base, "pr_head_sha": queue.pr_head_sha,
                       "status": "checks_requested", "at": at}
        while len(groups) > MAX_QUEUE_GROUPS:
            groups.pop(next(iter(groups)))
        reason = (f"PR #{pr.number} entered the merge queue of {queue.base[:100]}: group {sha[:12]} on base "
                  f"{(group.base_sha or 'unknown')[:12]}")
        if queue.pr_head_sha != pr.head.sha:
            reason += f" (queued head {queue.pr_head_sha[:12]}, PR head now {pr.head.sha[:12]})"
    else:
        known = dict(groups.get(sha) or {"base_sha": group.base_sha, "base_ref": queue.base,
                                         "pr_head_sha": queue.pr_head_sha})
        known.update({"status": "destroyed", "reason": event.queue_reason, "destroyed_at": at})
        groups[sha] = known
        reason = f"merge group {sha[:12]} of PR #{pr.number} destroyed ({event.queue_reason})"
    queued["groups"] = groups
    queued["last"] = sha
    prf["queue"] = queued
    return Plan(create, [Step("note", None, event.kind, reason)], facts, pr.number, pr.head.sha)


def queue_group(facts: dict[str, Any], sha: str | None) -> dict[str, Any] | None:
    """The merge group with head ``sha`` the record's PR went through, or None."""
    groups = ((facts.get("pr") or {}).get("queue") or {}).get("groups") or {}
    found = groups.get(sha) if sha else None
    return found if isinstance(found, dict) else None


def plan_event(event: Event, current: LoopState | None, metadata: dict[str, Any],
               pr: PullRequest | None, *, issue_record: bool = False) -> Plan:
    """The facts and steps ``event`` implies for a record in ``current`` (None: it does not exist yet).

    ``pr`` is the pull request the event concerns (from the payload, or looked up for CI events);
    ``issue_record`` says the record is the issue the PR closes (created as issue_created if missing).
    """
    stored = metadata.get(FACTS_KEY)
    # what LoopForge wrote is a mapping; a hand-edited head may hold anything (the integrity check reports it)
    facts: dict[str, Any] = copy.deepcopy(stored) if isinstance(stored, dict) else {}
    kind = event.kind
    trigger = kind

    if event.name == "issues":
        assert event.issue is not None
        facts["issue"] = {"number": event.issue.number, "state": event.issue.state,
                          "state_reason": event.issue.state_reason}
        if event.action == "opened":
            step = Step("note", None, trigger, "issue opened (record already existed)") if current else None
            return Plan(S.ISSUE_CREATED, [step] if step else [], facts)
        if event.action in ("assigned", "labeled"):
            if current in (S.ISSUE_CREATED, None):
                return Plan(S.ISSUE_CREATED, [Step("transition", S.TASK_QUEUED, trigger)], facts)
            return Plan(S.ISSUE_CREATED, [Step("note", None, trigger, f"already past task_queued ({current})")],
                        facts)
        if event.action == "unlabeled":
            return Plan(S.ISSUE_CREATED, [Step("note", None, trigger)], facts)
        if event.action == "closed":
            target = S.NOT_PLANNED if event.issue.state_reason == "not_planned" else S.CLOSED
            return Plan(S.ISSUE_CREATED, [Step("observe", target, trigger)], facts)
        if event.action == "reopened":
            if current in (S.ISSUE_CREATED, None):  # first seen now, or already open: nothing to reopen
                return Plan(S.ISSUE_CREATED, [Step("note", None, trigger, "issue reopened (record already open)")],
                            facts)
            return Plan(S.ISSUE_CREATED, [Step("observe", S.ISSUE_CREATED, trigger)], facts)

    if pr is None:  # CI for a commit that is not the head of any open PR we know
        return Plan(None, [], facts)

    if event.name == "merge_group":
        return _plan_queue(event, facts, pr, issue_record)

    old_pr = facts.get("pr") if isinstance(facts.get("pr"), dict) else None
    if old_pr and old_pr.get("number") != pr.number and old_pr.get("state") == "open" and not old_pr.get("merged"):
        return Plan(None, [Step("note", None, trigger,
                                f"PR #{pr.number} also links this record; its lifecycle follows PR "
                                f"#{old_pr.get('number')} until that one is closed")], facts, pr.number, pr.head.sha)
    prf, fresh = _pr_facts(pr, old_pr)
    facts["pr"] = prf

    if event.name == "pull_request":
        if event.action == "synchronize":
            if fresh and (prf.get("ci") or {}).get("sha") != pr.head.sha:
                prf["ci"] = {"sha": pr.head.sha, "status": "pending", "runs": {}}  # a new push: CI starts again
        elif event.action == "review_requested":
            prf["review_requested"] = True
        elif event.action == "converted_to_draft" and fresh:
            prf["draft"] = True
        elif event.action == "ready_for_review" and fresh:
            prf["draft"] = False
    elif event.name == "pull_request_review":
        review = event.review
        assert review is not None
        user = review.user.login if review.user else "unknown"
        user_id = review.user.id if review.user else None
        state = review.state.lower()
        at = _iso(review.submitted_at or event.occurred_at)
        if event.action == "dismissed" or state == "dismissed":
            _apply_review(prf["reviews"], user, "dismissed", at, user_id=user_id, commit_id=review.commit_id)
        elif state in ("approved", "changes_requested"):
            _apply_review(prf["reviews"], user, state, at, user_id=user_id, commit_id=review.commit_id)
    elif event.ci_sha is not None:
        if event.ci_sha != pr.head.sha:
            return Plan(None, [Step("note", None, trigger, f"CI result for {event.ci_sha[:7]}, which is no longer "
                                                           f"the head of PR #{pr.number}; not applied")],
                        facts, pr.number, pr.head.sha)
        ci = prf.get("ci") or {}
        if ci.get("sha") != pr.head.sha:
            ci = {"sha": pr.head.sha, "runs": {}}
        result = {"status": event.ci_status or "pending", "run_id": event.ci_run_id, "attempt": event.ci_attempt,
                  "at": _iso(event.occurred_at)}
        name = event.ci_name or "ci"
        runs = ci.setdefault("runs", {})
        if _newer_run(runs.get(name), result):
            runs[name] = result
        ci["status"] = _aggregate(runs)
        prf["ci"] = ci

    create = S.ISSUE_CREATED if issue_record else (S.PR_DRAFT if pr.draft else S.PR_CREATED)
    desired = desired_state(facts)
    assert desired is not None
    plan = Plan(create, [], facts, pr.number, pr.head.sha)
    start = current if current is not None else create
    if desired == start:
        plan.steps.append(Step("note", None, trigger))
        return plan
    fact = desired in (S.MERGED, S.PR_ABANDONED)
    path = plan_path(start, desired, supported_states(facts))
    if path is None:
        if fact:
            plan.steps.append(Step("observe", desired, trigger))
        else:
            plan.steps.append(Step("reject", desired, trigger,
                                   f"{kind} implies {desired.value}, which cannot follow {start.value}"))
        return plan
    for i, state in enumerate(path):
        last = i == len(path) - 1
        plan.steps.append(Step("observe" if fact and last else "transition", state,
                               trigger if last else f"{trigger} (derived)"))
    return plan
