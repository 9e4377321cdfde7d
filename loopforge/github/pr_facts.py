"""A pull request's facts from the event's one GraphQL read: routing, the policy file and its code directory at
the base, and the LoopForge check run already on the head commit (``pr_context_graphql`` turns the answer into
the policy's ``PullRequestContext``).

``pull_request_extra`` is an ``Extra`` for ``BranchRepository.snapshot`` (or for a query of its own); it asks for

* ``pr``: the pull request (title, body, refs and oids, author, draft/merged, labels, changed files with line
  counts, the latest decisive review per reviewer, label events with who added each label);
* ``head``: the head commit (``object(oid:)``): its status rollup (check runs and commit statuses), its check
  suites (workflow runs) and the check run named ``check_name`` (so the check run is one PATCH, or one POST
  when there is none: no lookup request);
* ``pr.baseRef.target.policy``/``.code``: the policy file and the policy's code directory (guards, gate
  scripts, nested up to ``CODE_DEPTH`` levels) at the tip of the branch the PR targets now.

Nothing here imports the policy machinery: an event without a policy never loads it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from loopforge.github.events import PullRequest
from loopforge.github.snapshot import Extra

PAGE = 100
CODE_DEPTH = 4
#: where GitHub looks for CODEOWNERS, in its order (``loopforge.policy.codeowners`` keeps the same tuple)
CODEOWNERS_PATHS: tuple[str, ...] = (".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS")

_PR = f"""number title body url state isDraft merged headRefName headRefOid baseRefName baseRefOid
      isCrossRepository authorAssociation author {{ login }} additions deletions changedFiles createdAt updatedAt
      labels(first: {PAGE}) {{ totalCount nodes {{ name }} }}
      files(first: {PAGE}) {{ totalCount nodes {{ path additions deletions changeType }} }}
      latestOpinionatedReviews(first: {PAGE}) {{ totalCount nodes {{ databaseId
        author {{ login ... on User {{ databaseId }} ... on Bot {{ databaseId }} }} state
        commit {{ oid }} submittedAt }} }}
      timelineItems(itemTypes: [LABELED_EVENT, UNLABELED_EVENT], last: {PAGE}) {{ totalCount nodes {{
        __typename ... on LabeledEvent {{ actor {{ login }} label {{ name }} createdAt }}
        ... on UnlabeledEvent {{ actor {{ login }} label {{ name }} createdAt }} }} }}"""

#: the fields of a pull request needed to route an event (``events.PullRequest``)
ROUTE_FIELDS = """number title body url state isDraft merged author { login } headRefName headRefOid baseRefName
      baseRefOid labels(first: 100) { nodes { name } } updatedAt"""

#: the check run named ``$checkName`` on a commit (``our_check_run``)
_OURS = """ours: checkSuites(first: 20) { nodes { app { slug } checkRuns(first: 10, filterBy: {checkName: $checkName})
        { nodes { url status conclusion } } } }"""

_HEAD = f"""oid
      statusCheckRollup {{ state contexts(first: {PAGE}) {{ nodes {{ __typename
        ... on CheckRun {{ url name status conclusion detailsUrl checkSuite {{ app {{ slug }} }} }}
        ... on StatusContext {{ context state targetUrl }} }} }} }}
      checkSuites(first: {PAGE}) {{ nodes {{ status conclusion app {{ slug }}
        workflowRun {{ databaseId url workflow {{ name }} }} }} }}
      {_OURS}"""


def _tree(depth: int) -> str:
    inner = "" if depth <= 1 else f" ... on Tree {{ {_tree(depth - 1)} }}"
    return f"entries {{ name type object {{ ... on Blob {{ text isTruncated }}{inner} }} }}"


def pull_request_extra(number: int, head_sha: str, check_name: str, *, policy_path: str | None = None,
                       code_dir: str | None = None, at_commit: str | None = None,
                       merge_commit: str | None = None, head_message: bool = False,
                       group_head: str | None = None, rebase_depth: int | None = None,
                       codeowners: bool = False) -> Extra:
    """The aliased fields of a pull request's facts (see the module docstring). ``policy_path`` and ``code_dir``
    are read at the tip of the branch the PR targets now (``baseRef``: a retargeted PR is judged by its new
    base), under ``pr.baseRef.target.policy`` and ``.code``; or, for an event judged at a base commit
    (``loopforge.github.merge_judgement``), instead at

    * ``at_commit`` (a merge group's ``base_sha``), under ``at.policy`` and ``at.code``;
    * the first parent of ``merge_commit`` (what a merge made on the base), under
      ``merge.parents.nodes[0].policy`` and ``.code``, with the merge commit's message and parent count and the
      head's message when ``head_message`` (a PR of several commits: ``merge_commit_info``, ``head_message``;
      a rebase merge needs more than the first parent, read through REST).

    ``rebase_depth`` (with ``merge_commit``): also read the files at ``<merge commit>~<rebase_depth>`` under
    ``rebased``: the base before a rebase merge of that many commits (``merge_judgement.base_parent``), so a
    rebase merge needs no walk through REST either.

    ``codeowners``: with ``policy_path`` read at the base branch's tip, also read the CODEOWNERS candidates
    (``CODEOWNERS_PATHS``, GitHub's order) there, under ``co0``..``co2`` (``codeowners_file``).

    ``group_head``: a merge group's head commit, whose check run named ``check_name`` is read under ``group``
    (``our_check_run(extra, "group")``), as the head's is under ``head``.
    """
    files = ""
    variables: dict[str, tuple[str, Any]] = {"prNumber": ("Int!", number), "headOid": ("GitObjectID!", head_sha),
                                             "checkName": ("String!", check_name)}
    if policy_path is not None:
        files += " policy: file(path: $policyPath) { object { ... on Blob { text isTruncated } } }"
        variables["policyPath"] = ("String!", policy_path)
    if code_dir is not None:
        files += f" code: file(path: $codeDir) {{ object {{ ... on Tree {{ {_tree(CODE_DEPTH)} }} }} }}"
        variables["codeDir"] = ("String!", code_dir)
    at_base = not files or at_commit is not None or merge_commit is not None
    if codeowners and not at_base:
        for i, path in enumerate(CODEOWNERS_PATHS):
            files += f" co{i}: file(path: $co{i}) {{ object {{ ... on Blob {{ text isTruncated }} }} }}"
            variables[f"co{i}"] = ("String!", path)
    base_ref = "" if at_base else f"\n      baseRef {{ target {{ oid ... on Commit {{{files} }} }} }}"
    head = _HEAD + (" message" if head_message else "")
    parts = [f"pr: pullRequest(number: $prNumber) {{ {_PR}{base_ref} }}",
             f"head: object(oid: $headOid) {{ ... on Commit {{ {head} }} }}"]
    if group_head is not None:  # the commit a merge group's check run goes on
        parts.append(f"group: object(oid: $groupOid) {{ ... on Commit {{ oid {_OURS} }} }}")
        variables["groupOid"] = ("GitObjectID!", group_head)
    if at_commit is not None:
        parts.append(f"at: object(oid: $atOid) {{ ... on Commit {{ oid{files} }} }}")
        variables["atOid"] = ("GitObjectID!", at_commit)
    elif merge_commit is not None:
        parts.append(f"merge: object(oid: $mergeOid) {{ ... on Commit {{ oid message parents(first: 1) {{ totalCount "
                     f"nodes {{ oid{files} }} }} }} }}")
        variables["mergeOid"] = ("GitObjectID!", merge_commit)
        if rebase_depth is not None and rebase_depth > 1:
            parts.append(f"rebased: object(expression: $rebasedRev) {{ ... on Commit {{ oid{files} }} }}")
            variables["rebasedRev"] = ("String!", f"{merge_commit}~{int(rebase_depth)}")
    return Extra("\n    ".join(parts), variables, optional=("pr",))


@dataclass(frozen=True)
class MergeCommitInfo:
    """What the one read saw of a merge commit: its first parent (None: no parent, or the commit is unknown)."""

    first_parent: str | None
    parent_count: int
    message: str


def merge_commit_info(extra: Mapping[str, Any]) -> MergeCommitInfo | None:
    """The merge commit as read under ``merge`` (None: not asked for, or not in the repository)."""
    merge = extra.get("merge")
    if not merge or not merge.get("oid"):
        return None
    parents = merge.get("parents") or {}
    nodes = parents.get("nodes") or []
    return MergeCommitInfo(str(nodes[0]["oid"]) if nodes and nodes[0] else None,
                           int(parents.get("totalCount") or 0), str(merge.get("message") or ""))


def rebased_base(extra: Mapping[str, Any]) -> str | None:
    """The commit read under ``rebased`` (``<merge commit>~<rebase_depth>``), or None."""
    node = extra.get("rebased")
    return str(node["oid"]) if node and node.get("oid") else None


def head_message(extra: Mapping[str, Any]) -> str | None:
    """The head commit's message when the read asked for it (a merged PR's read) and the commit is known."""
    head = extra.get("head") or {}
    message = head.get("message")
    return None if message is None else str(message)


def files_at(extra: Mapping[str, Any], sha: str) -> Mapping[str, Any] | None:
    """The commit node holding the ``policy``/``code`` files read at ``sha`` (a merge group's base, or a merge
    commit's first parent); None when the read did not read the files at that commit."""
    for alias in ("at", "rebased"):
        at = extra.get(alias)
        if at and at.get("oid") == sha:
            return dict(at)
    merge = extra.get("merge") or {}
    for node in ((merge.get("parents") or {}).get("nodes") or [])[:1]:
        if node and node.get("oid") == sha:
            return dict(node)
    return None


def route_query(owner: str, name: str, numbers: Sequence[int], sha: str | None) -> tuple[str, dict[str, Any]]:
    """One query for the pull requests a CI event names (``numbers``) or, without numbers, those containing
    ``sha`` (a fork PR's ``workflow_run`` carries no ``pull_requests``)."""
    parts = [f"p{i}: pullRequest(number: {int(n)}) {{ {ROUTE_FIELDS} }}" for i, n in enumerate(numbers)]
    variables: dict[str, Any] = {"owner": owner, "name": name}
    declared = "$owner: String!, $name: String!"
    if not numbers and sha:
        parts.append(f"bySha: object(oid: $sha) {{ ... on Commit {{ associatedPullRequests(first: 10) {{ nodes {{ "
                     f"{ROUTE_FIELDS} }} }} }} }}")
        variables["sha"] = sha
        declared += ", $sha: GitObjectID!"
    body = "\n    ".join(parts) or "id"
    document = (f"query LoopforgeRoute({declared}) {{\n  repository(owner: $owner, name: $name) {{\n"
                f"    {body}\n  }}\n}}\n")
    return document, variables


def pull_request_model(node: Mapping[str, Any], repo: str, server_url: str = "https://github.com") -> PullRequest:
    """``events.PullRequest`` from a GraphQL pull request (``ROUTE_FIELDS`` or more)."""
    state = str(node.get("state") or "OPEN").lower()
    return PullRequest.model_validate({
        "number": node["number"], "title": node.get("title") or "", "body": node.get("body"),
        "state": "open" if state == "open" else "closed", "draft": bool(node.get("isDraft")),
        "merged": bool(node.get("merged")), "html_url": node.get("url") or
        f"{server_url.rstrip('/')}/{repo}/pull/{node['number']}",
        "user": {"login": (node.get("author") or {}).get("login") or "ghost"},
        "head": {"ref": node.get("headRefName") or "", "sha": node["headRefOid"]},
        "base": {"ref": node.get("baseRefName") or "", "sha": node["baseRefOid"]},
        "labels": [{"name": n["name"]} for n in ((node.get("labels") or {}).get("nodes") or [])],
        "updated_at": node.get("updatedAt"),
    })


def route_pulls(data: Mapping[str, Any], repo: str, server_url: str = "https://github.com") -> list[PullRequest]:
    found = data.get("repository") or {}
    nodes = [v for k, v in sorted(found.items()) if k.startswith("p") and k[1:].isdigit() and v]
    by_sha = ((found.get("bySha") or {}).get("associatedPullRequests") or {}).get("nodes") or []
    return [pull_request_model(n, repo, server_url) for n in [*nodes, *by_sha]]


# ---------------------------------------------------------------------------------------------- the answer
@dataclass(frozen=True)
class OurCheckRun:
    id: int
    status: str  # queued / in_progress / completed
    conclusion: str | None


def run_id(url: Any) -> int:
    """The REST id of a check run from its ``url`` (``https://github.com/o/r/runs/<id>``): GraphQL's
    ``databaseId`` is a 32-bit ``Int`` and check run ids outgrew it."""
    tail = str(url or "").rstrip("/").rsplit("/", 1)[-1]
    if not tail.isdigit():
        raise ValueError(f"not a check run URL: {str(url)[:100]!r}")
    return int(tail)


def our_check_run(extra: Mapping[str, Any], alias: str = "head") -> OurCheckRun | None:
    """The check run named ``check_name`` of the GitHub Actions app on the head commit (``alias`` ``group``: on
    the merge group's head) (the oldest, if several)."""
    suites = (((extra.get(alias) or {}).get("ours") or {}).get("nodes")) or []
    runs = [r for s in suites if ((s.get("app") or {}).get("slug") == "github-actions")
            for r in ((s.get("checkRuns") or {}).get("nodes") or [])]
    if not runs:
        return None
    run = min(runs, key=lambda r: run_id(r["url"]))
    return OurCheckRun(run_id(run["url"]), str(run["status"]).lower(),
                       str(run["conclusion"]).lower() if run.get("conclusion") else None)


def _base(extra: Mapping[str, Any], alias: str, commit: Mapping[str, Any] | None = None) -> Mapping[str, Any] | None:
    target = commit if commit is not None else ((((extra.get("pr") or {}).get("baseRef") or {}).get("target")) or {})
    found = target.get(alias)
    return (found or {}).get("object") if found else None


def base_file(extra: Mapping[str, Any], alias: str = "policy", commit: Mapping[str, Any] | None = None) -> str | None:
    """The text of the file read at the base under ``alias`` (None: no such file). ``ValueError`` for a file
    that is not text or too large for one read. ``commit``: the node of a base commit (``files_at``) instead of
    the base branch's tip."""
    obj = _base(extra, alias, commit)
    if obj is None:
        return None
    if obj.get("isTruncated") or obj.get("text") is None:
        raise ValueError("the file is binary or too large to read in one request")
    return str(obj["text"])


def codeowners_file(extra: Mapping[str, Any]) -> tuple[str, str] | bool | None:
    """``(path, text)`` of the first CODEOWNERS file the read found at the base branch's tip, None when the read
    asked and there is none, False when the read did not ask (or a file is binary or cut: read it through
    REST)."""
    target = (((extra.get("pr") or {}).get("baseRef") or {}).get("target")) or {}
    aliases = [f"co{i}" for i in range(len(CODEOWNERS_PATHS))]
    if not all(a in target for a in aliases):
        return False
    for alias, path in zip(aliases, CODEOWNERS_PATHS, strict=True):
        obj = (target.get(alias) or {}).get("object")
        if obj is None:
            continue
        if obj.get("isTruncated") or obj.get("text") is None:
            return False
        return path, str(obj["text"])
    return None


def write_tree(extra: Mapping[str, Any], alias: str, dest: Path, prefix: str,
               commit: Mapping[str, Any] | None = None) -> bool:
    """Write the directory read at the base under ``alias`` to ``dest/prefix`` (files only; names that would
    leave ``dest`` are refused); False if there is no such directory. ``ValueError`` for a tree deeper than
    ``CODE_DEPTH`` or a file GraphQL cut. ``commit`` as for ``base_file``."""
    tree = _base(extra, alias, commit)
    if not tree or "entries" not in tree:
        return False
    root = dest.resolve()

    def walk(node: Mapping[str, Any], at: PurePosixPath, depth: int) -> None:
        for entry in node.get("entries") or []:
            name = str(entry["name"])
            if name in ("", ".", "..") or "/" in name:
                raise ValueError(f"refusing path {name!r}")
            path = at / name
            obj = entry.get("object") or {}
            if entry["type"] == "tree":
                if "entries" not in obj:
                    raise ValueError(f"{path} is nested deeper than {CODE_DEPTH} levels")
                walk(obj, path, depth + 1)
            elif entry["type"] == "blob":
                if obj.get("isTruncated") or obj.get("text") is None:
                    raise ValueError(f"{path} is binary or too large to read in one request")
                target = (root / path).resolve()
                if not target.is_relative_to(root):
                    raise ValueError(f"refusing path {path}")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(str(obj["text"]), encoding="utf-8")
            else:
                raise ValueError(f"refusing {entry['type']} {path} (only regular files are copied)")

    walk(tree, PurePosixPath(prefix), 1)
    return True


__all__ = ["CODE_DEPTH", "ROUTE_FIELDS", "MergeCommitInfo", "OurCheckRun", "base_file", "files_at", "head_message",
           "merge_commit_info", "our_check_run", "pull_request_extra", "pull_request_model", "rebased_base",
           "route_pulls", "route_query", "run_id", "write_tree"]
