"""``BranchRepository``: records kept as JSON files on a data branch of a GitHub repository (the Action's
default store; no infrastructure beyond the repository itself).

Layout of the branch (an orphan branch, ``loopforge-state`` by default, created on first write)::

    README.md
    records/<owner>/<repo>/<number>/head.json              # the record's RecordHead
    records/<owner>/<repo>/<number>/entries/000001.json    # one LoopTransition per file, append-only
    records/<owner>/<repo>/<number>/keys/<sha256(key)>.json  # a copy of the entry carrying that idempotency key
    records/_other/<slug>~<sha256(id)[:16]>/...            # record ids not of the form owner/repo#number

Every ``append`` is one commit made through the Git Data API (tree with ``base_tree`` = the branch's tree,
commit on the branch tip, then ``PATCH`` of the ref with ``force: false``). The ref update is the
compare-and-swap: if another writer moved the branch, GitHub answers 422 "Update is not a fast forward"; the
store re-reads the tip and, if this record's head there still has the expected last sequence, rebuilds the
commit on the new tip and tries again (bounded, with backoff); if the record itself changed it raises
``ConcurrencyError`` and the service re-validates. History is never rewritten and nothing is force-pushed.
See ``docs/branch-store.md`` for request counts and costs.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from http import HTTPStatus
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from github import Github, GithubException, RateLimitExceededException
from github.Repository import Repository as GithubRepository
from github.Requester import Requester

from loopforge.errors import ConcurrencyError, StoreError
from loopforge.github.client import describe_transport_error
from loopforge.records import RecordHead
from loopforge.repository.base import Page, RecordQuery, check_append, page_of
from loopforge.trail import GENESIS_HASH, LoopTransition

DEFAULT_BRANCH = "loopforge-state"
ROOT = "records"
OTHER = "_other"

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
_STRUCTURED = re.compile(r"^(?P<owner>[^/#]+)/(?P<repo>[^/#]+)#(?P<n>[1-9][0-9]{0,17})$")
_ENTRY_FILE = re.compile(r"^(?P<seq>[0-9]+)\.json$")

README = """# LoopForge state

This branch is the audit trail LoopForge keeps for this repository (`BranchRepository`). It is written only
by LoopForge, one commit per change; its history is never rewritten.

- `records/<owner>/<repo>/<number>/head.json`: the record's current state
- `records/<owner>/<repo>/<number>/entries/NNNNNN.json`: its trail, one hash-chained entry per file
- `records/<owner>/<repo>/<number>/keys/<sha256>.json`: the entry recorded for an idempotency key

Do not edit these files by hand: `loopforge verify` reports any entry that was changed, removed or reordered.
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


def _dump(model: RecordHead | LoopTransition) -> str:
    if isinstance(model, RecordHead):
        return model.model_dump_json(indent=2, include=set(RecordHead.model_fields)) + "\n"
    return model.model_dump_json(indent=2) + "\n"


def _status_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


class _NotFound(Exception):
    pass


class _Moved(Exception):
    def __init__(self, tip: str | None) -> None:
        super().__init__(tip)
        self.tip = tip


