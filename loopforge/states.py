"""The lifecycle: states and the one transition table.

Everything that decides whether a move is allowed reads ``VALID_TRANSITIONS``; nothing else hard-codes a
state pair. The table is plain data so it can be exported (``table_as_json``) and drawn (``mermaid``).
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any


class LoopState(StrEnum):
    """States of one work item. ``str(state)`` and f-strings give the readable value, e.g. ``ci_passed``."""

    ISSUE_CREATED = "issue_created"
    TASK_QUEUED = "task_queued"
    PR_DRAFT = "pr_draft"
    PR_CREATED = "pr_created"
    CI_PENDING = "ci_pending"
    CI_PASSED = "ci_passed"
    CI_FAILED = "ci_failed"
    AWAITING_REVIEW = "awaiting_review"
    CHANGES_REQUESTED = "changes_requested"
    APPROVED = "approved"
    MERGED = "merged"
    PR_ABANDONED = "pr_abandoned"
    CLOSED = "closed"
    NOT_PLANNED = "not_planned"


S = LoopState

#: States a record may start in: an issue, or a PR that closes no issue (draft or not).
INITIAL_STATES: tuple[LoopState, ...] = (S.ISSUE_CREATED, S.PR_CREATED, S.PR_DRAFT)

#: PR states: an open pull request is being worked on.
_OPEN_PR = (S.PR_DRAFT, S.PR_CREATED, S.CI_PENDING, S.CI_PASSED, S.CI_FAILED,
            S.AWAITING_REVIEW, S.CHANGES_REQUESTED, S.APPROVED)
_ISSUE_END = (S.CLOSED, S.NOT_PLANNED)

#: The states of a record whose pull request is open (the merge gate is shown for these).
OPEN_PR_STATES: frozenset[LoopState] = frozenset(_OPEN_PR)
#: Open-PR states in which "may not merge yet" means waiting (for CI, readiness or a review), not a failure.
PENDING_PR_STATES: frozenset[LoopState] = frozenset({S.PR_CREATED, S.PR_DRAFT, S.CI_PENDING, S.AWAITING_REVIEW})

#: The transition table: from-state -> the states it may move to. One place, data only.
VALID_TRANSITIONS: dict[LoopState, tuple[LoopState, ...]] = {
    # an issue is opened; a worker (human or agent) picks it up; or it is closed before any PR
    S.ISSUE_CREATED: (S.TASK_QUEUED, S.PR_DRAFT, S.PR_CREATED, *_ISSUE_END),
    S.TASK_QUEUED: (S.ISSUE_CREATED, S.PR_DRAFT, S.PR_CREATED, *_ISSUE_END),
    # a draft PR: CI results on it are kept as facts; it cannot move on until it is ready for review
    S.PR_DRAFT: (S.PR_CREATED, S.PR_ABANDONED),
    # CI may be reported before its "requested" event was seen (out-of-order delivery): allow the catch-up
    S.PR_CREATED: (S.CI_PENDING, S.CI_PASSED, S.CI_FAILED, S.AWAITING_REVIEW, S.PR_DRAFT, S.PR_ABANDONED),
    # a new push while CI runs restarts it (ci_pending -> ci_pending)
    S.CI_PENDING: (S.CI_PENDING, S.CI_PASSED, S.CI_FAILED, S.PR_DRAFT, S.PR_ABANDONED),
    # a retry or a new push after a failure; a re-run that passes
    S.CI_FAILED: (S.CI_PENDING, S.CI_PASSED, S.PR_DRAFT, S.PR_ABANDONED),
    # review gates; a new push returns to ci_pending; a late failing check
    S.CI_PASSED: (S.AWAITING_REVIEW, S.CHANGES_REQUESTED, S.APPROVED, S.MERGED,
                  S.CI_PENDING, S.CI_FAILED, S.PR_DRAFT, S.PR_ABANDONED),
    S.AWAITING_REVIEW: (S.APPROVED, S.CHANGES_REQUESTED, S.MERGED,
                        S.CI_PENDING, S.CI_FAILED, S.PR_DRAFT, S.PR_ABANDONED),
    S.CHANGES_REQUESTED: (S.AWAITING_REVIEW, S.APPROVED, S.CI_PENDING, S.CI_FAILED, S.PR_DRAFT, S.PR_ABANDONED),
    # an approval is dismissed (-> awaiting_review) or a new push returns to ci_pending
    S.APPROVED: (S.MERGED, S.AWAITING_REVIEW, S.CHANGES_REQUESTED, S.CI_PENDING, S.CI_FAILED,
                 S.PR_DRAFT, S.PR_ABANDONED),
    # the merged PR closes its issue
    S.MERGED: (S.CLOSED,),
    # a closed PR may be reopened, or another PR may follow; the issue may be closed
    S.PR_ABANDONED: (S.PR_DRAFT, S.PR_CREATED, S.TASK_QUEUED, *_ISSUE_END),
    # a reopened issue starts over
    S.CLOSED: (S.ISSUE_CREATED,),
    S.NOT_PLANNED: (S.ISSUE_CREATED,),
}

DESCRIPTIONS: dict[LoopState, str] = {
    S.ISSUE_CREATED: "work item identified (issue opened or reopened)",
    S.TASK_QUEUED: "picked up by a worker (assigned or labelled)",
    S.PR_DRAFT: "draft pull request open",
    S.PR_CREATED: "pull request open, CI not started",
    S.CI_PENDING: "CI running on the PR head",
    S.CI_PASSED: "CI green on the PR head",
    S.CI_FAILED: "CI failed on the PR head (a retry or a new push follows)",
    S.AWAITING_REVIEW: "review requested",
    S.CHANGES_REQUESTED: "a reviewer requested changes",
    S.APPROVED: "review approved",
    S.MERGED: "pull request merged",
    S.PR_ABANDONED: "pull request closed without merge",
    S.CLOSED: "issue closed as completed (terminal unless reopened)",
    S.NOT_PLANNED: "issue closed as not planned (terminal unless reopened)",
}


def allowed_from(state: LoopState) -> tuple[LoopState, ...]:
    return VALID_TRANSITIONS.get(state, ())


def is_allowed(from_state: LoopState | None, to_state: LoopState) -> bool:
    """Whether the table allows ``from_state -> to_state`` (``None`` means the record does not exist yet)."""
    if from_state is None:
        return to_state in INITIAL_STATES
    return to_state in VALID_TRANSITIONS.get(from_state, ())


def invalid_transition_message(from_state: LoopState | None, to_state: LoopState) -> str:
    """The seed's message: ``Invalid transition: issue_created → merged. Allowed from issue_created: task_queued``."""
    if from_state is None:
        return (f"Invalid initial state: {to_state.value}. "
                f"Records start in: {', '.join(s.value for s in INITIAL_STATES)}")
    allowed = allowed_from(from_state)
    allowed_str = ", ".join(s.value for s in allowed) if allowed else "none (terminal)"
    return (f"Invalid transition: {from_state.value} → {to_state.value}. "
            f"Allowed from {from_state.value}: {allowed_str}")


def table_as_dict() -> dict[str, Any]:
    return {
        "states": [{"name": s.value, "description": DESCRIPTIONS[s]} for s in LoopState],
        "initial": [s.value for s in INITIAL_STATES],
        "transitions": {s.value: [t.value for t in VALID_TRANSITIONS[s]] for s in LoopState},
    }


def table_as_json(indent: int | None = 2) -> str:
    return json.dumps(table_as_dict(), indent=indent)


def mermaid(current: LoopState | None = None) -> str:
    """The lifecycle as a Mermaid ``stateDiagram-v2``; ``current`` is highlighted with a class."""
    lines = ["stateDiagram-v2"]
    lines += [f"    [*] --> {s.value}" for s in INITIAL_STATES]
    for src in LoopState:
        lines += [f"    {src.value} --> {dst.value}" for dst in VALID_TRANSITIONS[src]]
    if current is not None:
        lines.append("    classDef current fill:#f9d71c,stroke:#333,stroke-width:3px")
        lines.append(f"    class {LoopState(current).value} current")
    return "\n".join(lines)
