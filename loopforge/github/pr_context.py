"""``PullRequestContext`` over the GitHub REST API (PyGithub): the only policy-side module that knows HTTP.

Every fact is loaded on first use and cached for the life of the object; build one per event so each
evaluation re-reads the facts. Team and permission reads that the token may not be allowed to make raise
``PermissionMissing`` naming the permission (``members: read`` for teams, ``metadata: read`` for a user's
repository role); they are never guessed.

Also here: reading the policy (and guard modules) from the *base* branch at its current commit, never from the
PR head.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from github import Github, GithubException
from github.Organization import Organization
from github.PullRequest import PullRequest
from github.Repository import Repository
from github.Team import Team

from loopforge.policy.codeowners import CODEOWNERS_PATHS
from loopforge.policy.context import (
    PERMISSION_LEVELS,
    ChangedFile,
    CheckState,
    FactUnavailable,
    IssueRef,
    LabelEvent,
    PermissionMissing,
    Review,
    parse_closing_references,
)
from loopforge.policy.fingerprint import NULL_OID

_STATUS_STATE = {"success": ("completed", "success"), "failure": ("completed", "failure"),
                 "error": ("completed", "failure"), "pending": ("in_progress", None)}


def _rank(state: CheckState, allowed: Iterable[str] = ("success", "neutral", "skipped")) -> int:
    """Lower is worse: failed < running < passed (used to keep the worst of same-name runs)."""
    if state.status != "completed":
        return 1
    return 2 if (state.conclusion or "") in allowed else 0


def _keep_worst(into: dict[str, CheckState], state: CheckState) -> None:
    current = into.get(state.name)
    if current is None or _rank(state) < _rank(current):
        into[state.name] = state


@contextmanager
def _refusal_is_missing(permission: str, message: str) -> Iterator[None]:
    """GitHub refusing a read in the block (401, 403 or 404) means ``permission`` is missing; ``message`` says
    what could not be read. Any other error passes through."""
    try:
        yield
    except GithubException as exc:
        if exc.status in (401, 403, 404):
            raise PermissionMissing(permission, message) from None
        raise


class GitHubPullRequestContext:
    """The facts about pull request ``number`` of ``gh_repo``, read lazily through PyGithub.

    ``governance_gh`` is a ``Github`` client authenticated with the optional governance token (a GitHub App or
    fine-grained token with Members: read); team membership is read only through it. Without it, every team
    lookup raises ``PermissionMissing("members: read")``: ``GITHUB_TOKEN`` cannot read teams.
    """

    def __init__(self, gh_repo: Repository, number: int, *, governance_gh: Github | None = None,
                 pull: PullRequest | None = None) -> None:
        self._repo = gh_repo
        self._number = int(number)
        self._gov = governance_gh
        self._pull = pull
        self._cache: dict[str, Any] = {}
        self._orgs: dict[str, Organization] = {}
        self._teams: dict[str, Team] = {}

    # ------------------------------------------------------------------ the pull request object
    @property
    def pull(self) -> PullRequest:
        if self._pull is None:
            self._pull = self._repo.get_pull(self._number)
        return self._pull

    @property
    def repo(self) -> str:
        return str(self._repo.full_name)

    @property
    def number(self) -> int:
        return self._number

    @property
    def title(self) -> str:
        return str(self.pull.title or "")

    @property
    def body(self) -> str:
        return str(self.pull.body or "")

    @property
    def author(self) -> str:
        user = self.pull.user
        return str(user.login) if user is not None else "ghost"

    @property
    def author_association(self) -> str:
        return str(self.pull.raw_data.get("author_association") or "NONE")

    @property
    def base_ref(self) -> str:
        return str(self.pull.base.ref)

    @property
    def head_ref(self) -> str:
        return str(self.pull.head.ref)

    @property
    def head_sha(self) -> str:
        return str(self.pull.head.sha)

    @property
    def draft(self) -> bool:
        return bool(self.pull.draft)

    @property
    def labels(self) -> Sequence[str]:
        return [str(label.name) for label in self.pull.labels]

    # ------------------------------------------------------------------ lists (paginated, cached)
    def _cached(self, key: str, load: Any) -> Any:
        if key not in self._cache:
            self._cache[key] = load()
        return self._cache[key]

    def changed_files(self) -> Sequence[ChangedFile]:
        def load() -> list[ChangedFile]:
            return [ChangedFile(filename=f.filename, status=f.status, additions=f.additions, deletions=f.deletions,
                                previous_filename=f.previous_filename, patch=f.patch,
                                head_oid=(NULL_OID if f.status == "removed" else (f.sha or None)))
                    for f in self.pull.get_files()]

        return self._cached("files", load)  # type: ignore[no-any-return]

    def files_truncated(self) -> bool:
        return int(self.pull.changed_files or 0) > len(self.changed_files())

    def line_counts(self) -> tuple[int, int]:
        return int(self.pull.additions or 0), int(self.pull.deletions or 0)

    def reviews(self) -> Sequence[Review]:
        def load() -> list[Review]:
            return [Review(user=r.user.login if r.user is not None else "ghost", state=str(r.state),
                           commit_id=r.commit_id, submitted_at=r.submitted_at, id=r.id,
                           user_id=r.user.id if r.user is not None else None)
                    for r in self.pull.get_reviews()]

        return self._cached("reviews", load)  # type: ignore[no-any-return]

    def label_events(self) -> Sequence[LabelEvent]:
        def load() -> list[LabelEvent]:
            events: list[LabelEvent] = []
            for e in self.pull.get_issue_events():
                if e.event in ("labeled", "unlabeled") and e.label is not None:
                    events.append(LabelEvent(label=e.label.name, actor=e.actor.login if e.actor else "ghost",
                                             action=e.event, created_at=e.created_at))
            return events

        return self._cached("label_events", load)  # type: ignore[no-any-return]

    def check_runs(self) -> Mapping[str, CheckState]:
        """Check runs (the latest per app and name) and commit statuses on the head SHA. When two sources
        report the same name, the worse one is kept: a second "test" from another app cannot mask a failure."""

        def load() -> dict[str, CheckState]:
            commit = self._repo.get_commit(self.head_sha)
            latest: dict[tuple[str, str], tuple[int, CheckState]] = {}
            for run in commit.get_check_runs():
                app = run.app.slug if run.app is not None else ""
                state = CheckState(name=run.name, status=run.status, conclusion=run.conclusion, kind="check",
                                   app=app, url=run.html_url)
                key = (app, run.name)
                if key not in latest or run.id > latest[key][0]:
                    latest[key] = (run.id, state)
            out: dict[str, CheckState] = {}
            for _, state in latest.values():
                _keep_worst(out, state)
            for status in commit.get_combined_status().statuses:
                mapped, conclusion = _STATUS_STATE.get(status.state, ("completed", status.state))
                _keep_worst(out, CheckState(name=status.context, status=mapped, conclusion=conclusion,
                                            kind="status", url=status.target_url))
            return out

        return self._cached("checks", load)  # type: ignore[no-any-return]

    def workflow_runs(self) -> Mapping[str, CheckState]:
        """Workflow runs on the head SHA: the latest per workflow file, then the worse per workflow name (a PR
        that adds another workflow with the same ``name:`` cannot mask a failing one)."""

        def load() -> dict[str, CheckState]:
            latest: dict[int, tuple[int, CheckState]] = {}
            for run in self._repo.get_workflow_runs(head_sha=self.head_sha):
                state = CheckState(name=run.name, status=run.status, conclusion=run.conclusion, kind="workflow",
                                   url=run.html_url)
                if run.workflow_id not in latest or run.id > latest[run.workflow_id][0]:
                    latest[run.workflow_id] = (run.id, state)
            out: dict[str, CheckState] = {}
            for _, state in latest.values():
                _keep_worst(out, state)
            return out

        return self._cached("workflows", load)  # type: ignore[no-any-return]

    def linked_issues(self) -> Sequence[IssueRef]:
        return parse_closing_references(self.body, self.repo)

    def issue_state(self, ref: IssueRef) -> str | None:
        key = f"issue:{ref.display()}"
        if key in self._cache:
            return self._cache[key]  # type: ignore[no-any-return]
        try:
            if ref.repo is None:
                repo = self._repo
            elif self._gov is not None:
                repo = self._gov.get_repo(ref.repo)
            else:
                raise PermissionMissing("issues: read", f"no client to read {ref.repo}; set governance-token")
            issue = repo.get_issue(ref.number)
            state = None if issue.pull_request is not None else str(issue.state)
        except GithubException as exc:
            if exc.status == 403:
                raise PermissionMissing("issues: read", f"cannot read {ref.display()}") from None
            if exc.status in (404, 410):
                state = None
            else:
                raise
        self._cache[key] = state
        return state

    # ------------------------------------------------------------------ people
    def _team(self, team: str) -> Team:
        if team in self._teams:
            return self._teams[team]
        if self._gov is None:
            raise PermissionMissing("members: read", "GITHUB_TOKEN cannot read team membership; set governance-token")
        org_name, _, slug = team.partition("/")
        with _refusal_is_missing("members: read", f"cannot read team {team}"):
            org = self._orgs.get(org_name) or self._gov.get_organization(org_name)
            self._orgs[org_name] = org
            found = org.get_team_by_slug(slug)
            _ = found.id  # load it now: a team we cannot see must not look like "not a member" later
        self._teams[team] = found
        return found

    def is_team_member(self, team: str, user: str) -> bool:
        found = self._team(team)
        try:
            membership = found.get_team_membership(user)
        except GithubException as exc:
            if exc.status == 404:  # the team is readable, so 404 means "not a member"
                return False
            if exc.status in (401, 403):
                raise PermissionMissing("members: read", f"cannot read members of {team}") from None
            raise
        return str(membership.state) == "active"

    def user_permission(self, user: str) -> str:
        key = f"perm:{user.lower()}"
        if key in self._cache:
            return self._cache[key]  # type: ignore[no-any-return]
        with _refusal_is_missing("metadata: read", f"cannot read the permission of {user}"):
            role = str(self._repo.get_collaborator_role_name(user))
            if role not in PERMISSION_LEVELS:  # a custom role: fall back to its base permission
                role = str(self._repo.get_collaborator_permission(user))
        self._cache[key] = role
        return role

    def merge_base(self) -> str:
        """The commit GitHub diffs the PR against: ``GET compare/{base}...{head}`` (one page of one commit)."""

        def load() -> str:
            basehead = f"{quote(self.base_ref, safe='')}...{self.head_sha}"
            try:
                _headers, data = self._repo._requester.requestJsonAndCheck(
                    "GET", f"{self._repo.url}/compare/{basehead}", parameters={"per_page": 1})
            except GithubException as exc:
                raise FactUnavailable("merge base", f"the merge base of {self.base_ref} and "
                                                    f"{self.head_sha[:7]} cannot be read (HTTP {exc.status})") from None
            sha = ((data or {}).get("merge_base_commit") or {}).get("sha")
            if not isinstance(sha, str) or not sha:
                raise FactUnavailable("merge base")
            return sha

        return self._cached("merge_base", load)  # type: ignore[no-any-return]

    def diff_blobs(self) -> Mapping[str, tuple[str, str]]:
        """Head blobs from the file list (REST gives each file's ``sha``); base blobs from the merge base's tree
        (``GET git/trees/{merge base}?recursive=1``: one request; a truncated tree makes them unknown)."""

        def load() -> dict[str, tuple[str, str]]:
            files = self.changed_files()
            if any(f.head_oid is None for f in files):
                missing = next(f.filename for f in files if f.head_oid is None)
                raise FactUnavailable("blob ids", f"the head blob of {missing} is not known")
            base = self.merge_base()
            try:
                tree = self._repo.get_git_tree(base, recursive=True)
            except GithubException as exc:
                raise FactUnavailable("blob ids", f"the tree of {base[:7]} cannot be read "
                                                  f"(HTTP {exc.status})") from None
            if tree.raw_data.get("truncated"):
                raise FactUnavailable("blob ids", f"the tree of {base[:7]} is too large to list")
            blobs = {e.path: e.sha for e in tree.tree if e.type == "blob"}
            out: dict[str, tuple[str, str]] = {}
            for f in files:
                old = f.previous_filename if f.status in ("renamed", "copied") and f.previous_filename else f.filename
                out[f.filename] = (str(f.head_oid), NULL_OID if f.status == "added" else blobs.get(old, NULL_OID))
            return out

        return self._cached("diff_blobs", load)  # type: ignore[no-any-return]

    def codeowners(self) -> tuple[str, str] | None:
        def load() -> tuple[str, str] | None:
            for path in CODEOWNERS_PATHS:
                text = read_base_file(self._repo, self.base_ref, path)
                if text is not None:
                    return path, text
            return None

        return self._cached("codeowners", load)  # type: ignore[no-any-return]

    def diff(self) -> str:
        """A unified diff assembled from the per-file patches (GitHub omits patches of binary or huge files)."""
        parts = []
        for f in self.changed_files():
            old = f.previous_filename or f.filename
            parts.append(f"diff --git a/{old} b/{f.filename}\n--- a/{old}\n+++ b/{f.filename}\n")
            parts.append((f.patch + "\n") if f.patch else "(patch not available: binary or too large)\n")
        return "".join(parts)


# ---------------------------------------------------------------------------------------------- base branch
def read_base_file(gh_repo: Repository, base_ref: str, path: str) -> str | None:
    """The text of ``path`` on branch ``base_ref`` at its current commit (``None`` if there is no such file).

    Use the PR's ``base.ref`` (the branch name), not ``base.sha``: the policy in force is the branch's latest.
    """
    try:
        content = gh_repo.get_contents(path, ref=base_ref)
    except GithubException as exc:
        message = exc.data.get("message") if isinstance(exc.data, dict) else None
        if exc.status == 404 and "no commit found" not in str(message).lower():
            return None  # no such file; a ref or commit that does not exist is an error, not "no policy"
        raise
    if isinstance(content, list):
        raise IsADirectoryError(f"{path} on {base_ref} is a directory")
    return _file_bytes(gh_repo, content).decode("utf-8")


def _file_bytes(gh_repo: Repository, content: Any) -> bytes:
    if content.encoding == "base64" and content.content is not None:
        return base64.b64decode(content.content)
    return base64.b64decode(gh_repo.get_git_blob(content.sha).content)  # files over 1 MB come without content


def fetch_base_tree(gh_repo: Repository, base_ref: str, paths: Sequence[str], dest: str | Path) -> Path:
    """Copy files or directories ``paths`` of branch ``base_ref`` into ``dest`` (a base-branch checkout for
    guards and gate commands when the workspace holds the PR's code). Symlinks and paths leaving ``dest`` are
    refused."""
    root = Path(dest).resolve()
    root.mkdir(parents=True, exist_ok=True)
    pending = [p.strip("/") for p in paths]
    while pending:
        path = pending.pop()
        if ".." in PurePosixPath(path).parts:
            raise ValueError(f"refusing path {path!r}")
        content = gh_repo.get_contents(path, ref=base_ref)
        for item in content if isinstance(content, list) else [content]:
            if item.type == "dir":
                pending.append(item.path)
                continue
            if item.type != "file":
                raise ValueError(f"refusing {item.type} {item.path!r} (only regular files are copied)")
            if isinstance(content, list):  # directory listings carry no content: fetch each file
                single = gh_repo.get_contents(item.path, ref=base_ref)
                if isinstance(single, list):
                    raise ValueError(f"{item.path!r} changed while copying")
                item = single
            target = (root / item.path).resolve()
            if not target.is_relative_to(root):
                raise ValueError(f"refusing path {item.path!r}")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(_file_bytes(gh_repo, item))
    return root