class BranchRepository:
    """A ``Repository`` on a branch of a GitHub repository (see the module docstring).

    ``repo``: a PyGithub ``Repository`` or ``(Github, "owner/name")`` (the latter makes no request). Build the
    ``Github`` with ``loopforge.github.client.make_github``. The token needs ``contents: write``.
    Safe to share between threads (each thread gets its own PyGithub connection: PyGithub's are not
    thread-safe) and between processes and machines (the ref update is the only synchronisation).
    """

    def __init__(self, repo: GithubRepository | tuple[Github, str], branch: str = DEFAULT_BRANCH, *,
                 max_rebases: int = 10, backoff: float = 0.05, max_backoff: float = 2.0,
                 cache_size: int = 4096) -> None:
        if isinstance(repo, tuple):
            gh, full_name = repo
            if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", full_name):
                raise ValueError(f"expected 'owner/name', got {full_name!r}")
            self._base_requester: Requester = gh.requester
            self._repo_url = f"/repos/{full_name}"
            self.full_name = full_name
        else:
            self._base_requester = repo.requester
            self._repo_url = repo.url
            self.full_name = urlsplit(repo.url).path.split("/repos/", 1)[-1]
        self.branch = branch
        self.max_rebases = max_rebases
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.rebases = 0  # appends rebuilt on a tip another writer moved (for reports and tests)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._cache_size = cache_size
        self._blobs: OrderedDict[str, bytes] = OrderedDict()  # blob sha -> content (immutable)
        self._trees: OrderedDict[str, str] = OrderedDict()  # commit sha -> tree sha (immutable)
        self._heads_at: OrderedDict[tuple[str, str], tuple[int, str]] = OrderedDict()  # (commit, dir) -> last

    def __repr__(self) -> str:
        return f"BranchRepository({self.full_name!r}, branch={self.branch!r})"

    # ------------------------------------------------------------------ HTTP plumbing
    def _requester(self) -> Requester:
        requester: Requester | None = getattr(self._local, "requester", None)
        if requester is None:
            requester = Requester(**self._base_requester.kwargs)
            self._local.requester = requester
        return requester

    def _call(self, verb: str, path: str, *, params: dict[str, Any] | None = None,
              body: dict[str, Any] | None = None, write: bool = False) -> Any:
        """One request; GitHub errors become ``StoreError`` except a 404 on a read (``_NotFound``)."""
        try:
            _headers, data = self._requester().requestJsonAndCheck(
                verb, f"{self._repo_url}{path}", parameters=params, input=body)
        except GithubException as exc:
            if exc.status == 404 and verb == "GET":
                raise _NotFound(path) from exc
            raise self._store_error(exc, verb, path, write) from exc
        return data

    def _get_or_none(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """GET ``path``; None on 404 (missing file, folder, ref or branch: "Not Found", "No commit found")."""
        try:
            return self._call("GET", path, params=params)
        except _NotFound:
            return None
        except requests.RequestException as exc:
            raise StoreError(f"GitHub unreachable reading {self.full_name}@{self.branch}: "
                             f"{describe_transport_error(exc)}") from exc

    def _store_error(self, exc: GithubException, verb: str, path: str, write: bool) -> StoreError:
        data = exc.data if isinstance(exc.data, dict) else {}
        # an HTML error page (a 502 from a proxy) arrives as {"data": "<html>…"}: name the status instead
        message = str(data.get("message") or (exc.data if isinstance(exc.data, str) else "")
                      or _status_phrase(exc.status))
        where = f"{verb} /repos/{self.full_name}{path}"
        needed = "contents: write" if write else "contents: read"
        if isinstance(exc, RateLimitExceededException) or (
                exc.status in (403, 429) and "rate limit" in message.lower()):
            return StoreError(f"GitHub rate limit hit on {where}: {message}")
        if exc.status in (401, 403):
            return StoreError(
                f"GitHub refused {where} ({exc.status} {message}): the token needs the `{needed}` permission on "
                f"{self.full_name} (workflow: `permissions: {{contents: {needed.split(': ')[1]}}}`).")
        if exc.status == 404:
            return StoreError(f"{where}: 404, the repository does not exist or the token cannot see it "
                              f"(it needs `{needed}`).")
        if exc.status == 409 and "empty" in message.lower():
            return StoreError(f"{self.full_name} is an empty repository: push a first commit before using the "
                              f"branch store.")
        return StoreError(f"GitHub API error on {where}: {exc.status} {message}")

    def _cached(self, cache: OrderedDict[Any, Any], key: Any, value: Any = None) -> Any:
        with self._lock:
            if value is not None:
                cache[key] = value
                cache.move_to_end(key)
                while len(cache) > self._cache_size:
                    cache.popitem(last=False)
                return value
            found = cache.get(key)
            if found is not None:
                cache.move_to_end(key)
            return found

    # ------------------------------------------------------------------ reading
    def _blob(self, sha: str) -> bytes:
        data: bytes | None = self._cached(self._blobs, sha)
        if data is None:
            blob = self._get_or_none(f"/git/blobs/{sha}")
            if blob is None:
                raise StoreError(f"{self.full_name}@{self.branch}: blob {sha} vanished")
            data = base64.b64decode(blob["content"]) if blob.get("encoding") == "base64" else \
                str(blob["content"]).encode("utf-8")
            self._cached(self._blobs, sha, data)
        return data

    def _file(self, path: str, ref: str) -> bytes | None:
        """A file's bytes at ``ref`` (branch or commit), or None. One Contents GET."""
        found = self._get_or_none(f"/contents/{quote(path)}", {"ref": ref})
        if found is None:
            return None
        if not isinstance(found, dict) or found.get("type") != "file":
            raise StoreError(f"{self.full_name}@{ref}: {path} is not a file")
        if found.get("encoding") == "base64" and (found.get("content") or not found.get("size")):
            data = base64.b64decode(found["content"])
            self._cached(self._blobs, found["sha"], data)
            return data
        return self._blob(found["sha"])  # over 1 MB: the Contents API leaves content out

    def head(self, record_id: str) -> RecordHead | None:
        data = self._file(f"{record_dir(record_id)}/head.json", self.branch)
        return RecordHead.model_validate_json(data) if data is not None else None

    def entries(self, record_id: str, after: int = 0, limit: int | None = None) -> Iterator[LoopTransition]:
        folder = f"{record_dir(record_id)}/entries"
        listing = self._get_or_none(f"/contents/{quote(folder)}", {"ref": self.branch})
        if listing is None:
            return
        if not isinstance(listing, list):
            raise StoreError(f"{self.full_name}@{self.branch}: {folder} is not a folder")
        if len(listing) >= 1000:  # the Contents API lists at most 1,000 entries: use the folder's git tree
            parent = self._get_or_none(f"/contents/{quote(record_dir(record_id))}", {"ref": self.branch}) or []
            sha = next(i["sha"] for i in parent if i["name"] == "entries")
            tree = self._get_or_none(f"/git/trees/{sha}") or {"tree": []}
            listing = [{"name": i["path"], "sha": i["sha"]} for i in tree["tree"] if i["type"] == "blob"]
        files = []
        for item in listing:
            m = _ENTRY_FILE.match(item["name"])
            if m and int(m["seq"]) > after:
                files.append((int(m["seq"]), item["sha"]))
        files.sort()
        if limit is not None:
            files = files[: max(limit, 0)]
        for _seq, sha in files:
            yield LoopTransition.model_validate_json(self._blob(sha))

    def find_key(self, record_id: str, idempotency_key: str) -> LoopTransition | None:
        data = self._file(f"{record_dir(record_id)}/keys/{key_file(idempotency_key)}", self.branch)
        if data is None:
            return None
        entry = LoopTransition.model_validate_json(data)
        if entry.record_id != record_id or entry.idempotency_key != idempotency_key:
            return None
        return entry

    def query(self, query: RecordQuery) -> Page:
        heads = [RecordHead.model_validate_json(self._blob(sha)) for sha in self._head_blobs()]
        return page_of(heads, query)

    def record_ids(self) -> list[str]:
        return sorted(RecordHead.model_validate_json(self._blob(sha)).record_id for sha in self._head_blobs())

    def _head_blobs(self) -> list[str]:
        """Blob SHAs of every head.json: one recursive tree listing (plus a walk if GitHub truncated it)."""
        tree_ish = quote(self.branch, safe="") if "/" not in self.branch else self._read_ref()
        if tree_ish is None:
            return []
        listing = self._get_or_none(f"/git/trees/{tree_ish}", {"recursive": "1"})
        if listing is None:
            return []
        if not listing.get("truncated"):
            return [i["sha"] for i in listing["tree"] if i["type"] == "blob" and _is_head_path(i["path"])]
        return self._walk(listing["sha"], "")

    def _walk(self, tree_sha: str, prefix: str) -> list[str]:
        listing = self._get_or_none(f"/git/trees/{tree_sha}") or {"tree": []}
        found: list[str] = []
        for item in listing["tree"]:
            path = prefix + item["path"]
            if item["type"] == "blob" and _is_head_path(path):
                found.append(item["sha"])
            elif item["type"] == "tree" and (path == ROOT or path.startswith(ROOT + "/")) \
                    and item["path"] not in ("entries", "keys"):
                found += self._walk(item["sha"], path + "/")
        return found

    # ------------------------------------------------------------------ writing
    def append(self, head: RecordHead, entries: Sequence[LoopTransition]) -> None:
        if not entries:
            raise ValueError("append needs at least one entry")
        check_append(entries[0].sequence - 1, entries)  # shape: consecutive sequences
        folder = record_dir(head.record_id)
        files = {f"{folder}/head.json": _dump(head)}
        for entry in entries:
            text = _dump(entry)
            files[f"{folder}/entries/{entry.sequence:06d}.json"] = text
            if entry.idempotency_key is not None:
                files[f"{folder}/keys/{key_file(entry.idempotency_key)}"] = text
        first, last = entries[0], entries[-1]
        span = f"entry {first.sequence}" if first is last else f"entries {first.sequence}-{last.sequence}"
        message = f"loopforge: {head.record_id} {span} ({last.trigger})\n\nstate: {head.state.value}\n"
        mine = (head.last_sequence, head.last_hash)

        tip = self._read_ref()
        for attempt in range(self.max_rebases + 1):
            if attempt:
                with self._lock:
                    self.rebases += 1
                time.sleep(random.uniform(0, min(self.max_backoff, self.backoff * 2 ** (attempt - 1))))
            stored = self._last_at(tip, folder)
            if attempt and stored == mine:
                return  # an earlier attempt landed after all (its answer was lost)
            check_append(stored[0], entries)
            commit, tree = self._commit(tip, files, message)
            try:
                self._move_ref(tip, commit)
            except _Moved as moved:
                tip = moved.tip
                continue
            self._cached(self._trees, commit, tree)
            self._cached(self._heads_at, (commit, folder), mine)
            return
        raise ConcurrencyError(f"{head.record_id}: {self.full_name}@{self.branch} kept moving; "
                               f"gave up after {self.max_rebases} rebases")

    def _read_ref(self) -> str | None:
        ref = self._get_or_none(f"/git/ref/heads/{quote(self.branch)}")
        return str(ref["object"]["sha"]) if ref is not None else None

    def _last_at(self, commit: str | None, folder: str) -> tuple[int, str]:
        """(last_sequence, last_hash) of the record in ``folder`` at ``commit`` ((0, genesis) if absent)."""
        if commit is None:
            return 0, GENESIS_HASH
        known: tuple[int, str] | None = self._cached(self._heads_at, (commit, folder))
        if known is not None:
            return known
        data = self._file(f"{folder}/head.json", commit)
        if data is None:
            value = (0, GENESIS_HASH)
        else:
            stored = json.loads(data)
            value = (int(stored["last_sequence"]), str(stored["last_hash"]))
        self._cached(self._heads_at, (commit, folder), value)
        return value

    def _tree_of(self, commit: str) -> str:
        tree: str | None = self._cached(self._trees, commit)
        if tree is None:
            found = self._get_or_none(f"/git/commits/{commit}")
            if found is None:
                raise StoreError(f"{self.full_name}: commit {commit} not found")
            tree = str(found["tree"]["sha"])
            self._cached(self._trees, commit, tree)
        return tree

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        """POST a git object. Creating the same object twice is harmless, so transient failures are retried."""
        for attempt in range(3):
            try:
                return self._call("POST", path, body=body, write=True)
            except StoreError as exc:
                cause = exc.__cause__
                if not (isinstance(cause, GithubException) and cause.status >= 500) or attempt == 2:
                    raise
            except requests.RequestException as exc:
                if attempt == 2:
                    raise StoreError(f"GitHub unreachable writing {self.full_name}: "
                                     f"{describe_transport_error(exc)}") from exc
            time.sleep(self.backoff * 2 ** attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def _commit(self, parent: str | None, files: dict[str, str], message: str) -> tuple[str, str]:
        """Create (tree, commit) for ``files`` on top of ``parent`` (None: an orphan root commit)."""
        body: dict[str, Any] = {"tree": [{"path": p, "mode": "100644", "type": "blob", "content": text}
                                         for p, text in files.items()]}
        if parent is not None:
            body["base_tree"] = self._tree_of(parent)
        else:
            body["tree"].append({"path": "README.md", "mode": "100644", "type": "blob", "content": README})
        tree = str(self._post("/git/trees", body)["sha"])
        commit = self._post("/git/commits", {"message": message, "tree": tree,
                                             "parents": [parent] if parent else []})
        return str(commit["sha"]), tree

    #: tries of one ref update whose failure (5xx, 409, no answer) left the branch where it was
    REF_TRIES = 3

    def _move_ref(self, tip: str | None, commit: str) -> None:
        """Point the branch at ``commit`` if it is still at ``tip``; raise ``_Moved(new tip)`` otherwise.

        A failure that leaves the branch where it was (a 5xx, a 409, a lost answer; the ref is read back to
        know) is retried a few times with backoff, then raised as ``StoreError``: it is not a lost race, and
        reporting it as one (``_Moved``, then ``ConcurrencyError``) would make the caller and the service
        retry an outage for minutes."""
        ref = f"heads/{self.branch}"
        for attempt in range(self.REF_TRIES):
            refused: StoreError | None = None
            failed: StoreError | None = None
            try:
                if tip is None:
                    self._call("POST", "/git/refs", body={"ref": f"refs/{ref}", "sha": commit}, write=True)
                else:
                    self._call("PATCH", f"/git/refs/{quote(ref)}", body={"sha": commit, "force": False},
                               write=True)
                return
            except StoreError as exc:
                cause = exc.__cause__
                if not isinstance(cause, GithubException):
                    raise
                text = str(cause.data.get("message", "")) if isinstance(cause.data, dict) else str(cause.data)
                if cause.status == 422 and ("fast forward" in text or "already exists" in text):
                    pass  # lost the race: another writer moved (or created) the branch
                elif cause.status == 422:
                    refused = exc
                elif cause.status >= 500 or (cause.status == 409 and tip is not None):
                    failed = exc  # may or may not have been applied: look
                else:
                    raise  # permissions, rate limits, an empty repository: not a race
            except requests.RequestException as exc:  # no answer: the update may or may not have happened
                failed = StoreError(f"GitHub unreachable updating {self.full_name}@{self.branch}: "
                                    f"{describe_transport_error(exc)}")
                failed.__cause__ = exc
            now = self._read_ref()
            if now == commit:
                return
            if now != tip or (refused is None and failed is None):
                raise _Moved(now)
            if refused is not None:
                raise refused
            assert failed is not None
            if attempt == self.REF_TRIES - 1:
                raise failed
            time.sleep(min(self.max_backoff, self.backoff * 2 ** attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------------ other files (loopforge.evidence)
    def read_path(self, path: str) -> bytes | None:
        """A file on the data branch (at its tip), or None. Used for ``attestations/<merge sha>/…``."""
        return self._file(path, self.branch)

    def commit_files(self, files: dict[str, str], message: str, *, unless_exists: str) -> bool:
        """Add ``files`` in one commit on the branch tip, unless ``unless_exists`` is already there (False,
        nothing written). The same compare-and-swap and bounded rebases as ``append``."""
        if not files or any(not p or p.startswith(ROOT + "/") or ".." in p.split("/") for p in files):
            raise ValueError("commit_files writes other files than records, by relative path")
        tip = self._read_ref()
        for attempt in range(self.max_rebases + 1):
            if attempt:
                time.sleep(random.uniform(0, min(self.max_backoff, self.backoff * 2 ** (attempt - 1))))
            if tip is not None and self._file(unless_exists, tip) is not None:
                return False
            commit, tree = self._commit(tip, files, message)
            try:
                self._move_ref(tip, commit)
            except _Moved as moved:
                tip = moved.tip
                continue
            self._cached(self._trees, commit, tree)
            return True
        raise ConcurrencyError(f"{self.full_name}@{self.branch} kept moving; gave up after {self.max_rebases} "
                               f"rebases writing {unless_exists}")


__all__ = ["DEFAULT_BRANCH", "BranchRepository", "key_file", "record_dir"]
