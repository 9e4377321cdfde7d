"""The service's retry budget after a lost conditional write: counts of tries, not timings."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from loopforge import ConcurrencyError, LoopService, LoopState
from loopforge.records import RecordHead
from loopforge.repository import MemoryRepository
from loopforge.trail import LoopTransition


class Losing(MemoryRepository):
    """A store where the next ``lose`` appends lose to a (pretend) concurrent writer."""

    def __init__(self) -> None:
        super().__init__()
        self.lose = 0
        self.tries = 0

    def append(self, head: RecordHead, entries: Sequence[LoopTransition]) -> None:
        self.tries += 1
        if self.lose:
            self.lose -= 1
            raise ConcurrencyError("another writer got there first")
        super().append(head, entries)


def setup(**budget: float) -> tuple[LoopService, Losing, str]:
    store = Losing()
    service = LoopService(store, **budget)  # type: ignore[arg-type]
    rid = service.create(ref="org/repo#1").record_id
    store.tries = 0
    return service, store, rid


def test_the_uncontended_path_tries_once() -> None:
    service, store, rid = setup()
    assert service.transition(rid, LoopState.TASK_QUEUED, "picked").success
    assert (store.tries, service.conflicts) == (1, 0)


def test_a_lost_write_is_retried_until_it_wins() -> None:
    service, store, rid = setup()
    store.lose = 4
    result = service.transition(rid, LoopState.TASK_QUEUED, "picked")
    assert result.success and [e.sequence for e in service.history(rid)] == [1, 2]
    assert (store.tries, service.conflicts) == (5, 4)


@pytest.mark.parametrize("attempts", [1, 2, 5])
def test_with_no_time_budget_it_gives_up_after_max_attempts(attempts: int) -> None:
    service, store, rid = setup(max_attempts=attempts, max_seconds=0)
    store.lose = 1_000
    with pytest.raises(ConcurrencyError):
        service.transition(rid, LoopState.TASK_QUEUED, "picked")
    assert (store.tries, service.conflicts) == (attempts, attempts - 1)
    assert [e.sequence for e in service.history(rid)] == [1]  # nothing half-written


def test_with_time_left_it_stops_at_twenty_times_max_attempts(monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []
    monkeypatch.setattr("time.sleep", waits.append)  # the backoff between tries, recorded instead of slept
    service, store, rid = setup(max_attempts=2, max_seconds=3600)
    store.lose = 1_000
    with pytest.raises(ConcurrencyError):
        service.note(rid, "noted")
    assert store.tries == 40 and len(waits) == 39
    assert waits[0] <= 0.002 and all(w <= 0.5 for w in waits)
