"""FakeGitHub's GraphQL endpoint (``POST /graphql``; GHES: ``/api/graphql``), checked against GitHub's schema.

Every document is parsed and validated with ``graphql-core`` against the subset of GitHub's published schema in
``tests/fixtures/graphql`` (see ``extract_graphql.py``), then executed with resolvers over the fake's state. A
document GitHub would refuse (a syntax error, an unknown field, a wrong argument or variable type) is appended to
``FakeGitHub.violations`` and raised as ``GraphQLViolation`` (a ``OpenAPIViolation``: the fixtures fail the test
on it exactly as on a REST body that breaks the OpenAPI description).

GitHub's answers are reproduced where the store depends on them: errors come as HTTP 200 with an ``errors`` list
whose entries carry ``type`` (``NOT_FOUND``, ``FORBIDDEN``, ``STALE_DATA``, ``UNPROCESSABLE``), ``path``,
``locations`` and ``message``; ``createCommitOnBranch`` with a stale ``expectedHeadOid`` answers ``STALE_DATA``
``Expected branch to point to "<oid>" but it did not.  Pull and try again.``; its commits are authored by the
token's bot identity and signed by GitHub (``signature { isValid signer { login: "web-flow" } }``).
"""

from __future__ import annotations

import base64
import binascii
import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLObjectType,
    GraphQLSchema,
    OperationDefinitionNode,
    build_schema,
    execute,
    parse,
    validate,
)

from .gitstore import Person, TreeEntry
from .spec import OpenAPIViolation

if TYPE_CHECKING:
    from .core import FakeGitHub

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "fixtures" / "graphql" / "schema.subset.graphql"
WEB_FLOW = "web-flow"
TEXT_LIMIT = 512 * 1024  # Blob.text is cut (isTruncated) beyond this


class GraphQLViolation(OpenAPIViolation):
    """A GraphQL document GitHub's schema refuses."""


class GqlError(Exception):
    """Raised by a resolver: one entry of the answer's ``errors`` (the field becomes null)."""

    def __init__(self, type_: str, message: str) -> None:
        super().__init__(message)
        self.type = type_


Resolver = Callable[..., Any]
_RESOLVERS: dict[tuple[str, str], Resolver] = {}


def resolver(type_name: str, field: str) -> Callable[[Resolver], Resolver]:
    def register(fn: Resolver) -> Resolver:
        _RESOLVERS[(type_name, field)] = fn
        return fn

    return register


@functools.cache
def load_schema() -> GraphQLSchema:
    schema = build_schema(SCHEMA_PATH.read_text(encoding="utf-8"))
    for (type_name, field), fn in _RESOLVERS.items():
        gtype = schema.type_map[type_name]
        assert isinstance(gtype, GraphQLObjectType), type_name
        gtype.fields[field].resolve = fn
    return schema



@functools.lru_cache(maxsize=256)
def describe(document: str) -> tuple[str, tuple[str, ...]]:
    """(``query``/``mutation``, root field names) of a document, for logs and injectors; ("invalid", []) if it
    does not parse."""
    try:
        doc = parse(document, no_location=True)
    except GraphQLError:
        return "invalid", ()
    ops = [d for d in doc.definitions if isinstance(d, OperationDefinitionNode)]
    if not ops:
        return "invalid", ()
    op = ops[0]
    names = tuple(s.name.value for s in op.selection_set.selections if hasattr(s, "name"))
    return op.operation.value, names


@functools.lru_cache(maxsize=256)
def _checked(query: str) -> tuple[DocumentNode | None, str | None, tuple[str, ...]]:
    """(document, parse error, validation problems) of a query text: a client sends the same few documents
    with different variables, so each is parsed and validated once."""
    try:
        document = parse(query)
    except GraphQLError as exc:
        return None, exc.message, ()
    return document, None, tuple(p.message for p in validate(load_schema(), document))


