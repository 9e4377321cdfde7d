"""``MemoryRepository``: a thread-safe in-process store (tests, prototypes, dry runs)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from loopforge.records import RecordHead
from loopforge.repository.base import Page, RecordQuery, check_append, page_of
from loopforge.trail import LoopTransition


class MemoryRepository:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._heads: dict[str, RecordHead] = {}
        self._entries: dict[str, list[LoopTransition]] = {}
        self._keys: dict[tuple[str, str], LoopTransition] = {}

    def head(self, record_id: str) -> RecordHead | None:
        with self._lock:
            head = self._heads.get(record_id)
            return head.model_copy(deep=True) if head else None

    def append(self, head: RecordHead, entries: Sequence[LoopTransition]) -> None:
        with self._lock:
            stored = self._entries.setdefault(head.record_id, [])
            check_append(len(stored), entries)
            stored.extend(entries)
            for entry in entries:
                if entry.idempotency_key:
                    self._keys.setdefault((entry.record_id, entry.idempotency_key), entry)
            self._heads[head.record_id] = head.model_copy(deep=True)

    def entries(self, record_id: str, after: int = 0, limit: int | None = None) -> list[LoopTransition]:
        with self._lock:
            stored = self._entries.get(record_id, [])
            chunk = stored[after:] if limit is None else stored[after:after + limit]
            return list(chunk)

    def find_key(self, record_id: str, idempotency_key: str) -> LoopTransition | None:
        with self._lock:
            return self._keys.get((record_id, idempotency_key))

    def query(self, query: RecordQuery) -> Page:
        with self._lock:
            heads = list(self._heads.values())
        return page_of(heads, query)
