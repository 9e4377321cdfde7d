"""``OverlayRepository`` (the Action's dry run): the store contract, and the base store never written."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopforge import LoopService, LoopState, RecordQuery
from loopforge.errors import StoreCorrupt
from loopforge.repository import MemoryRepository, SQLiteRepository
from loopforge.repository.overlay import OverlayRepository
from loopforge.testing import RepositoryContract

S = LoopState


class TestOverlayOnMemory(RepositoryContract):
    @pytest.fixture
    def repository(self) -> OverlayRepository:
        return OverlayRepository(MemoryRepository())


class TestOverlayOnSQLite(RepositoryContract):
    @pytest.fixture
    def repository(self, tmp_path: Path) -> OverlayRepository:
        return OverlayRepository(SQLiteRepository(tmp_path / "base.db"))


def _base_with_a_record(tmp_path: Path) -> tuple[SQLiteRepository, str]:
    base = SQLiteRepository(tmp_path / "base.db")
    service = LoopService(base)
    rid = service.create(ref="org/repo#1", repo="org/repo").record_id
    service.transition(rid, S.PR_CREATED, "pr.opened", idempotency_key="d1")
    service.transition(rid, S.CI_PENDING, "ci.started")
    return base, rid


def test_writes_continue_the_base_chain_and_never_reach_the_base(tmp_path: Path) -> None:
    base, rid = _base_with_a_record(tmp_path)
    before = [e.hash for e in base.entries(rid)]
    overlay = OverlayRepository(base)
    service = LoopService(overlay)
    assert service.transition(rid, S.CI_PASSED, "ci.passed", idempotency_key="d2").success
    again = service.transition(rid, S.PR_CREATED, "pr.opened", idempotency_key="d1")  # seen in the base
    assert again.duplicate
    assert [e.sequence for e in overlay.entries(rid)] == [1, 2, 3, 4]
    assert service.verify(rid).ok
    head = overlay.head(rid)
    assert head is not None and head.state is S.CI_PASSED and head.path is not None
    assert head.path["ci_pending>ci_passed"] == {"taken": 1, "violations": 0}
    assert [e.hash for e in base.entries(rid)] == before  # the base is untouched
    base_head = base.head(rid)
    assert base_head is not None and base_head.state is S.CI_PENDING and base.find_key(rid, "d2") is None


def test_a_record_written_here_is_queried_from_here_only(tmp_path: Path) -> None:
    base, rid = _base_with_a_record(tmp_path)
    overlay = OverlayRepository(base)
    LoopService(overlay).transition(rid, S.CI_PASSED, "ci.passed")
    assert [h.record_id for h in overlay.query(RecordQuery(state=S.CI_PENDING)).items] == []
    assert [h.record_id for h in overlay.query(RecordQuery(state=S.CI_PASSED)).items] == [rid]
    assert [h.record_id for h in base.query(RecordQuery(state=S.CI_PENDING)).items] == [rid]


def test_a_base_whose_trail_does_not_match_its_head_is_refused(tmp_path: Path) -> None:
    base, rid = _base_with_a_record(tmp_path)
    with base.transaction(immediate=True) as conn:
        conn.execute("DELETE FROM entries WHERE record_id = ? AND sequence = 2", (rid,))
    overlay = OverlayRepository(base)
    with pytest.raises(StoreCorrupt, match="does not match its head"):
        LoopService(overlay).transition(rid, S.CI_PASSED, "ci.passed")
    assert overlay.local.head(rid) is None  # nothing half-written
