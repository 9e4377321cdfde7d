"""``SQLiteRepository``: the embedded default store.

WAL mode, one row per entry under a ``PRIMARY KEY (record_id, sequence)`` (a second writer of the same
sequence hits the key: that is the concurrency check), and one head row per record for current-state reads
and indexed queries; the ``attestations`` table holds the signed evidence of merges (``loopforge.evidence``;
created on open, so older databases gain it). Safe across threads (a connection per thread) and processes (SQLite
file locking).

Every ``sqlite3`` error is translated here (``_translated``), by SQLite's result code, into the store errors of
``loopforge.errors``: not a database or a corrupt one → ``StoreCorrupt``; busy, locked, I/O, disk full →
``StoreUnavailable``; read-only or denied → ``StorePermissionError``; a path that cannot be opened, or a
database of another application → ``StoreMisconfigured``. An unparseable stored head or entry is
``StoreCorrupt``. The driver's exception stays attached as ``__cause__``.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from pydantic import ValidationError

from loopforge.errors import (
    ConcurrencyError,
    StoreCorrupt,
    StoreError,
    StoreMisconfigured,
    StorePermissionError,
    StoreUnavailable,
)
from loopforge.records import RecordHead
from loopforge.repository.base import Page, RecordQuery, check_append, decode_cursor, encode_cursor
from loopforge.trail import LoopTransition

DEFAULT_DB = "loopforge.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    record_id TEXT PRIMARY KEY,
    repo TEXT,
    state TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    violations INTEGER NOT NULL DEFAULT 0,
    last_sequence INTEGER NOT NULL,
    head TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_state ON records (state, updated_at DESC, record_id DESC);
CREATE INDEX IF NOT EXISTS records_repo ON records (repo, updated_at DESC, record_id DESC);
CREATE INDEX IF NOT EXISTS records_updated ON records (updated_at DESC, record_id DESC);
CREATE TABLE IF NOT EXISTS entries (
    record_id TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    idempotency_key TEXT,
    body TEXT NOT NULL,
    PRIMARY KEY (record_id, sequence)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS entries_key ON entries (record_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE TABLE IF NOT EXISTS attestations (
    merge_sha TEXT NOT NULL,
    name TEXT NOT NULL,
    repo TEXT,
    record_id TEXT,
    created_at TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (merge_sha, name)
) WITHOUT ROWID;
"""


#: SQLite's primary result codes (the low byte of ``sqlite_errorcode``) → the store error they mean.
_BY_CODE: dict[int, type[StoreError]] = {
    sqlite3.SQLITE_CORRUPT: StoreCorrupt, sqlite3.SQLITE_NOTADB: StoreCorrupt, sqlite3.SQLITE_FORMAT: StoreCorrupt,
    sqlite3.SQLITE_BUSY: StoreUnavailable, sqlite3.SQLITE_LOCKED: StoreUnavailable,
    sqlite3.SQLITE_IOERR: StoreUnavailable, sqlite3.SQLITE_FULL: StoreUnavailable,
    sqlite3.SQLITE_PROTOCOL: StoreUnavailable, sqlite3.SQLITE_NOMEM: StoreUnavailable,
    sqlite3.SQLITE_INTERRUPT: StoreUnavailable,
    sqlite3.SQLITE_READONLY: StorePermissionError, sqlite3.SQLITE_PERM: StorePermissionError,
    sqlite3.SQLITE_AUTH: StorePermissionError,
    sqlite3.SQLITE_CANTOPEN: StoreMisconfigured, sqlite3.SQLITE_NOTFOUND: StoreMisconfigured,
}


def _sqlite_error(path: str, exc: sqlite3.Error) -> StoreError:
    code = getattr(exc, "sqlite_errorcode", None)
    kind = _BY_CODE.get(code & 0xFF, StoreError) if isinstance(code, int) else StoreError
    if kind is StoreMisconfigured and path != ":memory:" and Path(path).exists() and not os.access(path, os.R_OK):
        kind = StorePermissionError
    hint = {StoreCorrupt: "it is not a LoopForge SQLite database, or it is damaged",
            StoreUnavailable: "the database is busy or the disk failed; try again",
            StorePermissionError: "check the file's and its directory's permissions",
            StoreMisconfigured: "check the path (a file, in a directory that exists)"}.get(kind, "")
    return kind(f"SQLite store {path}: {exc}" + (f" — {hint}" if hint else ""))


