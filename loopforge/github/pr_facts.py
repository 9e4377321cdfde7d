"""A pull request's facts from the event's one GraphQL read: routing, the policy's ``PullRequestContext``, the
policy file and its code directory at the base, and the LoopForge check run already on the head commit.

``pull_request_extra`` is an ``Extra`` for ``BranchRepository.snapshot`` (or for a query of its own); it asks for

* ``pr``: the pull request (title, body, refs and oids, author, draft/merged, labels, changed files with line
  counts, the latest decisive review per reviewer, label events with who added each label);
* ``head``: the head commit (``object(oid:)``): its status rollup (check runs and commit statuses), its check
  suites (workflow runs) and the check run named ``check_name`` (so the check run is one PATCH, or one POST
  when there is none: no lookup request);
* ``policy``/``code``: the policy file and the policy's code directory (guards, gate scripts, nested up to
  ``CODE_DEPTH`` levels) at the base, as ``<rev>:<path>`` expressions.

``GraphQLPullRequestContext`` serves the policy from that answer. Facts GraphQL does not carry are read through
the REST context (``loopforge.github.pr_context``) only when a rule asks: renamed files' old names and patches
(``diff``), more than 100 changed files, reviews or label events beyond 100, team membership, a user's role,
linked issues' states.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from loopforge.github.events import PullRequest
from loopforge.github.snapshot import Extra
from loopforge.policy.context import (
    ChangedFile,
    CheckState,
    IssueRef,
    LabelEvent,
    PullRequestContext,
    Review,
    parse_closing_references,
)

PAGE = 100
CODE_DEPTH = 4

_PR = f"""number title body url state isDraft merged headRefName headRefOid baseRefName baseRefOid
      isCrossRepository authorAssociation author {{ login }} additions deletions changedFiles createdAt updatedAt
      labels(first: {PAGE}) {{ totalCount nodes {{ name }} }}
      files(first: {PAGE}) {{ totalCount nodes {{ path additions deletions changeType }} }}
      latestOpinionatedReviews(first: {PAGE}) {{ totalCount nodes {{ databaseId author {{ login }} state
        commit {{ oid }} submittedAt }} }}
      timelineItems(itemTypes: [LABELED_EVENT, UNLABELED_EVENT], last: {PAGE}) {{ totalCount nodes {{
        __typename ... on LabeledEvent {{ actor {{ login }} label {{ name }} createdAt }}
        ... on UnlabeledEvent {{ actor {{ login }} label {{ name }} createdAt }} }} }}"""

#: the fields of a pull request needed to route an event (``events.PullRequest``)
ROUTE_FIELDS = """number title body url state isDraft merged author { login } headRefName headRefOid baseRefName
      baseRefOid labels(first: 100) { nodes { name } } updatedAt"""

_HEAD = f"""oid
      statusCheckRollup {{ state contexts(first: {PAGE}) {{ nodes {{ __typename
        ... on CheckRun {{ url name status conclusion detailsUrl checkSuite {{ app {{ slug }} }} }}
        ... on StatusContext {{ context state targetUrl }} }} }} }}
      checkSuites(first: {PAGE}) {{ nodes {{ status conclusion app {{ slug }}
        workflowRun {{ databaseId url workflow {{ name }} }} }} }}
      ours: checkSuites(first: 20) {{ nodes {{ app {{ slug }} checkRuns(first: 10, filterBy: {{checkName: $checkName}})
        {{ nodes {{ url status conclusion }} }} }} }}"""


def _tree(depth: int) -> str:
    inner = "" if depth <= 1 else f" ... on Tree {{ {_tree(depth - 1)} }}"
    return f"entries {{ name type object {{ ... on Blob {{ text isTruncated }}{inner} }} }}"


def pull_request_extra(number: int, head_sha: str, check_name: str, *, policy_expr: str | None = None,
                       code_expr: str | None = None) -> Extra:
    """The aliased fields of a pull request's facts (see the module docstring)."""
    parts = [f"pr: pullRequest(number: $prNumber) {{ {_PR} }}",
             f"head: object(oid: $headOid) {{ ... on Commit {{ {_HEAD} }} }}"]
    variables: dict[str, tuple[str, Any]] = {"prNumber": ("Int!", number), "headOid": ("GitObjectID!", head_sha),
                                             "checkName": ("String!", check_name)}
    if policy_expr is not None:
        parts.append("policy: object(expression: $policyExpr) { ... on Blob { text isTruncated } }")
        variables["policyExpr"] = ("String!", policy_expr)
    if code_expr is not None:
        parts.append(f"code: object(expression: $codeExpr) {{ ... on Tree {{ {_tree(CODE_DEPTH)} }} }}")
        variables["codeExpr"] = ("String!", code_expr)
    return Extra("\n    ".join(parts), variables, optional=("pr",))


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


