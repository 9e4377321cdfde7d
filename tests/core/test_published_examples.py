"""The three published examples, copied verbatim, behave as their text says.

Example 1 runs on every store with only the storage line pointing at a test store (byte for byte as published,
it runs in tests/packaging/test_readme.py). Examples 2 and 3 run on every store.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pytest

from loopforge import LoopService, LoopState, Outcome, TransitionError

HISTORY = [
    ("None", "issue_created", "record.created"),
    ("issue_created", "task_queued", "worker.picked_up"),
    ("task_queued", "pr_created", "pr.opened"),
    ("pr_created", "ci_pending", "ci.started"),
    ("ci_pending", "ci_passed", "ci.completed"),
    ("ci_passed", "merged", "auto.merged"),
    ("merged", "closed", "issue.closed"),
]

LINE = re.compile(r"^(?P<ts>\S+ \S+) \| (?P<src>\w+) → (?P<dst>\w+) \| (?P<trigger>\S+)$")


def _check_history_output(out: str) -> None:
    lines = out.splitlines()
    assert len(lines) == 7, out  # the creation plus the six transitions
    parsed = []
    for line in lines:
        m = LINE.match(line)
        assert m, f"unreadable line: {line!r}"
        parsed.append((m["src"], m["dst"], m["trigger"]))
        stamp = datetime.fromisoformat(m["ts"])
        assert stamp.tzinfo is not None
    assert parsed == HISTORY
    # readable state names, never the enum repr
    assert "ci_pending → ci_passed" in out
    assert "LoopState" not in out
    stamps = [datetime.fromisoformat(LINE.match(line)["ts"]) for line in lines]  # type: ignore[index]
    assert stamps == sorted(stamps)


# ---------------------------------------------------------------------------------------------------- example 1
def test_example_1_on_each_store(repository: Any, capsys: pytest.CaptureFixture[str]) -> None:
    service = LoopService(repository=repository)
    record = service.create(ref="https://github.com/org/repo/issues/42", repo="org/repo")
    service.transition(record.record_id, LoopState.TASK_QUEUED,   "worker.picked_up")
    service.transition(record.record_id, LoopState.PR_CREATED,    "pr.opened")
    service.transition(record.record_id, LoopState.CI_PENDING,    "ci.started")
    service.transition(record.record_id, LoopState.CI_PASSED,     "ci.completed")
    service.transition(record.record_id, LoopState.MERGED,        "auto.merged")
    service.transition(record.record_id, LoopState.CLOSED,        "issue.closed")
    for t in record.transitions:
        print(f"{t.timestamp} | {t.from_state} → {t.to_state} | {t.trigger}")

    _check_history_output(capsys.readouterr().out)
    assert record.record_id == "org/repo#42"
    assert record.state is LoopState.CLOSED
    assert service.verify(record.record_id).ok
    # a fresh read from the store tells the same story
    fresh = service.get_by_ref("https://github.com/org/repo/issues/42")
    assert fresh is not None
    assert [(str(t.from_state), str(t.to_state), t.trigger) for t in fresh.transitions] == HISTORY
    assert all(t.outcome is Outcome.APPLIED for t in fresh.transitions)


# ---------------------------------------------------------------------------------------------------- example 2
def _walk_to_ci_passed(service: LoopService, record_id: str) -> None:
    for state, trigger in [(LoopState.TASK_QUEUED, "worker.picked_up"), (LoopState.PR_CREATED, "pr.opened"),
                           (LoopState.CI_PENDING, "ci.started"), (LoopState.CI_PASSED, "ci.completed")]:
        result = service.transition(record_id, state, trigger)
        assert result.success, result.error


def test_example_2_governance_and_audit_hooks(repository: Any) -> None:
    audit_log: list[dict[str, Any]] = []

    def governance_hook(record, previous_state, new_state, trigger):  # type: ignore[no-untyped-def]
        if new_state == LoopState.MERGED:  # noqa: SIM102 - published verbatim
            if record.metadata.get("risk_tier") == "high":  # noqa: SIM102
                if not record.metadata.get("governance_approved"):
                    raise TransitionError("High-risk merge requires governance approval")

    def audit_hook(record, previous_state, new_state, trigger):  # type: ignore[no-untyped-def]
        audit_log.append({"record_id": record.record_id, "ref": record.ref,
                          "transition": f"{previous_state.value} → {new_state.value}",
                          "trigger": trigger, "timestamp": record.updated_at.isoformat()})

    service = LoopService(repository=repository, hooks=[governance_hook, audit_hook])

    # --- a high-risk change without approval: the merge is vetoed
    risky = service.create(ref="https://github.com/org/repo/issues/7", repo="org/repo",
                           metadata={"risk_tier": "high"})
    _walk_to_ci_passed(service, risky.record_id)
    result = service.transition(risky.record_id, LoopState.MERGED, "auto.merged")
    assert result.success is False
    assert result.error == "High-risk merge requires governance approval"
    assert risky.state is LoopState.CI_PASSED  # the record does not stay merged
    assert service.get(risky.record_id).state is LoopState.CI_PASSED  # type: ignore[union-attr]
    # audit_hook ran for every applied move but never saw the vetoed merge
    assert [e["transition"] for e in audit_log] == [
        "issue_created → task_queued", "task_queued → pr_created", "pr_created → ci_pending",
        "ci_pending → ci_passed"]
    assert not any("merged" in e["transition"] for e in audit_log)
    for e in audit_log:
        assert e["record_id"] == "org/repo#7" and e["ref"] == "https://github.com/org/repo/issues/7"
        assert datetime.fromisoformat(e["timestamp"]).tzinfo is not None
    # the trail shows both the attempt and the veto, append-only
    tail = risky.transitions[-2:]
    assert [(t.from_state, t.to_state, t.outcome) for t in tail] == [
        (LoopState.CI_PASSED, LoopState.MERGED, Outcome.APPLIED),
        (LoopState.MERGED, LoopState.CI_PASSED, Outcome.VETOED)]
    assert tail[1].reason == "High-risk merge requires governance approval"
    assert tail[1].rule == "test_example_2_governance_and_audit_hooks.<locals>.governance_hook"
    assert service.verify(risky.record_id).ok

    # --- approval recorded in metadata: the merge goes through and is audited
    approved = service.transition(risky.record_id, LoopState.APPROVED, "review.approved",
                                  metadata={"governance_approved": True})
    assert approved.success
    merged = service.transition(risky.record_id, LoopState.MERGED, "auto.merged")
    assert merged.success, merged.error
    assert risky.state is LoopState.MERGED
    assert audit_log[-1]["transition"] == "approved → merged"
    assert audit_log[-1]["trigger"] == "auto.merged"

    # --- a low-risk change merges without any approval
    calm = service.create(ref="org/repo#8", repo="org/repo", metadata={"risk_tier": "low"})
    _walk_to_ci_passed(service, calm.record_id)
    assert service.transition(calm.record_id, LoopState.MERGED, "auto.merged").success
    assert audit_log[-1] == {**audit_log[-1], "record_id": "org/repo#8", "transition": "ci_passed → merged"}
    assert service.verify(calm.record_id).ok and service.verify(risky.record_id).ok


# ---------------------------------------------------------------------------------------------------- example 3
def test_example_3_hook_metadata_recorded_in_the_trail(repository: Any) -> None:
    def security_review_hook(record, previous_state, new_state, trigger):  # type: ignore[no-untyped-def]
        if new_state == LoopState.PR_CREATED:
            record.metadata["security_review"] = {"status": "requested", "reviewer": "security-team",
                                                  "requested_at": record.updated_at.isoformat()}

    service = LoopService(repository=repository, hooks=[security_review_hook])
    record = service.create(ref="https://github.com/org/repo/issues/42", repo="org/repo")
    service.transition(record.record_id, LoopState.TASK_QUEUED, "worker.picked_up")
    assert "security_review" not in record.metadata
    result = service.transition(record.record_id, LoopState.PR_CREATED, "pr.opened")
    assert result.success

    # recorded in the audit trail automatically
    carrying = [t for t in record.transitions if "security_review" in t.metadata]
    assert len(carrying) == 1
    review = carrying[0].metadata["security_review"]
    assert review["status"] == "requested" and review["reviewer"] == "security-team"
    assert carrying[0].sequence > 3  # written after the PR_CREATED move it reacts to
    assert record.transitions[2].to_state is LoopState.PR_CREATED

    # and persisted on the record: the object from create, a fresh read, and after later moves
    assert record.metadata["security_review"] == review
    assert service.get(record.record_id).metadata["security_review"] == review  # type: ignore[union-attr]
    service.transition(record.record_id, LoopState.CI_PENDING, "ci.started")
    assert service.get(record.record_id).metadata["security_review"] == review  # type: ignore[union-attr]
    assert record.state is LoopState.CI_PENDING
    assert service.verify(record.record_id).ok
