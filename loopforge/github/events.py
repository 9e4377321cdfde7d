"""Typed GitHub webhook payloads: the one place that parses each event kind.

Only the fields LoopForge reads are modelled; everything else is ignored. ``parse_event`` turns
``(GITHUB_EVENT_NAME, payload)`` into an ``Event`` (a typed fact) or raises ``UnsupportedEvent`` (an event
or action we do not track: a notice, exit 0) or ``MalformedEvent`` (the payload lacks what the event needs:
an error naming the field).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    ValidationError,
    field_validator,
)

# re-exported from their home, loopforge.errors
from loopforge.errors import MalformedEvent as MalformedEvent
from loopforge.errors import UnsupportedEvent as UnsupportedEvent
from loopforge.github.references import closing_references
from loopforge.trail import utcnow


class _M(BaseModel):
    """Numbers and flags are strict (``true`` is not PR #1, ``"2"`` is not a number); timestamps are lenient."""

    model_config = ConfigDict(extra="ignore", frozen=True)


#: A commit SHA (SHA-1, or SHA-256 for repositories that use it): it goes into API paths, so nothing else passes.
_HEX_SHA = r"[0-9a-f]{40}(?:[0-9a-f]{24})?"
Sha = Annotated[str, StringConstraints(pattern=rf"^{_HEX_SHA}$")]
_SHA = re.compile(_HEX_SHA)  # fullmatch: re's "$" would also match before a trailing line break
_FULL_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}$")


def _in_utc(value: datetime) -> datetime:
    """A timestamp with an offset, in UTC: one whose UTC time is outside the range of dates (``9999-12-31T23:59-12:00``)
    is not a time GitHub sends, so the payload is malformed (not an ``OverflowError`` later)."""
    try:
        return value.astimezone(UTC) if value.tzinfo is not None else value
    except OverflowError:
        raise ValueError("a time outside the range of dates") from None


#: an event's timestamps (``updated_at``, ``merged_at``, ``submitted_at``, …): lenient in form, in UTC
Timestamp = Annotated[datetime, AfterValidator(_in_utc)]
#: an issue or pull request number: positive, within GraphQL's ``Int`` (it goes into queries and API paths)
Number = Annotated[StrictInt, Field(ge=1, le=2**31 - 1)]


class User(_M):
    login: str
    id: StrictInt | None = None  # the immutable account id (a login can be renamed and re-registered)

    @field_validator("id", mode="before")
    @classmethod
    def _lenient_id(cls, value: object) -> object:
        # an extra fact, not one routing needs: a payload without a usable id still parses
        return value if isinstance(value, int) and not isinstance(value, bool) else None


class Label(_M):
    name: str


class Repository(_M):
    full_name: str
    html_url: str | None = None

    @field_validator("full_name")
    @classmethod
    def _owner_slash_name(cls, value: str) -> str:
        # it becomes the API path /repos/{full_name}: only a real owner/name may get there
        if not _FULL_NAME.match(value) or any(part in (".", "..") for part in value.split("/")):
            raise ValueError("not an owner/name repository name")
        return value


class Issue(_M):
    number: Number
    title: str = ""
    state: str = "open"
    state_reason: str | None = None
    html_url: str | None = None
    user: User | None = None
    labels: list[Label] = Field(default_factory=list)
    updated_at: Timestamp | None = None
    closed_at: Timestamp | None = None
    pull_request: dict[str, Any] | None = None  # present when the "issue" is a PR


class Ref(_M):
    ref: str
    sha: Sha
    repo: Repository | None = None


