"""The fingerprint of a pull request's diff, and the ledger of approvals kept in the record.

What counts as "the same diff" (docs/policy.md, "Approvals that survive a push"): the sha256 of the canonical
JSON of the sorted list of one tuple per changed file::

    (path, previous_path or "", change type, additions, deletions, blob id at the head, blob id at the merge base)

where a side on which the file does not exist has git's null id (forty zeros), the base blob of a renamed or
copied file is the blob of its *previous* path, and the merge base is the commit GitHub diffs the PR against.
Two heads with equal fingerprints change the same files from the same contents to the same contents, so their
diffs are byte for byte equal. It is conservative: when anything it needs cannot be told (the file list is
truncated, a blob id or the merge base is unknown, a rename comes without its old name), there is no fingerprint
and no approval carries over.

The ledger (``metadata["policy"]`` of the record, written with every ``policy.evaluated`` entry) keeps:

* ``diff_fingerprints``: ``{head sha: fingerprint}`` of the last ``MAX_HEADS`` heads LoopForge evaluated (the
  first fingerprint seen for a head is kept: a commit's diff does not change when the base branch moves on);
* ``approvals``: ``{login (lower case): {login, user_id, commit, fingerprint}}`` for every reviewer whose latest
  decisive review approves, with the fingerprint of the commit the approval was given for (``None`` when
  LoopForge never evaluated that commit as the head: such an approval cannot carry over).

A head's fingerprint is read (its blob ids: ``PullRequestContext.diff_blobs``) on its first evaluation, whether or
not it has an approval yet (one may come through an event that cannot write, e.g. a fork's review); every later
evaluation of the same head takes it from ``diff_fingerprints``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from loopforge.policy.context import ChangedFile, FactUnavailable, PullRequestContext, Review

NULL_OID = "0" * 40
MAX_HEADS = 20
_RENAMES = ("renamed", "copied")


@dataclass(frozen=True)
class Fingerprint:
    """A head's diff fingerprint (``value``) or why there is none (``value`` None, ``why`` says); ``source``:
    ``read`` (from the blob ids just read) or ``record`` (kept for this head by an earlier evaluation)."""

    value: str | None
    why: str = ""
    files: int = 0
    source: str = "read"


def fingerprint_files(files: Sequence[ChangedFile], blobs: Mapping[str, tuple[str, str]], *,
                      truncated: bool = False) -> Fingerprint:
    """The fingerprint of a diff given its files and ``{path: (head blob, base blob)}``; see the module doc."""
    if truncated:
        return Fingerprint(None, "the changed-file list is truncated")
    rows: list[list[Any]] = []
    for f in files:
        if f.status in _RENAMES and not f.previous_filename:
            return Fingerprint(None, f"the old name of {f.status} file {f.filename} is not known")
        pair = blobs.get(f.filename)
        if pair is None or not pair[0] or not pair[1]:
            return Fingerprint(None, f"the blob ids of {f.filename} are not known")
        rows.append([f.filename, f.previous_filename or "", f.status, int(f.additions), int(f.deletions),
                     pair[0], pair[1]])
    rows.sort()
    text = json.dumps(rows, separators=(",", ":"), ensure_ascii=True)
    return Fingerprint(hashlib.sha256(text.encode("ascii")).hexdigest(), "", len(rows))


def head_fingerprint(ctx: PullRequestContext) -> Fingerprint:
    """The fingerprint of the PR's diff at its current head, read through the facts interface."""
    try:
        files = ctx.changed_files()
        if ctx.files_truncated():  # before the blob ids: they would be read for nothing
            return fingerprint_files(files, {}, truncated=True)
        blobs = ctx.diff_blobs()
    except FactUnavailable as exc:
        return Fingerprint(None, str(exc))
    return fingerprint_files(files, blobs)


# ---------------------------------------------------------------------------------------------- the ledger
def _as_dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


@dataclass
class Ledger:
    """What the record remembers about earlier heads and approvals (from ``metadata["policy"]``)."""

    fingerprints: dict[str, str | None]
    approvals: dict[str, dict[str, Any]]

    @classmethod
    def from_metadata(cls, policy_meta: Mapping[str, Any] | None) -> Ledger:
        meta = _as_dict(policy_meta)
        prints = {str(k): (str(v) if isinstance(v, str) else None)
                  for k, v in _as_dict(meta.get("diff_fingerprints")).items()}
        approvals = {str(k): _as_dict(v) for k, v in _as_dict(meta.get("approvals")).items()}
        return cls(prints, approvals)

    def fingerprint_of(self, commit: str | None) -> str | None:
        return self.fingerprints.get(commit) if commit else None

    def remember_head(self, sha: str, fingerprint: str | None) -> None:
        """Keep the first fingerprint seen for ``sha`` (a later ``None`` never erases a known one)."""
        if not sha:
            return
        if self.fingerprints.get(sha) is None:
            self.fingerprints.pop(sha, None)
            self.fingerprints[sha] = fingerprint
        while len(self.fingerprints) > MAX_HEADS:
            self.fingerprints.pop(next(iter(self.fingerprints)))

    def update_approvals(self, latest: Mapping[str, Review]) -> None:
        """One entry per reviewer whose latest decisive review approves (others are dropped)."""
        out: dict[str, dict[str, Any]] = {}
        for key, review in latest.items():
            if review.state.upper() != "APPROVED":
                continue
            old = self.approvals.get(key) or {}
            fingerprint = self.fingerprint_of(review.commit_id)
            if old.get("commit") == review.commit_id and isinstance(old.get("fingerprint"), str):
                fingerprint = str(old["fingerprint"])  # what it was when the approval was first recorded
            out[key] = {"login": review.user, "user_id": review.user_id, "commit": review.commit_id,
                        "fingerprint": fingerprint}
        self.approvals = out

    def as_metadata(self) -> dict[str, Any]:
        return {"diff_fingerprints": dict(self.fingerprints), "approvals": dict(self.approvals)}
