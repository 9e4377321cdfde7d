"""``OverlayRepository``: reads through to a store, keeps every write in memory (the Action's ``dry-run``).

A dry run must behave exactly like a real run, idempotency and the conditional append included, yet leave the
real store untouched. The overlay answers reads from its in-memory layer (a ``MemoryRepository``) for the records
it has written and from the base store for the rest. The first write to a record copies that record's trail from
the base into memory (``MemoryRepository.restore``), so sequences, hashes and idempotency keys continue the real
ones and ``verify`` sees one whole chain. Nothing is ever written to the base. It passes
``loopforge.testing.RepositoryContract`` like every store.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

from loopforge.errors import ConcurrencyError, StoreCorrupt
from loopforge.records import RecordHead
from loopforge.repository.base import Page, RecordQuery, Repository, all_pages, page_of
from loopforge.repository.memory import MemoryRepository
from loopforge.trail import LoopTransition


class OverlayRepository:
    """``base`` for reading, an in-memory layer for writing (``local``); ``base`` is never written."""

    def __init__(self, base: Repository) -> None:
        self.base = base
        self.local = MemoryRepository()
        self._lock = threading.Lock()  # one first-write copy per record, even with concurrent writers

    def head(self, record_id: str) -> RecordHead | None:
        return self.local.head(record_id) or self.base.head(record_id)

    def append(self, head: RecordHead, entries: Sequence[LoopTransition]) -> None:
        if not entries:
            raise ValueError("append needs at least one entry")
        with self._lock:
            if self.local.head(head.record_id) is None:
                self._copy_from_base(head.record_id, entries[0].sequence)
            self.local.append(head, entries)

    def _copy_from_base(self, record_id: str, first: int) -> None:
        """Bring the record's trail from the base into memory before its first local write (at ``first``)."""
        base_head = self.base.head(record_id)
        last = base_head.last_sequence if base_head else 0
        if first != last + 1:
            raise ConcurrencyError(f"{record_id}: expected last sequence {first - 1}, store has {last}")
        trail = list(self.base.entries(record_id)) if base_head else []
        if [e.sequence for e in trail] != list(range(1, last + 1)):
            raise StoreCorrupt(f"{record_id}: the base store's trail does not match its head (run loopforge verify)")
        self.local.restore(record_id, trail, base_head)

    def entries(self, record_id: str, after: int = 0, limit: int | None = None) -> Iterator[LoopTransition]:
        if self.local.head(record_id) is not None:
            yield from self.local.entries(record_id, after, limit)
        else:
            yield from self.base.entries(record_id, after, limit)

    def find_key(self, record_id: str, idempotency_key: str) -> LoopTransition | None:
        if self.local.head(record_id) is not None:  # the local copy holds the base's keys too
            return self.local.find_key(record_id, idempotency_key)
        return self.base.find_key(record_id, idempotency_key)

    def query(self, query: RecordQuery) -> Page:
        # a record written here is answered from here only, even where its base head alone would match
        shadowed = {h.record_id for h in all_pages(self.local, RecordQuery(limit=10_000))}
        everything = query.model_copy(update={"cursor": None})
        local = list(all_pages(self.local, everything))
        base = [h for h in all_pages(self.base, everything) if h.record_id not in shadowed]
        return page_of([*local, *base], query)
