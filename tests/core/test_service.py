"""``LoopService``: hooks, guards, dry runs, observed facts, idempotency, reads, tamper detection, live records."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from loopforge import (
    LoopRecord,
    LoopService,
    LoopState,
    LoopTransition,
    Outcome,
    RecordExists,
    RecordNotFound,
    TransitionError,
    Veto,
)
from loopforge.repository import MemoryRepository, SQLiteRepository

S = LoopState
RID = "org/repo#42"
TO_CI_PASSED = [S.TASK_QUEUED, S.PR_CREATED, S.CI_PENDING, S.CI_PASSED]


def new_record(service: LoopService, *moves: LoopState, ref: str = "https://github.com/org/repo/issues/42",
               **kwargs: Any) -> LoopRecord:
    record = service.create(ref=ref, repo="org/repo", **kwargs)
    for i, state in enumerate(moves):
        result = service.transition(record.record_id, state, f"setup.{i}")
        assert result.success, result.error
    return record


def trail(service: LoopService, record_id: str = RID) -> list[tuple[LoopState | None, LoopState, Outcome]]:
    return [(t.from_state, t.to_state, t.outcome) for t in service.history(record_id)]


# ================================================================================================== hooks
class Calls:
    def __init__(self) -> None:
        self.calls: list[tuple[str, LoopState, LoopState, str]] = []

    def hook(self, name: str, action: Callable[[LoopRecord, LoopState, LoopState], None] | None = None
             ) -> Callable[..., None]:
        def hook(record: LoopRecord, previous: LoopState, new: LoopState, trigger: str) -> None:
            self.calls.append((name, previous, new, trigger))
            if action is not None:
                action(record, previous, new)

        hook.__qualname__ = name
        return hook

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]


def test_hooks_run_in_order_after_the_transition_is_recorded(repository: Any) -> None:
    calls = Calls()
    seen_in_store: list[LoopState] = []
    service = LoopService(repository=repository)

    def stored_state(record: LoopRecord, previous: LoopState, new: LoopState) -> None:
        assert record.state is new  # the hook sees the record in its new state ...
        head = repository.head(record.record_id)
        seen_in_store.append(head.state)  # ... and the move is already in the store

    for name in ("first", "second", "third"):
        service.add_hook(calls.hook(name, stored_state if name == "second" else None))
    record = new_record(service)
    result = service.transition(record.record_id, S.TASK_QUEUED, "worker.picked_up")
    assert result.success and result.outcome is Outcome.APPLIED
    assert calls.calls == [(n, S.ISSUE_CREATED, S.TASK_QUEUED, "worker.picked_up")
                           for n in ("first", "second", "third")]
    assert seen_in_store == [S.TASK_QUEUED]
    # no hook wrote anything: one entry for the move, nothing else
    assert trail(service) == [(None, S.ISSUE_CREATED, Outcome.APPLIED),
                              (S.ISSUE_CREATED, S.TASK_QUEUED, Outcome.APPLIED)]


def test_hooks_do_not_run_for_rejected_moves_or_notes(repository: Any) -> None:
    calls = Calls()
    service = LoopService(repository=repository, hooks=[calls.hook("h")])
    record = new_record(service)
    assert not service.transition(record.record_id, S.MERGED, "bad").success
    service.note(record.record_id, "a.note")
    service.reject(record.record_id, S.CI_PASSED, "event", "no PR yet")
    assert calls.calls == []


def test_ordinary_hook_failure_is_recorded_and_rolls_nothing_back(repository: Any) -> None:
    calls = Calls()

    def boom(*_: Any) -> None:
        raise RuntimeError("webhook endpoint down")

    service = LoopService(repository=repository,
                          hooks=[calls.hook("before"), calls.hook("broken", boom), calls.hook("after")])
    record = new_record(service)
    result = service.transition(record.record_id, S.TASK_QUEUED, "worker.picked_up")
    assert result.success is True
    assert result.new_state is S.TASK_QUEUED
    assert record.state is S.TASK_QUEUED
    assert calls.names() == ["before", "broken", "after"]  # later hooks still run
    history = service.history(RID)
    assert [(t.from_state, t.to_state, t.outcome) for t in history] == [
        (None, S.ISSUE_CREATED, Outcome.APPLIED),
        (S.ISSUE_CREATED, S.TASK_QUEUED, Outcome.APPLIED),
        (S.TASK_QUEUED, S.TASK_QUEUED, Outcome.HOOK_FAILED)]
    failed = history[-1]
    assert failed.rule == "broken"
    assert "RuntimeError" in (failed.reason or "") and "webhook endpoint down" in (failed.reason or "")
    assert [e.outcome for e in result.entries] == [Outcome.APPLIED, Outcome.HOOK_FAILED]
    assert service.verify(RID).ok


def test_transition_error_from_a_hook_vetoes(repository: Any) -> None:
    calls = Calls()

    def veto(record: LoopRecord, previous: LoopState, new: LoopState) -> None:
        if new is S.MERGED:
            raise TransitionError("merge freeze in effect", rule="merge-freeze", details={"until": "monday"})

    service = LoopService(repository=repository,
                          hooks=[calls.hook("first"), calls.hook("freeze", veto), calls.hook("shipper")])
    record = new_record(service, *TO_CI_PASSED)
    calls.calls.clear()
    before = service.get(RID)
    assert before is not None
    result = service.transition(record.record_id, S.MERGED, "auto.merged")

    assert result.success is False
    assert result.error == "merge freeze in effect"
    assert result.outcome is Outcome.VETOED
    assert result.previous_state is S.CI_PASSED
    assert calls.names() == ["first", "freeze"]  # hooks after the veto do not run
    # the record does not stay in the new state: the object from create, an earlier get(), and a fresh read
    assert record.state is S.CI_PASSED
    assert before.state is S.CI_PASSED
    assert service.get(RID).state is S.CI_PASSED  # type: ignore[union-attr]
    # the trail shows both the attempt and the veto; nothing is erased
    tail = service.history(RID)[-2:]
    assert [(t.from_state, t.to_state, t.outcome) for t in tail] == [
        (S.CI_PASSED, S.MERGED, Outcome.APPLIED), (S.MERGED, S.CI_PASSED, Outcome.VETOED)]
    assert tail[1].reason == "merge freeze in effect"
    assert tail[1].rule == "merge-freeze"
    assert tail[1].evidence == {"until": "monday"}
    assert [e.outcome for e in result.entries] == [Outcome.APPLIED, Outcome.VETOED]
    assert len(service.history(RID)) == 1 + len(TO_CI_PASSED) + 2
    assert service.verify(RID).ok
    # the record can carry on normally afterwards
    assert service.transition(RID, S.APPROVED, "review.approved").success


def test_hook_failure_then_veto_records_both(repository: Any) -> None:
    def boom(*_: Any) -> None:
        raise KeyError("missing")

    def veto(*_: Any) -> None:
        raise TransitionError("no")

    service = LoopService(repository=repository, hooks=[boom, veto])
    new_record(service)
    result = service.transition(RID, S.TASK_QUEUED, "t")
    assert not result.success and result.error == "no"
    assert [t.outcome for t in service.history(RID)] == [
        Outcome.APPLIED, Outcome.APPLIED, Outcome.HOOK_FAILED, Outcome.VETOED]
    assert service.get(RID).state is S.ISSUE_CREATED  # type: ignore[union-attr]
    assert service.verify(RID).ok


def test_hook_metadata_is_persisted_and_in_the_trail(repository: Any) -> None:
    def tag(record: LoopRecord, previous: LoopState, new: LoopState, trigger: str) -> None:
        record.metadata["last_hook"] = new.value
        record.metadata.pop("temporary", None)

    service = LoopService(repository=repository, hooks=[tag])
    record = new_record(service, metadata={"temporary": 1, "kept": True})
    result = service.transition(RID, S.TASK_QUEUED, "t", metadata={"assignee": "bot"})
    assert result.success
    assert record.metadata == {"kept": True, "assignee": "bot", "last_hook": "task_queued"}
    history = service.history(RID)
    assert history[1].metadata == {"assignee": "bot"}
    assert history[2].outcome is Outcome.NOTED
    assert history[2].metadata == {"last_hook": "task_queued"}
    assert history[2].metadata_removed == ["temporary"]
    assert service.get(RID).metadata == record.metadata  # type: ignore[union-attr]
    assert service.verify(RID).ok


def test_hook_veto_of_an_observed_fact_is_a_violation(repository: Any) -> None:
    def veto(*_: Any) -> None:
        raise TransitionError("should not have merged", rule="policy")

    service = LoopService(repository=repository, hooks=[veto])
    new_record(service)
    for s in TO_CI_PASSED:  # hooks veto every move: use observe to get there
        service.observe(RID, s, "github")
    result = service.observe(RID, S.MERGED, "pr.merged")
    assert result.success
    assert service.get(RID).state is S.MERGED  # type: ignore[union-attr]  # a fact cannot be undone
    last = service.history(RID)[-1]
    assert (last.outcome, last.rule, last.reason) == (Outcome.VIOLATION, "policy", "should not have merged")
    assert service.verify(RID).ok


# ================================================================================================== guards
def test_guard_veto_is_a_rejected_attempt(repository: Any) -> None:
    calls = Calls()
    guard_calls: list[tuple[LoopState, LoopState, str]] = []

    def require_approval(record: LoopRecord, current: LoopState, new: LoopState, trigger: str) -> None:
        guard_calls.append((current, new, trigger))
        if new is S.MERGED and not record.metadata.get("approved"):
            raise TransitionError("needs approval", rule="approval-required", details={"needed": 1})

    service = LoopService(repository=repository, guards=[require_approval], hooks=[calls.hook("h")])
    record = new_record(service, *TO_CI_PASSED)
    calls.calls.clear()
    before = len(service.history(RID))
    result = service.transition(RID, S.MERGED, "auto.merged")
    assert result.success is False
    assert result.error == "needs approval"
    assert result.outcome is Outcome.REJECTED
    assert record.state is S.CI_PASSED
    assert calls.calls == []  # nothing was applied, so no hook ran
    assert guard_calls[-1] == (S.CI_PASSED, S.MERGED, "auto.merged")
    history = service.history(RID)
    assert len(history) == before + 1
    rejected = history[-1]
    assert (rejected.from_state, rejected.to_state, rejected.outcome) == (S.CI_PASSED, S.MERGED, Outcome.REJECTED)
    assert rejected.rule == "approval-required"
    assert rejected.evidence["vetoes"] == [{"rule": "approval-required", "reason": "needs approval", "needed": 1}]
    assert rejected.state_after is S.CI_PASSED
    # guard satisfied: the move goes through
    assert service.transition(RID, S.APPROVED, "review.approved", metadata={"approved": True}).success
    assert service.transition(RID, S.MERGED, "auto.merged").success
    assert service.verify(RID).ok


def test_rejected_transition_does_not_store_its_metadata(repository: Any) -> None:
    service = LoopService(repository=repository)
    record = new_record(service)
    result = service.transition(RID, S.MERGED, "bad", metadata={"pr_number": 9})
    assert not result.success
    assert "pr_number" not in record.metadata
    assert service.history(RID)[-1].metadata == {}


def test_guard_returning_false_refuses(repository: Any) -> None:
    service = LoopService(repository=repository, guards=[lambda *_: False])
    new_record(service)
    result = service.transition(RID, S.TASK_QUEUED, "t")
    assert not result.success and "refused" in (result.error or "")
    assert service.get(RID).state is S.ISSUE_CREATED  # type: ignore[union-attr]


def test_guard_that_crashes_fails_closed(repository: Any) -> None:
    def flaky(*_: Any) -> None:
        raise ConnectionError("policy service unreachable")

    service = LoopService(repository=repository, guards=[flaky])
    new_record(service)
    result = service.transition(RID, S.TASK_QUEUED, "t")
    assert result.success is False
    assert "ConnectionError" in (result.error or "") and "policy service unreachable" in (result.error or "")
    assert service.get(RID).state is S.ISSUE_CREATED  # type: ignore[union-attr]
    last = service.history(RID)[-1]
    assert last.outcome is Outcome.REJECTED and last.rule == "test_guard_that_crashes_fails_closed.<locals>.flaky"
    assert service.check(RID, S.TASK_QUEUED).allowed is False


def test_lifecycle_and_guard_vetoes_combine(repository: Any) -> None:
    def no(*_: Any) -> None:
        raise TransitionError("frozen", rule="freeze")

    service = LoopService(repository=repository, guards=[no])
    new_record(service)
    result = service.transition(RID, S.MERGED, "t")
    assert not result.success
    assert result.error is not None and result.error.startswith("Invalid transition: issue_created → merged")
    assert result.error.endswith("; frozen")
    assert service.history(RID)[-1].rule == "lifecycle, freeze"


def test_check_is_a_dry_run(repository: Any) -> None:
    guard_seen: list[LoopState] = []

    def guard(record: LoopRecord, current: LoopState, new: LoopState, trigger: str) -> None:
        guard_seen.append(new)
        if new is S.MERGED and record.metadata.get("risk_tier") == "high":
            raise TransitionError("High-risk merge requires governance approval", rule="governance")

    calls = Calls()
    service = LoopService(repository=repository, guards=[guard], hooks=[calls.hook("h")])
    record = new_record(service, *TO_CI_PASSED, metadata={"risk_tier": "high"})
    calls.calls.clear()
    guard_seen.clear()
    before_head = repository.head(RID)
    before_entries = service.history(RID)

    verdict = service.check(record.record_id, LoopState.MERGED)
    assert not verdict and verdict.allowed is False
    assert verdict.current_state is S.CI_PASSED and verdict.new_state is S.MERGED
    assert verdict.reasons == ["High-risk merge requires governance approval"]
    assert [v.rule for v in verdict.vetoes] == ["governance"]
    assert guard_seen == [S.MERGED]

    ok = service.check(record.record_id, LoopState.APPROVED)
    assert ok and ok.vetoes == []
    invalid = service.check(record.record_id, LoopState.ISSUE_CREATED)
    assert not invalid and invalid.vetoes[0].rule == "lifecycle"
    assert invalid.reasons[0].startswith("Invalid transition: ci_passed → issue_created")

    # nothing written, nothing moved, no hook run
    assert repository.head(RID) == before_head
    assert service.history(RID) == before_entries
    assert record.state is S.CI_PASSED
    assert calls.calls == []
    with pytest.raises(RecordNotFound):
        service.check("org/repo#404", S.MERGED)


# ============================================================================================ observe, reject, note
def test_observe_records_a_forbidden_fact_as_a_violation(repository: Any) -> None:
    service = LoopService(repository=repository)
    record = new_record(service, S.TASK_QUEUED, S.PR_CREATED, S.CI_PENDING, S.CI_FAILED)
    result = service.observe(RID, S.MERGED, "pr.merged", evidence={"merged_by": "someone"})
    assert result.success is True
    assert result.outcome is Outcome.VIOLATION
    assert record.state is S.MERGED  # the state follows reality
    entry = service.history(RID)[-1]
    assert (entry.from_state, entry.to_state, entry.outcome) == (S.CI_FAILED, S.MERGED, Outcome.VIOLATION)
    assert entry.rule == "lifecycle"
    assert entry.reason == ("Invalid transition: ci_failed → merged. Allowed from ci_failed: "
                            "ci_pending, ci_passed, pr_draft, pr_abandoned")
    assert entry.evidence["merged_by"] == "someone"
    assert record.violations == 1
    assert [h.record_id for h in service.find(violations_only=True)] == [RID]
    assert service.verify(RID).ok
    # an allowed fact is simply applied
    assert service.observe(RID, S.CLOSED, "issue.closed").outcome is Outcome.APPLIED
    assert service.get(RID).violations == 1  # type: ignore[union-attr]


def test_observe_names_guard_and_explicit_rules(repository: Any) -> None:
    def guard(*_: Any) -> None:
        raise TransitionError("required check missing", rule="required-check")

    service = LoopService(repository=repository, guards=[guard])
    new_record(service)
    result = service.observe(RID, S.TASK_QUEUED, "assigned",
                             violations=[Veto(rule="two-person", reason="self-assigned")])
    assert result.success and result.outcome is Outcome.VIOLATION
    entry = service.history(RID)[-1]
    assert entry.rule == "required-check, two-person"
    assert entry.reason == "required check missing; self-assigned"
    assert service.get(RID).state is S.TASK_QUEUED  # type: ignore[union-attr]


def test_reject_and_note(repository: Any) -> None:
    service = LoopService(repository=repository)
    record = new_record(service, S.TASK_QUEUED)
    rejected = service.reject(RID, S.CI_PASSED, "check_suite.completed", "no PR for this record", rule="no-pr")
    assert not rejected.success and rejected.error == "no PR for this record"
    assert rejected.outcome is Outcome.REJECTED
    noted = service.note(RID, "policy.evaluated", evidence={"score": 3}, metadata={"risk_tier": "low"})
    assert noted.success and noted.outcome is Outcome.NOTED
    assert record.state is S.TASK_QUEUED and record.metadata["risk_tier"] == "low"
    removed = service.note(RID, "policy.cleared", metadata_removed=["risk_tier"])
    assert removed.success and "risk_tier" not in record.metadata
    assert [t.outcome for t in record.transitions][-3:] == [Outcome.REJECTED, Outcome.NOTED, Outcome.NOTED]
    assert service.verify(RID).ok


def test_moves_on_a_missing_record(repository: Any) -> None:
    service = LoopService(repository=repository)
    for result in (service.transition("org/repo#404", S.TASK_QUEUED, "t"),
                   service.observe("org/repo#404", S.TASK_QUEUED, "t"),
                   service.note("org/repo#404", "t")):
        assert result.success is False and result.error == "Record not found: org/repo#404"
        assert result.record is None
    assert service.get("org/repo#404") is None
    with pytest.raises(RecordNotFound):
        service.verify("org/repo#404")


# ================================================================================================== idempotency
def test_same_key_twice_records_once(repository: Any) -> None:
    service = LoopService(repository=repository)
    record = new_record(service)
    first = service.transition(RID, S.TASK_QUEUED, "issues.assigned", idempotency_key="delivery-1")
    again = service.transition(RID, S.TASK_QUEUED, "issues.assigned", idempotency_key="delivery-1")
    assert first.success and not first.duplicate
    assert again.success and again.duplicate is True
    assert again.entry == first.entry
    assert len(service.history(RID)) == 2
    assert record.state is S.TASK_QUEUED
    # a redelivery is recognised by key even if the record has moved on since
    service.transition(RID, S.PR_CREATED, "pr.opened", idempotency_key="delivery-2")
    late = service.transition(RID, S.TASK_QUEUED, "issues.assigned", idempotency_key="delivery-1")
    assert late.duplicate and late.success
    assert record.state is S.PR_CREATED
    assert [t.idempotency_key for t in service.history(RID)] == [None, "delivery-1", "delivery-2"]


def test_duplicate_of_a_rejected_attempt_stays_rejected(repository: Any) -> None:
    service = LoopService(repository=repository)
    new_record(service)
    first = service.transition(RID, S.MERGED, "bad", idempotency_key="k")
    again = service.transition(RID, S.MERGED, "bad", idempotency_key="k")
    assert not first.success and not again.success
    assert again.duplicate and again.outcome is Outcome.REJECTED and again.error == first.error
    assert len(service.history(RID)) == 2


def test_duplicate_of_a_vetoed_transition_stays_vetoed(repository: Any) -> None:
    def veto(record: LoopRecord, previous: LoopState, new: LoopState, trigger: str) -> None:
        if new is S.MERGED:
            raise TransitionError("merge freeze")

    service = LoopService(repository=repository, hooks=[veto])
    new_record(service, *TO_CI_PASSED)
    first = service.transition(RID, S.MERGED, "auto.merged", idempotency_key="merge-1")
    again = service.transition(RID, S.MERGED, "auto.merged", idempotency_key="merge-1")
    assert first.success is False and first.outcome is Outcome.VETOED
    assert again.duplicate is True
    assert again.success is False and again.outcome is Outcome.VETOED and again.error == "merge freeze"
    assert [e.outcome for e in again.entries] == [Outcome.APPLIED, Outcome.VETOED]
    assert len(service.history(RID)) == 1 + len(TO_CI_PASSED) + 2  # the redelivery wrote nothing
    assert service.get(RID).state is S.CI_PASSED  # type: ignore[union-attr]


def test_keys_for_notes_observations_and_creation(repository: Any) -> None:
    service = LoopService(repository=repository)
    new_record(service)
    assert not service.note(RID, "n", idempotency_key="n1").duplicate
    assert service.note(RID, "n", idempotency_key="n1").duplicate
    assert not service.observe(RID, S.CLOSED, "o", idempotency_key="o1").duplicate
    assert service.observe(RID, S.CLOSED, "o", idempotency_key="o1").duplicate
    assert not service.reject(RID, S.MERGED, "r", "why", idempotency_key="r1").duplicate
    assert service.reject(RID, S.MERGED, "r", "why", idempotency_key="r1").duplicate
    assert len(service.history(RID)) == 4
    # keys are per record
    other = service.create(ref="org/repo#43")
    assert not service.note(other.record_id, "n", idempotency_key="n1").duplicate


# ================================================================================================== reads
def test_ids_and_get_by_ref(repository: Any) -> None:
    service = LoopService(repository=repository)
    record = service.create(ref="https://github.com/org/repo/issues/42", repo="org/repo")
    assert record.record_id == "org/repo#42"
    assert record.ref == "https://github.com/org/repo/issues/42"
    assert record.ref_number == 42 and record.repo == "org/repo"
    for ref, repo in [("https://github.com/org/repo/issues/42", None), ("https://github.com/org/repo/pull/42", None),
                      ("org/repo#42", None), ("#42", "org/repo"), ("42", "org/repo")]:
        found = service.get_by_ref(ref, repo)
        assert found is not None and found.record_id == "org/repo#42", ref
    assert service.get_by_ref("org/repo#41") is None
    assert service.get_by_ref("https://github.com/org/other/issues/42") is None


def test_create_existing_raises_and_get_or_create(repository: Any) -> None:
    service = LoopService(repository=repository)
    record = new_record(service, S.TASK_QUEUED)
    with pytest.raises(RecordExists):
        service.create(ref="org/repo#42")
    again, created = service.get_or_create("https://github.com/org/repo/issues/42", repo="org/repo")
    assert created is False
    assert again.record_id == RID and again.state is S.TASK_QUEUED
    assert len(service.history(RID)) == 2  # nothing written by either call
    fresh, created = service.get_or_create("org/repo#43")
    assert created is True and fresh.state is S.ISSUE_CREATED and len(fresh.transitions) == 1
    assert record.state is S.TASK_QUEUED


def test_records_handed_out_see_later_transitions(repository: Any) -> None:
    service = LoopService(repository=repository)
    record = service.create(ref="https://github.com/org/repo/issues/42", repo="org/repo")
    assert len(record.transitions) == 1
    other = service.get(record.record_id)
    lazy = service.get_by_ref("org/repo#42")  # trail never read before the moves
    assert other is not None and lazy is not None
    assert service.transition(other.record_id, S.TASK_QUEUED, "worker.picked_up").success
    assert len(other.transitions) == 2
    assert service.transition(other.record_id, S.PR_CREATED, "pr.opened", metadata={"pr_number": 7}).success
    service.note(other.record_id, "policy.evaluated")
    for r in (record, other, lazy):
        assert r.state is S.PR_CREATED
        assert r.pr_number == 7
        assert [t.to_state for t in r.transitions] == [S.ISSUE_CREATED, S.TASK_QUEUED, S.PR_CREATED, S.PR_CREATED]
        assert [t.sequence for t in r.transitions] == [1, 2, 3, 4]
        assert r.last_sequence == 4


def test_timestamps_are_tz_aware_datetimes(repository: Any) -> None:
    service = LoopService(repository=repository)
    record = new_record(service)
    naive = datetime(2024, 5, 1, 12, 0, 0)
    offset = datetime(2024, 5, 1, 14, 0, 0, tzinfo=timezone(timedelta(hours=2)))
    service.transition(RID, S.TASK_QUEUED, "a", occurred_at=naive)
    service.note(RID, "b", occurred_at=offset)
    fresh = service.get(RID)
    assert fresh is not None
    for r in (record, fresh):
        for value in (r.created_at, r.updated_at):
            assert isinstance(value, datetime) and value.utcoffset() == timedelta(0)
        for t in r.transitions:
            for value in (t.timestamp, t.occurred_at, t.recorded_at):
                assert isinstance(value, datetime) and value.tzinfo is not None
                assert value.utcoffset() == timedelta(0)
    moved, noted = fresh.transitions[1:]
    assert moved.occurred_at == datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)  # naive is read as UTC
    assert noted.occurred_at == datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    assert moved.timestamp == moved.occurred_at
    assert moved.recorded_at > moved.occurred_at  # event time vs recorded time
    assert fresh.updated_at == noted.recorded_at
    assert record.updated_at >= record.created_at


def test_entry_fields_and_chain(repository: Any) -> None:
    service = LoopService(repository=repository)
    new_record(service)
    service.transition(RID, S.TASK_QUEUED, "worker.picked_up", actor="bot", evidence={"run": 5},
                       metadata={"assignee": "bot"}, idempotency_key="k1")
    first, second = service.history(RID)
    assert (second.sequence, second.actor, second.trigger, second.evidence, second.metadata) == (
        2, "bot", "worker.picked_up", {"run": 5}, {"assignee": "bot"})
    assert second.idempotency_key == "k1"
    assert second.prev_hash == first.hash and first.prev_hash == "0" * 64
    assert second.hash == second.compute_hash() and len(second.hash) == 64
    assert LoopTransition.model_validate_json(second.model_dump_json()) == second


# ================================================================================================== verify
class Tamper:
    """Edit the stored trail behind the service's back (the store's internals or raw SQL)."""

    def __init__(self, repository: Any) -> None:
        self.repository = repository

    def _rows(self) -> list[LoopTransition]:
        return list(self.repository.entries(RID))

    # --- memory
    def _mem(self) -> list[LoopTransition]:
        return self.repository._entries[RID]  # type: ignore[no-any-return]

    # --- sqlite
    def _sql(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.repository.path, isolation_level=None)
        try:
            yield conn
        finally:
            conn.close()

    def edit(self, seq: int, rehash: bool = False, **changes: Any) -> None:
        entry = self._rows()[seq - 1].model_copy(update=changes)
        if rehash:
            entry = entry.sealed()
        if isinstance(self.repository, MemoryRepository):
            self._mem()[seq - 1] = entry
        else:
            for conn in self._sql():
                conn.execute("UPDATE entries SET body = ? WHERE record_id = ? AND sequence = ?",
                             (entry.model_dump_json(), RID, seq))

    def edit_raw_json(self, seq: int, key: str, value: Any) -> None:
        for conn in self._sql():
            (body,) = conn.execute("SELECT body FROM entries WHERE record_id = ? AND sequence = ?",
                                   (RID, seq)).fetchone()
            data = json.loads(body)
            data[key] = value
            conn.execute("UPDATE entries SET body = ? WHERE record_id = ? AND sequence = ?",
                         (json.dumps(data), RID, seq))

    def remove(self, seq: int) -> None:
        if isinstance(self.repository, MemoryRepository):
            del self._mem()[seq - 1]
        else:
            for conn in self._sql():
                conn.execute("DELETE FROM entries WHERE record_id = ? AND sequence = ?", (RID, seq))

    def swap(self, a: int, b: int) -> None:
        if isinstance(self.repository, MemoryRepository):
            rows = self._mem()
            rows[a - 1], rows[b - 1] = rows[b - 1], rows[a - 1]
        else:
            for conn in self._sql():
                bodies = dict(conn.execute("SELECT sequence, body FROM entries WHERE record_id = ? "
                                           "AND sequence IN (?, ?)", (RID, a, b)).fetchall())
                conn.execute("BEGIN")
                conn.execute("UPDATE entries SET body = ? WHERE record_id = ? AND sequence = ?", (bodies[b], RID, a))
                conn.execute("UPDATE entries SET body = ? WHERE record_id = ? AND sequence = ?", (bodies[a], RID, b))
                conn.execute("COMMIT")


@pytest.fixture
def tampered(repository: Any) -> tuple[LoopService, Tamper]:
    service = LoopService(repository=repository)
    new_record(service, S.TASK_QUEUED, S.PR_CREATED, S.CI_PENDING, S.CI_PASSED)  # entries 1..5
    service.note(RID, "policy.evaluated", evidence={"score": 1})  # entry 6
    assert service.verify(RID).ok and service.verify(RID).entries == 6
    return service, Tamper(repository)


def _problems(service: LoopService) -> tuple[set[int | None], str]:
    report = service.verify(RID)
    assert not report.ok and not bool(report)
    return {p.sequence for p in report.problems}, "\n".join(str(p) for p in report.problems)


def test_verify_detects_an_edited_entry(tampered: tuple[LoopService, Tamper]) -> None:
    service, tamper = tampered
    tamper.edit(3, trigger="forged.trigger")
    seqs, text = _problems(service)
    assert seqs == {3}
    assert "entry 3: content does not match its hash (entry edited)" in text


def test_verify_detects_an_edited_and_rehashed_entry(tampered: tuple[LoopService, Tamper]) -> None:
    service, tamper = tampered
    tamper.edit(3, rehash=True, evidence={"forged": True})
    seqs, text = _problems(service)
    assert seqs == {3, 4}  # its own hash is consistent, but the next entry's link is not: both are named
    assert "entry 3: its hash is not the one entry 4 links to (entry edited and re-hashed)" in text
    assert "entry 4: previous-hash link broken" in text


def test_verify_detects_an_edited_outcome(tampered: tuple[LoopService, Tamper]) -> None:
    service, tamper = tampered
    tamper.edit(6, outcome=Outcome.REJECTED, reason="pretend")
    seqs, _ = _problems(service)
    assert 6 in seqs


def test_verify_detects_a_removed_entry(tampered: tuple[LoopService, Tamper]) -> None:
    service, tamper = tampered
    tamper.remove(3)
    seqs, text = _problems(service)
    assert 3 in seqs
    assert "missing: entry 3 removed before entry 4" in text


def test_verify_detects_reordered_entries(tampered: tuple[LoopService, Tamper]) -> None:
    service, tamper = tampered
    tamper.swap(3, 4)
    seqs, text = _problems(service)
    assert {3, 4} <= seqs
    assert "out of order" in text


def test_verify_detects_a_deleted_last_entry(tampered: tuple[LoopService, Tamper]) -> None:
    service, tamper = tampered
    tamper.remove(6)
    seqs, text = _problems(service)
    assert seqs == {6}
    assert "entry 6" in text and "removed" in text


def test_verify_detects_a_raw_json_edit_in_sqlite(tmp_path: Path) -> None:
    repository = SQLiteRepository(tmp_path / "loopforge.db")
    service = LoopService(repository=repository)
    new_record(service, S.TASK_QUEUED, S.PR_CREATED)
    Tamper(repository).edit_raw_json(2, "actor", "mallory")
    seqs, text = _problems(service)
    assert seqs == {2} and "entry 2" in text


def test_verify_reports_on_an_untouched_long_trail(repository: Any) -> None:
    service = LoopService(repository=repository)
    new_record(service)
    for i in range(50):
        service.note(RID, "tick", evidence={"i": i})
    report = service.verify(RID)
    assert report.ok and report.entries == 51 and report.problems == []


def test_verify_detects_a_head_that_disagrees_with_the_trail(tampered: tuple[LoopService, Tamper]) -> None:
    service, tamper = tampered
    repository = tamper.repository
    forged = repository.head(RID).model_copy(update={"state": S.MERGED})
    if isinstance(repository, MemoryRepository):
        repository._heads[RID] = forged
    else:
        for conn in tamper._sql():
            conn.execute("UPDATE records SET state = ?, head = ? WHERE record_id = ?",
                         (S.MERGED.value, forged.model_dump_json(), RID))
    seqs, text = _problems(service)
    assert seqs == {None}
    assert "head says merged but the trail ends in ci_passed" in text
