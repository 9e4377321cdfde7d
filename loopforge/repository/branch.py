"""``BranchRepository``: records kept as JSON files on a data branch of a GitHub repository (the Action's
default store; no infrastructure beyond the repository itself).

Layout of the branch (an orphan branch, ``loopforge-state`` by default, created on first write)::

    README.md
    records/<owner>/<repo>/<number>/head.json              # the record's RecordHead + the newest entries
    records/<owner>/<repo>/<number>/entries/000001.json    # one LoopTransition per file, append-only
    records/<owner>/<repo>/<number>/keys/<sha256(key)>.json  # a copy of the entry carrying that idempotency key
    records/_other/<slug>~<sha256(id)[:16]>/...            # record ids not of the form owner/repo#number

``head.json`` holds the ``RecordHead`` fields and ``window``: the newest ``WINDOW`` (60) entries in full, so the
check run's history table and the idempotency check of a recent key need no further read (older ``head.json``
files without a window are read as before; the window fills as entries are appended).

Every ``append`` is one GraphQL ``createCommitOnBranch`` with ``expectedHeadOid`` = the tip the record was read
at: GitHub commits only if the branch still points there (a compare-and-swap; the commit is signed by GitHub).
If another writer moved the branch (``STALE_DATA``), the store re-reads the record at the new tip: unchanged
(another record was written) → the same files are committed on the new tip (bounded, with backoff); changed →
``ConcurrencyError`` and the service re-validates. A lost answer (no answer, 5xx) is reconciled by reading the
record back. History is never rewritten. The HTTP requests themselves live in ``loopforge.github.branch_api``;
see ``docs/branch-store.md`` for request counts.

One read per event: ``snapshot(record_id, keys, extras)`` reads, in one GraphQL query, the branch tip (with its
author and signature), the record's ``head.json`` and the key files of ``keys`` at that tip, and the caller's
own fields (``extras``). Until ``release``, ``head``/``find_key``/``entries`` (within the window) of that record
are answered from it, and ``deferred()`` collects the appends of one event into one commit.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import random
import re
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, overload
from urllib.parse import quote, urlsplit

from github import Github
from github.Repository import Repository as GithubRepository
from pydantic import ValidationError

from loopforge.errors import (
    ConcurrencyError,
    GitHubError,
    GitHubNotFound,
    GitHubPermissionError,
    GitHubUnavailable,
    RefMoved,
    StoreCorrupt,
    StoreError,
    StoreMisconfigured,
    StorePermissionError,
    StoreUnavailable,
)
from loopforge.github.branch_api import BranchAPI
from loopforge.github.graphql import GraphQLClient
from loopforge.github.snapshot import BROKEN_TRAILER, DEFAULT_WRITER, TRAILER, Extra, Provenance, provenance
from loopforge.records import RecordHead
from loopforge.repository.base import Page, RecordQuery, check_append, page_of
from loopforge.trail import GENESIS_HASH, LoopTransition

DEFAULT_BRANCH = "loopforge-state"
ROOT = "records"
OTHER = "_other"
#: entries kept in full in head.json (the check run shows this many; ``loopforge history`` shows all)
WINDOW = 60

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
_STRUCTURED = re.compile(r"^(?P<owner>[^/#]+)/(?P<repo>[^/#]+)#(?P<n>[1-9][0-9]{0,17})$")
_ENTRY_FILE = re.compile(r"^(?P<seq>[0-9]+)\.json$")

README = """# LoopForge state

This branch is the audit trail LoopForge keeps for this repository (`BranchRepository`). It is written only
by LoopForge, one commit per change; its history is never rewritten.

- `records/<owner>/<repo>/<number>/head.json`: the record's current state and its newest entries
- `records/<owner>/<repo>/<number>/entries/NNNNNN.json`: its trail, one hash-chained entry per file
- `records/<owner>/<repo>/<number>/keys/<sha256>.json`: the entry recorded for an idempotency key