def serve(fake: FakeGitHub, raw: Any) -> tuple[int, dict[str, Any]]:
    """Answer one GraphQL request body (already JSON-decoded)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("query"), str):
        fake._violation("POST /graphql: the body must be a JSON object with a string `query`")
    schema = load_schema()
    variables = raw.get("variables") or {}
    document, parse_error, problems = _checked(raw["query"])
    if document is None:
        fake._violation(f"POST /graphql: GitHub's parser refuses the document: {parse_error}")
        raise AssertionError("unreachable")
    if problems:
        fake._violation("POST /graphql: the document does not match GitHub's GraphQL schema "
                        "(tests/fixtures/graphql; a field GitHub has but the subset lacks: add it to FIELDS in "
                        "tests/fakegithub/extract_graphql.py): " + "; ".join(problems[:10]))
    ops = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(ops) != 1 and not raw.get("operationName"):
        fake._violation("POST /graphql: several operations and no operationName")
    result = execute(schema, document, variable_values=variables, context_value=fake,
                     operation_name=raw.get("operationName"))
    if result.data is None and result.errors:
        fake._violation("POST /graphql: GitHub would refuse these variables: "
                        + "; ".join(e.message for e in result.errors[:10]))
    out: dict[str, Any] = {"data": result.data}
    if result.errors:
        errors = []
        for err in result.errors:
            original = err.original_error
            if not isinstance(original, GqlError):
                fake.errors.append(f"GraphQL resolver crashed at {err.path}: {err.message}")
            entry: dict[str, Any] = {"type": original.type if isinstance(original, GqlError) else "INTERNAL",
                                     "path": err.path,
                                     "locations": [{"line": loc.line, "column": loc.column}
                                                   for loc in (err.locations or [])],
                                     "message": err.message}
            errors.append(entry)
        out["errors"] = errors
    return 200, out


# ---------------------------------------------------------------------------------------------- builders
def _actor(fake: FakeGitHub, login: str | None) -> dict[str, Any] | None:
    if login is None:
        return None
    kind = "Bot" if login.endswith("[bot]") else ("Organization" if login == fake.owner else "User")
    return {"__typename": kind, "login": login, "databaseId": fake.user(login)["id"]}


def _login_of_email(email: str) -> str | None:
    if email.endswith("@users.noreply.github.com"):
        local = email.split("@", 1)[0]
        return local.split("+", 1)[1] if "+" in local else local
    return None


def _git_actor(fake: FakeGitHub, person: Person) -> dict[str, Any]:
    login = _login_of_email(person.email)
    return {"name": person.name, "email": person.email, "date": person.date,
            "user": {"login": login} if login else None}


def git_object(fake: FakeGitHub, sha: str) -> dict[str, Any] | None:
    kind = fake.git.kind(sha)
    if kind == "commit":
        c = fake.git.commits[sha]
        signed = sha in fake.signed_commits
        return {
            "__typename": "Commit", "oid": sha, "message": c.message,
            "messageHeadline": c.message.split("\n", 1)[0], "committedDate": c.committer.date,
            "author": _git_actor(fake, c.author), "committer": _git_actor(fake, c.committer),
            "signature": {"__typename": "GpgSignature", "isValid": True, "state": "VALID",
                          "wasSignedByGitHub": True, "signer": {"login": WEB_FLOW}} if signed else None,
            "tree": git_object(fake, c.tree),
        }
    if kind == "tree":
        return {"__typename": "Tree", "oid": sha}
    if kind == "blob":
        data = fake.git.blobs[sha]
        try:
            text: str | None = data[:TEXT_LIMIT].decode("utf-8")
            binary = b"\0" in data
        except UnicodeDecodeError:
            text, binary = None, True
        return {"__typename": "Blob", "oid": sha, "text": None if binary else text, "isBinary": binary,
                "isTruncated": len(data) > TEXT_LIMIT, "byteSize": len(data)}
    return None


def _tree_entry(fake: FakeGitHub, path: str, entry: TreeEntry) -> dict[str, Any]:
    return {"name": entry.name or path.rsplit("/", 1)[-1], "path": path, "oid": entry.sha, "type": entry.type,
            "mode": int(entry.mode, 8), "object": git_object(fake, entry.sha)}


def _connection(items: list[Any], first: int | None, last: int | None, after: str | None,
                limit: int = 100) -> dict[str, Any]:
    for name, value in (("first", first), ("last", last)):
        if value is not None and not 0 <= value <= limit:
            raise GqlError("UNPROCESSABLE", f"Requesting {value} records on the connection exceeds the "
                                            f"`{name}` limit of {limit} records.")
    start = int(base64.b64decode(after).decode()) + 1 if after else 0
    rest = items[start:]
    if first is None and last is None:
        raise GqlError("MISSING_PAGINATION_BOUNDARIES", "You must provide a `first` or `last` value to properly "
                                                         "paginate the connection.")
    chunk = rest[:first] if first is not None else rest
    if last is not None:
        chunk = chunk[-last:] if last else []
    end = start + len(rest[: len(chunk)]) - 1 if first is not None else len(items) - 1
    cursor = base64.b64encode(str(max(end, 0)).encode()).decode()
    return {"nodes": chunk, "totalCount": len(items),
            "pageInfo": {"hasNextPage": first is not None and start + len(chunk) < len(items),
                         "endCursor": cursor if chunk else None}}


# ---------------------------------------------------------------------------------------------- queries
@resolver("Query", "repository")
def _repository(_root: Any, info: Any, owner: str, name: str, followRenames: bool = True) -> dict[str, Any]:
    fake: FakeGitHub = info.context
    if owner.lower() != fake.owner.lower() or name.lower() != fake.repo.lower():
        raise GqlError("NOT_FOUND", f"Could not resolve to a Repository with the name '{owner}/{name}'.")
    return {"id": fake.repo_node_id, "nameWithOwner": fake.full_name}


@resolver("Query", "rateLimit")
def _rate_limit(_root: Any, info: Any, dryRun: bool = False) -> dict[str, Any]:
    fake: FakeGitHub = info.context
    used = fake.graphql_points
    return {"cost": 1, "limit": fake.rate_limit, "remaining": max(fake.rate_limit - used, 0), "used": used,
            "resetAt": "2100-01-01T00:00:00Z"}


def _need(fake: FakeGitHub, scope: str, write: bool = False) -> None:
    level = fake.permissions.get(scope, "read")
    if level == "none" or (write and (level != "write" or fake.read_only_token)):
        raise GqlError("FORBIDDEN", "Resource not accessible by integration")


@resolver("Repository", "object")
def _object(_repo: Any, info: Any, expression: str | None = None, oid: str | None = None) -> Any:
    fake: FakeGitHub = info.context
    _need(fake, "contents")
    if oid is not None:
        found = git_object(fake, oid)
        if found is None and oid in fake.known_shas:  # a PR commit the fake holds no git object for
            return {"__typename": "Commit", "oid": oid, "message": ""}
        return found
    if expression is None:
        return None
    rev, sep, path = expression.partition(":")
    sha = fake._resolve(rev)
    if sha is None:
        return None
    if not sep:
        return git_object(fake, sha)
    fake.file_reads.append((sha, path))
    entry = fake.git.lookup(fake.git.commits[sha].tree, path)
    return None if entry is None else git_object(fake, entry.sha)


@resolver("Repository", "ref")
def _ref(_repo: Any, info: Any, qualifiedName: str) -> Any:
    fake: FakeGitHub = info.context
    _need(fake, "contents")
    name = qualifiedName if qualifiedName.startswith("refs/") else f"refs/heads/{qualifiedName}"
    sha = fake.refs.get(name)
    if sha is None:
        return None
    prefix, _, short = name.rpartition("/") if not name.startswith("refs/heads/") else (
        "refs/heads", "/", name[len("refs/heads/"):])
    return {"id": base64.b64encode(f"REF_{name}".encode()).decode(), "name": short, "prefix": prefix + "/",
            "target": git_object(fake, sha)}


@resolver("Ref", "compare")
def _ref_compare(ref: dict[str, Any], info: Any, headRef: str) -> Any:
    """This ref (as the base) against ``headRef`` (a branch, qualified ref or commit SHA; None when it names no
    commit, or the two share no history): ahead/behind counts as ``git rev-list --count`` gives them, and the
    commits in the head but not the base, oldest first."""
    fake: FakeGitHub = info.context
    base, head = (ref.get("target") or {}).get("oid"), fake._resolve(headRef)
    if base not in fake.git.commits or head is None or head not in fake.git.commits:
        return None
    split = fake.divergence(base, head)
    if split is None:
        return None
    _merge_base, ahead, behind = split
    status = ("IDENTICAL" if not ahead and not behind else "AHEAD" if not behind else "BEHIND" if not ahead
              else "DIVERGED")
    return {"aheadBy": len(ahead), "behindBy": len(behind), "status": status,
            "baseTarget": git_object(fake, base), "headTarget": git_object(fake, head),
            "_commits": list(reversed(ahead))}


@resolver("Comparison", "commits")
def _compare_commits(comparison: dict[str, Any], info: Any, first: int | None = None, last: int | None = None,
                     after: str | None = None, before: str | None = None) -> Any:
    fake: FakeGitHub = info.context
    return _connection([git_object(fake, c) for c in comparison["_commits"]], first, last, after)


@resolver("Commit", "file")
def _file(commit: dict[str, Any], info: Any, path: str) -> Any:
    fake: FakeGitHub = info.context
    fake.file_reads.append((commit["oid"], path.strip("/")))
    if commit["oid"] not in fake.git.commits:  # a PR commit the fake holds no git object for
        return None
    entry = fake.git.lookup(fake.git.commits[commit["oid"]].tree, path.strip("/"))
    if entry is None or not path.strip("/"):
        return None
    return _tree_entry(fake, path.strip("/"), entry)


@resolver("Commit", "parents")
def _parents(commit: dict[str, Any], info: Any, first: int | None = None, last: int | None = None,
             after: str | None = None, before: str | None = None) -> Any:
    fake: FakeGitHub = info.context
    known = fake.git.commits.get(commit["oid"])  # (None: a PR commit the fake holds no git object for)
    items = [git_object(fake, p) for p in (known.parents if known else [])]
    return _connection(items, first, last, after)


@resolver("Commit", "history")
def _history(commit: dict[str, Any], info: Any, path: str | None = None, first: int | None = None,
             last: int | None = None, after: str | None = None, **_ignored: Any) -> Any:
    """``git log --first-parent [-- path]`` from this commit (a path: the commits that changed something
    below it)."""
    fake: FakeGitHub = info.context
    out: list[str] = []
    sha: str | None = commit["oid"]
    clean = (path or "").strip("/")

    def at(c: str) -> str | None:
        entry = fake.git.lookup(fake.git.commits[c].tree, clean)
        return entry.sha if entry else None

    while sha is not None and len(out) < 1000:
        parents = fake.git.commits[sha].parents
        parent = parents[0] if parents else None
        if not clean or at(sha) != (at(parent) if parent else None):
            out.append(sha)
        sha = parent
    if first is None and last is None:
        first = 100
    return _connection([git_object(fake, s) for s in out], first, last, after)


@resolver("Tree", "entries")
def _entries(tree: dict[str, Any], info: Any) -> Any:
    fake: FakeGitHub = info.context
    return [_tree_entry(fake, e.name, e) for e in fake.git.trees[tree["oid"]]]


@resolver("Commit", "statusCheckRollup")
def _rollup(commit: dict[str, Any], info: Any) -> Any:
    fake: FakeGitHub = info.context
    return fake.status_rollup(commit["oid"])


@resolver("Repository", "pullRequest")
def _pull_request(_repo: Any, info: Any, number: int) -> Any:
    fake: FakeGitHub = info.context
    _need(fake, "pull_requests")
    p = fake.pulls.get(number)
    if p is None:
        raise GqlError("NOT_FOUND", f"Could not resolve to a PullRequest with the number of {number}.")
    head = git_object(fake, p.head_sha) or {"__typename": "Commit", "oid": p.head_sha}
    return {
        "number": p.number, "title": p.title, "body": p.body or "", "url": fake.repo_html(f"/pull/{p.number}"),
        "state": "MERGED" if p.merged else p.state.upper(), "isDraft": p.draft, "merged": p.merged,
        "mergeCommit": {"__typename": "Commit", "oid": p.merge_commit_sha} if p.merge_commit_sha else None,
        "headRefName": p.head_ref, "headRefOid": p.head_sha, "baseRefName": p.base, "baseRefOid": p.base_sha,
        "baseRef": _ref(None, info, f"refs/heads/{p.base}") if f"refs/heads/{p.base}" in fake.refs else None,
        "isCrossRepository": p.fork, "author": _actor(fake, p.user), "_pull": p, "_head": head,
        "authorAssociation": "OWNER" if p.user == fake.owner else (
            "COLLABORATOR" if fake.collaborators.get(p.user, "none") != "none" else "CONTRIBUTOR"),
        "additions": sum(f[1] for f in p.files), "deletions": sum(f[2] for f in p.files),
        "changedFiles": len(p.files), "createdAt": p.created_at, "updatedAt": p.updated_at,
    }


_CHANGE = {"added": "ADDED", "removed": "DELETED", "modified": "MODIFIED", "renamed": "RENAMED",
           "copied": "COPIED", "changed": "CHANGED", "unchanged": "MODIFIED"}


@resolver("PullRequest", "files")
def _pr_files(pr: dict[str, Any], info: Any, first: int | None = None, last: int | None = None,
              after: str | None = None, before: str | None = None) -> Any:
    items = [{"path": path, "additions": a, "deletions": d, "changeType": _CHANGE.get(status, "MODIFIED")}
             for path, a, d, status in pr["_pull"].files]
    return _connection(items, first, last, after)


def _review_node(fake: FakeGitHub, r: Any) -> dict[str, Any]:
    return {"databaseId": r.id, "author": _actor(fake, r.user), "state": r.state,
            "commit": {"__typename": "Commit", "oid": r.commit_id}, "submittedAt": r.submitted_at}


def _latest(fake: FakeGitHub, number: int, states: set[str] | None) -> list[dict[str, Any]]:
    latest: dict[str, Any] = {}
    for r in fake.reviews.get(number, []):
        if r.state == "PENDING" or (states is not None and r.state not in states):
            continue
        latest[r.user] = r
    return [_review_node(fake, r) for r in latest.values()]


@resolver("PullRequest", "latestReviews")
def _latest_reviews(pr: dict[str, Any], info: Any, first: int | None = None, last: int | None = None,
                    after: str | None = None, before: str | None = None, **_: Any) -> Any:
    return _connection(_latest(info.context, pr["number"], None), first, last, after)


@resolver("PullRequest", "latestOpinionatedReviews")
def _latest_opinionated(pr: dict[str, Any], info: Any, first: int | None = None, last: int | None = None,
                        after: str | None = None, before: str | None = None, **_: Any) -> Any:
    states = {"APPROVED", "CHANGES_REQUESTED", "DISMISSED"}
    return _connection(_latest(info.context, pr["number"], states), first, last, after)


@resolver("PullRequest", "labels")
def _labels(pr: dict[str, Any], info: Any, first: int | None = None, last: int | None = None,
            after: str | None = None, before: str | None = None, **_: Any) -> Any:
    return _connection([{"name": n} for n in pr["_pull"].labels], first, last, after)


@resolver("PullRequest", "timelineItems")
def _timeline(pr: dict[str, Any], info: Any, itemTypes: list[str] | None = None, first: int | None = None,
              last: int | None = None, after: str | None = None, **_: Any) -> Any:
    fake: FakeGitHub = info.context
    wanted = set(itemTypes or ["LABELED_EVENT", "UNLABELED_EVENT"])
    items = []
    for ev in fake.issue_events.get(pr["number"], []):
        kind = {"labeled": "LABELED_EVENT", "unlabeled": "UNLABELED_EVENT"}.get(ev.event)
        if kind in wanted and ev.label is not None:
            items.append({"__typename": "LabeledEvent" if kind == "LABELED_EVENT" else "UnlabeledEvent",
                          "actor": _actor(fake, ev.actor), "label": {"name": ev.label}, "createdAt": ev.created_at})
    return _connection(items, first, last, after, limit=250)


@resolver("PullRequest", "commits")
def _pr_commits(pr: dict[str, Any], info: Any, first: int | None = None, last: int | None = None,
                after: str | None = None, before: str | None = None) -> Any:
    fake: FakeGitHub = info.context
    items = [{"commit": git_object(fake, sha) or {"__typename": "Commit", "oid": sha}}
             for sha in pr["_pull"].commits]
    return _connection(items, first, last, after, limit=250)


@resolver("Commit", "checkSuites")
def _check_suites(commit: dict[str, Any], info: Any, first: int | None = None, last: int | None = None,
                  after: str | None = None, before: str | None = None, filterBy: dict[str, Any] | None = None) -> Any:
    """The Actions app's suite holding the check runs on this commit, and one suite per workflow run."""
    fake: FakeGitHub = info.context
    return _connection(fake.check_suites(commit["oid"]), first, last, after)


