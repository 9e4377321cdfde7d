"""The merge judgement: what a merge is judged against (no HTTP here; the Action supplies the reads).

A merge is a fact; whether it was allowed is judged against two things, never against the base branch after it:

(a) **the verdict the required check showed** for the commit that was merged: the PR's head, or for a merge
    through the queue the merge group's head. Every time the Action evaluates the gate it keeps the verdict in the
    record's metadata under ``gate.verdicts[<sha>]`` (written in the same entry as ``policy.evaluated``, or in a
    ``gate.evaluated`` note without a policy), so the merge finds it in the head it reads anyway, without reading
    the trail. Merged while that verdict was ``block`` (or ``pending``): the merge is a violation naming the
    check and the rules that were not satisfied.
(b) **the policy at the merge's base parent**: the base commit before the merge (the merge group's ``base_sha``
    for a queue merge; otherwise found from ``merge_commit_sha``, see ``base_parent``). A PR that edits or empties
    the policy is therefore never judged by its own policy once it is merged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from loopforge.errors import MalformedEvent
from loopforge.github.lifecycle import FACTS_KEY, queue_group
from loopforge.service import Veto

GATE_KEY = "gate"
#: How many SHAs' verdicts a record keeps (the newest): a PR pushed more often forgets its oldest heads.
MAX_VERDICTS = 20
#: How far back ``base_parent`` walks for a rebase merge (GitHub rebase-merges at most 100 commits in the UI).
MAX_WALK = 250


def gate_verdict(verdict: str, rows: list[tuple[str, str]], *, kind: str, at: str, policy_sha256: str | None = None,
                 policy_commit: str | None = None, run_url: str | None = None) -> dict[str, Any]:
    """What the record keeps about one gate evaluation: ``rows`` are ``(rule, status)`` pairs as shown."""
    entry: dict[str, Any] = {
        "verdict": verdict, "kind": kind, "at": at,
        "failed": [rule[:200] for rule, status in rows if status == "failed"][:50],
        "pending": [rule[:200] for rule, status in rows if status == "pending"][:50],
    }
    if policy_sha256:
        entry["policy_sha256"] = policy_sha256
    if policy_commit:
        entry["policy_commit"] = policy_commit
    if run_url:
        entry["run_url"] = run_url
    return entry


def verdicts(metadata: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    gate = metadata.get(GATE_KEY)
    found = gate.get("verdicts") if isinstance(gate, dict) else None
    return {k: v for k, v in found.items() if isinstance(v, dict)} if isinstance(found, dict) else {}


def verdict_for(metadata: Mapping[str, Any], sha: str | None) -> dict[str, Any] | None:
    """The verdict the check last showed on ``sha``, or None if LoopForge never evaluated the gate for it."""
    return verdicts(metadata).get(sha) if sha else None


_SAME = ("verdict", "kind", "failed", "pending", "policy_sha256", "policy_commit")


def with_verdict(metadata: Mapping[str, Any], sha: str, entry: dict[str, Any]) -> dict[str, Any] | None:
    """The metadata patch (``{"gate": ...}``) that keeps ``entry`` as the verdict for ``sha``; None when the
    record already holds the same verdict for it (nothing new to write)."""
    known = verdicts(metadata)
    old = known.get(sha)
    if old is not None and all(old.get(k) == entry.get(k) for k in _SAME):
        return None
    known.pop(sha, None)
    known[sha] = entry
    while len(known) > MAX_VERDICTS:
        known.pop(next(iter(known)))
    return {GATE_KEY: {"verdicts": known}}


@dataclass(frozen=True)
class MergeBasis:
    """What a merge is judged against."""

    merged_sha: str | None  # the commit whose check verdict counts: the PR head, or the merge group's head
    base_parent: str | None  # the base before the merge when known without a read (a queue merge's base_sha)
    merge_commit_sha: str | None  # what the merge made on the base
    via_queue: bool


def merge_basis(metadata: Mapping[str, Any]) -> MergeBasis:
    """From the record's facts after a merge was seen (``pull_request.closed`` with ``merged``)."""
    facts = metadata.get(FACTS_KEY) or {}
    pr = facts.get("pr") or {}
    merge_commit = pr.get("merge_commit_sha")
    group = queue_group(facts, merge_commit)
    if group is not None:  # GitHub's queue merges by fast-forwarding the base to the group's head
        return MergeBasis(merge_commit, group.get("base_sha"), merge_commit, True)
    return MergeBasis(pr.get("head_sha"), None, merge_commit, False)


