"""The one read of an event: a GraphQL query for the data-branch tip, one record's files at that tip, and any
fields the caller adds (the policy at the base commit, the pull request's facts), in one request.

``snapshot_document`` builds the query; ``parse_snapshot`` reads the answer into a ``RawSnapshot``. Paths are
read with ``Commit.file(path:)`` on the tip commit itself, so the record's head and key files come from exactly
the commit whose oid the next write passes as ``expectedHeadOid``.

Provenance (tamper evidence): the query also returns the tip commit and the newest commit that touched the
record's folder (``history(first: 1, path:)``), each with its author, its message and GitHub's signature
verdict. ``Provenance.by_loopforge`` is true only for a commit LoopForge made: signed by GitHub
(``signature.isValid``: ``createCommitOnBranch`` commits are), authored by the writer's identity (the workflow
token's bot, ``github-actions[bot]``, unless configured), and carrying the ``Loopforge-Record:`` trailer LoopForge
writes. A record whose last commit is not LoopForge's was edited by someone else: verify it before extending it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: the trailer LoopForge puts in every commit message it writes on the data branch
TRAILER = "Loopforge-Record"
#: the trailer of a commit LoopForge made on a record whose trail no longer verified: the next events verify it
#: again (and say so) until the trail is repaired, instead of taking LoopForge's own commit for a clean state
BROKEN_TRAILER = "Loopforge-Broken"
DEFAULT_WRITER = "github-actions[bot]"

_COMMIT_FIELDS = "oid message author { name email user { login } } signature { isValid signer { login } }"
_BLOB = "object { ... on Blob { text isTruncated } }"


@dataclass(frozen=True)
class Provenance:
    """Who made a commit on the data branch, as GitHub reports it."""

    oid: str
    author_login: str | None
    author_email: str | None
    signed: bool  # signature.isValid
    signer: str | None
    trailer_records: tuple[str, ...]  # the record ids named by ``Loopforge-Record:`` trailers
    by_loopforge: bool
    broken: str | None = None  # a ``Loopforge-Broken:`` trailer: LoopForge extended a trail that did not verify

    def describe(self) -> str:
        if self.by_loopforge and self.broken:
            return f"commit {self.oid[:12]} by LoopForge on a trail that did not verify"
        who = self.author_login or self.author_email or "an unknown author"
        return (f"commit {self.oid[:12]} by {who}, " + ("signed" if self.signed else "unsigned")
                + (", with LoopForge's trailer" if self.trailer_records else ", without LoopForge's trailer"))


def provenance(commit: Mapping[str, Any] | None, writer: str | None, record_id: str | None = None
               ) -> Provenance | None:
    if not commit or not commit.get("oid"):
        return None
    author = commit.get("author") or {}
    user = author.get("user") or {}
    signature = commit.get("signature") or {}
    signer = (signature.get("signer") or {}).get("login")
    records = tuple(line.split(":", 1)[1].strip() for line in str(commit.get("message") or "").splitlines()
                    if line.startswith(f"{TRAILER}:"))
    broken = next((line.split(":", 1)[1].strip() for line in str(commit.get("message") or "").splitlines()
                   if line.startswith(f"{BROKEN_TRAILER}:")), None)
    login = user.get("login")
    signed = bool(signature.get("isValid"))
    ours = signed and bool(records) and (writer is None or login == writer) and (
        record_id is None or record_id in records)
    return Provenance(str(commit["oid"]), login, author.get("email"), signed, signer, records, ours, broken)


@dataclass(frozen=True)
class Extra:
    """Fields a caller adds under ``repository { ... }`` of the snapshot query.

    ``selection``: GraphQL text with aliased fields, e.g. ``policy: object(expression: $policyExpr) { ... on Blob
    { text } }``; ``variables``: ``{name: (GraphQL type, value)}``; ``optional``: aliases whose ``NOT_FOUND``
    just leaves the field null (e.g. a pull request that does not exist)."""

    selection: str
    variables: Mapping[str, tuple[str, Any]] = field(default_factory=dict)
    optional: Sequence[str] = ()


def snapshot_document(owner: str, name: str, branch: str, folder: str, key_paths: Sequence[str],
                      extras: Sequence[Extra] = ()) -> tuple[str, dict[str, Any], list[str]]:
    """(document, variables, optional aliases) of the snapshot query for the record in ``folder``."""
    variables: dict[str, Any] = {"owner": owner, "name": name, "ref": f"refs/heads/{branch}", "dir": folder,
                                 "head": f"{folder}/head.json"}
    types = {"owner": "String!", "name": "String!", "ref": "String!", "dir": "String!", "head": "String!"}
    keys = []
    for i, path in enumerate(key_paths):
        variables[f"k{i}"] = path
        types[f"k{i}"] = "String!"
        keys.append(f"k{i}: file(path: $k{i}) {{ {_BLOB} }}")
    optional: list[str] = []
    extra_text = []
    for extra in extras:
        for var, (gtype, value) in extra.variables.items():
            if var in types:
                raise ValueError(f"snapshot variable ${var} is used twice")
            types[var] = gtype
            variables[var] = value
        extra_text.append(extra.selection)
        optional += list(extra.optional)
    declared = ", ".join(f"${k}: {t}" for k, t in types.items())
    document = (
        f"query LoopforgeSnapshot({declared}) {{\n"
        f"  repository(owner: $owner, name: $name) {{\n"
        f"    id\n"
        f"    tip: ref(qualifiedName: $ref) {{\n"
        f"      target {{\n"
        f"        oid\n"
        f"        ... on Commit {{\n"
        f"          {_COMMIT_FIELDS}\n"
        f"          head: file(path: $head) {{ {_BLOB} }}\n"
        + "".join(f"          {k}\n" for k in keys) +
        f"          touched: history(first: 1, path: $dir) {{ nodes {{ {_COMMIT_FIELDS} }} }}\n"
        f"        }}\n"
        f"      }}\n"
        f"    }}\n"
        + "".join(f"    {t}\n" for t in extra_text) +
        "  }\n"
        "}\n")
    return document, variables, optional


@dataclass
class RawSnapshot:
    """What the query returned (texts not yet parsed: the store owns its file formats)."""

    repository_id: str | None
    tip: str | None
    tip_commit: Mapping[str, Any] | None
    touched_commit: Mapping[str, Any] | None
    head_text: str | None
    key_texts: list[str | None]
    extra: dict[str, Any]


def _blob_text(entry: Mapping[str, Any] | None, what: str) -> str | None:
    if not entry:
        return None
    obj = entry.get("object") or {}
    if obj.get("isTruncated"):
        raise ValueError(f"{what} is too large for one GraphQL read")
    text = obj.get("text")
    return str(text) if text is not None else None


def parse_snapshot(data: Mapping[str, Any], key_count: int) -> RawSnapshot:
    repo = data.get("repository") or {}
    target = ((repo.get("tip") or {}).get("target")) or None
    extra = {k: v for k, v in repo.items() if k not in ("id", "tip")}
    if target is None:
        return RawSnapshot(repo.get("id"), None, None, None, None, [None] * key_count, extra)
    touched = ((target.get("touched") or {}).get("nodes") or [None])[0]
    return RawSnapshot(repo.get("id"), str(target["oid"]), target, touched, _blob_text(target.get("head"), "head"),
                       [_blob_text(target.get(f"k{i}"), "a key file") for i in range(key_count)], extra)


__all__ = ["DEFAULT_WRITER", "TRAILER", "Extra", "Provenance", "RawSnapshot", "parse_snapshot", "provenance",
           "snapshot_document"]
