"""The blob ids behind a pull request's diff fingerprint (``loopforge.policy.fingerprint``), read over GraphQL.

The event's one read cannot carry them: GraphQL's changed files have no blob id, and the paths to ask for are only
known once that read has answered. So a fingerprint costs one more query, and only the first time LoopForge
evaluates a head (``policy.evaluate``; the record keeps every head's fingerprint, later events take it from there).
That query asks for, with every path and expression passed as a variable:

* each changed path's blob at the head (``object(expression: "<head>:<path>")``) and at the base branch's tip
  (read with the PR's facts), except the side where the file does not exist (git's null id there);
* ``ref(<base>).compare(headRef: <head>)``: status, ``behindBy``, the two commits compared, and the commits of the
  head that are not in the base with their parents.

The merge base (what GitHub diffs a pull request against) follows from the comparison:

* the base tip the comparison used, when the head is not behind it (``behindBy`` 0: the PR was rebased onto it
  or the base was merged into it, the cases an approval should survive): no further request when that is the
  tip the first query read blobs at;
* otherwise the one parent, outside that set, of the head's commits that are not in the base (a branch that
  forked once): every common ancestor is an ancestor of it, so it is the merge base. A second query reads the
  base-side blobs there.

Anything else (no comparison, more than 100 such commits, several such parents, a head or base that moved
between the reads) returns ``None``: the caller asks REST (``GET compare`` for the merge base and its tree). A head
already in the base branch (nothing ahead) has no diff to fingerprint: ``FactUnavailable``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from loopforge.errors import FactUnavailable
from loopforge.github.graphql import GraphQLClient
from loopforge.policy.context import ChangedFile

NULL_OID = "0" * 40
MAX_COMMITS = 100

#: runs a GraphQL document with variables and returns its ``data`` (``GraphQLClient.execute(...).data``)
Run = Callable[[str, Mapping[str, Any]], Mapping[str, Any]]

_COMPARE = ("compare(headRef: $head) { status aheadBy behindBy baseTarget { oid } headTarget { oid }\n"
            f"        commits(first: {MAX_COMMITS}) {{ totalCount nodes {{ oid parents(first: 5) {{ totalCount "
            "nodes { oid } } } } }")


def runner(client: GraphQLClient) -> Run:
    """A ``Run`` over ``client`` (its errors are the typed ``GitHubError``s of ``graphql.error_for``)."""

    def run(document: str, variables: Mapping[str, Any]) -> Mapping[str, Any]:
        return client.execute(document, variables, what="reading the blob ids of the pull request's diff").data

    return run


@dataclass
class DiffRead:
    """The outcome of ``read_diff_blobs``: ``blobs`` (``{path: (head blob, base blob)}``) or ``None`` (ask REST,
    ``why`` says why)."""

    blobs: dict[str, tuple[str, str]] | None
    why: str = ""


def _objects(prefix: str, commit: str, paths: Sequence[str]) -> tuple[list[str], list[str], dict[str, str]]:
    """Variable declarations, aliased ``object`` selections and variables reading ``paths`` at ``commit``."""
    decls, fields, variables = [], [], {}
    for i, path in enumerate(paths):
        name = f"{prefix}{i}"
        decls.append(f"${name}: String!")
        fields.append(f"{name}: object(expression: ${name}) {{ oid }}")
        variables[name] = f"{commit}:{path}"
    return decls, fields, variables


def _document(decls: list[str], body: list[str]) -> str:
    return ("query(" + ", ".join(["$owner: String!", "$name: String!", *decls]) + ") {\n"
            "  repository(owner: $owner, name: $name) {\n    " + "\n    ".join(body) + "\n  }\n}")


def _oids(repository: Mapping[str, Any], prefix: str, paths: Sequence[str]) -> dict[str, str] | None:
    out: dict[str, str] = {}
    for i, path in enumerate(paths):
        node = repository.get(f"{prefix}{i}")
        oid = node.get("oid") if isinstance(node, Mapping) else None
        if not isinstance(oid, str) or not oid:
            return None
        out[path] = oid
    return out


def merge_base_of(comparison: Mapping[str, Any]) -> tuple[str | None, str]:
    """The merge base a ``compare`` answer implies, or (None, why) when it does not tell (module docstring);
    ``FactUnavailable`` when nothing is ahead of the base (no diff)."""
    base = str((comparison.get("baseTarget") or {}).get("oid") or "")
    if int(comparison.get("aheadBy") or 0) == 0:
        head = str((comparison.get("headTarget") or {}).get("oid") or "")
        raise FactUnavailable("blob ids", f"no diff to fingerprint: {head[:7]} is already in the base branch")
    if int(comparison.get("behindBy") or 0) == 0:
        return (base or None), ("" if base else "the comparison names no base commit")
    commits = comparison.get("commits") or {}
    nodes = [n for n in commits.get("nodes") or [] if isinstance(n, Mapping)]
    if int(commits.get("totalCount") or 0) > len(nodes):
        return None, f"more than {len(nodes)} commits are not in the base branch"
    ours = {str(n.get("oid")) for n in nodes}
    outside: set[str] = set()
    for node in nodes:
        parents = node.get("parents") or {}
        found = [str(p.get("oid")) for p in parents.get("nodes") or [] if isinstance(p, Mapping)]
        if int(parents.get("totalCount") or 0) > len(found):
            return None, "a commit has more parents than were read"
        outside.update(p for p in found if p not in ours)
    if len(outside) != 1:
        return None, f"the branch leaves the base branch at {len(outside)} commits"
    return outside.pop(), ""


def read_diff_blobs(run: Run, repo: str, base_ref: str, base_tip: str, head: str,
                    files: Sequence[ChangedFile]) -> DiffRead:
    """``{path: (head blob, base blob)}`` of ``files`` (no renames: their old names are not in the read) at
    ``head`` and the merge base with branch ``base_ref`` (read with the PR at ``base_tip``); see the module doc."""
    owner, _, name = repo.partition("/")
    heads = [f.filename for f in files if f.status != "removed"]
    bases = [f.filename for f in files if f.status != "added"]
    decls, body, variables = _objects("h", head, heads)
    variables.update({"owner": owner, "name": name, "base": f"refs/heads/{base_ref}", "head": head})
    decls += ["$base: String!", "$head: String!"]
    body.append(f"ref(qualifiedName: $base) {{ {_COMPARE} }}")
    if base_tip:
        more_decls, more_body, more_vars = _objects("b", base_tip, bases)
        decls += more_decls
        body += more_body
        variables.update(more_vars)
    read = DiffRead(None)
    repository = run(_document(decls, body), variables).get("repository") or {}
    comparison = (repository.get("ref") or {}).get("compare")
    if not isinstance(comparison, Mapping):
        read.why = f"GitHub did not compare {base_ref} with {head[:7]}"
        return read
    if str((comparison.get("headTarget") or {}).get("oid") or "") != head:
        read.why = "the comparison is not of the head commit"
        return read
    merge_base, why = merge_base_of(comparison)
    if merge_base is None:
        read.why = why
        return read
    at_head = _oids(repository, "h", heads)
    if at_head is None:
        raise FactUnavailable("blob ids", f"a changed file is missing at {head[:7]}")
    if base_tip and merge_base == base_tip:
        at_base = _oids(repository, "b", bases)
    elif not bases:  # every file is new: nothing to read at the merge base
        at_base = {}
    else:  # the merge base is not the tip the first query read at: read there
        more_decls, more_body, more_vars = _objects("b", merge_base, bases)
        answer = run(_document(more_decls, more_body), {"owner": owner, "name": name, **more_vars})
        at_base = _oids(answer.get("repository") or {}, "b", bases)
    if at_base is None:
        raise FactUnavailable("blob ids", f"a changed file is missing at the merge base {merge_base[:7]}")
    read.blobs = {f.filename: (at_head.get(f.filename, NULL_OID), at_base.get(f.filename, NULL_OID))
                  for f in files}
    return read


__all__ = ["DiffRead", "Run", "merge_base_of", "read_diff_blobs", "runner"]