def check_vetoes(metadata: Mapping[str, Any], basis: MergeBasis, check_name: str) -> list[Veto]:
    """(a): the merge broke the required check when the verdict it showed for the merged commit was not
    ``pass``. No verdict recorded for that commit: nothing to say here (the policy at the base parent judges)."""
    seen = verdict_for(metadata, basis.merged_sha)
    if seen is None or seen.get("verdict") == "pass" or basis.merged_sha is None:
        return []
    rules = [*seen.get("failed", []), *seen.get("pending", [])]
    where = "merge group" if basis.via_queue else "head"
    said = "block" if seen.get("verdict") == "block" else str(seen.get("verdict"))
    reason = (f"merged while the check {check_name} said {said} on the {where} {basis.merged_sha[:12]}"
              + (f" ({', '.join(str(r) for r in rules)[:300]} not satisfied)" if rules else ""))
    return [Veto(rule=f"check:{check_name}", reason=reason,
                 details={"sha": basis.merged_sha, "check": check_name, "verdict_seen": dict(seen)})]


@dataclass(frozen=True)
class CommitInfo:
    parents: list[str]
    message: str


def base_parent(merge_commit_sha: str, head_sha: str | None, commits: int | None,
                commit_of: Callable[[str], CommitInfo], ancestor: Callable[[int], str | None] | None = None) -> str:
    """The base commit before a merge made ``merge_commit_sha`` (one read, a few more for a rebase merge).

    A merge commit (two parents) or a squash merge (one commit for the whole PR): its first parent. A rebase
    merge of ``n`` commits put ``n`` commits on the base, and the first parent of the last one is the PR's own
    previous commit (which may hold the PR's edit of the policy): walk ``n`` first parents back. A rebase keeps
    each commit's message, a squash writes a new one, so a single-parent merge commit whose message is the PR
    head's is a rebase. ``ancestor(n)``: the merge commit's ``n``-th first-parent ancestor when already known
    (``<merge>~n`` in the one read), else None and the walk reads commit by commit.
    """
    merge = commit_of(merge_commit_sha)
    if not merge.parents:
        raise MalformedEvent(f"pull_request.merge_commit_sha: {merge_commit_sha[:12]} has no parent, so it is not "
                             f"a merge onto the base branch")
    if len(merge.parents) > 1 or not commits or commits <= 1 or not head_sha or head_sha == merge_commit_sha:
        return merge.parents[0]
    if commit_of(head_sha).message != merge.message:
        return merge.parents[0]  # squashed
    known = ancestor(min(commits, MAX_WALK)) if ancestor is not None else None
    if known is not None:
        return known
    sha = merge.parents[0]
    for _ in range(min(commits, MAX_WALK) - 1):
        up = commit_of(sha).parents
        if not up:
            break
        sha = up[0]
    return sha


__all__ = ["GATE_KEY", "CommitInfo", "MergeBasis", "base_parent", "check_vetoes", "gate_verdict", "merge_basis",
           "merge_policy_commit", "verdict_for", "verdicts", "with_verdict"]


def merge_policy_commit(merge_commit_sha: str | None, head_sha: str | None, commits: int | None,
                        metadata: Mapping[str, Any], commit_of: Callable[[str], CommitInfo],
                        ancestor: Callable[[int], str | None] | None = None) -> str | None:
    """The base commit a merge's policy is read at: the merge group's ``base_sha`` for a queue merge (kept when
    the queue asked for checks), else ``base_parent`` of the merge commit. None without a merge commit."""
    if not merge_commit_sha:
        return None
    group = queue_group(metadata.get(FACTS_KEY) or {}, merge_commit_sha)
    if group is not None and group.get("base_sha"):
        return str(group["base_sha"])
    return base_parent(merge_commit_sha, head_sha, commits, commit_of, ancestor)
