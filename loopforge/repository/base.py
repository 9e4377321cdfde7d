"""The store protocol: what any backend implements (see README "Writing your own store").

A store keeps, per record, an append-only list of entries keyed by (record_id, sequence) and a head that
summarises them. ``append`` is the only write, and it is conditional: it succeeds only if the store's last
sequence for the record is exactly ``entries[0].sequence - 1`` (0 for a new record), and it writes the entries
and the new head atomically. Anything else raises ``ConcurrencyError``; the service reloads and retries.
"""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, Field

from loopforge.errors import ConcurrencyError
from loopforge.records import RecordHead
from loopforge.states import LoopState
from loopforge.trail import LoopTransition


class RecordQuery(BaseModel):
    """Filters for ``Repository.query``; every field is optional and they combine with AND.

    Results come newest first (by ``updated_at``). ``since``/``until`` bound ``updated_at`` (inclusive/exclusive).
    """

    state: LoopState | None = None
    repo: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    violations_only: bool = False
    limit: int = Field(default=100, ge=1, le=10_000)
    cursor: str | None = None

    def matches(self, head: RecordHead) -> bool:
        return ((self.state is None or head.state == self.state)
                and (self.repo is None or head.repo == self.repo)
                and (self.since is None or head.updated_at >= self.since)
                and (self.until is None or head.updated_at < self.until)
                and (not self.violations_only or head.violations > 0))


class Page(BaseModel):
    """One page of query results; pass ``next_cursor`` back as ``RecordQuery.cursor`` for the next page."""

    items: list[RecordHead]
    next_cursor: str | None = None


@runtime_checkable
class Repository(Protocol):
    """Storage for records. Implement these five methods; ``loopforge.testing.RepositoryContract`` tests them."""

    def head(self, record_id: str) -> RecordHead | None:
        """The record's head, or None. Must not read the trail."""
        ...

    def append(self, head: RecordHead, entries: Sequence[LoopTransition]) -> None:
        """Atomically add ``entries`` (consecutive sequences) and replace the head with ``head``.

        Raise ``ConcurrencyError`` unless the stored last sequence is ``entries[0].sequence - 1``.
        """
        ...

    def entries(self, record_id: str, after: int = 0, limit: int | None = None) -> Iterable[LoopTransition]:
        """The record's entries with sequence > ``after``, in sequence order (at most ``limit``)."""
        ...

    def find_key(self, record_id: str, idempotency_key: str) -> LoopTransition | None:
        """The record's entry carrying ``idempotency_key``, or None."""
        ...

    def query(self, query: RecordQuery) -> Page:
        """Heads matching ``query``, newest first, one page at a time."""
        ...


def check_append(stored_last: int, entries: Sequence[LoopTransition]) -> None:
    """Shared precondition check for stores that hold a lock: raise ``ConcurrencyError`` if ``append`` lost."""
    if not entries:
        raise ValueError("append needs at least one entry")
    expected = entries[0].sequence - 1
    for before, after in itertools.pairwise(entries):
        if after.sequence != before.sequence + 1:
            raise ValueError("entries must have consecutive sequences")
    if stored_last != expected:
        raise ConcurrencyError(
            f"{entries[0].record_id}: expected last sequence {expected}, store has {stored_last}")


def page_of(heads: Iterable[RecordHead], query: RecordQuery) -> Page:
    """Filter, sort newest first and paginate heads in memory (for small stores)."""
    matching = sorted((h for h in heads if query.matches(h)),
                      key=lambda h: (h.updated_at, h.record_id), reverse=True)
    if query.cursor:
        after = decode_cursor(query.cursor)
        key = (datetime.fromisoformat(after["t"]), after["id"])
        matching = [h for h in matching if (h.updated_at, h.record_id) < key]
    items = matching[: query.limit]
    more = len(matching) > query.limit
    cursor = encode_cursor({"t": items[-1].updated_at.isoformat(), "id": items[-1].record_id}) if more else None
    return Page(items=items, next_cursor=cursor)


def all_pages(repository: Repository, query: RecordQuery) -> Iterator[RecordHead]:
    """Every head matching ``query``, following cursors."""
    while True:
        page = repository.query(query)
        yield from page.items
        if not page.next_cursor:
            return
        query = query.model_copy(update={"cursor": page.next_cursor})


def encode_cursor(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, sort_keys=True).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[str, str]:
    padded = cursor + "=" * (-len(cursor) % 4)
    try:
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"invalid cursor: {cursor!r}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"invalid cursor: {cursor!r}")
    return data
