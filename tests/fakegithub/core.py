"""``FakeGitHub``: a stateful, in-memory GitHub REST API for one repository, checked against GitHub's OpenAPI.

``handle(method, url, headers, body) -> (status, headers, body)`` is the whole server; ``serving.py`` puts it
behind ``responses`` (in-process) or a real HTTP server on 127.0.0.1. Every request body and every JSON
response body is validated against the operation's schema in GitHub's official OpenAPI description (the
subset in ``tests/fixtures/openapi``): a mismatch is appended to ``violations`` and raised as
``OpenAPIViolation`` (so an in-process test fails at the call; a served test fails at fixture teardown).
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from .gitstore import BLOB_MODES, COMMIT_MODE, TREE_MODE, GitStore, Person, TreeEntry
from .gql import describe
from .gql import serve as serve_graphql
from .spec import OpenAPIViolation, Spec, load_spec

JSON = Any
Headers = dict[str, str]
Response = tuple[int, Headers, bytes]

CHECK_OUTPUT_LIMIT = 65_535
MAX_ANNOTATIONS = 50
ACTIONS_BOT = "github-actions[bot]"
ACTIONS_BOT_ID = 41898282
ACTIONS_BOT_EMAIL = "41898282+github-actions[bot]@users.noreply.github.com"
_HEX40 = re.compile(r"^[0-9a-f]{40}$")


# ---------------------------------------------------------------------------------------------- faults
class Fault:
    """A transport-level fault an injector can return instead of a response (see ``FakeGitHub.inject``)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<fault {self.name}>"


#: The connection is reset before the request is processed (nothing changes on the server).
RESET = Fault("reset")
#: The request is processed, then the connection is reset: the write happened but the client never learns it.
RESET_AFTER = Fault("reset-after")
#: No answer: in-process mode raises ``requests.exceptions.ReadTimeout``; the server holds the connection open
#: for ``FakeGitHub.hang_seconds`` (or until it stops) and then drops it. Nothing changes on the server.
TIMEOUT = Fault("timeout")

InjectorResult = None | Fault | tuple[int, Headers, Any]
Injector = Callable[[int, str, str], InjectorResult]


class ConnectionDropped(Exception):
    """``handle`` raises this to tell the transport to reset the connection (fault ``RESET``/``RESET_AFTER``)."""


class ConnectionHung(Exception):
    """``handle`` raises this to tell the transport not to answer (fault ``TIMEOUT``)."""


def on(method: str, path: str | re.Pattern[str], result: InjectorResult, *, times: int | None = 1,
       skip: int = 0) -> Injector:
    """An injector returning ``result`` for requests whose method matches and whose path matches ``path``
    (a regex searched in the path; a plain string must match a prefix), after ``skip`` matches, ``times`` times
    (None: forever). Example: ``fake.inject(on("PATCH", "/repos/o/r/git/refs/", (502, {}, {"message": "x"})))``.
    """
    pattern = path if isinstance(path, re.Pattern) else re.compile("^" + re.escape(path))
    state = {"seen": 0, "fired": 0}

    def injector(index: int, req_method: str, req_path: str) -> InjectorResult:
        if req_method != method.upper() or not pattern.search(req_path):
            return None
        state["seen"] += 1
        if state["seen"] <= skip or (times is not None and state["fired"] >= times):
            return None
        state["fired"] += 1
        return result

    return injector


class Call(NamedTuple):
    """One request the fake answered: ``status`` is 0 when the connection was reset or hung."""

    method: str
    path: str
    status: int


# ---------------------------------------------------------------------------------------------- seeds
@dataclass
class Label:
    id: int
    name: str
    color: str = "ededed"
    description: str = ""  # GitHub sends null for none, but pull-request-simple's schema says string


@dataclass
class Pull:
    number: int
    head_sha: str
    head_ref: str
    base: str
    base_sha: str
    title: str
    body: str | None
    user: str
    labels: list[str]
    files: list[tuple[str, int, int, str]]
    draft: bool = False
    state: str = "open"
    merged: bool = False
    merged_by: str | None = None
    merge_commit_sha: str | None = None
    fork: bool = False
    commits: list[str] = field(default_factory=list)
    created_at: str = ""
    updated_at: str = ""
    closed_at: str | None = None
    merged_at: str | None = None
    mergeable: bool | None = True
    mergeable_state: str = "clean"


@dataclass
class Issue:
    number: int
    title: str
    body: str | None
    user: str
    labels: list[str]
    state: str = "open"
    state_reason: str | None = None
    created_at: str = ""
    updated_at: str = ""
    closed_at: str | None = None


@dataclass
class Review:
    id: int
    pull: int
    user: str
    state: str
    commit_id: str
    body: str
    submitted_at: str
    author_association: str


@dataclass
class IssueEvent:
    id: int
    issue: int
    event: str
    actor: str
    created_at: str
    label: str | None = None


@dataclass
class CheckRun:
    id: int
    name: str
    head_sha: str
    status: str
    conclusion: str | None
    started_at: str | None
    completed_at: str | None
    details_url: str | None
    external_id: str | None
    output: dict[str, Any]
    annotations: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class WorkflowRun:
    id: int
    head_sha: str
    name: str
    event: str
    status: str
    conclusion: str | None
    head_branch: str | None
    pull_requests: list[int]
    path: str
    run_attempt: int
    actor: str
    created_at: str
    updated_at: str