class PullRequest(_M):
    number: Number
    title: str = ""
    body: str | None = None
    state: str = "open"
    draft: StrictBool = False
    merged: StrictBool | None = None
    merged_at: Timestamp | None = None
    merged_by: User | None = None
    html_url: str | None = None
    user: User | None = None
    head: Ref
    base: Ref
    labels: list[Label] = Field(default_factory=list)
    updated_at: Timestamp | None = None
    #: for a merged PR: the commit the merge made on the base (the merge, squash or last rebased commit, or the
    #: merge group's head when merged through a queue); its first parent is the base before the merge
    merge_commit_sha: Sha | None = None
    commits: StrictInt | None = None  # how many commits the PR has

    @field_validator("merge_commit_sha", mode="before")
    @classmethod
    def _sha_or_none(cls, value: object) -> object:
        return value if isinstance(value, str) and _SHA.fullmatch(value) else None


class Review(_M):
    id: StrictInt | None = None
    state: str
    user: User | None = None
    commit_id: str | None = None
    submitted_at: Timestamp | None = None
    html_url: str | None = None


class ShortRef(_M):
    ref: str | None = None
    sha: str | None = None


class PullRef(_M):
    """The short PR objects in ``workflow_run.pull_requests`` and ``check_suite.pull_requests``."""

    number: Number
    head: ShortRef | None = None


class App(_M):
    slug: str | None = None
    name: str | None = None


class WorkflowRun(_M):
    id: StrictInt
    name: str | None = None
    head_sha: Sha
    status: str | None = None
    conclusion: str | None = None
    event: str | None = None
    html_url: str | None = None
    run_attempt: StrictInt | None = None
    pull_requests: list[PullRef] = Field(default_factory=list)
    updated_at: Timestamp | None = None


class CheckSuite(_M):
    id: StrictInt
    head_sha: Sha
    status: str | None = None
    conclusion: str | None = None
    app: App | None = None
    pull_requests: list[PullRef] = Field(default_factory=list)
    updated_at: Timestamp | None = None


class MergeGroup(_M):
    """``merge_group``: the commit GitHub's merge queue built for one queue entry (the PRs ahead of it, then it)."""

    head_sha: Sha
    head_ref: str
    base_sha: Sha | None = None
    base_ref: str | None = None


#: ``destroyed`` reasons GitHub documents: the group was merged, became invalid, or its PR left the queue
QUEUE_REASONS = frozenset({"merged", "invalidated", "dequeued"})


@dataclass(frozen=True)
class QueueRef:
    """What a merge-queue branch name says: ``gh-readonly-queue/<base>/pr-<number>-<PR head sha>``."""

    base: str
    number: int
    pr_head_sha: str


_QUEUE_REF = re.compile(
    r"^(?:refs/heads/)?gh-readonly-queue/(?P<base>[^\x00-\x20\x7f~^:?*\[\\]{1,255})/"
    r"pr-(?P<number>[1-9][0-9]{0,9})-(?P<sha>[0-9a-f]{40}(?:[0-9a-f]{24})?)\Z")


def parse_queue_ref(head_ref: str, base_ref: str | None = None) -> QueueRef:
    """The PR a merge group tests, from its ``head_ref`` (with or without ``refs/heads/``).

    GitHub names each queue entry's branch ``gh-readonly-queue/<base branch>/pr-<N>-<head sha of PR N>``; the
    group's commit holds the PRs ahead in the queue and then PR N, which is the one this group decides. A name
    of any other shape, a base that is not a valid branch name (``..``, ``//``, a trailing ``.lock`` or ``/``),
    or one that disagrees with ``base_ref`` raises ``ValueError``: nothing is guessed from it.
    """
    m = _QUEUE_REF.match(head_ref) if len(head_ref) <= 400 else None
    if m is None:
        raise ValueError("not a merge-queue branch (gh-readonly-queue/<base>/pr-<number>-<sha>)")
    base = m["base"]
    if (".." in base or "//" in base or "@{" in base or base.startswith(("/", ".", "-")) or base.endswith(("/", "."))
            or any(part.startswith(".") or part.endswith(".lock") for part in base.split("/"))):
        raise ValueError("the base branch in the merge-queue branch is not a valid branch name")
    if base_ref is not None and base_ref.removeprefix("refs/heads/") != base:
        raise ValueError("the merge-queue branch names another base than base_ref")
    number = int(m["number"])
    if number > 2**31 - 1:
        raise ValueError("the pull request number is out of range")
    return QueueRef(base=base, number=number, pr_head_sha=m["sha"])


