"""Step 3 — load facts: everything the run needs to know before it writes, in **one** GraphQL read.

On the branch store that read is ``BranchRepository.snapshot``: the data branch's tip (with who made it), the
record's head with its newest entries, the key files of every idempotency key the event may write
(``recorder.event_keys``), and for a pull-request event the PR's facts (``pr_facts.pull_request_extra``: files,
latest reviews, labels and who added them, the head's check runs, statuses and workflow runs, the LoopForge check
run already there, and the policy file and its code directory at the PR's current base). Later steps read only
from ``Facts`` and the pinned snapshot: the key checks, the record's head, the check run's history table and the
policy need no further request. Other stores read the record through the store and the PR facts in one GraphQL
query of their own. The policy machinery is imported only when the base branch has a policy file.

When the newest commit that touched the record was not made by LoopForge (``RecordSnapshot.edited_by_someone_else``:
someone edited the trail through the API or a push), the record is verified in full before anything is appended;
``Facts.tampered`` names the first bad entry (or says the chain verifies).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loopforge.action.errors import github_call
from loopforge.action.session import Session
from loopforge.github.events import Event
from loopforge.github.merge_judgement import MAX_WALK
from loopforge.github.pr_facts import OurCheckRun, files_at, our_check_run, pull_request_extra
from loopforge.github.recorder import Route, event_keys
from loopforge.records import RecordHead

if TYPE_CHECKING:  # the policy machinery is imported only for pull-request events with a policy
    from loopforge.action.governance import Governance
    from loopforge.repository.branch import RecordSnapshot

#: where guards and gate scripts live unless the policy says otherwise (``policy.model`` ``options.code_dir``);
#: read together with the policy so the usual layout costs no request
DEFAULT_CODE_DIR = ".github/loopforge"


@dataclass(frozen=True)
class Tampered:
    """The record's newest commit was not LoopForge's: what a full verify found."""

    commit: str  # who made it (``Provenance.describe``)
    problem: str | None  # the first bad entry, or None when the chain still verifies

    def message(self, record_id: str) -> str:
        if self.problem is None:
            return (f"{record_id} was changed outside LoopForge ({self.commit}), but its hash chain still "
                    f"verifies")
        return (f"{record_id}: the trail was edited outside LoopForge ({self.commit}): {self.problem}. Run "
                f"`loopforge verify {record_id}`; the edited entry stays in the trail, nothing was rewritten")


@dataclass(frozen=True)
class Facts:
    #: the record's head before this event; None for a new record (or not read: other stores without a policy)
    head: RecordHead | None = None
    #: the PR's governance (its policy, guards and gate rows); None for issue events and without a policy
    governance: Governance | None = None
    #: whether the read said if our check run exists on the head commit (``check_run`` then is it, or None)
    check_run_known: bool = False
    check_run: OurCheckRun | None = None
    #: the same for a merge group's head commit (``merge_group`` events: the check run the queue waits on)
    group_check_run_known: bool = False
    group_check_run: OurCheckRun | None = None
    #: the branch store's snapshot (None on other stores)
    snapshot: RecordSnapshot | None = None
    #: the PR facts as read (the ``pr`` and ``head`` fields of the query)
    pull: Mapping[str, Any] = field(default_factory=dict)
    tampered: Tampered | None = None
    #: one line per record found changed outside LoopForge and flagged by this run (``::error``)
    flagged: list[str] = field(default_factory=list)


def load_facts(session: Session, routed: Route, event: Event) -> Facts:
    cfg = session.cfg
    extras = []
    at_commit, merge_commit = judged_at(event, routed) if cfg.policy else (None, None)
    if routed.pr is not None:
        extras.append(pull_request_extra(routed.pr.number, routed.pr.head.sha, cfg.check_name,
                                         policy_path=cfg.policy or None,
                                         code_dir=DEFAULT_CODE_DIR if cfg.policy else None,
                                         at_commit=at_commit, merge_commit=merge_commit,
                                         head_message=merge_commit is not None and (routed.pr.commits or 0) > 1,
                                         group_head=event.merge_group.head_sha if event.merge_group else None,
                                         rebase_depth=min(routed.pr.commits or 0, MAX_WALK) if merge_commit
                                         else None,
                                         # whether the policy uses CODEOWNERS is only known after the read:
                                         # three small blob reads in the same query beat a REST request
                                         codeowners=bool(cfg.policy)))
    branch = session.branch
    snapshot = None
    head: RecordHead | None = None
    pull: Mapping[str, Any]
    if branch is not None:
        snapshot = branch.snapshot(routed.record_id, keys=event_keys(event, cfg.run), extras=extras)
        head, pull = snapshot.head, snapshot.extra
    else:
        with github_call("reading the pull request"):
            pull = session.facts_query(extras) if extras else {}
        if routed.pr is not None and cfg.policy:
            head = session.store.head(routed.record_id)
    governance = None
    if routed.pr is not None and cfg.policy:  # the rule engine: only for PRs with a policy
        from loopforge.action import governance as policy

        # a base commit (a merge's base parent, a merge group's base) instead of the base branch's tip, or None;
        # and whether the one read holds the policy there (else the PR or that commit is read through REST)
        at = policy_commit(session.gh_repo, event, routed, head, pull)
        read_at = files_at(pull, at) if at is not None and pull.get("pr") else None
        in_read = read_at is not None if at is not None else bool(pull.get("pr"))
        with github_call("reading the policy " + ("at the base commit" if at else "from the base branch")):
            if in_read:
                governance = policy.from_facts(pull, session.repo_name, routed.pr.number, cfg.policy,
                                               DEFAULT_CODE_DIR, gh_repo=session.gh_repo, head=head,
                                               governance_token=cfg.governance_token, api_url=cfg.api_url,
                                               at=at, commit=read_at, graphql=session.graphql)
            else:
                governance = policy.load(session.gh_repo, routed.pr.base.ref, routed.pr.number, cfg.policy,
                                         head=head, governance_token=cfg.governance_token, api_url=cfg.api_url,
                                         at=at, fallback=event.queue.base if event.queue else routed.pr.base.ref)
    tampered, flagged = _verify_if_edited(session, routed, snapshot, event) if snapshot is not None else (None, [])
    return Facts(head=head, governance=governance, check_run_known=bool(pull.get("head")),
                 check_run=our_check_run(pull) if routed.pr is not None else None,
                 group_check_run_known=bool(pull.get("group")),
                 group_check_run=our_check_run(pull, "group") if pull.get("group") else None, snapshot=snapshot,
                 pull=pull,
                 tampered=tampered, flagged=flagged)


def _verify_if_edited(session: Session, routed: Route, snapshot: RecordSnapshot, event: Event
                      ) -> tuple[Tampered | None, list[str]]:
    """A record whose newest commit LoopForge did not make is checked in full before anything is appended: every
    record the foreign commits changed is verified and flagged (``loopforge.action.integrity``: a violation entry
    that never launders the edit), then the record is read again so this run extends what is stored."""
    if not snapshot.edited_by_someone_else or snapshot.head is None:
        return None, []
    from loopforge.action.integrity import flag_foreign

    branch = session.branch
    assert branch is not None and snapshot.record_provenance is not None
    branch.release(routed.record_id)  # read the entry files themselves, not the window in head.json
    flagged, problem = flag_foreign(session, event, routed.record_id, snapshot.record_provenance.oid)
    # (no ``mark_broken`` trailer: the flag in the record's metadata repeats the error on every later event)
    branch.snapshot(routed.record_id, keys=event_keys_of(snapshot), extras=())
    return Tampered(snapshot.record_provenance.describe(), problem), flagged


def event_keys_of(snapshot: RecordSnapshot) -> list[str]:
    return list(snapshot.keys)


def _merged(event: Event, routed: Route) -> bool:
    pr = routed.pr
    return pr is not None and event.name == "pull_request" and event.action == "closed" and bool(pr.merged)


def judged_at(event: Event, routed: Route) -> tuple[str | None, str | None]:
    """What the one read reads the policy at instead of the base branch's tip: ``(commit, None)`` for a merge
    group (its ``base_sha``), ``(None, merge commit)`` for a merge (the merge commit's first parent), else
    ``(None, None)``."""
    if event.merge_group is not None:
        return event.merge_group.base_sha, None
    if _merged(event, routed) and routed.pr is not None and routed.pr.merge_commit_sha:
        return None, routed.pr.merge_commit_sha
    return None, None


def policy_commit(gh_repo: Any, event: Event, routed: Route, head: RecordHead | None,
                  pull: Mapping[str, Any] | None = None) -> str | None:
    """The base commit whose policy judges this event, or None for the base branch's current tip.

    A merge is judged by the policy at the base commit before it, a merge group by the policy at the group's
    base: never at the base branch's tip, which after a merge holds the PR's own edits
    (``loopforge.github.merge_judgement``). The merge commit (its first parent, message and parent count) and
    the PR head's message come from the one read (``pull``) when it saw them; any other commit (a rebase merge
    walks back one commit per PR commit) is read through REST."""
    from github import GithubException

    from loopforge.github.merge_judgement import CommitInfo, merge_policy_commit
    from loopforge.github.pr_facts import head_message, merge_commit_info, rebased_base

    if event.merge_group is not None:
        return event.merge_group.base_sha  # the queue tests the group on top of this base
    pr = routed.pr
    if pr is None or not _merged(event, routed):
        return None
    read = merge_commit_info(pull or {})
    read_head = head_message(pull or {})

    def commit_of(sha: str) -> CommitInfo:
        if read is not None and sha == pr.merge_commit_sha and read.first_parent is not None:
            # base_parent looks at the first parent and at how many there are
            return CommitInfo(parents=[read.first_parent] * read.parent_count, message=read.message)
        if read_head is not None and sha == pr.head.sha:
            return CommitInfo(parents=[], message=read_head)  # (only its message is asked for)
        commit = gh_repo.get_git_commit(sha)
        return CommitInfo(parents=[p.sha for p in commit.parents], message=str(commit.message or ""))

    rebased = rebased_base(pull or {})

    def ancestor(depth: int) -> str | None:  # the read asked for <merge>~min(commits, MAX_WALK)
        return rebased if depth == min(pr.commits or 0, MAX_WALK) else None

    try:
        return merge_policy_commit(pr.merge_commit_sha, pr.head.sha, pr.commits, head.metadata if head else {},
                                   commit_of, ancestor) or pr.base.sha
    except GithubException as exc:
        if exc.status != 404:
            raise
        return pr.base.sha  # the merge commit is not readable: the base the PR was last compared with
