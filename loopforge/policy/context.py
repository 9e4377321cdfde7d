"""The facts a policy reads about one pull request, and a plain in-memory implementation of them.

``PullRequestContext`` is what predicates and requirements see. Implementations load facts lazily and cache
them for one evaluation (one event); nothing here knows HTTP. ``GitHubPullRequestContext``
(``loopforge.github.pr_context``) reads them from the REST API; ``FakeContext`` holds them in a dataclass for
tests and for ``loopforge policy explain`` (offline: a fact left as ``None`` is *unknown* and reading it raises
``FactUnavailable``).

Two things can stop a fact from being read, and neither may ever be mistaken for "approved":

* ``PermissionMissing``: the token cannot read it (team membership with ``GITHUB_TOKEN``). The requirement
  that needed it fails and names the permission.
* ``FactUnavailable``: the fact is not known here (offline ``explain``). The requirement is pending.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol, runtime_checkable

# re-exported from their home, loopforge.errors
from loopforge.errors import FactUnavailable as FactUnavailable
from loopforge.errors import PermissionMissing as PermissionMissing

#: Repository permission levels, weakest first (``role_name`` of the collaborator permission API).
PERMISSION_LEVELS: tuple[str, ...] = ("none", "read", "triage", "write", "maintain", "admin")

ReviewState = Literal["APPROVED", "CHANGES_REQUESTED", "COMMENTED", "DISMISSED", "PENDING"]


@dataclass(frozen=True)
class ChangedFile:
    filename: str
    status: str = "modified"  # added, removed, modified, renamed, copied, changed, unchanged
    additions: int = 0
    deletions: int = 0
    previous_filename: str | None = None  # for renames: a file moved *out of* a guarded path still matches
    patch: str | None = None

    @property
    def paths(self) -> tuple[str, ...]:
        """Every path this change touches (the old name of a renamed file too)."""
        if self.previous_filename and self.previous_filename != self.filename:
            return (self.filename, self.previous_filename)
        return (self.filename,)


@dataclass(frozen=True)
class Review:
    user: str
    state: str  # APPROVED, CHANGES_REQUESTED, COMMENTED, DISMISSED, PENDING
    commit_id: str | None = None
    submitted_at: datetime | None = None
    id: int = 0


@dataclass(frozen=True)
class LabelEvent:
    label: str
    actor: str
    action: str = "labeled"  # or "unlabeled"
    created_at: datetime | None = None


@dataclass(frozen=True)
class CheckState:
    """The latest run of one named check (check run or commit status) or workflow on the head SHA."""

    name: str
    status: str = "completed"  # queued, in_progress, completed (a commit status "pending" is in_progress)
    conclusion: str | None = None  # success, failure, neutral, cancelled, skipped, timed_out, action_required
    kind: str = "check"  # check, status, workflow
    app: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class IssueRef:
    """A closing reference in the PR body: ``Fixes #12`` (``repo`` None: this repository) or ``Closes o/r#3``."""

    number: int
    repo: str | None = None
    keyword: str = "fixes"

    def display(self) -> str:
        return f"{self.repo}#{self.number}" if self.repo else f"#{self.number}"


_CLOSING = re.compile(
    r"(?<![\w/-])(?P<kw>close[sd]?|fix(?:e[sd])?|resolve[sd]?)\s*:?\s+"
    r"(?:(?P<repo>[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100})?#(?P<n>\d{1,9})"
    r"|https://github\.com/(?P<urlrepo>[A-Za-z0-9-]{1,39}/[A-Za-z0-9._-]{1,100})/issues/(?P<urln>\d{1,9}))\b",
    re.IGNORECASE,
)


