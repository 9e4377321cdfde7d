"""Step 3 — load facts: what the run needs to know before it writes, read in one place.

``Facts`` is the typed result: the record's head (as stored before this event) and, for a pull-request event,
the governance policy read from the PR's base branch with the PR facts behind it. An issue event reads nothing
here. This is the step that a single GraphQL read can replace (issue 9): everything later takes ``Facts``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loopforge.action.errors import github_call
from loopforge.action.session import Session
from loopforge.github.events import Event
from loopforge.github.recorder import Route
from loopforge.records import RecordHead

if TYPE_CHECKING:  # the policy machinery is imported only for pull-request events (see load_facts)
    from loopforge.action.governance import Governance


@dataclass(frozen=True)
class Facts:
    #: the record's head before this event; None for a new record or when not read (events without a policy)
    head: RecordHead | None = None
    #: the PR's governance (its policy, guards and gate rows); None for issue events and without a policy
    governance: Governance | None = None


def load_facts(session: Session, routed: Route, event: Event) -> Facts:
    cfg = session.cfg
    if routed.pr is None or not cfg.policy:
        return Facts()
    # lazy: pydantic models of the policy, YAML and the rule engine cost import time an issue event never needs
    from loopforge.action import governance

    head = session.store.head(routed.record_id)
    with github_call("reading the policy from the base branch"):
        at = policy_commit(session.gh_repo, event, routed, head)
        loaded = governance.load(session.gh_repo, routed.pr.base.ref, routed.pr.number, cfg.policy, head=head,
                                 governance_token=cfg.governance_token, api_url=cfg.api_url, at=at,
                                 fallback=event.queue.base if event.queue is not None else routed.pr.base.ref)
    return Facts(head=head, governance=loaded)


def policy_commit(gh_repo: Any, event: Event, routed: Route, head: RecordHead | None) -> str | None:
    """The base commit whose policy judges this event, or None for the base branch's current tip.

    A merge is judged by the policy at the base commit before it, a merge group by the policy at the group's
    base: never at the base branch's tip, which after a merge holds the PR's own edits
    (``loopforge.github.merge_judgement``)."""
    from github import GithubException

    from loopforge.github.merge_judgement import CommitInfo, merge_policy_commit

    if event.merge_group is not None:
        return event.merge_group.base_sha  # the queue tests the group on top of this base
    pr = routed.pr
    if pr is None or not (event.name == "pull_request" and event.action == "closed" and pr.merged):
        return None

    def commit_of(sha: str) -> CommitInfo:
        commit = gh_repo.get_git_commit(sha)
        return CommitInfo(parents=[p.sha for p in commit.parents], message=str(commit.message or ""))

    try:
        return merge_policy_commit(pr.merge_commit_sha, pr.head.sha, pr.commits, head.metadata if head else {},
                                   commit_of) or pr.base.sha
    except GithubException as exc:
        if exc.status != 404:
            raise
        return pr.base.sha  # the merge commit is not readable: the base the PR was last compared with