def our_check_run(extra: Mapping[str, Any]) -> OurCheckRun | None:
    """The check run named ``check_name`` of the GitHub Actions app on the head commit (the oldest, if several)."""
    suites = (((extra.get("head") or {}).get("ours") or {}).get("nodes")) or []
    runs = [r for s in suites if ((s.get("app") or {}).get("slug") == "github-actions")
            for r in ((s.get("checkRuns") or {}).get("nodes") or [])]
    if not runs:
        return None
    run = min(runs, key=lambda r: run_id(r["url"]))
    return OurCheckRun(run_id(run["url"]), str(run["status"]).lower(),
                       str(run["conclusion"]).lower() if run.get("conclusion") else None)


def blob_text(extra: Mapping[str, Any], alias: str) -> str | None:
    """The text of a Blob read under ``alias`` (None if the path does not exist or is not a text file)."""
    obj = extra.get(alias)
    if not obj or obj.get("text") is None:
        return None
    if obj.get("isTruncated"):
        raise ValueError(f"{alias} is too large to read in one request")
    return str(obj["text"])


def write_tree(extra: Mapping[str, Any], alias: str, dest: Path, prefix: str) -> bool:
    """Write the Tree read under ``alias`` to ``dest/prefix`` (files only; names that would leave ``dest`` are
    refused); False if there is no such directory. ``ValueError`` for a tree deeper than ``CODE_DEPTH`` or a file
    GraphQL cut."""
    tree = extra.get(alias)
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


def _when(value: Any) -> datetime | None:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None


_CHANGE = {"ADDED": "added", "DELETED": "removed", "MODIFIED": "modified", "RENAMED": "renamed",
           "COPIED": "copied", "CHANGED": "changed"}
_STATUS_STATE = {"SUCCESS": ("completed", "success"), "FAILURE": ("completed", "failure"),
                 "ERROR": ("completed", "failure"), "PENDING": ("in_progress", None),
                 "EXPECTED": ("in_progress", None)}


def _rank(state: CheckState) -> int:
    if state.status != "completed":
        return 1
    return 2 if (state.conclusion or "") in ("success", "neutral", "skipped") else 0


def _keep_worst(into: dict[str, CheckState], state: CheckState) -> None:
    current = into.get(state.name)
    if current is None or _rank(state) < _rank(current):
        into[state.name] = state