# ---------------------------------------------------------------------------------------------- the facts
CIStatus = Literal["pending", "passed", "failed"]

PASSING_CONCLUSIONS = frozenset({"success", "neutral", "skipped"})


def ci_status_of(status: str | None, conclusion: str | None) -> CIStatus:
    if status != "completed" and conclusion is None:
        return "pending"
    return "passed" if conclusion in PASSING_CONCLUSIONS else "failed"


class Event(_M):
    """One webhook delivery, reduced to what LoopForge needs."""

    name: str  # GITHUB_EVENT_NAME
    action: str
    repo: str
    actor: str | None = None
    occurred_at: datetime = Field(default_factory=utcnow)
    issue: Issue | None = None
    pull_request: PullRequest | None = None
    review: Review | None = None
    label: str | None = None
    assignee: str | None = None
    requested_reviewer: str | None = None
    ci_name: str | None = None
    ci_sha: str | None = None
    ci_status: CIStatus | None = None
    ci_conclusion: str | None = None
    ci_url: str | None = None
    ci_run_id: int | None = None
    ci_attempt: int | None = None
    pull_numbers: tuple[int, ...] = ()
    merge_group: MergeGroup | None = None
    queue: QueueRef | None = None  # the PR the merge group decides, from its head_ref
    queue_reason: str | None = None  # ``merge_group.destroyed``: merged, invalidated or dequeued

    @property
    def kind(self) -> str:
        return f"{self.name}.{self.action}"


#: The events and actions the Action understands (README "From event to transition" documents each).
SUPPORTED: dict[str, frozenset[str]] = {
    "issues": frozenset({"opened", "assigned", "labeled", "unlabeled", "closed", "reopened"}),
    "pull_request": frozenset({"opened", "reopened", "synchronize", "ready_for_review", "converted_to_draft",
                               "review_requested", "closed", "labeled", "unlabeled", "edited"}),
    "pull_request_target": frozenset({"opened", "reopened", "synchronize", "ready_for_review",
                                      "converted_to_draft", "review_requested", "closed", "labeled",
                                      "unlabeled", "edited"}),
    "pull_request_review": frozenset({"submitted", "dismissed"}),
    "workflow_run": frozenset({"requested", "in_progress", "completed"}),
    "check_suite": frozenset({"completed"}),
    "merge_group": frozenset({"checks_requested", "destroyed"}),
}

def _field_path(err: ValidationError, key: str) -> str:
    first = err.errors()[0]
    loc = ".".join([key, *(str(p) for p in first["loc"])])
    if first["type"] in ("model_type", "dict_type") and first["input"] is None:
        return f"{loc}: missing"
    return f"{loc}: {first['msg']}"


_M_T = TypeVar("_M_T", bound=BaseModel)


def _model(cls: type[_M_T], payload: dict[str, Any], key: str) -> _M_T:
    try:
        return cls.model_validate(payload.get(key))
    except ValidationError as exc:
        raise MalformedEvent(_field_path(exc, key)) from None


def parse_event(name: str, payload: object) -> Event:
    """The typed fact of one delivery. Raises ``UnsupportedEvent`` or ``MalformedEvent``."""
    if not isinstance(payload, dict):  # every GitHub event is an object, tracked or not
        raise MalformedEvent(f"the {name or 'event'} payload is not a JSON object")
    if name not in SUPPORTED:
        raise UnsupportedEvent(f"event {name!r} is not tracked by LoopForge")
    action = payload.get("action")
    if not isinstance(action, str):
        raise MalformedEvent(f"the {name} payload has no 'action' string")
    if action not in SUPPORTED[name]:
        raise UnsupportedEvent(f"{name}.{action} is not tracked by LoopForge")
    try:
        return _parse(name, action, payload)
    except MalformedEvent as exc:
        raise MalformedEvent(f"the {name}.{action} payload is malformed at {exc}") from None


