"""Where the signed evidence of each merge is kept, next to the trail: one ``AttestationSet`` per merge commit.

* memory: ``MemoryAttestationStore`` (tests, library use);
* SQLite: the ``attestations`` table of the same database as the records (``SQLiteAttestationStore``);
* DynamoDB: items in the records' table, in their own partition keyed by the merge SHA
  (``pk = ATT#<merge sha>``, ``sk = META`` and ``sk = DOC#<name>``); they carry none of the index attributes,
  so record queries never see them (``DynamoDBAttestationStore``);
* the branch store: ``attestations/<merge sha>/index.json`` and one file per signed document on the data
  branch, written in one commit (``BranchAttestationStore``).

Evidence is write-once: ``put`` writes the whole set atomically, or nothing when a set already exists for that
merge commit (a re-run of the workflow keeps the first evidence and says so). ``AttestationContract`` in
``tests/evidence/conftest.py`` runs the same tests against every implementation.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from loopforge.errors import StoreCorrupt, StoreError

# fullmatch, not ^…$: "$" also matches before a final line break
_SHA = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")
_DOC_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,99}")
INDEX_FILE = "index.json"


def check_sha(merge_sha: str) -> str:
    if not _SHA.fullmatch(merge_sha):
        raise ValueError(f"not a commit SHA: {merge_sha[:80]!r}")
    return merge_sha


@dataclass(frozen=True)
class AttestationSet:
    """The signed documents of one merge. ``documents`` maps a file name (``vsa.dsse.json``,
    ``reviews.sigstore.json``, …) to its text: a DSSE envelope or a Sigstore bundle."""

    merge_sha: str
    repo: str
    record_id: str
    created_at: str  # ISO 8601 UTC
    signer: str  # key / sigstore
    documents: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_sha(self.merge_sha)
        for name in self.documents:
            if not _DOC_NAME.fullmatch(name) or name == INDEX_FILE:
                raise ValueError(f"not a document name: {name[:80]!r}")

    def index(self) -> dict[str, Any]:
        """What is stored beside the documents (``index.json`` on the branch, ``META`` in DynamoDB)."""
        return {"merge_sha": self.merge_sha, "repo": self.repo, "record_id": self.record_id,
                "created_at": self.created_at, "signer": self.signer, "documents": sorted(self.documents)}

    @classmethod
    def from_index(cls, index: dict[str, Any], documents: dict[str, str]) -> AttestationSet:
        try:
            return cls(merge_sha=str(index["merge_sha"]), repo=str(index["repo"]), record_id=str(index["record_id"]),
                       created_at=str(index["created_at"]), signer=str(index["signer"]), documents=documents)
        except (KeyError, TypeError, ValueError) as exc:
            raise StoreCorrupt(f"attestation index unreadable: {exc}") from None


@runtime_checkable
class AttestationStore(Protocol):
    def put(self, attestation: AttestationSet) -> bool:
        """Write the whole set atomically; False (and nothing written) if a set exists for that merge SHA."""
        ...

    def get(self, merge_sha: str) -> AttestationSet | None:
        """The set stored for ``merge_sha``, or None."""
        ...


# ---------------------------------------------------------------------------------------------- memory
class MemoryAttestationStore:
    def __init__(self) -> None:
        self._sets: dict[str, AttestationSet] = {}
        self._lock = threading.Lock()

    def put(self, attestation: AttestationSet) -> bool:
        with self._lock:
            if attestation.merge_sha in self._sets:
                return False
            self._sets[attestation.merge_sha] = attestation
            return True

    def get(self, merge_sha: str) -> AttestationSet | None:
        return self._sets.get(check_sha(merge_sha))

    def replace(self, attestation: AttestationSet) -> None:
        """Overwrite (tests that tamper with stored evidence)."""
        self._sets[attestation.merge_sha] = attestation


# ---------------------------------------------------------------------------------------------- SQLite
class SQLiteAttestationStore:
    """The ``attestations`` table (``repository/sqlite.py`` creates it with the records' schema):
    one row per document, ``PRIMARY KEY (merge_sha, name)``, the index as the row named ``index.json``."""

    def __init__(self, repository: Any) -> None:
        from loopforge.repository.sqlite import SQLiteRepository

        if not isinstance(repository, SQLiteRepository):
            raise TypeError("SQLiteAttestationStore needs a SQLiteRepository")
        self.repository = repository

    def put(self, attestation: AttestationSet) -> bool:
        import sqlite3

        rows = [(attestation.merge_sha, INDEX_FILE, attestation.repo, attestation.record_id, attestation.created_at,
                 json.dumps(attestation.index(), sort_keys=True))]
        rows += [(attestation.merge_sha, name, attestation.repo, attestation.record_id, attestation.created_at, text)
                 for name, text in sorted(attestation.documents.items())]
        with self.repository.transaction(immediate=True) as conn:
            if conn.execute("SELECT 1 FROM attestations WHERE merge_sha = ? LIMIT 1",
                            (attestation.merge_sha,)).fetchone():
                return False
            try:
                conn.executemany("INSERT INTO attestations (merge_sha, name, repo, record_id, created_at, body) "
                                 "VALUES (?, ?, ?, ?, ?, ?)", rows)
            except sqlite3.IntegrityError:  # pragma: no cover - the immediate transaction excludes a race
                raise StoreError(f"attestation for {attestation.merge_sha} written concurrently") from None
        return True

    def get(self, merge_sha: str) -> AttestationSet | None:
        with self.repository.transaction() as conn:
            rows = conn.execute("SELECT name, body FROM attestations WHERE merge_sha = ? ORDER BY name",
                                (check_sha(merge_sha),)).fetchall()
        if not rows:
            return None
        docs = {str(name): str(body) for name, body in rows}
        index = docs.pop(INDEX_FILE, None)
        if index is None:
            raise StoreCorrupt(f"attestation {merge_sha}: no index row")
        return AttestationSet.from_index(_json(index, merge_sha), docs)


def _json(text: str, where: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError:
        raise StoreCorrupt(f"attestation {where}: index is not JSON") from None
    if not isinstance(data, dict):
        raise StoreCorrupt(f"attestation {where}: index is not an object")
    return data


# ---------------------------------------------------------------------------------------------- DynamoDB
class DynamoDBAttestationStore:
    """Items in the records' table: ``pk = ATT#<merge sha>``; ``sk = META`` (the index) and ``sk = DOC#<name>``
    (one per document), written in one ``TransactWriteItems`` with ``attribute_not_exists(pk)`` on each."""

    def __init__(self, repository: Any) -> None:
        self.repository = repository  # a DynamoDBRepository: its table name and ``call`` (error translation)

    @staticmethod
    def _pk(merge_sha: str) -> dict[str, str]:
        return {"S": f"ATT#{check_sha(merge_sha)}"}

    def put(self, attestation: AttestationSet) -> bool:
        from loopforge.errors import ConcurrencyError

        repo = self.repository
        pk = self._pk(attestation.merge_sha)
        new = {"TableName": repo.table_name, "ConditionExpression": "attribute_not_exists(pk)"}
        items: list[dict[str, Any]] = [{"Put": {**new, "Item": {
            "pk": pk, "sk": {"S": "META"}, "body": {"S": json.dumps(attestation.index(), sort_keys=True)}}}}]
        items += [{"Put": {**new, "Item": {"pk": pk, "sk": {"S": f"DOC#{name}"}, "body": {"S": text}}}}
                  for name, text in sorted(attestation.documents.items())]
        try:
            repo.call("transact_write_items", f"attestation {attestation.merge_sha}", TransactItems=items)
        except ConcurrencyError:  # a condition failed: a set exists already
            return False
        return True

    def get(self, merge_sha: str) -> AttestationSet | None:
        repo = self.repository
        params: dict[str, Any] = {"TableName": repo.table_name, "ConsistentRead": True,
                                  "KeyConditionExpression": "pk = :pk",
                                  "ExpressionAttributeValues": {":pk": self._pk(merge_sha)}}
        items: list[dict[str, Any]] = []
        while True:
            page = repo.call("query", f"attestation {merge_sha}", **params)
            items += page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                break
            params["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        if not items:
            return None
        docs = {item["sk"]["S"]: item["body"]["S"] for item in items}
        index = docs.pop("META", None)
        if index is None:
            raise StoreCorrupt(f"attestation {merge_sha}: no META item")
        return AttestationSet.from_index(_json(index, merge_sha),
                                         {k.removeprefix("DOC#"): v for k, v in docs.items()})


# ---------------------------------------------------------------------------------------------- branch
class BranchAttestationStore:
    """``attestations/<merge sha>/…`` on the data branch of the branch store, written in one commit.

    Needs two methods of ``BranchRepository`` (added at the end of ``repository/branch.py``):
    ``read_path(path) -> bytes | None`` (a file at the branch tip) and
    ``commit_files(files, message, *, unless_exists) -> bool`` (one commit adding ``files`` on the tip, with
    the store's compare-and-swap and retries; False, nothing written, when ``unless_exists`` is already there)."""

    ROOT = "attestations"

    def __init__(self, repository: Any) -> None:
        self.repository = repository

    def folder(self, merge_sha: str) -> str:
        return f"{self.ROOT}/{check_sha(merge_sha)}"

    def put(self, attestation: AttestationSet) -> bool:
        folder = self.folder(attestation.merge_sha)
        files = {f"{folder}/{name}": text for name, text in sorted(attestation.documents.items())}
        files[f"{folder}/{INDEX_FILE}"] = json.dumps(attestation.index(), indent=2, sort_keys=True) + "\n"
        message = (f"loopforge: evidence for {attestation.merge_sha[:12]} ({attestation.record_id}, "
                   f"{attestation.signer})\n")
        return bool(self.repository.commit_files(files, message, unless_exists=f"{folder}/{INDEX_FILE}"))

    def get(self, merge_sha: str) -> AttestationSet | None:
        folder = self.folder(merge_sha)
        raw = self.repository.read_path(f"{folder}/{INDEX_FILE}")
        if raw is None:
            return None
        index = _json(raw.decode("utf-8", errors="replace"), merge_sha)
        docs: dict[str, str] = {}
        for name in index.get("documents") or []:
            if not isinstance(name, str) or not _DOC_NAME.fullmatch(name):
                raise StoreCorrupt(f"attestation {merge_sha}: bad document name in the index")
            data = self.repository.read_path(f"{folder}/{name}")
            if data is None:
                raise StoreCorrupt(f"attestation {merge_sha}: {name} is missing on the branch")
            docs[name] = data.decode("utf-8", errors="replace")
        return AttestationSet.from_index(index, docs)


def attestation_store_for(repository: Any) -> AttestationStore:
    """The attestation store that lives with ``repository`` (the records' store)."""
    from loopforge.repository.memory import MemoryRepository
    from loopforge.repository.sqlite import SQLiteRepository

    if isinstance(repository, SQLiteRepository):
        return SQLiteAttestationStore(repository)
    if type(repository).__name__ == "DynamoDBRepository":
        return DynamoDBAttestationStore(repository)
    if type(repository).__name__ == "BranchRepository":
        return BranchAttestationStore(repository)
    if isinstance(repository, MemoryRepository):
        store: MemoryAttestationStore | None = getattr(repository, "_attestations", None)
        if store is None:
            store = MemoryAttestationStore()
            repository._attestations = store  # type: ignore[attr-defined]
        return store
    if type(repository).__name__ == "OverlayRepository":  # a dry run: evidence is never written through it
        return MemoryAttestationStore()
    raise StoreError(f"no attestation store for {type(repository).__name__}")