@resolver("CheckSuite", "checkRuns")
def _suite_runs(suite: dict[str, Any], info: Any, first: int | None = None, last: int | None = None,
                after: str | None = None, before: str | None = None, filterBy: dict[str, Any] | None = None) -> Any:
    runs = list(suite["_runs"])
    name = (filterBy or {}).get("checkName")
    if name is not None:
        runs = [r for r in runs if r["name"] == name]
    return _connection(runs, first, last, after)


@resolver("Commit", "associatedPullRequests")
def _associated(commit: dict[str, Any], info: Any, first: int | None = None, last: int | None = None,
                after: str | None = None, before: str | None = None, **_: Any) -> Any:
    fake: FakeGitHub = info.context
    sha = commit["oid"]
    found = sorted((p for p in fake.pulls.values() if sha in p.commits or sha == p.merge_commit_sha),
                   key=lambda p: (p.state != "open", -p.number))
    return _connection([_pull_request(None, info, p.number) for p in found], first, last, after)


# ---------------------------------------------------------------------------------------------- mutations
@resolver("Mutation", "createCommitOnBranch")
def _create_commit_on_branch(_root: Any, info: Any, input: dict[str, Any]) -> Any:
    fake: FakeGitHub = info.context
    _need(fake, "contents", write=True)
    branch = input["branch"]
    target = branch.get("repositoryNameWithOwner")
    if branch.get("id") is not None or target is None:
        raise GqlError("UNPROCESSABLE", "FakeGitHub: give branch.repositoryNameWithOwner and branch.branchName")
    if target.lower() != fake.full_name.lower():
        raise GqlError("NOT_FOUND", f"Could not resolve to a Repository with the name '{target}'.")
    name = branch.get("branchName") or ""
    ref = f"refs/heads/{name}"
    with fake._lock:
        tip = fake.refs.get(ref)
        if tip is None:
            raise GqlError("NOT_FOUND", f'A ref named "{ref}" does not exist in the repository.')
        expected = input["expectedHeadOid"]
        if expected != tip:
            raise GqlError("STALE_DATA", f'Expected branch to point to "{expected}" but it did not.  '
                                         f"Pull and try again.")
        changes = input.get("fileChanges") or {}
        edits: dict[str, TreeEntry | None] = {}
        for item in changes.get("deletions") or []:
            path = item["path"].strip("/")
            if fake.git.lookup(fake.git.commits[tip].tree, path) is None:
                raise GqlError("UNPROCESSABLE", f"A path was requested for deletion which does not exist as of "
                                                f"commit oid `{tip}`: {path}")
            edits[path] = None
        for item in changes.get("additions") or []:
            try:
                data = base64.b64decode(item["contents"], validate=True)
            except (binascii.Error, ValueError):
                raise GqlError("UNPROCESSABLE", f"contents of {item['path']} is not valid base64") from None
            edits[item["path"].strip("/")] = TreeEntry("", "100644", "blob", fake.git.put_blob(data))
        if not edits:
            raise GqlError("UNPROCESSABLE", "No changes were made to the branch.")
        message = input["message"]["headline"] + (f"\n\n{input['message']['body']}"
                                                   if input["message"].get("body") else "")
        tree = fake.git.edit(fake.git.commits[tip].tree, edits)
        from .core import ACTIONS_BOT, ACTIONS_BOT_EMAIL, _now

        now = _now()
        sha = fake.git.put_commit(tree, [tip], message, Person(ACTIONS_BOT, ACTIONS_BOT_EMAIL, now),
                                  Person("GitHub", "noreply@github.com", now))
        fake.signed_commits.add(sha)
        fake.refs[ref] = sha
    return {"clientMutationId": input.get("clientMutationId"), "commit": git_object(fake, sha),
            "ref": _ref(None, info, ref)}


@resolver("Mutation", "createRef")
def _create_ref(_root: Any, info: Any, input: dict[str, Any]) -> Any:
    fake: FakeGitHub = info.context
    _need(fake, "contents", write=True)
    if input["repositoryId"] != fake.repo_node_id:
        raise GqlError("NOT_FOUND", f"Could not resolve to a node with the global id of '{input['repositoryId']}'")
    name, oid = input["name"], input["oid"]
    if not name.startswith("refs/") or name.count("/") < 2 or "//" in name or name.endswith("/"):
        raise GqlError("UNPROCESSABLE", f"{name} is not a valid ref name.")
    with fake._lock:
        if oid not in fake.git.commits:
            raise GqlError("UNPROCESSABLE", f"Could not resolve to a commit with the oid {oid}.")
        if name in fake.refs:
            raise GqlError("UNPROCESSABLE", f'A ref named "{name}" already exists in the repository.')
        fake.refs[name] = oid
    return {"clientMutationId": input.get("clientMutationId"), "ref": _ref(None, info, name)}


__all__ = ["GqlError", "GraphQLViolation", "describe", "git_object", "load_schema", "serve"]