@contextmanager
def _translated(path: str) -> Iterator[None]:
    """Driver errors of the block as the store errors of ``loopforge.errors``."""
    try:
        yield
    except sqlite3.Error as exc:
        raise _sqlite_error(path, exc) from exc
    except ValidationError as exc:
        raise StoreCorrupt(f"SQLite store {path}: a stored head or entry does not parse "
                           f"({exc.error_count()} problem(s)); run loopforge verify") from exc


def _ts(value: object) -> str:
    # fixed-width UTC ISO strings sort like the datetimes they encode
    from datetime import UTC, datetime

    assert isinstance(value, datetime)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class SQLiteRepository:
    def __init__(self, path: str | os.PathLike[str] | None = None, *, timeout: float = 30.0) -> None:
        self.path = str(path if path is not None else os.environ.get("LOOPFORGE_DB") or DEFAULT_DB)
        self._timeout = timeout
        self._local = threading.local()
        self._memory_conn: sqlite3.Connection | None = None
        self._memory_lock = threading.RLock()
        self._create_parent()
        with self.transaction() as conn:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if tables and not tables & {"records", "entries"}:
                raise StoreMisconfigured(f"SQLite store {self.path}: a database of another application "
                                         f"(no LoopForge tables); choose another path")
            conn.executescript(_SCHEMA)

    def _create_parent(self) -> None:
        if self.path == ":memory:":
            return
        try:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        except PermissionError as exc:
            raise StorePermissionError(f"SQLite store {self.path}: cannot create its directory "
                                       f"({exc.strerror})") from exc
        except OSError as exc:
            raise StoreMisconfigured(f"SQLite store {self.path}: cannot create its directory "
                                     f"({exc.strerror or exc})") from exc

    def _conn(self) -> sqlite3.Connection:
        if self.path == ":memory:":
            if self._memory_conn is None:
                self._memory_conn = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
            return self._memory_conn
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=self._timeout, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA busy_timeout={int(self._timeout * 1000)}")
            self._local.conn = conn
        return conn

    class _Tx:
        def __init__(self, repo: SQLiteRepository, immediate: bool) -> None:
            self.repo, self.immediate = repo, immediate

        def __enter__(self) -> sqlite3.Connection:
            if self.repo.path == ":memory:":
                self.repo._memory_lock.acquire()
            self.conn = self.repo._conn()
            if self.immediate:
                self.conn.execute("BEGIN IMMEDIATE")
            return self.conn

        def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
            try:
                if self.immediate:
                    self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
            finally:
                if self.repo.path == ":memory:":
                    self.repo._memory_lock.release()

    def _tx(self, immediate: bool = False) -> SQLiteRepository._Tx:
        return SQLiteRepository._Tx(self, immediate)

    @contextmanager
    def transaction(self, *, immediate: bool = False) -> Iterator[sqlite3.Connection]:
        """The store's connection for tables kept beside the records (the evidence's ``attestations``):
        ``immediate`` takes the write lock at once and commits when the block ends (rolls back on an exception);
        driver errors leave as the store errors of ``loopforge.errors``, like every call of this store."""
        with _translated(self.path), self._tx(immediate=immediate) as conn:
            yield conn

    # ------------------------------------------------------------------ protocol
    def head(self, record_id: str) -> RecordHead | None:
        with _translated(self.path):
            with self._tx() as conn:
                row = conn.execute("SELECT head FROM records WHERE record_id = ?", (record_id,)).fetchone()
            return RecordHead.model_validate_json(row[0]) if row else None

    def append(self, head: RecordHead, entries: Sequence[LoopTransition]) -> None:
        with self.transaction(immediate=True) as conn:
            row = conn.execute("SELECT last_sequence FROM records WHERE record_id = ?",
                               (head.record_id,)).fetchone()
            check_append(row[0] if row else 0, entries)
            try:
                conn.executemany(
                    "INSERT INTO entries (record_id, sequence, idempotency_key, body) VALUES (?, ?, ?, ?)",
                    [(e.record_id, e.sequence, e.idempotency_key, e.model_dump_json()) for e in entries])
            except sqlite3.IntegrityError as exc:
                raise ConcurrencyError(f"{head.record_id}: sequence {entries[0].sequence} already written") from exc
            conn.execute(
                "INSERT INTO records (record_id, repo, state, updated_at, violations, last_sequence, head) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (record_id) DO UPDATE SET repo = excluded.repo, "
                "state = excluded.state, updated_at = excluded.updated_at, violations = excluded.violations, "
                "last_sequence = excluded.last_sequence, head = excluded.head",
                (head.record_id, head.repo, head.state.value, _ts(head.updated_at), head.violations,
                 head.last_sequence, head.model_dump_json()))

    def entries(self, record_id: str, after: int = 0, limit: int | None = None) -> Iterator[LoopTransition]:
        page = 1000 if limit is None else min(limit, 1000)
        left = limit
        while left is None or left > 0:
            with self.transaction() as conn:
                rows = conn.execute(
                    "SELECT sequence, body FROM entries WHERE record_id = ? AND sequence > ? "
                    "ORDER BY sequence LIMIT ?", (record_id, after, page if left is None else min(page, left))
                ).fetchall()
            for _seq, body in rows:  # one by one: the entries before an unparseable one still arrive (verify)
                with _translated(self.path):
                    entry = LoopTransition.model_validate_json(body)
                yield entry
            if not rows or len(rows) < page:
                return
            after = rows[-1][0]
            if left is not None:
                left -= len(rows)

    def find_key(self, record_id: str, idempotency_key: str) -> LoopTransition | None:
        with _translated(self.path):
            with self._tx() as conn:
                # INDEXED BY: left to itself the planner walks the primary key to satisfy ORDER BY, reading every
                # entry of the record (an append with a key would cost O(history))
                row = conn.execute("SELECT body FROM entries INDEXED BY entries_key WHERE record_id = ? "
                                   "AND idempotency_key = ? ORDER BY sequence LIMIT 1",
                                   (record_id, idempotency_key)).fetchone()
            return LoopTransition.model_validate_json(row[0]) if row else None

    def query(self, query: RecordQuery) -> Page:
        where: list[str] = []
        args: list[object] = []
        if query.state is not None:
            where.append("state = ?")
            args.append(query.state.value)
        if query.repo is not None:
            where.append("repo = ?")
            args.append(query.repo)
        if query.since is not None:
            where.append("updated_at >= ?")
            args.append(_ts(query.since))
        if query.until is not None:
            where.append("updated_at < ?")
            args.append(_ts(query.until))
        if query.violations_only:
            where.append("violations > 0")
        if query.cursor:
            cur = decode_cursor(query.cursor)
            where.append("(updated_at, record_id) < (?, ?)")
            args += [cur["t"], cur["id"]]
        sql = "SELECT head, updated_at, record_id FROM records"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY updated_at DESC, record_id DESC LIMIT ?"
        args.append(query.limit + 1)
        with _translated(self.path):
            with self._tx() as conn:
                rows = conn.execute(sql, args).fetchall()
            items = [RecordHead.model_validate_json(r[0]) for r in rows[: query.limit]]
        cursor = None
        if len(rows) > query.limit:
            last = rows[query.limit - 1]
            cursor = encode_cursor({"t": last[1], "id": last[2]})
        return Page(items=items, next_cursor=cursor)

    def record_ids(self) -> list[str]:
        with self.transaction() as conn:
            return [r[0] for r in conn.execute("SELECT record_id FROM records ORDER BY record_id")]

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


__all__ = ["DEFAULT_DB", "SQLiteRepository"]