class GraphQLPullRequestContext:
    """``PullRequestContext`` over the snapshot's ``pr`` and ``head`` fields; ``rest`` (built on first need)
    answers what GraphQL does not carry (see the module docstring)."""

    def __init__(self, repo: str, extra: Mapping[str, Any], rest: Callable[[], PullRequestContext]) -> None:
        pr = extra.get("pr")
        if not pr:
            raise ValueError("the snapshot holds no pull request")
        self._pr: Mapping[str, Any] = pr
        self._head: Mapping[str, Any] = extra.get("head") or {}
        self._repo = repo
        self._make_rest = rest
        self._rest: PullRequestContext | None = None
        self.rest_reads: list[str] = []  # which facts needed the REST fallback (tests, reports)

    def _fallback(self, why: str) -> PullRequestContext:
        self.rest_reads.append(why)
        if self._rest is None:
            self._rest = self._make_rest()
        return self._rest

    # ------------------------------------------------------------------ scalars
    @property
    def repo(self) -> str:
        return self._repo

    @property
    def number(self) -> int:
        return int(self._pr["number"])

    @property
    def title(self) -> str:
        return str(self._pr.get("title") or "")

    @property
    def body(self) -> str:
        return str(self._pr.get("body") or "")

    @property
    def author(self) -> str:
        return str((self._pr.get("author") or {}).get("login") or "ghost")

    @property
    def author_association(self) -> str:
        return str(self._pr.get("authorAssociation") or "NONE")

    @property
    def base_ref(self) -> str:
        return str(self._pr.get("baseRefName") or "")

    @property
    def head_ref(self) -> str:
        return str(self._pr.get("headRefName") or "")

    @property
    def head_sha(self) -> str:
        return str(self._pr.get("headRefOid") or "")

    @property
    def draft(self) -> bool:
        return bool(self._pr.get("isDraft"))

    @property
    def labels(self) -> Sequence[str]:
        return [str(n["name"]) for n in (self._pr.get("labels") or {}).get("nodes") or []]

    # ------------------------------------------------------------------ lists
    def changed_files(self) -> Sequence[ChangedFile]:
        files = self._pr.get("files") or {}
        nodes = files.get("nodes") or []
        if int(files.get("totalCount") or 0) > len(nodes) or any(n.get("changeType") in ("RENAMED", "COPIED")
                                                                  for n in nodes):
            return self._fallback("changed files (renames or over 100)").changed_files()
        return [ChangedFile(filename=str(n["path"]), status=_CHANGE.get(str(n["changeType"]), "modified"),
                            additions=int(n["additions"]), deletions=int(n["deletions"])) for n in nodes]

    def files_truncated(self) -> bool:
        return int(self._pr.get("changedFiles") or 0) > len(self.changed_files())

    def line_counts(self) -> tuple[int, int]:
        return int(self._pr.get("additions") or 0), int(self._pr.get("deletions") or 0)

    def reviews(self) -> Sequence[Review]:
        """The latest decisive review per reviewer (what ``policy.rules.latest_reviews`` keeps of all reviews)."""
        found = self._pr.get("latestOpinionatedReviews") or {}
        nodes = found.get("nodes") or []
        if int(found.get("totalCount") or 0) > len(nodes):
            return self._fallback("reviews (over 100 reviewers)").reviews()
        return [Review(user=str((n.get("author") or {}).get("login") or "ghost"), state=str(n["state"]),
                       commit_id=(n.get("commit") or {}).get("oid"), submitted_at=_when(n.get("submittedAt")),
                       id=int(n.get("databaseId") or 0)) for n in nodes]

    def label_events(self) -> Sequence[LabelEvent]:
        found = self._pr.get("timelineItems") or {}
        nodes = found.get("nodes") or []
        if int(found.get("totalCount") or 0) > len(nodes):
            return self._fallback("label events (over 100)").label_events()
        return [LabelEvent(label=str((n.get("label") or {}).get("name")),
                           actor=str((n.get("actor") or {}).get("login") or "ghost"),
                           action="labeled" if n.get("__typename") == "LabeledEvent" else "unlabeled",
                           created_at=_when(n.get("createdAt"))) for n in nodes]

    def check_runs(self) -> Mapping[str, CheckState]:
        rollup = self._head.get("statusCheckRollup") or {}
        out: dict[str, CheckState] = {}
        latest: dict[tuple[str, str], tuple[int, CheckState]] = {}
        for node in (rollup.get("contexts") or {}).get("nodes") or []:
            if node.get("__typename") == "CheckRun":
                app = str(((node.get("checkSuite") or {}).get("app") or {}).get("slug") or "")
                state = CheckState(name=str(node["name"]), status=str(node["status"]).lower(),
                                   conclusion=str(node["conclusion"]).lower() if node.get("conclusion") else None,
                                   kind="check", app=app, url=node.get("detailsUrl"))
                key = (app, state.name)
                if key not in latest or run_id(node["url"]) > latest[key][0]:
                    latest[key] = (run_id(node["url"]), state)
            elif node.get("__typename") == "StatusContext":
                status, conclusion = _STATUS_STATE.get(str(node["state"]), ("completed", str(node["state"]).lower()))
                _keep_worst(out, CheckState(name=str(node["context"]), status=status, conclusion=conclusion,
                                            kind="status", url=node.get("targetUrl")))
        for _, state in latest.values():
            _keep_worst(out, state)
        return out

    def workflow_runs(self) -> Mapping[str, CheckState]:
        latest: dict[str, tuple[int, CheckState]] = {}
        for suite in (self._head.get("checkSuites") or {}).get("nodes") or []:
            run = suite.get("workflowRun")
            if not run:
                continue
            name = str((run.get("workflow") or {}).get("name") or "")
            state = CheckState(name=name, status=str(suite.get("status") or "").lower(),
                               conclusion=str(suite["conclusion"]).lower() if suite.get("conclusion") else None,
                               kind="workflow", url=run.get("url"))
            if name not in latest or int(run["databaseId"]) > latest[name][0]:
                latest[name] = (int(run["databaseId"]), state)
        out: dict[str, CheckState] = {}
        for _, state in latest.values():
            _keep_worst(out, state)
        return out

    def linked_issues(self) -> Sequence[IssueRef]:
        return parse_closing_references(self.body, self.repo)

    def issue_state(self, ref: IssueRef) -> str | None:
        return self._fallback("linked issue state").issue_state(ref)

    def is_team_member(self, team: str, user: str) -> bool:
        return self._fallback("team membership").is_team_member(team, user)

    def user_permission(self, user: str) -> str:
        return self._fallback("user permission").user_permission(user)

    def diff(self) -> str:
        return self._fallback("diff").diff()


__all__ = ["CODE_DEPTH", "ROUTE_FIELDS", "GraphQLPullRequestContext", "OurCheckRun", "blob_text", "our_check_run",
           "pull_request_extra", "pull_request_model", "route_pulls", "route_query", "write_tree"]