def _login(obj: object) -> str | None:
    if isinstance(obj, dict) and isinstance(obj.get("login"), str):
        return str(obj["login"])
    return None


def _name(obj: object) -> str | None:
    """``obj["name"]`` of an optional object (the event's ``label``), None unless it is a string."""
    if isinstance(obj, dict) and isinstance(obj.get("name"), str):
        return str(obj["name"])
    return None


def _parse(name: str, action: str, p: dict[str, Any]) -> Event:
    repo = _model(Repository, p, "repository")
    base: dict[str, Any] = {"name": name, "action": action, "repo": repo.full_name, "actor": _login(p.get("sender"))}
    if name == "issues":
        issue = _model(Issue, p, "issue")
        when = issue.closed_at if action == "closed" and issue.closed_at else issue.updated_at
        label = p.get("label")
        return Event(**base, issue=issue, occurred_at=when or utcnow(),
                     label=_name(label),
                     assignee=_login(p.get("assignee")))
    if name in ("pull_request", "pull_request_target"):
        pr = _model(PullRequest, p, "pull_request")
        label = p.get("label")
        when = pr.merged_at if action == "closed" and pr.merged_at else pr.updated_at
        return Event(**{**base, "name": "pull_request"}, pull_request=pr, occurred_at=when or utcnow(),
                     label=_name(label),
                     requested_reviewer=_login(p.get("requested_reviewer")))
    if name == "pull_request_review":
        pr = _model(PullRequest, p, "pull_request")
        review = _model(Review, p, "review")
        return Event(**base, pull_request=pr, review=review, occurred_at=review.submitted_at or utcnow())
    if name == "workflow_run":
        run = _model(WorkflowRun, p, "workflow_run")
        status = "pending" if action != "completed" else ci_status_of("completed", run.conclusion)
        return Event(**base, ci_name=run.name or f"workflow {run.id}", ci_sha=run.head_sha, ci_status=status,
                     ci_conclusion=run.conclusion, ci_url=run.html_url, ci_run_id=run.id, ci_attempt=run.run_attempt,
                     pull_numbers=tuple(pr.number for pr in run.pull_requests),
                     occurred_at=run.updated_at or utcnow())
    if name == "check_suite":
        suite = _model(CheckSuite, p, "check_suite")
        app = suite.app.slug or suite.app.name if suite.app else None
        return Event(**base, ci_name=app or f"check suite {suite.id}", ci_sha=suite.head_sha,
                     ci_status=ci_status_of(suite.status or "completed", suite.conclusion),
                     ci_conclusion=suite.conclusion, pull_numbers=tuple(pr.number for pr in suite.pull_requests),
                     occurred_at=suite.updated_at or utcnow())
    if name == "merge_group":
        group = _model(MergeGroup, p, "merge_group")
        try:
            queue = parse_queue_ref(group.head_ref, group.base_ref)
        except ValueError as exc:
            raise MalformedEvent(f"merge_group.head_ref: {exc}") from None
        reason = p.get("reason")
        if action == "destroyed" and (not isinstance(reason, str) or reason not in QUEUE_REASONS):
            raise MalformedEvent("reason: expected merged, invalidated or dequeued")
        return Event(**base, merge_group=group, queue=queue, pull_numbers=(queue.number,),
                     queue_reason=reason if action == "destroyed" else None)
    raise UnsupportedEvent(f"event {name!r} is not tracked by LoopForge")  # pragma: no cover


# ---------------------------------------------------------------------------------------------- linking
def linked_issues(body: str | None, repo: str) -> list[str]:
    """Record ids of the issues a PR body closes (``Fixes #12``, ``closes org/other#3``), in order, deduplicated.

    The rules are GitHub's closing keywords, parsed by ``loopforge.github.references`` (shared with policy).
    """
    return [ref.record_id for ref in closing_references(body, repo)]