def parse_closing_references(body: str | None, repo: str | None = None) -> list[IssueRef]:
    """Closing keywords (close/closes/closed, fix/fixes/fixed, resolve/resolves/resolved) followed by ``#N``,
    ``owner/repo#N`` or an issue URL. References to ``repo`` itself are returned with ``repo=None``."""
    refs: list[IssueRef] = []
    seen: set[tuple[str | None, int]] = set()
    for m in _CLOSING.finditer(body or ""):
        target = m["repo"] or m["urlrepo"]
        number = int(m["n"] or m["urln"])
        if target and repo and target.lower() == repo.lower():
            target = None
        key = (target.lower() if target else None, number)
        if number == 0 or key in seen:
            continue
        seen.add(key)
        refs.append(IssueRef(number=number, repo=target, keyword=m["kw"].lower()))
    return refs


def is_bot(login: str) -> bool:
    return login.lower().endswith("[bot]")


def permission_at_least(have: str, need: str) -> bool:
    """Whether permission ``have`` is at least ``need`` (``maintain`` >= ``write``; unknown names rank lowest)."""
    levels = {p: i for i, p in enumerate(PERMISSION_LEVELS)}
    return levels.get(have.lower(), 0) >= levels.get(need.lower(), len(PERMISSION_LEVELS))


@runtime_checkable
class PullRequestContext(Protocol):
    """The facts about one pull request that rules read. Methods may be slow (the first call loads); they cache.

    Lookups that need a permission the token may lack raise ``PermissionMissing``; facts not known in this
    context raise ``FactUnavailable``.
    """

    @property
    def repo(self) -> str: ...  # "owner/name"
    @property
    def number(self) -> int: ...
    @property
    def title(self) -> str: ...
    @property
    def body(self) -> str: ...
    @property
    def author(self) -> str: ...
    @property
    def author_association(self) -> str: ...  # OWNER, MEMBER, COLLABORATOR, CONTRIBUTOR, FIRST_TIME_CONTRIBUTOR, NONE
    @property
    def base_ref(self) -> str: ...
    @property
    def head_ref(self) -> str: ...
    @property
    def head_sha(self) -> str: ...
    @property
    def draft(self) -> bool: ...
    @property
    def labels(self) -> Sequence[str]: ...

    def changed_files(self) -> Sequence[ChangedFile]: ...

    def files_truncated(self) -> bool:
        """True when the API returned fewer files than the PR changes (GitHub lists at most 3,000)."""
        ...

    def line_counts(self) -> tuple[int, int]:
        """``(additions, deletions)`` over the whole PR."""
        ...

    def reviews(self) -> Sequence[Review]: ...

    def label_events(self) -> Sequence[LabelEvent]: ...

    def check_runs(self) -> Mapping[str, CheckState]:
        """Check runs and commit statuses on the head SHA, the latest per name."""
        ...

    def workflow_runs(self) -> Mapping[str, CheckState]:
        """GitHub Actions workflow runs on the head SHA, the latest per workflow name."""
        ...

    def linked_issues(self) -> Sequence[IssueRef]: ...

    def issue_state(self, ref: IssueRef) -> str | None:
        """``"open"``/``"closed"`` for an existing issue, ``None`` if it does not exist or is a pull request."""
        ...

    def is_team_member(self, team: str, user: str) -> bool:
        """Whether ``user`` is an active member of ``team`` (``org/slug``). May raise ``PermissionMissing``."""
        ...

    def user_permission(self, user: str) -> str:
        """The user's role on the repository (one of ``PERMISSION_LEVELS``). May raise ``PermissionMissing``."""
        ...

    def diff(self) -> str:
        """The PR's diff (unified format; may be assembled from per-file patches)."""
        ...