Do not edit these files by hand: `loopforge verify` reports any entry that was changed, removed or reordered,
and the Action refuses to extend a record whose last commit LoopForge did not make.
"""


def _safe_name(part: str) -> bool:
    return bool(_NAME.match(part)) and part not in (".", "..") and part.lower() != ".git"


def record_dir(record_id: str) -> str:
    """The folder of a record on the branch (injective: distinct ids never share a folder)."""
    m = _STRUCTURED.match(record_id)
    if m and _safe_name(m["owner"]) and _safe_name(m["repo"]):
        return f"{ROOT}/{m['owner']}/{m['repo']}/{m['n']}"
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", record_id).strip(".-")[:60] or "id"
    digest = hashlib.sha256(record_id.encode("utf-8")).hexdigest()[:16]
    return f"{ROOT}/{OTHER}/{slug}~{digest}"


def key_file(idempotency_key: str) -> str:
    return hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest() + ".json"


def _is_head_path(path: str) -> bool:
    parts = path.split("/")
    return parts[0] == ROOT and parts[-1] == "head.json" and (
        len(parts) == 5 or (len(parts) == 4 and parts[1] == OTHER))


def _dump_entry(entry: LoopTransition) -> str:
    return entry.model_dump_json(indent=2) + "\n"


class Window(Sequence[LoopTransition]):
    """The newest entries of a record (oldest first), kept as they were read (JSON objects) and validated into
    ``LoopTransition`` only when one is read: a head read or an append never pays for 60 validations."""

    def __init__(self, items: Sequence[dict[str, Any] | LoopTransition] = ()) -> None:
        self._items = list(items)
        self._parsed: dict[int, LoopTransition] = {}

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, index: int) -> LoopTransition: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[LoopTransition]: ...

    def __getitem__(self, index: int | slice) -> LoopTransition | Sequence[LoopTransition]:
        if isinstance(index, slice):
            return [self[i] for i in range(len(self._items))[index]]
        i = index + len(self._items) if index < 0 else index
        if i not in self._parsed:
            item = self._items[i]
            self._parsed[i] = item if isinstance(item, LoopTransition) else LoopTransition.model_validate(item)
        return self._parsed[i]

    def field(self, index: int, name: str) -> Any:
        """One field of an entry without validating it."""
        item = self._items[index]
        return getattr(item, name) if isinstance(item, LoopTransition) else item.get(name)

    def extended(self, entries: Sequence[LoopTransition]) -> Window:
        """This window followed by ``entries``, cut to the newest ``WINDOW``."""
        return Window([*self._items, *entries][-WINDOW:])

    def dump(self) -> list[Any]:
        return [json.loads(e.model_dump_json()) if isinstance(e, LoopTransition) else e for e in self._items]


def dump_head(head: RecordHead, window: Sequence[LoopTransition] | Window = ()) -> str:
    """``head.json``: the RecordHead fields, then ``window`` (the newest entries, oldest first)."""
    data = json.loads(head.model_dump_json(include=set(RecordHead.model_fields)))
    data["window"] = window.dump() if isinstance(window, Window) else [json.loads(e.model_dump_json())
                                                                         for e in window]
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def parse_head(text: str, where: str) -> tuple[RecordHead, Window]:
    """A ``head.json`` (with or without a window) → (head, window); ``StoreCorrupt`` if it does not parse. The
    window's entries are validated when read (``Window``); here only its shape is checked: the newest
    consecutive, hash-linked entries of this head, else it is ignored (entries are then read from their files)."""
    try:
        data = json.loads(text)
        head = RecordHead.model_validate(data)
    except (ValueError, TypeError, AttributeError) as exc:
        raise StoreCorrupt(f"{where}: head.json does not parse ({str(exc).splitlines()[0][:200]})") from None
    raw = data.get("window") if isinstance(data, dict) else None
    items = [e for e in raw if isinstance(e, dict)] if isinstance(raw, list) else []
    if not items or len(items) != len(raw or []):
        return head, Window()
    try:
        linked = (items[-1]["sequence"] == head.last_sequence and items[-1]["hash"] == head.last_hash
                  and all(b["sequence"] == a["sequence"] + 1 and b["prev_hash"] == a["hash"]
                          for a, b in itertools.pairwise(items)))
    except (KeyError, TypeError):
        linked = False
    return head, Window(items) if linked else Window()


@dataclass
class RecordSnapshot:
    """One record as read at one tip of the data branch (see ``BranchRepository.snapshot``)."""

    record_id: str
    tip: str | None  # None: the data branch does not exist yet
    head: RecordHead | None
    window: Window  # the newest entries (oldest first; may be shorter than WINDOW)
    keys: dict[str, LoopTransition | None]  # the key files read with it (None: no such key)
    tip_provenance: Provenance | None
    record_provenance: Provenance | None  # the newest commit that touched this record's folder
    extra: dict[str, Any] = field(default_factory=dict)  # the caller's aliased fields, as GitHub answered
    repository_id: str | None = None

    @property
    def edited_by_someone_else(self) -> bool:
        """True when the newest commit touching this record was not made by LoopForge (see
        ``loopforge.github.snapshot``): verify the record fully before extending it."""
        prov = self.record_provenance
        return prov is not None and (not prov.by_loopforge or prov.broken is not None)

    def covers(self, after: int) -> bool:
        """Whether ``entries(after=after)`` can be answered from the window."""
        if self.head is None:
            return True
        first = int(self.window.field(0, "sequence")) if self.window else self.head.last_sequence + 1
        return after >= first - 1


@dataclass
class _Staged:
    base: RecordSnapshot  # the record as read before the first staged append
    head: RecordHead
    entries: list[LoopTransition]


class BranchRepository:
    """A ``Repository`` on a branch of a GitHub repository (see the module docstring).

    ``repo``: a PyGithub ``Repository`` or ``(Github, "owner/name")`` (the latter makes no request). Build the
    ``Github`` with ``loopforge.github.client.make_github``. The token needs ``contents: write``.
    ``graphql_url``: ``GITHUB_GRAPHQL_URL`` (default: derived from the client's REST base URL, GHES included).
    ``writer``: the login that authors LoopForge's commits (the workflow token's bot); None accepts any author
    of a GitHub-signed commit carrying LoopForge's trailer. Safe to share between threads and between processes
    and machines (the compare-and-swap is the only synchronisation).
    """

    #: tries of one append whose failure (5xx, no answer) left the branch where it was
    REF_TRIES = 3

    def __init__(self, repo: GithubRepository | tuple[Github, str], branch: str = DEFAULT_BRANCH, *,
                 max_rebases: int = 10, backoff: float = 0.05, max_backoff: float = 2.0,
                 cache_size: int = 4096, graphql_url: str | None = None,
                 writer: str | None = DEFAULT_WRITER) -> None:
        if isinstance(repo, tuple):
            gh, full_name = repo
            if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", full_name):
                raise ValueError(f"expected 'owner/name', got {full_name!r}")
            requester = gh.requester
            repo_url = f"/repos/{full_name}"
        else:
            requester = repo.requester
            repo_url = repo.url
            full_name = urlsplit(repo.url).path.split("/repos/", 1)[-1]
        self.full_name = full_name
        self.branch = branch
        self.max_rebases = max_rebases
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.writer = writer
        self.rebases = 0  # appends re-committed on a tip another writer moved (for reports and tests)
        self._lock = threading.Lock()
        self.api = BranchAPI(requester, repo_url, full_name, branch,
                             graphql=GraphQLClient.from_requester(requester, graphql_url), cache_size=cache_size)
        self._pins: dict[str, RecordSnapshot] = {}  # records read by ``snapshot``: reads are served from them
        self._last: dict[str, RecordSnapshot] = {}  # the latest read of each record: the base of its next append
        self._staging: dict[str, _Staged] | None = None
        self._broken: dict[str, str] = {}  # record → why its trail does not verify (``mark_broken``)

    def __repr__(self) -> str:
        return f"BranchRepository({self.full_name!r}, branch={self.branch!r})"

    # ------------------------------------------------------------------ errors
    @contextlib.contextmanager
    def _translated(self, write: bool = False) -> Iterator[None]:
        """``GitHubError`` s as the store errors of the error tree, with what to do."""
        needed = "contents: write" if write else "contents: read"
        try:
            yield
        except RefMoved as exc:
            raise ConcurrencyError(f"{self.full_name}@{self.branch} moved: {exc}") from exc
        except GitHubPermissionError as exc:
            raise StorePermissionError(
                f"GitHub refused {exc}: the token needs the `{needed}` permission on {self.full_name} "
                f"(workflow: `permissions: {{contents: {needed.split(': ')[1]}}}`).") from exc
        except GitHubNotFound as exc:
            raise StoreMisconfigured(f"{exc}: the repository does not exist or the token cannot see it "
                                     f"(it needs `{needed}`).") from exc
        except GitHubUnavailable as exc:
            raise StoreUnavailable(f"GitHub unavailable: {exc}") from exc
        except GitHubError as exc:
            if exc.status == 409 and "empty" in str(exc).lower():
                raise StoreMisconfigured(f"{self.full_name} is an empty repository: push a first commit before "
                                         f"using the branch store.") from exc
            raise StoreError(f"GitHub API error: {exc}") from exc

    # ------------------------------------------------------------------ the one read
    def snapshot(self, record_id: str, keys: Sequence[str] = (), extras: Sequence[Extra] = ()) -> RecordSnapshot:
        """Read the record (tip, head, window, the key files of ``keys``) and ``extras`` in one GraphQL query,
        and serve this record's reads from it until ``release`` (appends keep it current)."""
        snap = self._read(record_id, keys, extras)
        with self._lock:
            self._pins[record_id] = snap
        return snap

    def release(self, record_id: str | None = None) -> None:
        """Stop serving reads of ``record_id`` (all records: None) from a snapshot."""
        with self._lock:
            if record_id is None:
                self._pins.clear()
            else:
                self._pins.pop(record_id, None)

    def _read(self, record_id: str, keys: Sequence[str] = (), extras: Sequence[Extra] = ()) -> RecordSnapshot:
        folder = record_dir(record_id)
        keys = list(dict.fromkeys(keys))
        with self._translated():
            raw = self.api.snapshot(folder, [f"{folder}/keys/{key_file(k)}" for k in keys], extras)
        where = f"{self.full_name}@{self.branch}:{folder}"
        head, window = parse_head(raw.head_text, where) if raw.head_text is not None else (None, Window())
        found: dict[str, LoopTransition | None] = {}
        for key, text in zip(keys, raw.key_texts, strict=True):
            entry = self._key_entry(text, record_id, key, where)
            found[key] = entry
        snap = RecordSnapshot(record_id, raw.tip, head, window, found,
                              provenance(raw.tip_commit, self.writer),
                              provenance(raw.touched_commit, self.writer, record_id), dict(raw.extra),
                              raw.repository_id)
        with self._lock:
            self._last[record_id] = snap
        return snap

    @staticmethod
    def _key_entry(text: str | None, record_id: str, key: str, where: str) -> LoopTransition | None:
        if text is None:
            return None
        try:
            entry = LoopTransition.model_validate_json(text)
        except ValueError:
            raise StoreCorrupt(f"{where}: the key file of {key!r} does not parse") from None
        if entry.record_id != record_id or entry.idempotency_key != key:
            return None
        return entry

    def _pinned(self, record_id: str) -> RecordSnapshot | None:
        with self._lock:
            return self._pins.get(record_id)

    # ------------------------------------------------------------------ reading
    def head(self, record_id: str) -> RecordHead | None:
        snap = self._pinned(record_id) or self._read(record_id)
        return snap.head

    def find_key(self, record_id: str, idempotency_key: str) -> LoopTransition | None:
        snap = self._pinned(record_id)
        if snap is not None:
            if idempotency_key in snap.keys:
                return snap.keys[idempotency_key]
            for i in range(len(snap.window) - 1, -1, -1):
                if snap.window.field(i, "idempotency_key") == idempotency_key:
                    return snap.window[i]
        fresh = self._read(record_id, [idempotency_key])
        if snap is not None and fresh.tip == snap.tip:
            snap.keys[idempotency_key] = fresh.keys[idempotency_key]
        return fresh.keys[idempotency_key]

    def entries(self, record_id: str, after: int = 0, limit: int | None = None) -> Iterator[LoopTransition]:
        snap = self._pinned(record_id)
        if snap is not None and snap.covers(after):
            chosen = [snap.window[i] for i in range(len(snap.window))
                      if int(snap.window.field(i, "sequence")) > after]
            yield from chosen[: max(limit, 0)] if limit is not None else chosen
            return
        ref = snap.tip if snap is not None and snap.tip else self.branch
        folder = f"{record_dir(record_id)}/entries"
        with self._translated():
            listing = self.api.folder(folder, ref)
        if listing is None:
            return
        files = []
        for name, _kind, sha in listing:
            m = _ENTRY_FILE.match(name)
            if m and int(m["seq"]) > after:
                files.append((int(m["seq"]), sha))
        files.sort()
        if limit is not None:
            files = files[: max(limit, 0)]
        for seq, sha in files:
            with self._translated():
                data = self.api.blob(sha)
            try:
                entry = LoopTransition.model_validate_json(data)
            except ValidationError as exc:  # as in every store: StoreCorrupt, one line
                raise StoreCorrupt(f"{self.full_name}@{self.branch}:{folder}/{seq:06d}.json does not parse "
                                   f"({exc.error_count()} problem(s)); run loopforge verify") from exc
            yield entry

    def query(self, query: RecordQuery) -> Page:
        with self._translated():
            heads = [parse_head(self.api.blob(sha).decode("utf-8"), self.full_name)[0] for sha in self._head_blobs()]
        return page_of(heads, query)

    def record_ids(self) -> list[str]:
        with self._translated():
            return sorted(parse_head(self.api.blob(sha).decode("utf-8"), self.full_name)[0].record_id
                          for sha in self._head_blobs())

    def _head_blobs(self) -> list[str]:
        """Blob SHAs of every head.json: one recursive tree listing (plus a walk if GitHub truncated it)."""
        tree_ish = quote(self.branch, safe="") if "/" not in self.branch else self.api.ref_sha()
        if tree_ish is None:
            return []
        listing = self.api.tree(tree_ish, recursive=True)
        if listing is None:
            return []
        if not listing.get("truncated"):
            return [i["sha"] for i in listing["tree"] if i["type"] == "blob" and _is_head_path(i["path"])]
        return self._walk(listing["sha"], "")

    def _walk(self, tree_sha: str, prefix: str) -> list[str]:
        listing = self.api.tree(tree_sha) or {"tree": []}
        found: list[str] = []
        for item in listing["tree"]:
            path = prefix + item["path"]
            if item["type"] == "blob" and _is_head_path(path):
                found.append(item["sha"])
            elif item["type"] == "tree" and (path == ROOT or path.startswith(ROOT + "/")) \
                    and item["path"] not in ("entries", "keys"):
                found += self._walk(item["sha"], path + "/")
        return found

    def mark_broken(self, record_id: str, problem: str) -> None:
        """The record's trail does not verify: the commits this store makes on it say so (a
        ``Loopforge-Broken:`` trailer), so later reads still see ``edited_by_someone_else``."""
        self._broken[record_id] = " ".join(problem.split())[:300]

    # ------------------------------------------------------------------ writing
    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """Collect the appends made inside the block into one commit per record, made when it ends (nothing is
        written if it raises). A record that another writer changed meanwhile raises ``ConcurrencyError`` at the
        end: the caller re-reads and redoes its work (the Action redoes the event)."""
        if self._staging is not None:
            raise RuntimeError("deferred() blocks do not nest")
        staged: dict[str, _Staged] = {}
        self._staging = staged
        try:
            yield
            self._staging = None
            for item in staged.values():
                self._write(item.base, item.head, item.entries)
        except BaseException:
            self._staging = None
            for rid in staged:  # the pins show staged, unwritten state: forget them
                self.release(rid)
                with self._lock:
                    self._last.pop(rid, None)
            raise

    def append(self, head: RecordHead, entries: Sequence[LoopTransition]) -> None:
        if not entries:
            raise ValueError("append needs at least one entry")
        check_append(entries[0].sequence - 1, entries)  # shape: consecutive sequences
        rid = head.record_id
        if self._staging is not None:
            item = self._staging.get(rid)
            base = item.base if item is not None else (self._pinned(rid) or self._last.get(rid) or self._read(rid))
            current = item.head if item is not None else base.head
            check_append(current.last_sequence if current else 0, entries)
            staged = [*(item.entries if item else []), *entries]
            self._staging[rid] = _Staged(base, head, staged)
            window = self._window(base, staged)
            keys = dict(base.keys)
            keys.update({e.idempotency_key: e for e in staged if e.idempotency_key is not None})
            with self._lock:  # reads see the staged state (the service reads back what it appended)
                self._pins[rid] = replace(base, head=head, window=window, keys=keys)
            return
        with self._lock:
            known = self._pins.get(rid) or self._last.get(rid)
        self._write(known if known is not None else self._read(rid), head, list(entries))

    @staticmethod
    def _window(base: RecordSnapshot, entries: Sequence[LoopTransition]) -> Window:
        last = base.head.last_sequence if base.head else 0
        # an old head.json has no window: one starts with these entries and fills up as the record grows
        if base.window and base.window.field(len(base.window) - 1, "sequence") == last:
            return base.window.extended(entries)
        return Window(entries[-WINDOW:])

    def _files(self, base: RecordSnapshot, head: RecordHead, entries: Sequence[LoopTransition]) -> dict[str, str]:
        folder = record_dir(head.record_id)
        files = {f"{folder}/head.json": dump_head(head, self._window(base, entries))}
        for entry in entries:
            text = _dump_entry(entry)
            files[f"{folder}/entries/{entry.sequence:06d}.json"] = text
            if entry.idempotency_key is not None:
                files[f"{folder}/keys/{key_file(entry.idempotency_key)}"] = text
        return files

    def _write(self, base: RecordSnapshot, head: RecordHead, entries: list[LoopTransition]) -> None:
        """Commit ``entries`` and ``head`` on the tip ``base`` was read at; rebase when another record moved
        the branch; reconcile a lost answer by reading back (see the module docstring)."""
        rid = head.record_id
        expected_last = entries[0].sequence - 1
        mine = (head.last_sequence, head.last_hash)
        files = self._files(base, head, entries)
        first, last = entries[0], entries[-1]
        span = f"entry {first.sequence}" if first is last else f"entries {first.sequence}-{last.sequence}"
        headline = f"loopforge: {rid} {span} ({last.trigger[:120]})"
        body = f"state: {head.state.value}\n\n{TRAILER}: {rid}\n"
        if rid in self._broken:
            body += f"{BROKEN_TRAILER}: {self._broken[rid]}\n"
        view = base
        failures = 0
        for attempt in range(self.max_rebases + self.REF_TRIES + 1):
            stored = (view.head.last_sequence, view.head.last_hash) if view.head else (0, GENESIS_HASH)
            if attempt and stored == mine:
                self._landed(view, head, entries)  # an earlier attempt landed after all (its answer was lost)
                return
            check_append(stored[0], entries)
            if stored[0] != expected_last:  # pragma: no cover - check_append raised already
                raise ConcurrencyError(rid)
            if view.head is not None and view is not base and view.head.last_hash != (
                    base.head.last_hash if base.head else GENESIS_HASH):
                raise ConcurrencyError(f"{rid}: the record changed on {self.full_name}@{self.branch}")
            try:
                with self._translated(write=True):
                    tip = view.tip if view.tip is not None else self._create_branch(view)
                    oid = self.api.commit_on_branch(tip, headline, body, files)
            except ConcurrencyError:  # RefMoved: another writer moved the branch
                if attempt >= self.max_rebases:
                    break
                with self._lock:
                    self.rebases += 1
                time.sleep(random.uniform(0, min(self.max_backoff, self.backoff * 2 ** attempt)))
                view = self._read(rid)
                continue
            except StoreUnavailable:  # 5xx or no answer: it may or may not have been applied
                now = self._read(rid)
                if now.tip != view.tip:
                    view = now  # applied (then stored == mine above) or another writer moved the branch
                    continue
                failures += 1
                if failures >= self.REF_TRIES:
                    raise
                time.sleep(min(self.max_backoff, self.backoff * 2 ** failures))
                continue
            self._landed(replace(view, tip=oid), head, entries)
            return
        raise ConcurrencyError(f"{rid}: {self.full_name}@{self.branch} kept moving; gave up after "
                               f"{self.max_rebases} rebases")

    def _landed(self, view: RecordSnapshot, head: RecordHead, entries: Sequence[LoopTransition]) -> None:
        """Remember the record as written (the base of the next append; the pin, if the record is pinned)."""
        # the keys read at ``view.tip`` are still true on top of it (only this commit came after), plus ours
        keys = dict(view.keys)
        keys.update({e.idempotency_key: e for e in entries if e.idempotency_key is not None})
        written = replace(view, head=head, window=self._window(view, entries) if view.head is None or
                          view.head.last_sequence < head.last_sequence else view.window, keys=keys)
        with self._lock:
            self._last[head.record_id] = written
            if head.record_id in self._pins:
                self._pins[head.record_id] = written

    def _create_branch(self, view: RecordSnapshot) -> str:
        """The data branch's orphan root commit (README only) and ``createRef``; its oid. ``RefMoved`` (as
        ``ConcurrencyError``) if another writer created the branch first."""
        repository_id = view.repository_id
        if repository_id is None:
            repository_id, _tip = self.api.tip()
        if repository_id is None:
            raise GitHubNotFound(f"{self.full_name} does not exist or the token cannot see it")
        root = self.api.root_commit({"README.md": README}, "loopforge: create the state branch")
        try:
            self.api.create_ref(repository_id, root)
        except GitHubUnavailable:  # no answer: look whether it was created
            _id, now = self.api.tip()
            if now is None:
                raise
            if now != root:
                raise RefMoved("created by another writer") from None
        return root
    # ------------------------------------------------------------------ other files (loopforge.evidence)
    def read_path(self, path: str) -> bytes | None:
        """A file on the data branch (at its tip), or None. Used for ``attestations/<merge sha>/…``."""
        with self._translated():
            answer = self.api.graphql.execute(
                _READ_PATH, {"owner": self.api.owner, "name": self.api.name, "expr": f"{self.branch}:{path}"},
                what=f"reading {self.full_name}@{self.branch}:{path}")
        blob = (answer.data.get("repository") or {}).get("file")
        if blob is None:
            return None
        if blob.get("isTruncated") or blob.get("text") is None:
            with self._translated():
                return self.api.blob(str(blob["oid"]))
        return str(blob["text"]).encode("utf-8")

    def commit_files(self, files: dict[str, str], message: str, *, unless_exists: str) -> bool:
        """Add ``files`` in one commit on the branch tip, unless ``unless_exists`` is already there (False,
        nothing written): one probe and one ``createCommitOnBranch`` compare-and-swap, with bounded rebases."""
        if not files or any(not p or p.startswith(ROOT + "/") or ".." in p.split("/") for p in files):
            raise ValueError("commit_files writes other files than records, by relative path")
        headline, _, body = message.partition("\n")
        body = f"{body.strip()}\n\n{TRAILER}: {unless_exists.split('/')[0]}\n".lstrip()
        for attempt in range(self.max_rebases + 1):
            with self._translated():
                answer = self.api.graphql.execute(
                    _PROBE, {"owner": self.api.owner, "name": self.api.name, "ref": f"refs/heads/{self.branch}",
                             "expr": f"{self.branch}:{unless_exists}"}, what=f"reading {self.full_name}@{self.branch}")
            repo = answer.data.get("repository") or {}
            if repo.get("file") is not None:
                return False
            tip = ((repo.get("tip") or {}).get("target") or {}).get("oid")
            try:
                with self._translated(write=True):
                    if tip is None:
                        tip = self._create_branch(RecordSnapshot(unless_exists, None, None, Window(), {}, None, None,
                                                                 repository_id=repo.get("id")))
                    self.api.commit_on_branch(tip, headline[:200], body, files)
                return True
            except ConcurrencyError:
                with self._lock:
                    self.rebases += 1
                time.sleep(random.uniform(0, min(self.max_backoff, self.backoff * 2 ** attempt)))
        raise ConcurrencyError(f"{self.full_name}@{self.branch} kept moving; gave up after {self.max_rebases} "
                               f"rebases writing {unless_exists}")



_READ_PATH = """query LoopforgeReadPath($owner: String!, $name: String!, $expr: String!) {
  repository(owner: $owner, name: $name) { file: object(expression: $expr) { ... on Blob { oid text isTruncated } } }
}"""
_PROBE = """query LoopforgeProbe($owner: String!, $name: String!, $ref: String!, $expr: String!) {
  repository(owner: $owner, name: $name) {
    id tip: ref(qualifiedName: $ref) { target { oid } } file: object(expression: $expr) { ... on Blob { oid } }
  }
}"""

__all__ = ["DEFAULT_BRANCH", "WINDOW", "BranchRepository", "RecordSnapshot", "dump_head", "key_file",
           "parse_head", "record_dir"]
