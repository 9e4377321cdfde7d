"""``MemoryRepository``: a thread-safe in-process store (tests, prototypes, dry runs).

Heads go in and come out as copies (``RecordHead.clone``), so no caller can change what the store holds; entries
are immutable and shared.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from loopforge.records import RecordHead
from loopforge.repository.base import Page, RecordQuery, check_append, page_of
from loopforge.trail import LoopTransition


class MemoryRepository:
    """Records in dicts behind one lock; ``append`` is conditional like every store's."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._heads: dict[str, RecordHead] = {}
        self._entries: dict[str, list[LoopTransition]] = {}
        self._keys: dict[tuple[str, str], LoopTransition] = {}

    def head(self, record_id: str) -> RecordHead | None:
        with self._lock:
            head = self._heads.get(record_id)
        return RecordHead.clone(head) if head is not None else None

    def append(self, head: RecordHead, entries: Sequence[LoopTransition]) -> None:
        with self._lock:
            stored = self._entries.setdefault(head.record_id, [])
            check_append(len(stored), entries)
            stored.extend(entries)
            for entry in entries:
                if entry.idempotency_key:
                    self._keys.setdefault((entry.record_id, entry.idempotency_key), entry)
            self._heads[head.record_id] = RecordHead.clone(head)

    def restore(self, record_id: str, entries: Sequence[LoopTransition], head: RecordHead | None = None) -> None:
        """Replace the record's trail with ``entries`` (and its head with ``head``, or none), unconditionally.

        For copying a record from another store (``OverlayRepository`` does, before its first local write); the
        service never calls it. ``entries`` must be the record's trail from sequence 1, in order.
        """
        if any(e.record_id != record_id or e.sequence != i for i, e in enumerate(entries, start=1)):
            raise ValueError(f"{record_id}: restore needs the record's own entries from sequence 1, in order")
        with self._lock:
            self._entries[record_id] = list(entries)
            for key in [k for k in self._keys if k[0] == record_id]:
                del self._keys[key]
            for entry in entries:
                if entry.idempotency_key:
                    self._keys.setdefault((record_id, entry.idempotency_key), entry)
            if head is None:
                self._heads.pop(record_id, None)
            else:
                self._heads[record_id] = RecordHead.clone(head)

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