@dataclass
class FakeContext:
    """A ``PullRequestContext`` held in memory. Facts left as ``None`` are unknown (``FactUnavailable``).

    ``teams`` maps ``org/slug`` to member logins (``None``: team membership cannot be read, as with
    ``GITHUB_TOKEN``); ``permissions`` maps logins to roles (``None``: cannot be read); ``issues`` maps
    ``#N`` or ``owner/repo#N`` to ``open``/``closed``.
    """

    number: int = 1
    title: str = ""
    body: str = ""
    author: str = "author"
    author_association: str = "CONTRIBUTOR"
    base_ref: str = "main"
    head_ref: str = "feature"
    head_sha: str = "0" * 40
    draft: bool = False
    labels: list[str] = field(default_factory=list)
    repo: str = "octo/repo"
    files: list[ChangedFile] | None = field(default_factory=list)
    truncated: bool = False
    additions: int | None = None  # default: summed over files
    deletions: int | None = None
    review_list: list[Review] | None = field(default_factory=list)
    label_event_list: list[LabelEvent] | None = field(default_factory=list)
    checks: dict[str, CheckState] | None = field(default_factory=dict)
    workflows: dict[str, CheckState] | None = field(default_factory=dict)
    issues: dict[str, str] | None = field(default_factory=dict)
    teams: dict[str, list[str]] | None = None
    permissions: dict[str, str] | None = None
    diff_text: str | None = None
    offline: bool = False  # unknown teams/permissions are FactUnavailable (explain), not PermissionMissing
    calls: list[str] = field(default_factory=list)  # which lookups ran (tests assert laziness)

    def changed_files(self) -> Sequence[ChangedFile]:
        self.calls.append("changed_files")
        if self.files is None:
            raise FactUnavailable("changed files")
        return self.files

    def files_truncated(self) -> bool:
        return self.truncated

    def line_counts(self) -> tuple[int, int]:
        if self.additions is not None and self.deletions is not None:
            return self.additions, self.deletions
        files = self.changed_files()
        adds = self.additions if self.additions is not None else sum(f.additions for f in files)
        dels = self.deletions if self.deletions is not None else sum(f.deletions for f in files)
        return adds, dels

    def reviews(self) -> Sequence[Review]:
        self.calls.append("reviews")
        if self.review_list is None:
            raise FactUnavailable("reviews")
        return self.review_list

    def label_events(self) -> Sequence[LabelEvent]:
        self.calls.append("label_events")
        if self.label_event_list is None:
            raise FactUnavailable("label events")
        return self.label_event_list

    def check_runs(self) -> Mapping[str, CheckState]:
        self.calls.append("check_runs")
        if self.checks is None:
            raise FactUnavailable("check runs")
        return self.checks

    def workflow_runs(self) -> Mapping[str, CheckState]:
        self.calls.append("workflow_runs")
        if self.workflows is None:
            raise FactUnavailable("workflow runs")
        return self.workflows

    def linked_issues(self) -> Sequence[IssueRef]:
        return parse_closing_references(self.body, self.repo)

    def issue_state(self, ref: IssueRef) -> str | None:
        self.calls.append(f"issue:{ref.display()}")
        if self.issues is None:
            raise FactUnavailable("linked issues")
        keys = [ref.display()] if ref.repo else [ref.display(), f"{self.repo}#{ref.number}"]
        return next((self.issues[k] for k in keys if k in self.issues), None)

    def is_team_member(self, team: str, user: str) -> bool:
        self.calls.append(f"team:{team}:{user}")
        if self.teams is None and self.offline:
            raise FactUnavailable("team membership")
        if self.teams is None:
            raise PermissionMissing("members: read", f"cannot read team {team}")
        if team.lower() not in {t.lower() for t in self.teams}:
            raise PermissionMissing("members: read", f"team {team} not found or not visible")
        members = next(v for k, v in self.teams.items() if k.lower() == team.lower())
        return user.lower() in {m.lower() for m in members}

    def user_permission(self, user: str) -> str:
        self.calls.append(f"permission:{user}")
        if self.permissions is None and self.offline:
            raise FactUnavailable("repository permissions")
        if self.permissions is None:
            raise PermissionMissing("metadata: read", f"cannot read the permission of {user}")
        for login, role in self.permissions.items():
            if login.lower() == user.lower():
                return role
        return "none"

    def diff(self) -> str:
        if self.diff_text is not None:
            return self.diff_text
        files = self.changed_files()
        return "".join(f"diff --git a/{f.filename} b/{f.filename}\n{f.patch or ''}\n" for f in files)