class HTTPError(Exception):
    """Raised by a handler: becomes a GitHub-style error body with ``status``."""

    def __init__(self, status: int, message: str, errors: list[dict[str, Any]] | None = None,
                 headers: Headers | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors
        self.headers = headers or {}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _b64(data: bytes) -> str:
    text = base64.b64encode(data).decode("ascii")
    return "".join(text[i:i + 60] + "\n" for i in range(0, len(text), 60))


@dataclass
class _Route:
    method: str
    template: str
    regex: re.Pattern[str]
    handler: Callable[[dict[str, str], dict[str, str], Any, Headers], tuple[int, Any, Headers]]
    scope: str  # the GITHUB_TOKEN permission the call needs (write for non-GET)
    paginated: bool = False


def _compile(template: str) -> re.Pattern[str]:
    out = "^"
    for piece in re.split(r"(\{[^}]+\})", template):
        if piece.startswith("{"):
            name = piece[1:-1]
            out += {"path": f"(?P<{name}>.*?)", "ref": f"(?P<{name}>.+?)",
                    "basehead": f"(?P<{name}>.+?)"}.get(name, f"(?P<{name}>[^/]+)")
        else:
            out += re.escape(piece)
    return re.compile(out + "/?$")


# ---------------------------------------------------------------------------------------------- the fake
class FakeGitHub:
    """One repository on a fake GitHub. See the module docstring and ``tests/fakegithub/__init__.py``."""

    def __init__(self, owner: str = "octo-org", repo: str = "octo-repo", default_branch: str = "main", *,
                 base_url: str = "https://api.github.com:443", html_url: str = "https://github.com",
                 read_only_token: bool = False, members_readable: bool = False, validate: bool = True,
                 spec: Spec | None = None) -> None:
        self.owner, self.repo, self.default_branch = owner, repo, default_branch
        self.base_url = base_url.rstrip("/")
        self.html_url = html_url.rstrip("/")
        #: every write answers 403 "Resource not accessible by integration" (a fork PR's token)
        self.read_only_token = read_only_token
        #: GITHUB_TOKEN permissions by scope ("write", "read" or "none"); writes need "write", reads "read"
        self.permissions: dict[str, str] = {s: "write" for s in (
            "contents", "checks", "pull_requests", "issues", "metadata", "actions", "statuses")}
        #: whether the token may read org team memberships (GITHUB_TOKEN cannot: 403)
        self.members_readable = members_readable
        self.validate = validate
        self.spec = spec or load_spec()
        self.hang_seconds = 30.0
        self.tree_entry_limit = 100_000  # GET git/trees?recursive answers truncated=true beyond this
        self.rate_limit = 1000

        self.requests: list[Call] = []
        self.log: list[dict[str, Any]] = []
        self.violations: list[str] = []
        self.errors: list[str] = []  # unexpected exceptions inside the fake (server mode)
        self._injectors: list[Injector] = []
        self._lock = threading.RLock()
        self._ids: dict[str, int] = {}
        self._counter = 1000

        self.git = GitStore()
        self.refs: dict[str, str] = {}
        self.known_shas: set[str] = set()
        self.pulls: dict[int, Pull] = {}
        self.issues: dict[int, Issue] = {}
        self.reviews: dict[int, list[Review]] = {}
        self.issue_events: dict[int, list[IssueEvent]] = {}
        self.labels: dict[str, Label] = {}
        self.collaborators: dict[str, str] = {}
        self.team_members: dict[tuple[str, str], dict[str, str]] = {}
        self.runs: dict[int, CheckRun] = {}
        self.suites: dict[str, int] = {}
        self.workflow_runs: dict[int, WorkflowRun] = {}
        #: files of other repositories on this fake GitHub: {(owner, repo) lower-cased: {ref: {path: bytes}}},
        #: readable (GET contents) only with a token listed in ``other_repo_tokens`` for that repository
        self.other_repos: dict[tuple[str, str], dict[str, dict[str, bytes]]] = {}
        self.other_repo_tokens: dict[tuple[str, str], set[str]] = {}
        self.repo_id = self._id(f"repo:{owner}/{repo}")
        self.repo_node_id = base64.b64encode(f"010:Repository{self.repo_id}".encode()).decode()
        #: commits GitHub signed (createCommitOnBranch, Contents API): ``signature { isValid }`` is true
        self.signed_commits: set[str] = set()
        #: one (kind, root fields, status) per GraphQL request: ``graphql_count()`` sums them
        self.graphql_log: list[tuple[str, tuple[str, ...], int]] = []
        #: (commit sha, path) of every file GraphQL read (``object(expression: "REV:PATH")``, ``Commit.file``)
        self.file_reads: list[tuple[str, str]] = []
        self.created_at = _now()

        first = self.git.put_commit(
            self.git.edit(None, {"README.md": self._blob_entry(f"# {repo}\n".encode())}), [], "Initial commit",
            Person("octocat", "octocat@github.com", self.created_at),
            Person("GitHub", "noreply@github.com", self.created_at))
        self.refs[f"refs/heads/{default_branch}"] = first
        self._routes = self._make_routes()

    # ------------------------------------------------------------------ ids and urls
    def _id(self, key: str) -> int:
        with self._lock:
            if key not in self._ids:
                self._counter += 1
                self._ids[key] = self._counter
            return self._ids[key]

    def api(self, path: str) -> str:
        return f"{self.base_url}{path}"

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.repo}"

    def repo_api(self, path: str = "") -> str:
        return self.api(f"/repos/{self.owner}/{self.repo}{path}")

    def repo_html(self, path: str = "") -> str:
        return f"{self.html_url}/{self.owner}/{self.repo}{path}"

    def _blob_entry(self, data: bytes) -> TreeEntry:
        return TreeEntry("", "100644", "blob", self.git.put_blob(data))

    # ------------------------------------------------------------------ seeding (Python helpers)
    def branch_sha(self, branch: str) -> str | None:
        return self.refs.get(f"refs/heads/{branch}")

    def set_file(self, branch: str, path: str, text: str | bytes, *, message: str | None = None) -> str:
        """Commit ``path`` with ``text`` on ``branch`` (created from the default branch if missing); the commit SHA."""
        with self._lock:
            data = text.encode("utf-8") if isinstance(text, str) else text
            parent = self.branch_sha(branch) or self.branch_sha(self.default_branch)
            base = self.git.commits[parent].tree if parent else None
            tree = self.git.edit(base, {path.strip("/"): self._blob_entry(data)})
            me = Person(ACTIONS_BOT, ACTIONS_BOT_EMAIL, _now())
            sha = self.git.put_commit(tree, [parent] if parent else [], message or f"Update {path}", me, me)
            self.refs[f"refs/heads/{branch}"] = sha
            return sha

    def delete_branch(self, branch: str) -> None:
        with self._lock:
            self.refs.pop(f"refs/heads/{branch}", None)

    def add_pull(self, number: int, head_sha: str, base: str = "main", *, title: str | None = None,
                 body: str | None = "", user: str = "octocat", labels: list[str] | tuple[str, ...] = (),
                 files: list[tuple[Any, ...]] | tuple[tuple[Any, ...], ...] = (), draft: bool = False,
                 head_ref: str | None = None, state: str = "open", merged: bool = False,
                 merged_by: str | None = None, fork: bool = False, commits: list[str] | None = None) -> Pull:
        """Seed pull request ``number`` (``files``: ``(path, additions, deletions[, status])`` tuples)."""
        with self._lock:
            now = _now()
            pull = Pull(
                number=number, head_sha=head_sha, head_ref=head_ref or f"feature-{number}", base=base,
                base_sha=self.branch_sha(base) or self.branch_sha(self.default_branch) or "0" * 40,
                title=title if title is not None else f"Pull request {number}", body=body, user=user,
                labels=list(labels), files=[self._file_tuple(f) for f in files], draft=draft, state=state,
                merged=merged, merged_by=merged_by or (user if merged else None), fork=fork,
                commits=list(commits) if commits else [head_sha], created_at=now, updated_at=now,
                closed_at=now if state == "closed" else None, merged_at=now if merged else None)
            if merged:
                pull.merge_commit_sha = self.branch_sha(base)
            self.pulls[number] = pull
            self.known_shas.update(pull.commits)
            self.known_shas.add(head_sha)
            for name in labels:
                self._label(name)
            return pull

    @staticmethod
    def _file_tuple(item: tuple[Any, ...]) -> tuple[str, int, int, str]:
        path, additions, deletions = item[0], int(item[1]), int(item[2])
        status = item[3] if len(item) > 3 else ("added" if deletions == 0 and additions > 0 else "modified")
        return (str(path), additions, deletions, str(status))

    def add_issue(self, number: int, *, title: str | None = None, body: str | None = "", user: str = "octocat",
                  labels: list[str] | tuple[str, ...] = (), state: str = "open",
                  state_reason: str | None = None) -> Issue:
        with self._lock:
            now = _now()
            issue = Issue(number, title if title is not None else f"Issue {number}", body, user, list(labels),
                          state, state_reason, now, now, now if state == "closed" else None)
            self.issues[number] = issue
            for name in labels:
                self._label(name)
            return issue

    def add_review(self, pr: int, user: str, state: str, commit_id: str | None = None, *, body: str = "",
                   author_association: str | None = None) -> Review:
        """Seed a review; ``state``: APPROVED, CHANGES_REQUESTED, COMMENTED, DISMISSED or PENDING."""
        with self._lock:
            pull = self.pulls[pr]
            association = author_association or (
                "OWNER" if user == self.owner else
                "COLLABORATOR" if self.collaborators.get(user, "none") != "none" else "NONE")
            review = Review(self._id(f"review:{pr}:{len(self.reviews.get(pr, []))}:{user}"), pr, user,
                            state.upper(), commit_id or pull.head_sha, body, _now(), association)
            self.reviews.setdefault(pr, []).append(review)
            return review

    def add_label_event(self, issue: int, label: str, actor: str, *, event: str = "labeled") -> IssueEvent:
        """Record that ``actor`` added (``event="unlabeled"``: removed) ``label`` on an issue or PR."""
        with self._lock:
            events = self.issue_events.setdefault(issue, [])
            ev = IssueEvent(self._id(f"event:{issue}:{len(events)}"), issue, event, actor, _now(), label)
            events.append(ev)
            self._label(label)
            target = self.pulls.get(issue) or self.issues.get(issue)
            if target is not None:
                if event == "labeled" and label not in target.labels:
                    target.labels.append(label)
                elif event == "unlabeled" and label in target.labels:
                    target.labels.remove(label)
            return ev

    def add_other_repo_file(self, full_name: str, ref: str, path: str, text: str | bytes, *,
                            tokens: tuple[str, ...] = ()) -> None:
        """A file of another repository (``owner/name``) at ``ref``, readable with one of ``tokens`` only (the
        workflow's GITHUB_TOKEN can read only its own repository: GitHub answers 404 for the others)."""
        owner, _, name = full_name.partition("/")
        key = (owner.lower(), name.lower())
        data = text.encode("utf-8") if isinstance(text, str) else text
        with self._lock:
            self.other_repos.setdefault(key, {}).setdefault(ref, {})[path.strip("/")] = data
            self.other_repo_tokens.setdefault(key, set()).update(tokens)

    def set_permission(self, user: str, permission: str) -> None:
        """``permission``: admin, maintain, write, triage, read or none."""
        assert permission in {"admin", "maintain", "write", "triage", "read", "none"}, permission
        self.collaborators[user] = permission

    def add_team_member(self, org: str, team: str, user: str, *, role: str = "member",
                        state: str = "active") -> None:
        self.team_members.setdefault((org.lower(), team.lower()), {})[user.lower()] = f"{role}:{state}"

    def add_workflow_run(self, run_id: int, head_sha: str, *, name: str = "CI", event: str = "pull_request",
                         status: str = "completed", conclusion: str | None = "success",
                         head_branch: str | None = None, pull_requests: list[int] | tuple[int, ...] = (),
                         path: str = ".github/workflows/ci.yml", run_attempt: int = 1,
                         actor: str = "octocat") -> WorkflowRun:
        with self._lock:
            now = _now()
            run = WorkflowRun(run_id, head_sha, name, event, status, conclusion, head_branch, list(pull_requests),
                              path, run_attempt, actor, now, now)
            self.workflow_runs[run_id] = run
            self.known_shas.add(head_sha)
            return run

    # ------------------------------------------------------------------ introspection
    def check_runs(self, sha: str) -> list[CheckRun]:
        """Every check run on ``sha``, oldest first."""
        with self._lock:
            return [r for r in sorted(self.runs.values(), key=lambda r: r.id) if r.head_sha == sha]

    def branch_files(self, branch: str) -> dict[str, str]:
        """``{path: text}`` of every file on ``branch`` ({} if the branch does not exist)."""
        with self._lock:
            sha = self.branch_sha(branch)
            if sha is None:
                return {}
            tree = self.git.commits[sha].tree
            return {p: self.git.blobs[s].decode("utf-8", "replace") for p, s in self.git.files(tree).items()}

    def branch_log(self, branch: str) -> list[str]:
        """Commit SHAs of ``branch``, newest first (first parents)."""
        with self._lock:
            out: list[str] = []
            sha = self.branch_sha(branch)
            while sha:
                out.append(sha)
                parents = self.git.commits[sha].parents
                sha = parents[0] if parents else None
            return out

    def count(self, method: str | None = None, path: str | re.Pattern[str] | None = None) -> int:
        """How many requests matched ``method`` and ``path`` (a regex searched in the path)."""
        pattern = re.compile(path) if isinstance(path, str) else path
        return sum(1 for c in self.requests if (method is None or c.method == method.upper())
                   and (pattern is None or pattern.search(c.path)))

    # ------------------------------------------------------------------ fault injection
    def inject(self, fn: Injector) -> Injector:
        """Add an injector ``fn(index, method, path)`` consulted before every request (``index``: 0-based
        position in ``requests``). It returns None (serve normally), ``(status, headers, body)`` (answer this
        without touching state; a dict/list body is JSON-encoded), or a fault: ``RESET``, ``RESET_AFTER``,
        ``TIMEOUT``. The first injector returning something wins. Returns ``fn`` (usable as a decorator)."""
        with self._lock:
            self._injectors.append(fn)
        return fn

    def clear_faults(self) -> None:
        with self._lock:
            self._injectors.clear()

    # ------------------------------------------------------------------ the server
    @property
    def graphql_url(self) -> str:
        """``{base}/graphql`` (api.github.com), ``https://HOST/api/graphql`` for a GHES base ``.../api/v3``."""
        if self.base_url.endswith("/api/v3"):
            return self.base_url[: -len("/v3")] + "/graphql"
        return self.base_url + "/graphql"

    @property
    def graphql_points(self) -> int:
        """GraphQL rate-limit points spent: 1 per query, 5 per mutation (GitHub's secondary-limit weight)."""
        return sum(5 if kind == "mutation" else 1 for kind, _f, _s in self.graphql_log)

    def branches_at(self, sha: str) -> list[str]:
        """The names of the branches whose tip is ``sha``."""
        return sorted(name.removeprefix("refs/heads/") for name, tip in self.refs.items()
                      if tip == sha and name.startswith("refs/heads/"))

    def graphql_count(self, kind: str | None = None, field: str | None = None) -> int:
        """GraphQL requests answered, by ``kind`` (query/mutation) and root ``field`` (e.g. createCommitOnBranch)."""
        return sum(1 for k, fields, _s in self.graphql_log
                   if (kind is None or k == kind) and (field is None or field in fields))

    def handle(self, method: str, url: str, headers: Headers | None = None,
               body: bytes | str | None = None) -> Response:
        """Serve one request. Raises ``ConnectionDropped``/``ConnectionHung`` for injected transport faults and
        ``OpenAPIViolation`` when a body does not match GitHub's OpenAPI description."""
        method = method.upper()
        parts = urlsplit(url)
        prefix = urlsplit(self.base_url).path
        path = parts.path[len(prefix):] if prefix and parts.path.startswith(prefix) else parts.path
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        headers = {k.lower(): v for k, v in (headers or {}).items()}
        graphql = method == "POST" and parts.path.rstrip("/") == urlsplit(self.graphql_url).path
        kind, fields = "", ()
        if graphql:
            try:
                raw = json.loads(body or b"{}")
                kind, names = describe(str(raw.get("query", ""))) if isinstance(raw, dict) else ("invalid", ())
            except ValueError:
                kind, names = "invalid", ()
            fields = tuple(names)
            path = f"/graphql/{kind}/{','.join(fields)}"
        with self._lock:
            index = len(self.requests)
            fault = None
            for injector in self._injectors:
                fault = injector(index, method, path)
                if fault is not None:
                    break
            if fault is RESET or fault is TIMEOUT:
                self._record(method, path, parts.query, 0, body, None)
                if graphql:
                    self.graphql_log.append((kind, fields, 0))
                raise ConnectionDropped(path) if fault is RESET else ConnectionHung(path)
            if isinstance(fault, tuple):
                status, fault_headers, fault_body = fault
                data = fault_body if isinstance(fault_body, bytes) else (
                    fault_body.encode() if isinstance(fault_body, str) else json.dumps(fault_body).encode())
                self._record(method, path, parts.query, status, body, fault_body)
                if graphql:
                    self.graphql_log.append((kind, fields, status))
                return status, {"Content-Type": "application/json; charset=utf-8", **self._rate_headers(),
                                **fault_headers}, data
            try:
                if graphql:
                    status, out_headers, payload, out_body = self._graphql(body)
                else:
                    status, out_headers, payload, out_body = self._dispatch(method, path, query, headers, body)
            except OpenAPIViolation as exc:
                self._record(method, path, parts.query, 500, body, str(exc))
                if graphql:
                    self.graphql_log.append((kind, fields, 500))
                raise
            self._record(method, path, parts.query, status, body, out_body)
            if graphql:
                self.graphql_log.append((kind, fields, status))
            if fault is RESET_AFTER:
                raise ConnectionDropped(path)
            return status, out_headers, payload

    def _graphql(self, raw: bytes | str | None) -> tuple[int, Headers, bytes, Any]:
        headers: Headers = {"Content-Type": "application/json; charset=utf-8", **self._rate_headers()}
        headers["X-RateLimit-Resource"] = "graphql"
        try:
            body = json.loads(raw or b"")
        except ValueError:
            result: dict[str, Any] = {"message": "Problems parsing JSON",
                                      "documentation_url": "https://docs.github.com/graphql"}
            return 400, headers, json.dumps(result).encode(), result
        status, result = serve_graphql(self, body)
        return status, headers, json.dumps(result).encode("utf-8"), result

    def _check_run_node(self, run: CheckRun) -> dict[str, Any]:
        # GraphQL's Int is 32-bit and check run ids are not (the fake's start above 2**32, as GitHub's do): a
        # client must take the REST id from ``url`` (``…/runs/<id>``), not from ``databaseId``
        return {"__typename": "CheckRun", "databaseId": run.id if run.id < 2**31 else None, "name": run.name,
                "status": run.status.upper(),
                "conclusion": run.conclusion.upper() if run.conclusion else None, "detailsUrl": run.details_url,
                "url": self.repo_html(f"/runs/{run.id}"),
                "checkSuite": {"databaseId": self.suites.get(run.head_sha), "workflowRun": None,
                               "app": {"slug": "github-actions", "name": "GitHub Actions"}}}

    def check_suites(self, sha: str) -> list[dict[str, Any]]:
        """``Commit.checkSuites``: the suite of the check runs on ``sha`` (the Actions app's), then one suite per
        workflow run on ``sha`` (its jobs are not modelled: REST lists them apart, as workflow runs)."""
        suites: list[dict[str, Any]] = []
        runs = [self._check_run_node(r) for r in sorted(self.runs.values(), key=lambda r: r.id) if r.head_sha == sha]
        if runs:
            completed = all(r["status"] == "COMPLETED" for r in runs)
            suites.append({"databaseId": self.suites.get(sha), "app": {"slug": "github-actions",
                                                                       "name": "GitHub Actions"},
                           "status": "COMPLETED" if completed else "IN_PROGRESS", "conclusion": None,
                           "workflowRun": None, "_runs": runs})
        for wr in sorted(self.workflow_runs.values(), key=lambda r: r.id):
            if wr.head_sha == sha:
                suites.append({"databaseId": self._id(f"wr-suite:{wr.id}"),
                               "app": {"slug": "github-actions", "name": "GitHub Actions"},
                               "status": wr.status.upper(), "conclusion": wr.conclusion.upper() if wr.conclusion
                               else None, "_runs": [],
                               "workflowRun": {"databaseId": wr.id, "url": self.repo_html(f"/actions/runs/{wr.id}"),
                                               "workflow": {"name": wr.name}}})
        return suites

    def status_rollup(self, sha: str) -> dict[str, Any] | None:
        """``Commit.statusCheckRollup``: the latest check run per name on ``sha`` (None if there is none)."""
        latest: dict[str, CheckRun] = {}
        for run in sorted(self.runs.values(), key=lambda r: r.id):
            if run.head_sha == sha:
                latest[run.name] = run
        if not latest:
            return None
        nodes = [self._check_run_node(run) for run in latest.values()]
        bad = {"FAILURE", "TIMED_OUT", "CANCELLED", "ACTION_REQUIRED", "STARTUP_FAILURE"}
        if any(n["conclusion"] in bad for n in nodes):
            state = "FAILURE"
        elif any(n["status"] != "COMPLETED" for n in nodes):
            state = "PENDING"
        else:
            state = "SUCCESS"
        return {"state": state, "contexts": {"nodes": nodes, "totalCount": len(nodes),
                                             "pageInfo": {"hasNextPage": False, "endCursor": None}}}

    def _record(self, method: str, path: str, query: str, status: int, body: Any, response: Any) -> None:
        self.requests.append(Call(method, path, status))
        self.log.append({"method": method, "path": path, "query": query, "status": status,
                         "body": body, "response": response})

    def _rate_headers(self) -> Headers:
        used = len(self.requests) + 1
        return {"X-RateLimit-Limit": str(self.rate_limit),
                "X-RateLimit-Remaining": str(max(self.rate_limit - used, 0)),
                "X-RateLimit-Used": str(used), "X-RateLimit-Reset": "4102444800",
                "X-RateLimit-Resource": "core", "X-GitHub-Request-Id": uuid.uuid4().hex[:20].upper(),
                "X-GitHub-Api-Version-Selected": "2022-11-28"}

    def _violation(self, text: str) -> None:
        self.violations.append(text)
        raise OpenAPIViolation(text)

    def _dispatch(self, method: str, path: str, query: dict[str, str], headers: Headers,
                  raw: bytes | str | None) -> tuple[int, Headers, bytes, Any]:
        route, params = self._match(method, path)
        if route is None:
            self._violation(f"{method} {path}: not implemented by FakeGitHub (GitHub would answer something)")
            raise AssertionError("unreachable")
        doc_url = self.spec.operation(route.method, route.template).get("externalDocs", {}).get(
            "url", "https://docs.github.com/rest")
        out_headers: Headers = {"Content-Type": "application/json; charset=utf-8", **self._rate_headers()}
        body: Any = None
        try:
            if raw not in (None, b"", ""):
                try:
                    body = json.loads(raw)
                except ValueError:
                    raise HTTPError(400, "Problems parsing JSON") from None
            self._authorize(route, params)
            other = route.template.startswith("/repos/") and (
                params.get("owner", "").lower() != self.owner.lower()
                or params.get("repo", "").lower() != self.repo.lower())
            if other and not (route.method == "GET" and route.template == "/repos/{owner}/{repo}/contents/{path}"):
                raise HTTPError(404, "Not Found")
            if route.method != "GET" and self.validate:
                self._precheck(route, body)
                problems = self.spec.request_errors(route.method, route.template, body)
                if problems:
                    self._violation(f"{method} {path} request body does not match {route.method} {route.template}: "
                                    + "; ".join(problems))
            handler = self._other_contents if other else route.handler
            status, result, extra = handler(params, query, body, headers)
            out_headers.update(extra)
        except HTTPError as exc:
            status, extra = exc.status, exc.headers
            result = {"message": exc.message, "documentation_url": doc_url, "status": str(exc.status)}
            if exc.errors is not None:
                result["errors"] = exc.errors
            out_headers.update(extra)
        if isinstance(result, bytes):  # raw media type
            return status, out_headers, result, result
        if self.validate:
            problems = self.spec.response_errors(route.method, route.template, status, result)
            if problems:
                self._violation(f"{method} {path} -> {status}: the fake's response does not match "
                                f"{route.method} {route.template}: " + "; ".join(problems))
        payload = b"" if result is None else json.dumps(result).encode("utf-8")
        return status, out_headers, payload, result

    def _match(self, method: str, path: str) -> tuple[_Route | None, dict[str, str]]:
        if re.fullmatch(r"/repos/[^/]+/[^/]+/contents/?", path):
            path = path.rstrip("/") + "/"
        for route in self._routes:
            if route.method != method:
                continue
            m = route.regex.match(path)
            if m:
                return route, {k: unquote(v) for k, v in m.groupdict().items()}
        return None, {}

    def _authorize(self, route: _Route, params: dict[str, str]) -> None:
        if route.method == "GET":
            if self.permissions.get(route.scope, "read") == "none":
                raise HTTPError(403, "Resource not accessible by integration")
            return
        if self.read_only_token or self.permissions.get(route.scope, "write") != "write":
            raise HTTPError(403, "Resource not accessible by integration")

    def _precheck(self, route: _Route, body: Any) -> None:
        """Limits GitHub enforces with its own messages before its schema validation."""
        if route.scope != "checks" or not isinstance(body, dict) or not isinstance(body.get("output"), dict):
            return
        output = body["output"]
        for name in ("summary", "text"):
            value = output.get(name)
            if not isinstance(value, str):
                continue
            if len(value) > CHECK_OUTPUT_LIMIT:
                raise HTTPError(422, f"Invalid request.\n\nOnly {CHECK_OUTPUT_LIMIT} characters are allowed; "
                                     f"{len(value)} were supplied.")
            if len(value.encode("utf-8")) > CHECK_OUTPUT_LIMIT:
                raise HTTPError(422, "Validation Failed", [{
                    "resource": "CheckRun", "code": "custom", "field": name,
                    "message": f"{name} exceeds a maximum bytesize of {CHECK_OUTPUT_LIMIT}"}])
        if len(output.get("annotations") or []) > MAX_ANNOTATIONS:
            raise HTTPError(422, "Validation Failed", [{
                "resource": "CheckRun", "code": "custom", "field": "annotations",
                "message": f"annotations exceeds a maximum of {MAX_ANNOTATIONS} per request"}])

    def _make_routes(self) -> list[_Route]:
        table: list[tuple[str, str, Any, str, bool]] = [
            ("GET", "/repos/{owner}/{repo}", self._get_repo, "metadata", False),
            ("GET", "/repos/{owner}/{repo}/git/ref/{ref}", self._get_ref, "contents", False),
            ("GET", "/repos/{owner}/{repo}/git/matching-refs/{ref}", self._matching_refs, "contents", True),
            ("POST", "/repos/{owner}/{repo}/git/refs", self._create_ref, "contents", False),
            ("PATCH", "/repos/{owner}/{repo}/git/refs/{ref}", self._update_ref, "contents", False),
            ("DELETE", "/repos/{owner}/{repo}/git/refs/{ref}", self._delete_ref, "contents", False),
            ("POST", "/repos/{owner}/{repo}/git/blobs", self._create_blob, "contents", False),
            ("GET", "/repos/{owner}/{repo}/git/blobs/{file_sha}", self._get_blob, "contents", False),
            ("POST", "/repos/{owner}/{repo}/git/trees", self._create_tree, "contents", False),
            ("GET", "/repos/{owner}/{repo}/git/trees/{tree_sha}", self._get_tree, "contents", False),
            ("POST", "/repos/{owner}/{repo}/git/commits", self._create_commit, "contents", False),
            ("GET", "/repos/{owner}/{repo}/git/commits/{commit_sha}", self._get_commit, "contents", False),
            ("GET", "/repos/{owner}/{repo}/contents/{path}", self._get_contents, "contents", False),
            ("PUT", "/repos/{owner}/{repo}/contents/{path}", self._put_contents, "contents", False),
            ("POST", "/repos/{owner}/{repo}/check-runs", self._create_check_run, "checks", False),
            ("GET", "/repos/{owner}/{repo}/check-runs/{check_run_id}", self._get_check_run, "checks", False),
            ("PATCH", "/repos/{owner}/{repo}/check-runs/{check_run_id}", self._update_check_run, "checks", False),
            ("GET", "/repos/{owner}/{repo}/commits/{ref}/check-runs", self._list_check_runs, "checks", True),
            ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}", self._get_pull, "pull_requests", False),
            ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/files", self._pull_files, "pull_requests", True),
            ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/reviews", self._pull_reviews, "pull_requests", True),
            ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/commits", self._pull_commits, "pull_requests", True),
            ("GET", "/repos/{owner}/{repo}/commits/{commit_sha}/pulls", self._commit_pulls, "pull_requests", True),
            ("GET", "/repos/{owner}/{repo}/issues/{issue_number}", self._get_issue, "issues", False),
            ("GET", "/repos/{owner}/{repo}/issues/{issue_number}/events", self._issue_events, "issues", True),
            ("GET", "/repos/{owner}/{repo}/collaborators/{username}/permission", self._permission, "metadata", False),
            ("GET", "/orgs/{org}/teams/{team_slug}/memberships/{username}", self._membership, "members", False),
            ("GET", "/repos/{owner}/{repo}/actions/runs/{run_id}", self._workflow_run, "actions", False),
            ("GET", "/repos/{owner}/{repo}/compare/{basehead}", self._compare, "contents", False),
        ]
        # specific before generic: a greedy {ref}/{path} must not swallow a longer template
        return [_Route(m, t, _compile(t), h, s, p) for m, t, h, s, p in table]

    # ------------------------------------------------------------------ pagination
    def _page(self, items: list[Any], query: dict[str, str], path: str) -> tuple[list[Any], Headers]:
        try:
            per_page = min(max(int(query.get("per_page", 30)), 1), 100)
            page = max(int(query.get("page", 1)), 1)
        except ValueError:
            raise HTTPError(422, "Validation Failed") from None
        last = max((len(items) + per_page - 1) // per_page, 1)
        chunk = items[(page - 1) * per_page: page * per_page]

        def link(n: int) -> str:
            return self.api(path) + "?" + urlencode({**query, "per_page": per_page, "page": n})

        rels = []
        if page < last:
            rels += [f'<{link(page + 1)}>; rel="next"', f'<{link(last)}>; rel="last"']
        if page > 1:
            rels += [f'<{link(1)}>; rel="first"', f'<{link(min(page - 1, last))}>; rel="prev"']
        return chunk, ({"Link": ", ".join(rels)} if rels else {})

    # ------------------------------------------------------------------ builders
    def user(self, login: str) -> dict[str, Any]:
        uid = ACTIONS_BOT_ID if login == ACTIONS_BOT else self._id(f"user:{login.lower()}")
        u = self.api(f"/users/{quote(login)}")
        kind = "Bot" if login.endswith("[bot]") else ("Organization" if login == self.owner else "User")
        return {
            "login": login, "id": uid, "node_id": base64.b64encode(f"04:User{uid}".encode()).decode(),
            "avatar_url": f"https://avatars.githubusercontent.com/u/{uid}?v=4", "gravatar_id": "",
            "url": u, "html_url": f"{self.html_url}/{quote(login)}", "followers_url": f"{u}/followers",
            "following_url": f"{u}/following{{/other_user}}", "gists_url": f"{u}/gists{{/gist_id}}",
            "starred_url": f"{u}/starred{{/owner}}{{/repo}}", "subscriptions_url": f"{u}/subscriptions",
            "organizations_url": f"{u}/orgs", "repos_url": f"{u}/repos", "events_url": f"{u}/events{{/privacy}}",
            "received_events_url": f"{u}/received_events", "type": kind, "user_view_type": "public",
            "site_admin": False,
        }

    def repository(self, owner: str | None = None, full: bool = True) -> dict[str, Any]:
        owner = owner or self.owner
        name = self.repo
        rid = self.repo_id if owner == self.owner else self._id(f"repo:{owner}/{name}")
        r = self.api(f"/repos/{owner}/{name}")
        html = f"{self.html_url}/{owner}/{name}"
        host = urlsplit(self.html_url).hostname or "github.com"
        data: dict[str, Any] = {
            "id": rid, "node_id": base64.b64encode(f"010:Repository{rid}".encode()).decode(), "name": name,
            "full_name": f"{owner}/{name}", "private": False, "owner": self.user(owner), "html_url": html,
            "description": None, "fork": owner != self.owner, "url": r,
            "archive_url": f"{r}/{{archive_format}}{{/ref}}", "assignees_url": f"{r}/assignees{{/user}}",
            "blobs_url": f"{r}/git/blobs{{/sha}}", "branches_url": f"{r}/branches{{/branch}}",
            "collaborators_url": f"{r}/collaborators{{/collaborator}}", "comments_url": f"{r}/comments{{/number}}",
            "commits_url": f"{r}/commits{{/sha}}", "compare_url": f"{r}/compare/{{base}}...{{head}}",
            "contents_url": f"{r}/contents/{{+path}}", "contributors_url": f"{r}/contributors",
            "deployments_url": f"{r}/deployments", "downloads_url": f"{r}/downloads", "events_url": f"{r}/events",
            "forks_url": f"{r}/forks", "git_commits_url": f"{r}/git/commits{{/sha}}",
            "git_refs_url": f"{r}/git/refs{{/sha}}", "git_tags_url": f"{r}/git/tags{{/sha}}",
            "git_url": f"git://{host}/{owner}/{name}.git", "hooks_url": f"{r}/hooks",
            "issue_comment_url": f"{r}/issues/comments{{/number}}", "issue_events_url": f"{r}/issues/events{{/number}}",
            "issues_url": f"{r}/issues{{/number}}", "keys_url": f"{r}/keys{{/key_id}}",
            "labels_url": f"{r}/labels{{/name}}", "languages_url": f"{r}/languages", "merges_url": f"{r}/merges",
            "milestones_url": f"{r}/milestones{{/number}}",
            "notifications_url": f"{r}/notifications{{?since,all,participating}}",
            "pulls_url": f"{r}/pulls{{/number}}", "releases_url": f"{r}/releases{{/id}}",
            "ssh_url": f"git@{host}:{owner}/{name}.git", "stargazers_url": f"{r}/stargazers",
            "statuses_url": f"{r}/statuses/{{sha}}", "subscribers_url": f"{r}/subscribers",
            "subscription_url": f"{r}/subscription", "tags_url": f"{r}/tags", "teams_url": f"{r}/teams",
            "trees_url": f"{r}/git/trees{{/sha}}", "clone_url": f"{html}.git", "mirror_url": None,
            "svn_url": html, "homepage": None, "language": "Python", "forks_count": 0, "forks": 0,
            "stargazers_count": 0, "watchers_count": 0, "watchers": 0, "size": 1,
            "default_branch": self.default_branch, "open_issues_count": self._open_issue_count(),
            "open_issues": self._open_issue_count(), "is_template": False, "topics": [], "has_issues": True,
            "has_projects": True, "has_wiki": True, "has_pages": False, "has_downloads": True,
            "has_discussions": False, "archived": False, "disabled": False, "visibility": "public",
            "pushed_at": self.created_at, "created_at": self.created_at, "updated_at": self.created_at,
            "allow_forking": True, "web_commit_signoff_required": False, "license": None,
        }
        if full:
            data.update({
                "permissions": {"admin": False, "maintain": False, "push": not self.read_only_token,
                                "triage": True, "pull": True},
                "network_count": 0, "subscribers_count": 0, "allow_merge_commit": True,
                "allow_squash_merge": True, "allow_rebase_merge": True, "allow_auto_merge": False,
                "delete_branch_on_merge": False,
            })
        return data

    def _open_issue_count(self) -> int:
        return sum(1 for i in self.issues.values() if i.state == "open") + sum(
            1 for p in self.pulls.values() if p.state == "open")

    def _label(self, name: str) -> dict[str, Any]:
        label = self.labels.get(name)
        if label is None:
            label = self.labels[name] = Label(self._id(f"label:{name}"), name)
        return {"id": label.id, "node_id": base64.b64encode(f"LA_{label.id}".encode()).decode(),
                "url": self.repo_api(f"/labels/{quote(name)}"), "name": name, "description": label.description,
                "color": label.color, "default": False}

    def git_commit(self, sha: str) -> dict[str, Any]:
        c = self.git.commits[sha]
        return {
            "sha": sha, "node_id": base64.b64encode(f"C_{sha}".encode()).decode(),
            "url": self.repo_api(f"/git/commits/{sha}"), "html_url": self.repo_html(f"/commit/{sha}"),
            "author": {"name": c.author.name, "email": c.author.email, "date": c.author.date},
            "committer": {"name": c.committer.name, "email": c.committer.email, "date": c.committer.date},
            "tree": {"sha": c.tree, "url": self.repo_api(f"/git/trees/{c.tree}")},
            "message": c.message,
            "parents": [{"sha": p, "url": self.repo_api(f"/git/commits/{p}"),
                         "html_url": self.repo_html(f"/commit/{p}")} for p in c.parents],
            "verification": {"verified": False, "reason": "unsigned", "signature": None, "payload": None,
                             "verified_at": None},
        }

    def git_ref(self, name: str) -> dict[str, Any]:
        sha = self.refs[name]
        return {"ref": name, "node_id": base64.b64encode(f"REF_{name}".encode()).decode(),
                "url": self.repo_api(f"/git/{name}"),
                "object": {"type": "commit", "sha": sha, "url": self.repo_api(f"/git/commits/{sha}")}}

    def _pull_minimal(self, p: Pull) -> dict[str, Any]:
        repo = {"id": self.repo_id, "url": self.repo_api(), "name": self.repo}
        head_repo = repo if not p.fork else {"id": self._id(f"repo:{p.user}/{self.repo}"),
                                             "url": self.api(f"/repos/{p.user}/{self.repo}"), "name": self.repo}
        return {"id": self._id(f"pull:{p.number}"), "number": p.number, "url": self.repo_api(f"/pulls/{p.number}"),
                "head": {"ref": p.head_ref, "sha": p.head_sha, "repo": head_repo},
                "base": {"ref": p.base, "sha": p.base_sha, "repo": repo}}

    def pull(self, p: Pull, full: bool = True) -> dict[str, Any]:
        pid = self._id(f"pull:{p.number}")
        api = self.repo_api(f"/pulls/{p.number}")
        html = self.repo_html(f"/pull/{p.number}")
        issue = self.repo_api(f"/issues/{p.number}")
        head_owner = p.user if p.fork else self.owner
        data: dict[str, Any] = {
            "url": api, "id": pid, "node_id": base64.b64encode(f"PR_{pid}".encode()).decode(), "html_url": html,
            "diff_url": f"{html}.diff", "patch_url": f"{html}.patch", "issue_url": issue, "number": p.number,
            "state": p.state, "locked": False, "title": p.title, "user": self.user(p.user), "body": p.body,
            "labels": [self._label(n) for n in p.labels], "milestone": None, "active_lock_reason": None,
            "created_at": p.created_at, "updated_at": p.updated_at, "closed_at": p.closed_at,
            "merged_at": p.merged_at, "merge_commit_sha": p.merge_commit_sha, "assignee": None, "assignees": [],
            "requested_reviewers": [], "requested_teams": [], "draft": p.draft,
            "commits_url": f"{api}/commits", "review_comments_url": f"{api}/comments",
            "review_comment_url": self.repo_api("/pulls/comments{/number}"),
            "comments_url": f"{issue}/comments", "statuses_url": self.repo_api(f"/statuses/{p.head_sha}"),
            "head": {"label": f"{head_owner}:{p.head_ref}", "ref": p.head_ref, "sha": p.head_sha,
                     "user": self.user(head_owner), "repo": self.repository(head_owner, full=False)},
            "base": {"label": f"{self.owner}:{p.base}", "ref": p.base, "sha": p.base_sha,
                     "user": self.user(self.owner), "repo": self.repository(full=False)},
            "_links": {k: {"href": v} for k, v in {
                "self": api, "html": html, "issue": issue, "comments": f"{issue}/comments",
                "review_comments": f"{api}/comments", "review_comment": self.repo_api("/pulls/comments{/number}"),
                "commits": f"{api}/commits", "statuses": self.repo_api(f"/statuses/{p.head_sha}")}.items()},
            "author_association": "OWNER" if p.user == self.owner else (
                "COLLABORATOR" if self.collaborators.get(p.user, "none") != "none" else "CONTRIBUTOR"),
            "auto_merge": None,
        }
        if full:
            data.update({
                "merged": p.merged, "mergeable": p.mergeable if p.state == "open" else None, "rebaseable": True,
                "mergeable_state": p.mergeable_state, "merged_by": self.user(p.merged_by) if p.merged_by else None,
                "comments": 0, "review_comments": 0, "maintainer_can_modify": False, "commits": len(p.commits),
                "additions": sum(f[1] for f in p.files), "deletions": sum(f[2] for f in p.files),
                "changed_files": len(p.files),
            })
        return data

    def issue(self, number: int) -> dict[str, Any]:
        p = self.pulls.get(number)
        i = self.issues.get(number)
        if p is None and i is None:
            raise HTTPError(404, "Not Found")
        api = self.repo_api(f"/issues/{number}")
        iid = self._id(f"issue:{number}")
        if p is not None:
            title, body, user, labels, state = p.title, p.body, p.user, p.labels, p.state
            created, updated, closed, reason = p.created_at, p.updated_at, p.closed_at, None
        else:
            assert i is not None
            title, body, user, labels, state = i.title, i.body, i.user, i.labels, i.state
            created, updated, closed, reason = i.created_at, i.updated_at, i.closed_at, i.state_reason
        data: dict[str, Any] = {
            "id": iid, "node_id": base64.b64encode(f"I_{iid}".encode()).decode(), "url": api,
            "repository_url": self.repo_api(), "labels_url": f"{api}/labels{{/name}}",
            "comments_url": f"{api}/comments", "events_url": f"{api}/events",
            "html_url": self.repo_html(f"/{'pull' if p else 'issues'}/{number}"), "number": number,
            "state": state, "state_reason": reason, "title": title, "body": body, "user": self.user(user),
            "labels": [self._label(n) for n in labels], "assignee": None, "assignees": [], "milestone": None,
            "locked": False, "active_lock_reason": None, "comments": 0, "closed_at": closed,
            "created_at": created, "updated_at": updated, "author_association": "NONE",
        }
        if p is not None:
            html = self.repo_html(f"/pull/{number}")
            data["pull_request"] = {"url": self.repo_api(f"/pulls/{number}"), "html_url": html,
                                    "diff_url": f"{html}.diff", "patch_url": f"{html}.patch",
                                    "merged_at": p.merged_at}
            data["draft"] = p.draft
        return data

    def app(self) -> dict[str, Any]:
        return {
            "id": 15368, "slug": "github-actions", "client_id": "Iv1.05c79e9ad1f6bdfa",
            "node_id": "MDM6QXBwMTUzNjg=", "owner": self.user("github"), "name": "GitHub Actions",
            "description": "Automate your workflow from idea to production",
            "external_url": "https://help.github.com/en/actions", "html_url": f"{self.html_url}/apps/github-actions",
            "created_at": "2018-07-30T09:30:17Z", "updated_at": "2024-04-10T20:33:16Z",
            "permissions": {"actions": "write", "checks": "write", "contents": "write", "issues": "write",
                            "metadata": "read", "pull_requests": "write", "statuses": "write"},
            "events": ["check_run", "check_suite", "pull_request", "push", "workflow_run"],
        }

    def check_run(self, run: CheckRun) -> dict[str, Any]:
        url = self.repo_api(f"/check-runs/{run.id}")
        pulls = [self._pull_minimal(p) for p in self.pulls.values()
                 if p.head_sha == run.head_sha and p.state == "open" and not p.fork]
        return {
            "id": run.id, "node_id": base64.b64encode(f"CR_{run.id}".encode()).decode(), "head_sha": run.head_sha,
            "external_id": run.external_id or "", "url": url, "html_url": self.repo_html(f"/runs/{run.id}"),
            "details_url": run.details_url or self.repo_html(f"/runs/{run.id}"), "status": run.status,
            "conclusion": run.conclusion, "started_at": run.started_at, "completed_at": run.completed_at,
            "output": {"title": run.output.get("title"), "summary": run.output.get("summary"),
                       "text": run.output.get("text"), "annotations_count": len(run.annotations),
                       "annotations_url": f"{url}/annotations"},
            "name": run.name, "check_suite": {"id": self.suites[run.head_sha]}, "app": self.app(),
            "pull_requests": pulls,
        }

    # ------------------------------------------------------------------ helpers for handlers
    def _resolve(self, ref: str | None) -> str | None:
        """The commit SHA a ref names (branch, tag, ``heads/x``, ``refs/heads/x`` or a SHA), or None; with
        ``~N`` / ``^N`` suffixes as ``git rev-parse`` reads them (``~N``: N first parents back; ``^N``: the N-th
        parent, ``^`` alone the first)."""
        if not ref:
            return self.branch_sha(self.default_branch)
        suffix = re.search(r"(?:[~^][0-9]*)+$", ref)
        if suffix and suffix.start() > 0:
            sha = self._resolve(ref[: suffix.start()])
            for op, count in re.findall(r"([~^])([0-9]*)", suffix.group()):
                n = int(count) if count else 1
                if sha is None or sha not in self.git.commits:
                    return None
                if op == "~":
                    for _ in range(n):
                        parents = self.git.commits[sha].parents if sha in self.git.commits else []
                        if not parents:
                            return None
                        sha = parents[0]
                elif n:
                    parents = self.git.commits[sha].parents
                    if len(parents) < n:
                        return None
                    sha = parents[n - 1]
            return sha
        if ref in self.git.commits:
            return ref
        for name in (ref, f"refs/{ref}", f"refs/heads/{ref}", f"refs/tags/{ref}"):
            if name in self.refs:
                return self.refs[name]
        return None

    def _tree_of(self, ish: str) -> str | None:
        if ish in self.git.trees:
            return ish
        commit = self._resolve(ish)
        return self.git.commits[commit].tree if commit and commit in self.git.commits else None

    def _person(self, data: dict[str, Any] | None) -> Person:
        data = data or {}
        return Person(str(data.get("name", ACTIONS_BOT)), str(data.get("email", ACTIONS_BOT_EMAIL)),
                      str(data.get("date") or _now()))

    def _known_sha(self, sha: str) -> bool:
        return sha in self.git.commits or sha in self.known_shas

    def _pull_or_404(self, number: str) -> Pull:
        try:
            return self.pulls[int(number)]
        except (KeyError, ValueError):
            raise HTTPError(404, "Not Found") from None

    # ------------------------------------------------------------------ handlers: repository and git data
    def _get_repo(self, params: dict[str, str], query: dict[str, str], body: Any, headers: Headers
                  ) -> tuple[int, Any, Headers]:
        return 200, self.repository(), {}

    def _get_ref(self, params: dict[str, str], query: dict[str, str], body: Any, headers: Headers
                 ) -> tuple[int, Any, Headers]:
        name = "refs/" + params["ref"]
        if name not in self.refs:
            raise HTTPError(404, "Not Found")
        return 200, self.git_ref(name), {}

    def _matching_refs(self, params: dict[str, str], query: dict[str, str], body: Any, headers: Headers
                       ) -> tuple[int, Any, Headers]:
        prefix = "refs/" + params["ref"]
        items = [self.git_ref(n) for n in sorted(self.refs) if n.startswith(prefix)]
        chunk, link = self._page(items, query, f"/repos/{self.owner}/{self.repo}/git/matching-refs/{params['ref']}")
        return 200, chunk, link

    def _create_ref(self, params: dict[str, str], query: dict[str, str], body: Any, headers: Headers
                    ) -> tuple[int, Any, Headers]:
        name, sha = body["ref"], body["sha"]
        if not name.startswith("refs/") or name.count("/") < 2 or "//" in name or name.endswith("/"):
            raise HTTPError(422, "Reference name is invalid")
        if name in self.refs:
            raise HTTPError(422, "Reference already exists")
        if sha not in self.git.commits:
            raise HTTPError(422, "Object does not exist")
        self.refs[name] = sha
        return 201, self.git_ref(name), {"Location": self.repo_api(f"/git/{name}")}

    def _update_ref(self, params: dict[str, str], query: dict[str, str], body: Any, headers: Headers
                    ) -> tuple[int, Any, Headers]:
        name = "refs/" + params["ref"].removeprefix("refs/")
        if name not in self.refs:
            raise HTTPError(422, "Reference does not exist")
        sha = body["sha"]
        if sha not in self.git.commits:
            raise HTTPError(422, "Object does not exist")
        if not body.get("force", False) and not self.git.is_ancestor(self.refs[name], sha):
            raise HTTPError(422, "Update is not a fast forward")
        self.refs[name] = sha
        return 200, self.git_ref(name), {}

    def _delete_ref(self, params: dict[str, str], query: dict[str, str], body: Any, headers: Headers
                    ) -> tuple[int, Any, Headers]:
        name = "refs/" + params["ref"].removeprefix("refs/")
        if name not in self.refs:
            raise HTTPError(422, "Reference does not exist")
        del self.refs[name]
        return 204, None, {}

    def _create_blob(self, params: dict[str, str], query: dict[str, str], body: Any, headers: Headers
                     ) -> tuple[int, Any, Headers]:
        encoding = body.get("encoding", "utf-8")
        if encoding == "base64":
            try:
                data = base64.b64decode(body["content"], validate=False)
            except ValueError:
                raise HTTPError(422, "Invalid request.\n\ncontent is not valid Base64") from None
        elif encoding in ("utf-8", "utf8"):
            data = body["content"].encode("utf-8")
        else:
            raise HTTPError(422, f"encoding must be one of utf-8 or base64, not {encoding}")
        sha = self.git.put_blob(data)
        return 201, {"url": self.repo_api(f"/git/blobs/{sha}"), "sha": sha}, {
            "Location": self.repo_api(f"/git/blobs/{sha}")}

    def _get_blob(self, params: dict[str, str], query: dict[str, str], body: Any, headers: Headers
                  ) -> tuple[int, Any, Headers]:
        sha = params["file_sha"]
        if sha not in self.git.blobs:
            raise HTTPError(404, "Not Found")
        data = self.git.blobs[sha]
        if "raw" in headers.get("accept", ""):
            return 200, data, {"Content-Type": "application/vnd.github.raw"}
        return 200, {"sha": sha, "node_id": base64.b64encode(f"B_{sha}".encode()).decode(), "size": len(data),
                     "url": self.repo_api(f"/git/blobs/{sha}"), "content": _b64(data), "encoding": "base64"}, {}

    def _create_tree(self, params: dict[str, str], query: dict[str, str], body: Any, headers: Headers
                     ) -> tuple[int, Any, Headers]:
        base = body.get("base_tree")
        if base is not None and base not in self.git.trees:
            raise HTTPError(422, "Invalid request.\n\nbase_tree is not a valid tree SHA")
        edits: dict[str, TreeEntry | None] = {}
        for item in body["tree"]:
            path = item.get("path", "")
            parts = path.split("/")
            if not path or any(p in ("", ".", "..") or p.lower() == ".git" for p in parts):
                raise HTTPError(422, "tree.path contains a malformed path component")
            has_content = "content" in item
            if has_content and item.get("sha") is not None:
                raise HTTPError(422, "Invalid tree info: use either tree.sha or content, not both")
            mode, kind = item.get("mode"), item.get("type")
            if has_content:
                if kind not in (None, "blob") or mode not in BLOB_MODES:
                    raise HTTPError(422, "Invalid tree info")
                edits[path] = TreeEntry("", mode, "blob", self.git.put_blob(item["content"].encode("utf-8")))
                continue
            if "sha" not in item:
                raise HTTPError(422, "Must supply either tree.sha or tree.content")
            sha = item["sha"]
            if sha is None:
                edits[path] = None
                continue
            exists = {"blob": sha in self.git.blobs, "tree": sha in self.git.trees, "commit": True}.get(kind or "")
            if not exists or (kind == "tree" and mode != TREE_MODE) or (kind == "blob" and mode not in BLOB_MODES) \
                    or (kind == "commit" and mode != COMMIT_MODE):
                raise HTTPError(422, f"GitRPC::BadObjectState: tree.sha {sha} is not a valid {kind}")
            edits[path] = TreeEntry("", mode, kind, sha)
        sha = self.git.edit(base, edits)
        return 201, self._tree_body(sha, recursive=False), {"Location": self.repo_api(f"/git/trees/{sha}")}

    def _tree_body(self, sha: str, recursive: bool) -> dict[str, Any]:
        entries = self.git.walk(sha) if recursive else [(e.name, e) for e in self.git.trees[sha]]
        truncated = len(entries) > self.tree_entry_limit
        items = []
        for path, e in entries[: self.tree_entry_limit]:
            item: dict[str, Any] = {"path": path, "mode": e.mode, "type": e.type, "sha": e.sha}
            if e.type == "blob":
                item["size"] = len(self.git.blobs[e.sha])
                item["url"] = self.repo_api(f"/git/blobs/{e.sha}")
            elif e.type == "tree":
                item["url"] = self.repo_api(f"/git/trees/{e.sha}")
            items.append(item)
        return {"sha": sha, "url": self.repo_api(f"/git/trees/{sha}"), "tree": items, "truncated": truncated}

    def _get_tree(self, params: dict[str, str], query: dict[str, str], body: Any, headers: Headers
                  ) -> tuple[int, Any, Headers]:
        sha = self._tree_of(params["tree_sha"])
        if sha is None:
            raise HTTPError(404, "Not Found")
        # GitHub: "setting recursive to any value (even 0 or false) returns the subtrees"
        return 200, self._tree_body(sha, recursive="recursive" in query), {}

    def _create_commit(self, params: dict[str, str], query: dict[str, str], body: Any, headers: Headers
                       ) -> tuple[int, Any, Headers]:
        tree = body["tree"]
        if tree not in self.git.trees:
            raise HTTPError(422, "Tree SHA does not exist")
        parents = list(body.get("parents") or [])
        for parent in parents:
            if parent not in self.git.commits:
                raise HTTPError(422, "Parent SHA does not exist or is not a commit object")
        author = self._person(body.get("author"))
        committer = self._person(body.get("committer") or body.get("author"))
        sha = self.git.put_commit(tree, parents, body["message"], author, committer)
        return 201, self.git_commit(sha), {"Location": self.repo_api(f"/git/commits/{sha}")}

    def _get_commit(self, params: dict[str, str], query: dict[str, str], body: Any, headers: Headers
                    ) -> tuple[int, Any, Headers]:
        sha = params["commit_sha"]
        if sha not in self.git.commits:
            raise HTTPError(404, "Not Found")
        return 200, self.git_commit(sha), {}

    # ------------------------------------------------------------------ handlers: contents
    def _content_item(self, path: str, entry: TreeEntry, ref: str, with_content: bool) -> dict[str, Any]:
        kind = {"blob": "file", "tree": "dir", "commit": "submodule"}[entry.type]
        if entry.mode == "120000":
            kind = "symlink"
        url = self.repo_api(f"/contents/{quote(path)}") + "?" + urlencode({"ref": ref})
        git_url = self.repo_api(f"/git/{'trees' if entry.type == 'tree' else 'blobs'}/{entry.sha}")
        html = self.repo_html(f"/{'tree' if entry.type == 'tree' else 'blob'}/{quote(ref)}/{quote(path)}")
        download = (f"https://raw.githubusercontent.com/{self.owner}/{self.repo}/{quote(ref)}/{quote(path)}"
                    if entry.type == "blob" else None)
        item: dict[str, Any] = {
            "type": kind, "size": len(self.git.blobs[entry.sha]) if entry.type == "blob" else 0,
            "name": path.rsplit("/", 1)[-1], "path": path, "sha": entry.sha, "url": url, "git_url": git_url,
            "html_url": html, "download_url": download, "_links": {"self": url, "git": git_url, "html": html},
        }
        if with_content and entry.type == "blob":
            item["content"] = _b64(self.git.blobs[entry.sha])
            item["encoding"] = "base64"
        return item

    def _get_contents(self, params: dict[str, str], query: dict[str, str], body: Any, headers: Headers
                      ) -> tuple[int, Any, Headers]:
        ref = query.get("ref") or self.default_branch
        commit = self._resolve(ref)
        if commit is None:
            raise HTTPError(404, f"No commit found for the ref {ref}")
        path = params["path"].strip("/")
        entry = self.git.lookup(self.git.commits[commit].tree, path)
        if entry is None:
            raise HTTPError(404, "Not Found")
        if entry.type == "tree":
            items = [self._content_item(f"{path}/{e.name}" if path else e.name, e, ref, False)
                     for e in self.git.trees[entry.sha]][:1000]  # GitHub lists at most 1,000 entries
            return 200, items, {}
        if "raw" in headers.get("accept", "") and entry.type == "blob":
            return 200, self.git.blobs[entry.sha], {"Content-Type": "application/vnd.github.raw"}
        return 200, self._content_item(path, entry, ref, True), {}

    def _put_contents(self, params: dict[str, str], query: dict[str, str], body: Any, headers: Headers
                      ) -> tuple[int, Any, Headers]:
        path = params["path"].strip("/")
        branch = body.get("branch") or self.default_branch
        parent = self.branch_sha(branch)
        if parent is None:
            raise HTTPError(404, f"Branch {branch} not found")
        try:
            data = base64.b64decode(body["content"], validate=True)
        except ValueError:
            raise HTTPError(422, "Invalid request.\n\ncontent is not valid Base64") from None
        tree = self.git.commits[parent].tree
        existing = self.git.lookup(tree, path)
        if existing is not None and existing.type != "blob":
            raise HTTPError(422, f"Invalid request.\n\n{path} is a directory")
        if existing is not None:
            if body.get("sha") is None:
                raise HTTPError(422, "Invalid request.\n\n\"sha\" wasn't supplied.")
            if body["sha"] != existing.sha:
                raise HTTPError(409, f"{path} does not match {body['sha']}")
        entry = self._blob_entry(data)
        new_tree = self.git.edit(tree, {path: entry})
        author = self._person(body.get("author") or body.get("committer"))
        committer = self._person(body.get("committer") or body.get("author"))
        sha = self.git.put_commit(new_tree, [parent], body["message"], author, committer)
        self.signed_commits.add(sha)  # GitHub signs Contents API commits made with an app token (web-flow)
        self.refs[f"refs/heads/{branch}"] = sha
        content = self._content_item(path, self.git.lookup(new_tree, path) or entry, branch, False)
        return (200 if existing is not None else 201), {"content": content, "commit": self.git_commit(sha)}, {}

    # ------------------------------------------------------------------ handlers: checks
    def _apply_check_fields(self, run: CheckRun, body: dict[str, Any]) -> None:
        for key in ("name", "details_url", "external_id", "started_at"):
            if key in body:
                setattr(run, key, body[key])
        if "output" in body:
            output = body["output"]
            run.output = {k: output.get(k, run.output.get(k)) for k in ("title", "summary", "text")}
            run.annotations += list(output.get("annotations") or [])
        if "status" in body:
            run.status = body["status"]
        if "conclusion" in body:
            run.conclusion = body["conclusion"]
            run.status = "completed"
        if run.status == "completed":
            if run.conclusion is None:
                raise HTTPError(422, "Invalid request.\n\nNo conclusion given for a completed check run.")
            run.completed_at = body.get("completed_at") or run.completed_at or _now()
        elif "completed_at" in body:
            raise HTTPError(422, "Invalid request.\n\ncompleted_at requires a conclusion.")

    def _create_check_run(self, params: dict[str, str], query: dict[str, str], body: Any, headers: Headers
                          ) -> tuple[int, Any, Headers]:
        sha = body["head_sha"]
        if not _HEX40.match(sha) or not self._known_sha(sha):
            raise HTTPError(422, f"No commit found for SHA: {sha}")
        run = CheckRun(id=self._id(f"check-run:{len(self.runs)}") + 4_000_000_000, name=body["name"],
                       head_sha=sha, status="queued", conclusion=None, started_at=body.get("started_at") or _now(),
                       completed_at=None, details_url=None, external_id=None, output={})
        self._apply_check_fields(run, body)
        self.suites.setdefault(sha, self._id(f"suite:{sha}") + 5_000_000_000)
        self.runs[run.id] = run
        return 201, self.check_run(run), {"Location": self.repo_api(f"/check-runs/{run.id}")}

    def _run_or_404(self, run_id: str) -> CheckRun:
        try:
            return self.runs[int(run_id)]
        except (KeyError, ValueError):
            raise HTTPError(404, "Not Found") from None

    def _get_check_run(self, params: dict[str, str], query: dict[str, str], body: Any, headers: Headers
                       ) -> tuple[int, Any, Headers]:
        return 200, self.check_run(self._run_or_404(params["check_run_id"])), {}

    def _update_check_run(self, params: dict[str, str], query: dict[str, str], body: Any, headers: Headers
                          ) -> tuple[int, Any, Headers]:
        run = self._run_or_404(params["check_run_id"])
        trial = CheckRun(**{**run.__dict__, "output": dict(run.output), "annotations": list(run.annotations)})
        self._apply_check_fields(trial, body)  # all-or-nothing
        self.runs[run.id] = trial
        return 200, self.check_run(trial), {}

    def _list_check_runs(self, params: dict[str, str], query: dict[str, str], body: Any, headers: Headers
                         ) -> tuple[int, Any, Headers]:
        ref = params["ref"]
        sha = ref if _HEX40.match(ref) else self._resolve(ref)
        if sha is None:
            raise HTTPError(422, f"No commit found for SHA: {ref}")
        runs = [r for r in self.runs.values() if r.head_sha == sha]
        if "check_name" in query:
            runs = [r for r in runs if r.name == query["check_name"]]
        if "status" in query:
            runs = [r for r in runs if r.status == query["status"]]
        runs.sort(key=lambda r: r.id, reverse=True)
        if query.get("filter", "latest") == "latest":
            seen: set[str] = set()
            latest = []
            for r in runs:
                if r.name not in seen:
                    seen.add(r.name)
                    latest.append(r)
            runs = latest
        chunk, link = self._page(runs, query, f"/repos/{self.owner}/{self.repo}/commits/{ref}/check-runs")
        return 200, {"total_count": len(runs), "check_runs": [self.check_run(r) for r in chunk]}, link

    # ------------------------------------------------------------------ handlers: pulls, issues, people
    def _get_pull(self, params: dict[str, str], query: dict[str, str], body: Any, headers: Headers
                  ) -> tuple[int, Any, Headers]:
        return 200, self.pull(self._pull_or_404(params["pull_number"])), {}

    def _pull_files(self, params: dict[str, str], query: dict[str, str], body: Any, headers: Headers
                    ) -> tuple[int, Any, Headers]:
        p = self._pull_or_404(params["pull_number"])
        items = []
        head_tree = self.git.commits[p.head_sha].tree if p.head_sha in self.git.commits else None
        for path, additions, deletions, status in p.files:
            entry = self.git.lookup(head_tree, path) if head_tree is not None else None
            sha = (None if status == "removed" else entry.sha if entry is not None
                   else self.git.put_blob(f"{p.head_sha}:{path}".encode()))
            items.append({
                "sha": sha, "filename": path, "status": status, "additions": additions, "deletions": deletions,
                "changes": additions + deletions,
                "blob_url": self.repo_html(f"/blob/{p.head_sha}/{quote(path)}"),
                "raw_url": self.repo_html(f"/raw/{p.head_sha}/{quote(path)}"),
                "contents_url": self.repo_api(f"/contents/{quote(path)}?ref={p.head_sha}"),
                "patch": f"@@ -1,{deletions} +1,{additions} @@",
            })
        chunk, link = self._page(items[:3000], query, f"/repos/{self.owner}/{self.repo}/pulls/{p.number}/files")
        return 200, chunk, link

    def _pull_reviews(self, params: dict[str, str], query: dict[str, str], body: Any, headers: Headers
                      ) -> tuple[int, Any, Headers]:
        p = self._pull_or_404(params["pull_number"])
        api = self.repo_api(f"/pulls/{p.number}")
        items = [{
            "id": r.id, "node_id": base64.b64encode(f"PRR_{r.id}".encode()).decode(), "user": self.user(r.user),
            "body": r.body, "state": r.state, "commit_id": r.commit_id,
            "html_url": self.repo_html(f"/pull/{p.number}#pullrequestreview-{r.id}"), "pull_request_url": api,
            "author_association": r.author_association, "submitted_at": r.submitted_at,
            "_links": {"html": {"href": self.repo_html(f"/pull/{p.number}#pullrequestreview-{r.id}")},
                       "pull_request": {"href": api}},
        } for r in self.reviews.get(p.number, [])]
        chunk, link = self._page(items, query, f"/repos/{self.owner}/{self.repo}/pulls/{p.number}/reviews")
        return 200, chunk, link

    def _commit_item(self, sha: str, message: str, author: str) -> dict[str, Any]:
        date = _now()
        user = self.user(author)
        return {
            "url": self.repo_api(f"/commits/{sha}"), "sha": sha,
            "node_id": base64.b64encode(f"C_{sha}".encode()).decode(),
            "html_url": self.repo_html(f"/commit/{sha}"), "comments_url": self.repo_api(f"/commits/{sha}/comments"),
            "commit": {
                "url": self.repo_api(f"/git/commits/{sha}"), "message": message, "comment_count": 0,
                "author": {"name": author, "email": f"{author}@users.noreply.github.com", "date": date},
                "committer": {"name": author, "email": f"{author}@users.noreply.github.com", "date": date},
                "tree": {"sha": "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
                         "url": self.repo_api("/git/trees/4b825dc642cb6eb9a060e54bf8d69288fbee4904")},
                "verification": {"verified": False, "reason": "unsigned", "signature": None, "payload": None,
                                 "verified_at": None},
            },
            "author": user, "committer": user, "parents": [],
        }

    def _pull_commits(self, params: dict[str, str], query: dict[str, str], body: Any, headers: Headers
                      ) -> tuple[int, Any, Headers]:
        p = self._pull_or_404(params["pull_number"])
        items = []
        for n, sha in enumerate(p.commits):
            item = self._commit_item(sha, p.title if sha == p.head_sha else f"commit {n + 1}", p.user)
            if n:
                prev = p.commits[n - 1]
                item["parents"] = [{"sha": prev, "url": self.repo_api(f"/commits/{prev}"),
                                    "html_url": self.repo_html(f"/commit/{prev}")}]
            items.append(item)
        chunk, link = self._page(items[:250], query, f"/repos/{self.owner}/{self.repo}/pulls/{p.number}/commits")
        return 200, chunk, link

    def _commit_pulls(self, params: dict[str, str], query: dict[str, str], body: Any, headers: Headers
                      ) -> tuple[int, Any, Headers]:
        sha = params["commit_sha"]
        found = [p for p in self.pulls.values() if sha in p.commits or sha == p.merge_commit_sha]
        found.sort(key=lambda p: (p.state != "open", -p.number))
        items = [self.pull(p, full=False) for p in found]
        chunk, link = self._page(items, query, f"/repos/{self.owner}/{self.repo}/commits/{sha}/pulls")
        return 200, chunk, link

    def _get_issue(self, params: dict[str, str], query: dict[str, str], body: Any, headers: Headers
                   ) -> tuple[int, Any, Headers]:
        try:
            number = int(params["issue_number"])
        except ValueError:
            raise HTTPError(404, "Not Found") from None
        return 200, self.issue(number), {}

    def _issue_events(self, params: dict[str, str], query: dict[str, str], body: Any, headers: Headers
                      ) -> tuple[int, Any, Headers]:
        number = int(params["issue_number"])
        self.issue(number)  # 404 if absent
        items = []
        for ev in self.issue_events.get(number, []):
            item: dict[str, Any] = {
                "id": ev.id, "node_id": base64.b64encode(f"LE_{ev.id}".encode()).decode(),
                "url": self.repo_api(f"/issues/events/{ev.id}"), "actor": self.user(ev.actor), "event": ev.event,
                "commit_id": None, "commit_url": None, "created_at": ev.created_at,
                "performed_via_github_app": None,
            }
            if ev.label is not None:
                label = self.labels[ev.label]
                item["label"] = {"name": label.name, "color": label.color}
            items.append(item)
        chunk, link = self._page(items, query, f"/repos/{self.owner}/{self.repo}/issues/{number}/events")
        return 200, chunk, link

    def _permission(self, params: dict[str, str], query: dict[str, str], body: Any, headers: Headers
                    ) -> tuple[int, Any, Headers]:
        login = params["username"]
        role = self.collaborators.get(login, "none")
        legacy = {"maintain": "write", "triage": "read"}.get(role, role)
        user = self.user(login)
        user["permissions"] = {"admin": role == "admin", "maintain": role in ("admin", "maintain"),
                               "push": role in ("admin", "maintain", "write"),
                               "triage": role in ("admin", "maintain", "write", "triage"), "pull": role != "none"}
        user["role_name"] = role
        return 200, {"permission": legacy, "role_name": role, "user": user}, {}

    def _membership(self, params: dict[str, str], query: dict[str, str], body: Any, headers: Headers
                    ) -> tuple[int, Any, Headers]:
        if not self.members_readable:
            raise HTTPError(403, "Resource not accessible by integration")
        org, team, login = params["org"], params["team_slug"], params["username"]
        found = self.team_members.get((org.lower(), team.lower()), {}).get(login.lower())
        if found is None:
            raise HTTPError(404, "Not Found")
        role, state = found.split(":")
        return 200, {"url": self.api(f"/organizations/1/team/1/memberships/{login}"), "role": role,
                     "state": state}, {}

    def _workflow_run(self, params: dict[str, str], query: dict[str, str], body: Any, headers: Headers
                      ) -> tuple[int, Any, Headers]:
        try:
            run = self.workflow_runs[int(params["run_id"])]
        except (KeyError, ValueError):
            raise HTTPError(404, "Not Found") from None
        api = self.repo_api(f"/actions/runs/{run.id}")
        workflow_id = self._id(f"workflow:{run.path}")
        repo = self.repository(full=False)
        for key in ("permissions", "network_count", "subscribers_count"):
            repo.pop(key, None)
        pulls = [self._pull_minimal(self.pulls[n]) for n in run.pull_requests if n in self.pulls]
        return 200, {
            "id": run.id, "name": run.name, "node_id": base64.b64encode(f"WFR_{run.id}".encode()).decode(),
            "head_branch": run.head_branch, "head_sha": run.head_sha, "path": run.path,
            "display_title": run.name, "run_number": run.id % 10_000, "run_attempt": run.run_attempt,
            "event": run.event, "status": run.status, "conclusion": run.conclusion, "workflow_id": workflow_id,
            "check_suite_id": self.suites.get(run.head_sha, 0), "url": api,
            "html_url": self.repo_html(f"/actions/runs/{run.id}"), "pull_requests": pulls,
            "created_at": run.created_at, "updated_at": run.updated_at, "run_started_at": run.created_at,
            "actor": self.user(run.actor), "triggering_actor": self.user(run.actor),
            "jobs_url": f"{api}/jobs", "logs_url": f"{api}/logs", "check_suite_url": self.repo_api("/check-suites/1"),
            "artifacts_url": f"{api}/artifacts", "cancel_url": f"{api}/cancel", "rerun_url": f"{api}/rerun",
            "previous_attempt_url": None, "workflow_url": self.repo_api(f"/actions/workflows/{workflow_id}"),
            "head_commit": {"id": run.head_sha, "tree_id": "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
                            "message": run.name, "timestamp": run.created_at,
                            "author": {"name": run.actor, "email": f"{run.actor}@users.noreply.github.com"},
                            "committer": {"name": "GitHub", "email": "noreply@github.com"}},
            "repository": repo, "head_repository": repo, "referenced_workflows": [],
        }, {}

    def _ancestors(self, sha: str) -> list[str]:
        """``sha`` and its ancestors, nearest first (breadth-first over parents)."""
        order: list[str] = []
        seen: set[str] = set()
        queue = [sha]
        while queue:
            current = queue.pop(0)
            if current in seen or current not in self.git.commits:
                continue
            seen.add(current)
            order.append(current)
            queue += self.git.commits[current].parents
        return order

    def divergence(self, base: str, head: str) -> tuple[str, list[str], list[str]] | None:
        """How ``head`` and ``base`` diverged, as both compares (REST and GraphQL) report it: the merge base (the
        common ancestor nearest ``head``), the commits only ``head`` has and those only ``base`` has (nearest first,
        counted as ``git rev-list --count`` counts them); None when they share no history."""
        head_line, base_line = self._ancestors(head), self._ancestors(base)
        in_head, in_base = set(head_line), set(base_line)
        merge_base = next((c for c in head_line if c in in_base), None)
        if merge_base is None:
            return None
        return merge_base, [c for c in head_line if c not in in_base], [c for c in base_line if c not in in_head]

    def _compare(self, params: dict[str, str], query: dict[str, str], body: Any, headers: Headers
                 ) -> tuple[int, Any, Headers]:
        base_name, sep, head_name = params["basehead"].partition("...")
        base, head = self._resolve(base_name), self._resolve(head_name)
        if not sep or base is None or head is None or base not in self.git.commits or head not in self.git.commits:
            raise HTTPError(404, "Not Found")
        split = self.divergence(base, head)
        if split is None:
            raise HTTPError(404, f"No common ancestor between {base_name} and {head_name}.")
        merge_base, ahead_line, behind_line = split
        ahead, behind = len(ahead_line), len(behind_line)
        status = ("identical" if ahead == behind == 0 else "ahead" if behind == 0 else "behind" if ahead == 0
                  else "diverged")
        html = self.repo_html(f"/compare/{quote(params['basehead'])}")

        def item(sha: str) -> dict[str, Any]:
            c = self.git.commits[sha]
            return self._commit_item(sha, c.message, c.author.name)

        return 200, {
            "url": self.repo_api(f"/compare/{quote(params['basehead'])}"), "html_url": html, "permalink_url": html,
            "diff_url": f"{html}.diff", "patch_url": f"{html}.patch", "base_commit": item(base),
            "merge_base_commit": item(merge_base), "status": status, "ahead_by": ahead, "behind_by": behind,
            "total_commits": ahead, "commits": [], "files": [],
        }, {}

    def _other_contents(self, params: dict[str, str], query: dict[str, str], body: Any, headers: Headers
                        ) -> tuple[int, Any, Headers]:
        """GET contents of another repository (see ``add_other_repo_file``): a file, raw or base64 JSON."""
        key = (params["owner"].lower(), params["repo"].lower())
        token = headers.get("authorization", "").split(" ", 1)[-1]
        if key not in self.other_repos or token not in self.other_repo_tokens.get(key, set()):
            raise HTTPError(404, "Not Found")
        ref = query.get("ref") or "main"
        path = params["path"].strip("/")
        data = self.other_repos[key].get(ref, {}).get(path)
        if data is None:
            raise HTTPError(404, "Not Found")
        if "raw" in headers.get("accept", ""):
            return 200, data, {"Content-Type": "application/vnd.github.raw"}
        sha = self.git.put_blob(data)
        owner, name = params["owner"], params["repo"]
        api = self.api(f"/repos/{owner}/{name}")
        url = f"{api}/contents/{quote(path)}?" + urlencode({"ref": ref})
        html = f"{self.html_url}/{owner}/{name}/blob/{quote(ref)}/{quote(path)}"
        git_url = f"{api}/git/blobs/{sha}"
        return 200, {"type": "file", "size": len(data), "name": path.rsplit("/", 1)[-1], "path": path, "sha": sha,
                     "url": url, "git_url": git_url, "html_url": html,
                     "download_url": f"https://raw.githubusercontent.com/{owner}/{name}/{quote(ref)}/{quote(path)}",
                     "_links": {"self": url, "git": git_url, "html": html}, "content": _b64(data),
                     "encoding": "base64"}, {}

    # ------------------------------------------------------------------ serving (see serving.py)
    def install(self, rsps: Any) -> None:
        """Register this fake on a ``responses.RequestsMock`` for every URL under ``base_url``."""
        from .serving import install

        install(self, rsps)

    @contextlib.contextmanager
    def serve(self, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
        """Serve over real HTTP in a background thread; yields (and sets ``base_url`` to) ``http://host:port``."""
        from .serving import serve

        with serve(self, host, port) as url:
            yield url
