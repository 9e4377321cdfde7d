"""A reusable contract test suite for ``Repository`` implementations.

Subclass ``RepositoryContract`` in a pytest module and provide a ``repository`` fixture that returns an empty
store; every test below then runs against it::

    from loopforge.testing import RepositoryContract

    class TestMyStore(RepositoryContract):
        @pytest.fixture
        def repository(self):
            return MyStore(...)

``concurrent_writers`` and ``long_history`` may be overridden to scale the heavier tests to a slow backend.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest

from loopforge.errors import ConcurrencyError
from loopforge.records import RecordHead, apply_entry, creation_entry
from loopforge.repository.base import RecordQuery, Repository, all_pages
from loopforge.service import LoopService
from loopforge.states import LoopState
from loopforge.trail import LoopTransition, Outcome, utcnow, verify_entries

S = LoopState


def _next(head: RecordHead, to: LoopState, *, key: str | None = None, outcome: Outcome = Outcome.APPLIED,
          metadata: dict[str, Any] | None = None) -> tuple[RecordHead, LoopTransition]:
    entry = LoopTransition(record_id=head.record_id, sequence=head.last_sequence + 1, from_state=head.state,
                           to_state=to, trigger=f"test.{to.value}", outcome=outcome, idempotency_key=key,
                           metadata=metadata or {}, prev_hash=head.last_hash).sealed()
    return apply_entry(head, entry), entry


def _new(repository: Repository, rid: str = "org/repo#1", repo: str = "org/repo",
         state: LoopState = S.ISSUE_CREATED) -> RecordHead:
    entry = creation_entry(rid, f"{repo}#{rid.rsplit('#', 1)[-1]}" if "#" in rid else rid, repo=repo, state=state)
    head = apply_entry(None, entry)
    repository.append(head, [entry])
    return head


class RepositoryContract:
    """Every store in LoopForge passes these; run them against yours."""

    concurrent_writers = 8
    transitions_per_writer = 12
    long_history = 300

    @pytest.fixture
    def repository(self) -> Repository:  # pragma: no cover - overridden
        raise NotImplementedError("provide a `repository` fixture returning an empty store")

    # ------------------------------------------------------------------ basic reads and writes
    def test_is_a_repository(self, repository: Repository) -> None:
        assert isinstance(repository, Repository)

    def test_missing_record(self, repository: Repository) -> None:
        assert repository.head("org/repo#404") is None
        assert list(repository.entries("org/repo#404")) == []
        assert repository.find_key("org/repo#404", "k") is None

    def test_create_and_read_back(self, repository: Repository) -> None:
        head = _new(repository)
        stored = repository.head("org/repo#1")
        assert stored is not None
        assert stored == head
        assert stored.state is S.ISSUE_CREATED and stored.last_sequence == 1
        entries = list(repository.entries("org/repo#1"))
        assert [e.sequence for e in entries] == [1]
        assert entries[0].hash == entries[0].compute_hash()

    def test_append_in_order_and_page_through(self, repository: Repository) -> None:
        head = _new(repository)
        for to in (S.TASK_QUEUED, S.PR_CREATED, S.CI_PENDING, S.CI_PASSED):
            head, entry = _next(head, to)
            repository.append(head, [entry])
        assert [e.to_state for e in repository.entries("org/repo#1")] == [
            S.ISSUE_CREATED, S.TASK_QUEUED, S.PR_CREATED, S.CI_PENDING, S.CI_PASSED]
        assert [e.sequence for e in repository.entries("org/repo#1", after=2)] == [3, 4, 5]
        assert [e.sequence for e in repository.entries("org/repo#1", after=1, limit=2)] == [2, 3]
        stored = repository.head("org/repo#1")
        assert stored is not None and stored.state is S.CI_PASSED and stored.last_sequence == 5
        assert stored.last_hash == list(repository.entries("org/repo#1"))[-1].hash
        once = {"taken": 1, "violations": 0}
        assert stored.path == head.path == {  # the store keeps the head's path as it was given
            ">issue_created": once, "issue_created>task_queued": once, "task_queued>pr_created": once,
            "pr_created>ci_pending": once, "ci_pending>ci_passed": once}

    def test_batch_append_is_atomic(self, repository: Repository) -> None:
        head = _new(repository)
        h1, e1 = _next(head, S.TASK_QUEUED)
        h2, e2 = _next(h1, S.PR_CREATED)
        repository.append(h2, [e1, e2])
        assert [e.sequence for e in repository.entries("org/repo#1")] == [1, 2, 3]

    # ------------------------------------------------------------------ the concurrency check
    def test_creating_an_existing_record_conflicts(self, repository: Repository) -> None:
        _new(repository)
        with pytest.raises(ConcurrencyError):
            _new(repository)
        assert [e.sequence for e in repository.entries("org/repo#1")] == [1]

    def test_stale_append_conflicts_and_writes_nothing(self, repository: Repository) -> None:
        head = _new(repository)
        winner_head, winner = _next(head, S.TASK_QUEUED)
        loser_head, loser = _next(head, S.CLOSED)  # prepared from the same, now stale, head
        repository.append(winner_head, [winner])
        with pytest.raises(ConcurrencyError):
            repository.append(loser_head, [loser])
        entries = list(repository.entries("org/repo#1"))
        assert [e.to_state for e in entries] == [S.ISSUE_CREATED, S.TASK_QUEUED]
        stored = repository.head("org/repo#1")
        assert stored is not None and stored.state is S.TASK_QUEUED

    def test_append_ahead_of_the_store_conflicts(self, repository: Repository) -> None:
        head = _new(repository)
        h1, _e1 = _next(head, S.TASK_QUEUED)
        h2, e2 = _next(h1, S.PR_CREATED)
        with pytest.raises(ConcurrencyError):
            repository.append(h2, [e2])  # sequence 3 while the store holds 1
        assert [e.sequence for e in repository.entries("org/repo#1")] == [1]

    # ------------------------------------------------------------------ idempotency keys
    def test_find_key(self, repository: Repository) -> None:
        head = _new(repository)
        head, entry = _next(head, S.TASK_QUEUED, key="run-1:issues.assigned")
        repository.append(head, [entry])
        found = repository.find_key("org/repo#1", "run-1:issues.assigned")
        assert found is not None and found.sequence == 2 and found == entry
        assert repository.find_key("org/repo#1", "run-2:issues.assigned") is None
        assert repository.find_key("org/repo#2", "run-1:issues.assigned") is None

    # ------------------------------------------------------------------ exact round trips
    def test_values_round_trip_exactly(self, repository: Repository) -> None:
        head = _new(repository)
        metadata = {
            "float": 0.1, "tiny": 1e-300, "big": 1.7976931348623157e308, "neg": -2.5, "int": 2**53 + 1,
            "zero": 0, "whole_float": 3.0, "bool": True, "none": None, "unicode": "ñ → 🚀 \u2028 \x00 ß",
            "nested": {"list": [1, 2.5, "x", {"deep": [None, False]}], "empty": {}, "emptylist": []},
            "quote": "he said \"hi\" \\ ", "long": "x" * 5000,
        }
        head, entry = _next(head, S.TASK_QUEUED, metadata=metadata)
        repository.append(head, [entry])
        [stored] = list(repository.entries("org/repo#1", after=1))
        assert stored == entry
        assert stored.metadata == metadata
        assert type(stored.metadata["whole_float"]) is float and type(stored.metadata["int"]) is int
        assert stored.compute_hash() == stored.hash
        stored_head = repository.head("org/repo#1")
        assert stored_head is not None and stored_head.metadata == metadata
        assert stored_head.updated_at == head.updated_at

    # ------------------------------------------------------------------ queries
    def test_queries(self, repository: Repository) -> None:
        _new(repository, "org/a#1", "org/a")
        b = _new(repository, "org/b#2", "org/b")
        b, e = _next(b, S.TASK_QUEUED)
        repository.append(b, [e])
        c = _new(repository, "org/a#3", "org/a", state=S.PR_CREATED)
        c, e = _next(c, S.MERGED, outcome=Outcome.VIOLATION)
        repository.append(c, [e])

        def ids(**kw: Any) -> set[str]:
            return {h.record_id for h in all_pages(repository, RecordQuery(**kw))}

        assert ids() == {"org/a#1", "org/b#2", "org/a#3"}
        assert ids(state=S.TASK_QUEUED) == {"org/b#2"}
        assert ids(repo="org/a") == {"org/a#1", "org/a#3"}
        assert ids(violations_only=True) == {"org/a#3"}
        assert ids(state=S.MERGED, repo="org/a") == {"org/a#3"}
        assert ids(since=utcnow() + timedelta(hours=1)) == set()
        assert ids(since=utcnow() - timedelta(hours=1)) == {"org/a#1", "org/b#2", "org/a#3"}
        assert ids(until=utcnow() - timedelta(hours=1)) == set()

    def test_query_pages_newest_first(self, repository: Repository) -> None:
        for i in range(7):
            _new(repository, f"org/p#{i}", "org/p")
        seen: list[RecordHead] = []
        query = RecordQuery(repo="org/p", limit=3)
        pages = 0
        while True:
            page = repository.query(query)
            pages += 1
            assert len(page.items) <= 3
            seen += page.items
            if not page.next_cursor:
                break
            query = query.model_copy(update={"cursor": page.next_cursor})
        assert pages >= 3
        assert sorted(h.record_id for h in seen) == sorted(f"org/p#{i}" for i in range(7))
        times = [h.updated_at for h in seen]
        assert times == sorted(times, reverse=True)

    # ------------------------------------------------------------------ through the service
    def test_service_lifecycle_verifies(self, repository: Repository) -> None:
        service = LoopService(repository=repository)
        record = service.create(ref="https://github.com/org/repo/issues/42", repo="org/repo")
        for to in (S.TASK_QUEUED, S.PR_CREATED, S.CI_PENDING, S.CI_PASSED, S.MERGED, S.CLOSED):
            assert service.transition(record.record_id, to, f"t.{to.value}").success
        assert record.state is S.CLOSED and len(record.transitions) == 7
        assert service.verify(record.record_id).ok
        bad = service.transition(record.record_id, S.MERGED, "late")
        assert not bad.success and bad.outcome is Outcome.REJECTED
        assert service.verify(record.record_id).ok

    def test_idempotent_through_the_service(self, repository: Repository) -> None:
        service = LoopService(repository=repository)
        record = service.create(ref="org/repo#5", repo="org/repo")
        first = service.transition(record.record_id, S.TASK_QUEUED, "assigned", idempotency_key="run-9:1")
        again = service.transition(record.record_id, S.TASK_QUEUED, "assigned", idempotency_key="run-9:1")
        assert first.success and again.duplicate and again.success
        assert [e.sequence for e in repository.entries(record.record_id)] == [1, 2]

    def test_concurrent_writers_lose_nothing(self, repository: Repository) -> None:
        """N threads, each with its own service, append to one record at once: every call ends as exactly one
        entry (each carries a unique key), the chain verifies, and no sequence is written twice."""
        LoopService(repository=repository).create(ref="org/repo#9", repo="org/repo")
        errors: list[BaseException] = []

        def writer(n: int) -> None:
            service = LoopService(repository=repository)
            try:
                for i in range(self.transitions_per_writer):
                    service.note("org/repo#9", "writer.note", evidence={"w": n, "i": i},
                                 idempotency_key=f"w{n}:{i}")
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(self.concurrent_writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        entries = list(repository.entries("org/repo#9"))
        keys = Counter(e.idempotency_key for e in entries[1:])
        assert len(keys) == self.concurrent_writers * self.transitions_per_writer
        assert set(keys.values()) == {1}
        assert [e.sequence for e in entries] == list(range(1, len(entries) + 1))
        head = repository.head("org/repo#9")
        assert head is not None
        assert verify_entries("org/repo#9", entries, last_sequence=head.last_sequence,
                              last_hash=head.last_hash, state=head.state).ok

    def test_long_history_reads_head_only(self, repository: Repository) -> None:
        service = LoopService(repository=repository)
        record = service.create(ref="org/repo#77", repo="org/repo")
        for i in range(self.long_history):
            service.note(record.record_id, "tick", evidence={"i": i})
        head = repository.head(record.record_id)
        assert head is not None and head.last_sequence == self.long_history + 1
        assert len(list(repository.entries(record.record_id, after=self.long_history - 2))) == 3
        assert service.verify(record.record_id).ok
