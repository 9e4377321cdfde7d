"""``OverlayRepository``: reads through to a store, keeps writes in memory (the Action's ``dry-run``)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from loopforge.records import RecordHead
from loopforge.repository.base import Page, RecordQuery, Repository, all_pages, page_of
from loopforge.repository.memory import MemoryRepository
from loopforge.trail import LoopTransition


class OverlayRepository:
    def __init__(self, base: Repository) -> None:
        self.base = base
        self.local = MemoryRepository()
        self._base_last: dict[str, int] = {}

    def head(self, record_id: str) -> RecordHead | None:
        return self.local.head(record_id) or self.base.head(record_id)

    def append(self, head: RecordHead, entries: Sequence[LoopTransition]) -> None:
        if self.local.head(head.record_id) is None:
            base_head = self.base.head(head.record_id)
            last = base_head.last_sequence if base_head else 0
            if entries[0].sequence != last + 1:
                from loopforge.errors import ConcurrencyError

                raise ConcurrencyError(f"{head.record_id}: expected last sequence {entries[0].sequence - 1}")
            self._base_last[head.record_id] = last
            # pad the local trail so sequences line up with the base store
            self.local._entries[head.record_id] = list(self.base.entries(head.record_id))
        self.local.append(head, entries)

    def entries(self, record_id: str, after: int = 0, limit: int | None = None) -> Iterator[LoopTransition]:
        if self.local.head(record_id) is not None:
            yield from self.local.entries(record_id, after, limit)
        else:
            yield from self.base.entries(record_id, after, limit)

    def find_key(self, record_id: str, idempotency_key: str) -> LoopTransition | None:
        return self.local.find_key(record_id, idempotency_key) or self.base.find_key(record_id, idempotency_key)

    def query(self, query: RecordQuery) -> Page:
        local = {h.record_id: h for h in all_pages(self.local, query.model_copy(update={"cursor": None}))}
        base = [h for h in all_pages(self.base, query.model_copy(update={"cursor": None}))
                if h.record_id not in local]
        return page_of([*local.values(), *base], query)
