"""Tamper detection on the data branch: a tip LoopForge did not make is checked before anything is appended.

LoopForge's own commits on the data branch are made with the workflow token: their author is the token's bot
identity (``github-actions[bot]``), their message starts with ``loopforge: `` and, when the store writes through
``createCommitOnBranch``, GitHub signs them. The Action reads the tip commit with the record (free with the one
GraphQL read; two REST requests otherwise). A tip that is not like that was made by someone else (an edit through
the API or the web, a push). Only then (never in the normal case) ``investigate``:

1. walks back to the newest commit LoopForge made (at most ``MAX_WALK`` commits), and lists the files the
   foreign commits changed (two recursive tree reads);
2. every record with a changed file is checked in full (``LoopService.verify``: hashes, links, sequence, head);
3. each such record gets a ``violation`` entry (rule ``audit-trail``) naming the foreign commits, the changed
   files and the first bad entry, and ``metadata["integrity"]`` keeps the finding, so every later event on that
   record says so again (``::error``, a failed row in the check run) without another read.

The new entry never launders an edit: it links to the last hash LoopForge itself wrote when the edit rewrote the
last entry *and* the head to match (so ``verify`` names that entry as edited and re-hashed), and to the stored last
hash otherwise (an edit of an earlier entry stays where ``verify`` finds it).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote

from loopforge.records import RecordHead
from loopforge.repository.base import Page, RecordQuery, Repository
from loopforge.service import LoopService
from loopforge.trail import LoopTransition

#: The identities whose commits on the data branch are LoopForge's (the workflow token's bot user).
TRUSTED_AUTHORS = frozenset({"github-actions[bot]", "41898282+github-actions[bot]@users.noreply.github.com"})
COMMIT_PREFIX = "loopforge: "
INTEGRITY_KEY = "integrity"
RULE = "audit-trail"
#: How many foreign commits ``investigate`` walks back before it gives up looking for LoopForge's last commit.
MAX_WALK = 50


@dataclass(frozen=True)
class BranchCommit:
    """A commit of the data branch, as much as the trust decision needs."""

    oid: str
    parents: tuple[str, ...] = ()
    message: str = ""
    tree: str | None = None
    author_name: str | None = None
    author_email: str | None = None
    author_login: str | None = None
    signature_valid: bool | None = None  # None: not known (the REST git commit has no verified signer here)

    @property
    def author(self) -> str:
        return self.author_login or self.author_name or self.author_email or "unknown"


def made_by_loopforge(commit: BranchCommit, *, require_signature: bool = False,
                      authors: Iterable[str] = TRUSTED_AUTHORS) -> bool:
    """Whether ``commit`` is one LoopForge wrote: its message, its author (the token's bot identity) and, for a
    store whose commits GitHub signs, a valid signature."""
    trusted = set(authors)
    if not commit.message.startswith(COMMIT_PREFIX):
        return False
    if not ({commit.author_login, commit.author_name, commit.author_email} & trusted):
        return False
    return not (require_signature and commit.signature_valid is not True)


class DataBranchReader(Protocol):
    """The reads ``investigate`` needs (the REST implementation is ``RestDataBranch``)."""

    def tip(self) -> BranchCommit | None: ...

    def commit(self, oid: str) -> BranchCommit: ...

    def files(self, commit: BranchCommit) -> dict[str, str]:
        """``{path: blob sha}`` of every file in the commit's tree."""
        ...

    def blob(self, sha: str) -> bytes: ...


class RestDataBranch:
    """``DataBranchReader`` over the REST API (PyGithub's requester): git refs, commits, trees and blobs."""

    def __init__(self, requester: Any, repo: str, branch: str) -> None:
        self._requester = requester
        self._base = f"/repos/{repo}"
        self.branch = branch

    def _get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        from github import GithubException

        try:
            _h, data = self._requester.requestJsonAndCheck("GET", f"{self._base}{path}", parameters=params)
        except GithubException as exc:
            if exc.status == 404:
                return None
            raise
        return data

    def tip(self) -> BranchCommit | None:
        ref = self._get(f"/git/ref/heads/{quote(self.branch)}")
        if not isinstance(ref, dict):
            return None
        return self.commit(str(ref["object"]["sha"]))

    def commit(self, oid: str) -> BranchCommit:
        data = self._get(f"/git/commits/{oid}")
        if not isinstance(data, dict):
            raise LookupError(f"commit {oid[:12]} of {self.branch} not found")
        author = data.get("author") or {}
        verification = data.get("verification") or {}
        return BranchCommit(
            oid=oid, parents=tuple(str(p["sha"]) for p in data.get("parents") or []),
            message=str(data.get("message") or ""), tree=str((data.get("tree") or {}).get("sha") or "") or None,
            author_name=author.get("name"), author_email=author.get("email"),
            signature_valid=bool(verification["verified"]) if "verified" in verification else None)

    def files(self, commit: BranchCommit) -> dict[str, str]:
        if commit.tree is None:
            return {}
        data = self._get(f"/git/trees/{commit.tree}", {"recursive": "1"}) or {}
        return {str(i["path"]): str(i["sha"]) for i in data.get("tree", []) if i.get("type") == "blob"}

    def blob(self, sha: str) -> bytes:
        data = self._get(f"/git/blobs/{sha}") or {}
        content = str(data.get("content") or "")
        return base64.b64decode(content) if data.get("encoding") == "base64" else content.encode("utf-8")


# ---------------------------------------------------------------------------------------------- findings
@dataclass
class Finding:
    """One record whose files a foreign commit changed."""

    record_id: str
    paths: list[str]
    problems: list[str] = field(default_factory=list)  # what ``verify`` reports (before the new entry)
    first_bad: int | None = None
    anchor: str | None = None  # the last hash LoopForge wrote, when the head was rewritten to match an edit

    def summary(self) -> str:
        """The first problem ``verify`` names (``entry N: …``), or the files changed when it names none."""
        if self.problems:
            return self.problems[0]
        where = f"entry {self.first_bad}: " if self.first_bad is not None else ""
        return f"{where}files changed outside LoopForge ({', '.join(self.paths[:5])})"


@dataclass
class TipCheck:
    """What ``investigate`` found behind a foreign tip."""

    tip: BranchCommit
    foreign: list[BranchCommit]
    base: BranchCommit | None  # LoopForge's newest commit under the foreign ones (None: not found)
    findings: list[Finding] = field(default_factory=list)

    def commits_text(self) -> str:
        return ", ".join(f"{c.oid[:12]} by {c.author}" for c in self.foreign[:5]) + (
            f" and {len(self.foreign) - 5} more" if len(self.foreign) > 5 else "")


def _record_of(path: str, files: dict[str, str], reader: DataBranchReader) -> tuple[str, str] | None:
    """(record folder, record id) of a path under ``records/``; None for other files."""
    parts = path.split("/")
    if len(parts) < 3 or parts[0] != "records":
        return None
    if parts[1] == "_other":
        folder = "/".join(parts[:3])
    elif len(parts) >= 5:
        folder = "/".join(parts[:4])
        return folder, f"{parts[1]}/{parts[2]}#{parts[3]}"
    else:
        return None
    head = files.get(f"{folder}/head.json")
    if head is None:
        return folder, folder
    try:
        return folder, str(json.loads(reader.blob(head))["record_id"])
    except (ValueError, KeyError, TypeError):
        return folder, folder


def _last_written(data: bytes | None) -> tuple[int, str] | None:
    if data is None:
        return None
    try:
        stored = json.loads(data)
        return int(stored["last_sequence"]), str(stored["last_hash"])
    except (ValueError, KeyError, TypeError):
        return None


def investigate(reader: DataBranchReader, tip: BranchCommit, store: Repository, *,
                trusted: Callable[[BranchCommit], bool] = made_by_loopforge,
                record_id: str | None = None) -> TipCheck:
    """Walk back from a foreign ``tip`` to LoopForge's last commit and check every record the foreign commits
    changed (reads only; ``flag`` writes the findings). When no LoopForge commit is found within ``MAX_WALK``,
    what changed cannot be told: only ``record_id`` (the event's record) is checked, in full."""
    foreign = [tip]
    base: BranchCommit | None = None
    current = tip
    while current.parents and len(foreign) <= MAX_WALK:
        parent = reader.commit(current.parents[0])
        if trusted(parent):
            base = parent
            break
        foreign.append(parent)
        current = parent
    check = TipCheck(tip=tip, foreign=foreign, base=base)
    now = reader.files(tip)
    before = reader.files(base) if base is not None else {}
    changed = sorted(p for p in set(now) | set(before) if now.get(p) != before.get(p))
    if base is None:
        from loopforge.repository.branch import record_dir

        folder = record_dir(record_id) + "/" if record_id else None
        changed = [p for p in changed if folder and p.startswith(folder)]
    records: dict[str, tuple[str, list[str]]] = {}
    for path in changed:
        found = _record_of(path, now, reader) or _record_of(path, before, reader)
        if found is not None:
            records.setdefault(found[0], (found[1], []))[1].append(path)
    service = LoopService(repository=store)
    for folder, (record_id, paths) in records.items():
        finding = Finding(record_id=record_id, paths=paths)
        entry_seqs = sorted(int(p.rsplit("/", 1)[-1].split(".")[0]) for p in paths
                            if p.startswith(f"{folder}/entries/") and p.rsplit("/", 1)[-1].split(".")[0].isdigit())
        try:
            report = service.verify(record_id)
            finding.problems = [str(p) for p in report.problems]
            bad = [p.sequence for p in report.problems if p.sequence is not None]
            finding.first_bad = min(bad) if bad else (entry_seqs[0] if entry_seqs else None)
        except LookupError:  # the head is gone: the record was deleted outside LoopForge
            finding.problems = ["the record's head was deleted outside LoopForge"]
            finding.first_bad = entry_seqs[0] if entry_seqs else None
        head_path = f"{folder}/head.json"
        if head_path in paths and base is not None and head_path in before and head_path in now:
            was, is_ = _last_written(reader.blob(before[head_path])), _last_written(reader.blob(now[head_path]))
            if was and is_ and was[0] == is_[0] and was[1] != is_[1]:
                finding.anchor = was[1]  # the last entry and the head were rewritten to match each other
                finding.first_bad = was[0] if finding.first_bad is None else min(finding.first_bad, was[0])
                if not finding.problems:
                    finding.problems = [f"entry {was[0]}: rewritten together with the record's head (LoopForge "
                                        f"wrote hash {was[1][:12]}, the branch now says {is_[1][:12]})"]
        check.findings.append(finding)
    return check


# ---------------------------------------------------------------------------------------------- recording
class AnchoredRepository:
    """A store whose head of one record reports ``last_hash`` = ``anchor`` (the hash LoopForge last wrote), so
    the next entry links to it and not to a hash an edit put there."""

    def __init__(self, inner: Repository, record_id: str, anchor: str) -> None:
        self._inner, self._record_id, self._anchor = inner, record_id, anchor

    def head(self, record_id: str) -> RecordHead | None:
        head = self._inner.head(record_id)
        if head is not None and record_id == self._record_id:
            return head.model_copy(update={"last_hash": self._anchor})
        return head

    def append(self, head: RecordHead, entries: Sequence[LoopTransition]) -> None:
        self._inner.append(head, entries)

    def entries(self, record_id: str, after: int = 0, limit: int | None = None) -> Iterable[LoopTransition]:
        return self._inner.entries(record_id, after, limit)

    def find_key(self, record_id: str, idempotency_key: str) -> LoopTransition | None:
        return self._inner.find_key(record_id, idempotency_key)

    def query(self, query: RecordQuery) -> Page:
        return self._inner.query(query)


def flag(store: Repository, check: TipCheck, *, key: str, actor: str | None, run_url: str | None) -> list[Finding]:
    """Record each finding on its record (a ``violation`` entry, ``metadata["integrity"]``); the findings
    written (a record already flagged for the same foreign tip by an earlier attempt is not written twice)."""
    written: list[Finding] = []
    for finding in check.findings:
        if store.head(finding.record_id) is None:
            continue  # nothing left to append to (the record was deleted): the ::error still names it
        target: Repository = AnchoredRepository(store, finding.record_id, finding.anchor) if finding.anchor \
            else store
        integrity = {"status": "broken", "first_bad": finding.first_bad, "problem": finding.summary()[:500],
                     "commits": [c.oid for c in check.foreign[:20]], "paths": finding.paths[:50],
                     "detected_in": run_url}
        reason = (f"the trail was changed outside LoopForge by {check.commits_text()}: "
                  f"{finding.summary()}")[:1000]
        result = LoopService(repository=target).violation(
            finding.record_id, "loopforge.integrity", reason, rule=RULE, actor=actor,
            evidence={"integrity": {**integrity, "problems": finding.problems[:20],
                                    "linked_to": "the last hash LoopForge wrote" if finding.anchor else
                                    "the stored last hash"}},
            metadata={INTEGRITY_KEY: integrity}, idempotency_key=f"{key}:{finding.record_id}")
        if not result.duplicate:
            written.append(finding)
    return written


def integrity_of(metadata: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The finding kept on a record (its ``metadata``) whose trail was changed outside LoopForge, or None."""
    found = metadata.get(INTEGRITY_KEY) if metadata is not None else None
    return found if isinstance(found, dict) and found.get("status") == "broken" else None


def describe(record_id: str, integrity: dict[str, Any]) -> str:
    first = integrity.get("first_bad")
    where = f"entry {first}" if first is not None else "its files"
    commits = ", ".join(str(c)[:12] for c in integrity.get("commits") or [])
    return (f"{record_id}: audit trail changed outside LoopForge at {where} ({str(integrity.get('problem'))[:300]}"
            f"{'; commits ' + commits if commits else ''}); run `loopforge verify` and restore the data branch "
            f"from its history")


__all__ = ["TRUSTED_AUTHORS", "AnchoredRepository", "BranchCommit", "DataBranchReader", "Finding",
           "RestDataBranch", "TipCheck", "describe", "flag", "integrity_of", "investigate", "made_by_loopforge"]
