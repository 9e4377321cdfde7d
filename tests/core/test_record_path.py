"""``RecordHead.path``: the moves a record made, folded over its whole trail, kept by every store."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from loopforge import LoopService, LoopState, TransitionError
from loopforge.records import RecordHead, path_key, path_of
from loopforge.repository import MemoryRepository, SQLiteRepository
from loopforge.states import allowed_from

S = LoopState


def counts(taken: int, violations: int = 0) -> dict[str, int]:
    return {"taken": taken, "violations": violations}


def test_path_counts_moves_and_violations_not_rejections_or_notes() -> None:
    service = LoopService()
    rid = service.create("org/repo#1").record_id
    service.transition(rid, S.PR_CREATED, "pr.opened")
    service.transition(rid, S.CI_PENDING, "ci.started")
    service.transition(rid, S.CI_FAILED, "ci.failed")
    service.transition(rid, S.CI_PENDING, "ci.started")
    service.transition(rid, S.CI_FAILED, "ci.failed")
    assert not service.transition(rid, S.MERGED, "pr.merged").success  # rejected: no move
    service.note(rid, "policy.evaluated", evidence={"ok": True})  # noted: no move
    service.observe(rid, S.MERGED, "pr.merged")  # a fact the table forbids: a violation, and a move
    record = service.get(rid)
    assert record is not None
    assert record.path == {
        ">issue_created": counts(1),
        "issue_created>pr_created": counts(1),
        "pr_created>ci_pending": counts(1),
        "ci_pending>ci_failed": counts(2),
        "ci_failed>ci_pending": counts(1),
        "ci_failed>merged": counts(1, 1),
    }
    assert record.path == path_of(service.history(rid))
    assert service.verify(rid).ok


def test_a_veto_counts_the_move_and_the_move_back() -> None:
    def veto(record: object, old: LoopState, new: LoopState, trigger: str) -> None:
        if new is S.TASK_QUEUED:
            raise TransitionError("no workers", rule="capacity")

    service = LoopService(hooks=[veto])
    rid = service.create("org/repo#2").record_id
    result = service.transition(rid, S.TASK_QUEUED, "worker.picked")
    assert not result.success and result.record is not None and result.record.state is S.ISSUE_CREATED
    assert result.record.path == {">issue_created": counts(1), "issue_created>task_queued": counts(1),
                                  "task_queued>issue_created": counts(1)}


def test_the_path_of_any_walk_is_the_fold_of_its_trail() -> None:
    rng = random.Random(7)
    service = LoopService()
    rid = service.create("org/repo#3").record_id
    for i in range(300):
        record = service.get(rid)
        assert record is not None
        choices = list(allowed_from(record.state)) or [S.ISSUE_CREATED]
        target = rng.choice([*choices, rng.choice(list(S))])  # sometimes a forbidden one
        if rng.random() < 0.3:
            service.observe(rid, target, f"fact.{i}")
        else:
            service.transition(rid, target, f"move.{i}")
    record = service.get(rid)
    assert record is not None and record.path is not None
    history = service.history(rid)
    assert record.path == path_of(history)
    moves = [e for e in history if e.from_state is None or e.outcome.value in ("applied", "violation", "vetoed")]
    assert sum(c["taken"] for c in record.path.values()) == len(moves)
    assert sum(c["violations"] for c in record.path.values()) == record.violations
    assert set(record.path) == {path_key(e.from_state, e.to_state) for e in moves}


def test_a_record_handed_out_cannot_change_the_stored_path() -> None:
    service = LoopService()
    record = service.create("org/repo#4")
    assert record.path is not None
    record.path[">issue_created"]["taken"] = 99
    record.metadata["x"] = {"nested": 1}
    stored = service.repository.head(record.record_id)
    assert stored is not None and stored.path == {">issue_created": counts(1)} and stored.metadata == {}


def _strip_path(store: SQLiteRepository, rid: str) -> None:
    """Rewrite the stored head as a head written before ``path`` existed (no such key in its JSON)."""
    with store.transaction(immediate=True) as conn:
        (body,) = conn.execute("SELECT head FROM records WHERE record_id = ?", (rid,)).fetchone()
        data = json.loads(body)
        del data["path"]
        conn.execute("UPDATE records SET head = ? WHERE record_id = ?", (json.dumps(data), rid))


@pytest.mark.parametrize("moves", [0, 3])
def test_an_old_head_without_a_path_loads_verifies_and_gets_its_path_on_the_next_write(
        tmp_path: Path, moves: int) -> None:
    store = SQLiteRepository(tmp_path / "old.db")
    service = LoopService(store)
    rid = service.create("org/repo#5").record_id
    for target in [S.PR_CREATED, S.CI_PENDING, S.CI_FAILED][:moves]:
        service.transition(rid, target, "move")
    expected = path_of(service.history(rid))
    _strip_path(store, rid)
    old = store.head(rid)
    assert old is not None and old.path is None  # unknown, not empty
    assert service.verify(rid).ok  # nothing to check the trail against: not a problem
    service.note(rid, "policy.evaluated")  # a note moves nothing, yet the head now knows its whole path
    new = store.head(rid)
    assert new is not None and new.path == expected
    service.transition(rid, S.CI_PENDING if moves else S.TASK_QUEUED, "move")
    again = store.head(rid)
    assert again is not None and again.path == path_of(service.history(rid))
    assert service.verify(rid).ok


def test_a_head_whose_path_was_edited_fails_verify(tmp_path: Path) -> None:
    store = SQLiteRepository(tmp_path / "edited.db")
    service = LoopService(store)
    rid = service.create("org/repo#6").record_id
    service.transition(rid, S.PR_CREATED, "pr.opened")
    with store.transaction(immediate=True) as conn:
        (body,) = conn.execute("SELECT head FROM records WHERE record_id = ?", (rid,)).fetchone()
        head = RecordHead.model_validate_json(body)
        assert head.path is not None
        edited = head.model_copy(update={"path": {**head.path, "pr_created>merged": counts(1)}})
        conn.execute("UPDATE records SET head = ? WHERE record_id = ?", (edited.model_dump_json(), rid))
    problems = [p.problem for p in service.verify(rid).problems]
    assert problems == ["the head's path (moves and counts) differs from the trail's (head edited)"]


def test_memory_and_sqlite_keep_the_same_path(tmp_path: Path) -> None:
    paths = []
    for store in (MemoryRepository(), SQLiteRepository(tmp_path / "same.db")):
        service = LoopService(store)
        rid = service.create("org/repo#7").record_id
        service.transition(rid, S.PR_CREATED, "pr.opened")
        service.observe(rid, S.MERGED, "pr.merged")
        head = store.head(rid)
        assert head is not None
        paths.append(head.path)
    assert paths[0] == paths[1] == {">issue_created": counts(1), "issue_created>pr_created": counts(1),
                                    "pr_created>merged": counts(1, 1)}


def test_the_callers_objects_stay_the_callers() -> None:
    """Metadata and evidence are copied when the entry is made: changing them afterwards changes no entry."""
    service = LoopService()
    rid = service.create("org/repo#8").record_id
    ci = {"runs": [1]}
    service.transition(rid, S.PR_CREATED, "pr.opened", {"ci": ci}, evidence={"ci": ci})
    ci["runs"].append(2)
    entry = service.history(rid)[-1]
    assert entry.metadata == {"ci": {"runs": [1]}} and entry.evidence == {"ci": {"runs": [1]}}
    record = service.get(rid)
    assert record is not None and record.metadata == {"ci": {"runs": [1]}}
    assert service.verify(rid).ok


def test_a_creations_objects_stay_the_callers() -> None:
    """The creation entry copies metadata and evidence too: changing them afterwards changes no entry."""
    service = LoopService()
    ci = {"runs": [1]}
    rid = service.create("org/repo#10", metadata={"ci": ci}, evidence={"ci": ci}).record_id
    ci["runs"].append(2)
    entry = service.history(rid)[0]
    assert entry.metadata == {"ci": {"runs": [1]}} and entry.evidence["ci"] == {"runs": [1]}
    assert service.verify(rid).ok


def test_a_violations_objects_stay_the_callers() -> None:
    """``violation`` copies metadata and evidence like every other entry: changing them afterwards changes none."""
    service = LoopService()
    rid = service.create("org/repo#9").record_id
    seen = {"commits": ["abc"]}
    service.violation(rid, "trail.edited", "edited outside LoopForge", rule="tamper", evidence={"seen": seen},
                      metadata={"seen": seen})
    seen["commits"].append("def")
    entry = service.history(rid)[-1]
    assert entry.metadata == {"seen": {"commits": ["abc"]}} and entry.evidence == {"seen": {"commits": ["abc"]}}
    assert service.verify(rid).ok
