"""Wiring the governance policy into one Action run (the policy rules themselves live in ``loopforge.policy``).

Imported only for pull-request events (``loopforge.action.facts``): it pulls in the policy machinery.

The policy is read from the PR's **base branch** at its current commit (never from the PR head), and guard
modules and gate scripts are copied from the base branch's ``options.code_dir`` into a temporary directory:
a PR that edits the policy or adds a guard is judged by the rules already in force. A merge is judged at the
base commit before it, a merge group at its base (``at``; see ``loopforge.github.merge_judgement``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from github import GithubException

from loopforge.errors import TransitionError
from loopforge.github.client import make_github
from loopforge.github.graphql import GraphQLClient
from loopforge.github.pr_context import GitHubPullRequestContext, fetch_base_tree, read_base_file
from loopforge.github.render import GateRow, StaleApproval
from loopforge.policy import GuardLoadError, PolicyError, PolicyGuard, load_policy_guards
from loopforge.policy.context import PullRequestContext
from loopforge.policy.evaluate import Evaluation
from loopforge.policy.extends import SharedPolicyUnreadable, SharedRef, load_extended
from loopforge.records import RecordHead
from loopforge.service import LoopService
from loopforge.states import LoopState


@dataclass
class Governance:
    """What the policy contributes to one run: guards for the service, rows and a note for the check run."""

    guards: list[Any] = field(default_factory=list)
    policy_guard: PolicyGuard | None = None
    error: str | None = None  # the policy could not be loaded: every merge is refused with this reason
    source: str | None = None
    #: where the policy was read: the base branch's name (its tip), or the commit a merge is judged at
    at: str | None = None
    at_commit: bool = False  # ``at`` is a commit (the base before a merge, a merge group's base)
    missing: str | None = None  # the base commit asked for was not in the repository: read at the branch ``at``

    @property
    def digest(self) -> str | None:
        return self.policy_guard.policy.digest if self.policy_guard else None

    @property
    def fail_job_when_blocked(self) -> bool:
        guard = self.policy_guard
        return True if guard is None else bool(guard.policy.options.fail_job_when_blocked)

    @property
    def evaluation(self) -> Evaluation | None:
        return self.policy_guard.last_evaluation if self.policy_guard else None

    def rows(self) -> list[GateRow]:
        rows = [GateRow(rule="policy", status="failed", reason=self.error)] if self.error else []
        ev = self.evaluation  # the rules are still shown when a guard of a loaded policy is broken
        if ev is not None:
            rows += [GateRow(rule=r.name, status=r.status.value, reason=r.reason) for r in ev.results]
        return rows

    def stale(self) -> list[StaleApproval]:
        """Approvals a push made stale, with the commit each was given for (for the check-run summary)."""
        ev = self.evaluation
        if ev is None:
            return []
        return [StaleApproval(login=str(a["login"]), commit=str(a["commit"]), why=str(a.get("why") or ""))
                for a in ev.stale_approvals]

    def note(self) -> str | None:
        ev = self.evaluation
        if ev is None:
            return None
        where = (f"at base commit {self.at[:12]}" if self.at_commit and self.at else
                 f"from the base branch{' ' + self.at if self.at else ''}")
        if len(ev.policy_parts) > 1:
            shown = " over ".join(f"{p['source']} (sha256 {p['sha256'][:12]})" for p in reversed(ev.policy_parts))
            parts = [f"Policy {shown} {where}; risk tier: {ev.risk_tier}."]
        else:
            digest = f" (sha256 {self.digest[:12]})" if self.digest else ""
            parts = [f"Policy {self.source}{digest} {where}; risk tier: {ev.risk_tier}."]
        if self.missing:
            parts.append(f"The base commit {self.missing[:12]} is not in the repository, so the policy was read "
                         f"from the branch instead.")
        parts += list(ev.notes)
        return " ".join(parts)

    def permission_errors(self) -> list[str]:
        ev = self.evaluation
        return ev.permission_errors() if ev else []

    def record(self, service: LoopService, record_id: str, key: str, actor: str | None) -> None:
        """Put the evaluation (what approved it, what blocked it) in the trail."""
        ev = self.evaluation
        if ev is None:
            return
        service.note(record_id, "policy.evaluated", reason=f"{ev.verdict}: {ev.reason}"[:500],
                     evidence={"policy": ev.as_dict()}, metadata=ev.record_metadata(), idempotency_key=key,
                     actor=actor)


def _broken_policy_guard(message: str) -> Any:
    def policy_unreadable(record: Any, previous_state: LoopState, new_state: LoopState, trigger: str) -> None:
        if new_state is LoopState.MERGED:
            raise TransitionError(message, rule="policy", source="policy")

    return policy_unreadable


def shared_policy_reader(gh_repo: Any, governance_gh: Any | None) -> Any:
    """``fetch(ref) -> text`` for ``extends``: with the governance token when there is one, else with the
    workflow's token (which GitHub lets read only its own repository). A failed read raises
    ``SharedPolicyUnreadable`` naming the permission to grant."""
    requester = governance_gh.requester if governance_gh is not None else gh_repo._requester

    def fetch(ref: SharedRef) -> str:
        import base64

        from loopforge.policy.model import DEFAULT_POLICY_PATH

        needs = f"contents: read on {ref.repo}"
        url = f"/repos/{ref.repo}/contents/{'/'.join(quote(p, safe='') for p in ref.path.split('/'))}"
        try:
            _headers, data = requester.requestJsonAndCheck("GET", url, parameters={"ref": ref.ref})
        except GithubException as exc:
            if governance_gh is None:
                detail = (f"HTTP {exc.status}: the workflow's GITHUB_TOKEN can read only this repository; set the "
                          f"governance-token input to a token with {needs}")
            else:
                detail = f"HTTP {exc.status}: the governance token cannot read it (or the path or ref does not exist)"
            raise SharedPolicyUnreadable(ref, DEFAULT_POLICY_PATH, detail, needs) from None
        if not isinstance(data, dict) or data.get("type") != "file" or not isinstance(data.get("content"), str):
            raise SharedPolicyUnreadable(ref, DEFAULT_POLICY_PATH, "not a file", needs)
        try:
            return base64.b64decode(data["content"]).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            raise SharedPolicyUnreadable(ref, DEFAULT_POLICY_PATH, "not UTF-8 text", needs) from None

    return fetch


def load(gh_repo: Any, base_ref: str, number: int, policy_path: str, *, head: RecordHead | None,
         governance_token: str = "", api_url: str = "https://api.github.com", at: str | None = None,
         fallback: str | None = None) -> Governance:
    """The governance of one PR event read through the REST API (a request per fact). A missing policy file
    means no rules (only the lifecycle gates). The Action reads the same facts with its one GraphQL query
    (``from_facts``); this path serves a PR the GraphQL read could not see, and a policy read at a commit.

    ``at``: a base commit to read the policy, guards and gates at (the base before a merge, a merge group's
    base) instead of the base branch's current tip; ``fallback``: the branch to read when that commit is not in
    the repository (GitHub only names commits it has, so this is for replayed or hand-made payloads; the summary
    says so). Without it an unknown commit is an error that blocks."""
    governance_gh = make_github(governance_token, api_url) if governance_token else None
    ctx = GitHubPullRequestContext(gh_repo, number, governance_gh=governance_gh)
    # the branch the PR targets now: the payload of an event delivered before a retarget names the old base, and
    # its run may finish last (it must not leave a weaker branch's verdict on the head commit)
    base_ref = at or ctx.base_ref
    where: dict[str, Any] = {"at": base_ref, "at_commit": at is not None}
    try:
        try:
            text = read_base_file(gh_repo, base_ref, policy_path)
        except GithubException as exc:
            if not (at and fallback and exc.status == 404):
                raise
            # the commit is not in the repository (any more): the branch, which does not hold the PR yet
            where = {"at": fallback, "at_commit": False, "missing": base_ref}
            base_ref = fallback
            text = read_base_file(gh_repo, base_ref, policy_path)
    except (GithubException, IsADirectoryError, UnicodeDecodeError) as exc:
        message = f"cannot read the policy {policy_path} on {base_ref}: {exc}"
        return Governance(guards=[_broken_policy_guard(message)], error=message, **where)
    read_at = base_ref
    return _build(text, ctx, policy_path, base_ref, head,
                  lambda code_dir: _checkout_code_dir(gh_repo, read_at, code_dir),
                  shared_policy_reader(gh_repo, governance_gh), where)


def from_facts(extra: Mapping[str, Any], repo: str, number: int, policy_path: str, code_dir_read: str, *,
               gh_repo: Any, head: RecordHead | None, governance_token: str = "",
               api_url: str = "https://api.github.com", at: str | None = None,
               commit: Mapping[str, Any] | None = None, graphql: GraphQLClient | None = None) -> Governance:
    """The governance of one PR event from the facts of the event's one GraphQL read (``extra``: the fields of
    ``loopforge.github.pr_facts.pull_request_extra``, which read ``policy_path`` and ``code_dir_read`` at the
    PR's current base). A fact the read does not carry is read through REST when a rule needs it.

    ``at`` and ``commit``: a base commit (a merge's base parent, a merge group's base) and the node of the read
    that holds the files read at it (``pr_facts.files_at``), instead of the base branch's tip. ``graphql``: the
    client for what needs a query after the read (the blob ids of a diff fingerprint); without it, REST."""
    from loopforge.github.diff_read import runner
    from loopforge.github.pr_context_graphql import GraphQLPullRequestContext
    from loopforge.github.pr_facts import base_file, write_tree

    governance_gh = make_github(governance_token, api_url) if governance_token else None

    def rest() -> GitHubPullRequestContext:
        return GitHubPullRequestContext(gh_repo, number, governance_gh=governance_gh)

    ctx = GraphQLPullRequestContext(repo, extra, rest, graphql=runner(graphql) if graphql is not None else None)
    base_ref = at or ctx.base_ref
    where: dict[str, Any] = {"at": base_ref, "at_commit": at is not None}
    try:
        text = base_file(extra, commit=commit)
    except ValueError as exc:
        message = f"cannot read the policy {policy_path} on {base_ref}: {exc}"
        return Governance(guards=[_broken_policy_guard(message)], error=message, **where)

    def code(code_dir: str) -> Path | None:
        if code_dir.strip("/") != code_dir_read.strip("/"):  # a code_dir of its own: not in the read
            return _checkout_code_dir(gh_repo, base_ref, code_dir)
        checkout = Path(tempfile.mkdtemp(prefix="loopforge-base-"))
        return checkout if write_tree(extra, "code", checkout, code_dir.strip("/"), commit=commit) else None

    return _build(text, ctx, policy_path, base_ref, head, code, shared_policy_reader(gh_repo, governance_gh), where)


def _build(text: str | None, ctx: PullRequestContext, policy_path: str, base_ref: str, head: RecordHead | None,
           checkout: Callable[[str], Path | None], fetch_shared: Callable[[SharedRef], str],
           where: dict[str, Any]) -> Governance:
    """The governance of a policy text (None: no policy file) with the facts ``ctx``, the base's code
    directory from ``checkout`` and a policy it ``extends`` from ``fetch_shared``."""
    if text is None:
        return Governance(**where)
    try:
        policy = load_extended(text, policy_path, fetch=fetch_shared)
    except SharedPolicyUnreadable as exc:
        message = f"{exc} — merges are blocked until the shared policy can be read"
        return Governance(guards=[_broken_policy_guard(message)], error=message, source=policy_path, **where)
    except PolicyError as exc:
        message = str(exc)
        return Governance(guards=[_broken_policy_guard(message)], error=message, source=policy_path, **where)
    try:
        base_dir = checkout(policy.options.code_dir)
    except ValueError as exc:  # a file GraphQL could not carry, a path that would leave the checkout
        message = f"cannot copy {policy.options.code_dir} from {base_ref}: {exc}"
        return Governance(guards=[_broken_policy_guard(message)], error=message, source=policy_path, **where)
    # what earlier evaluations kept in the head (an edited head may hold anything: the integrity check runs later)
    history = (head.metadata.get("policy") if head else None) or {}
    history = history if isinstance(history, dict) else {}
    cache = history.get("gates") or {}
    guard = PolicyGuard(policy, ctx, base_dir=base_dir, gate_cache=cache if isinstance(cache, dict) else {},
                        history=history)
    return _with_policy_guards(Governance(guards=[guard], policy_guard=guard, source=policy_path, **where), base_dir,
                               base_ref)


def _checkout_code_dir(gh_repo: Any, base_ref: str, code_dir: str) -> Path | None:
    """The base branch's ``code_dir`` copied into a temporary directory; None when the base has none (guards
    and command gates then stay pending)."""
    checkout = Path(tempfile.mkdtemp(prefix="loopforge-base-"))
    try:
        fetch_base_tree(gh_repo, base_ref, [code_dir], checkout)
    except GithubException as exc:
        if exc.status != 404:
            raise
        return None
    return checkout


def _with_policy_guards(governance: Governance, base_dir: Path | None, base_ref: str) -> Governance:
    """``governance`` plus the policy's top-level ``guards``, loaded from the base checkout (fail closed)."""
    assert governance.policy_guard is not None
    policy = governance.policy_guard.policy
    if not policy.guards:
        return governance
    if base_dir is None:
        message = f"the policy names guards but {policy.options.code_dir} is missing on {base_ref}"
    else:
        try:
            governance.guards += load_policy_guards(policy, base_dir)
            return governance
        except GuardLoadError as exc:  # fail closed with the reason, never a traceback
            message = f"{governance.source}: {exc}"
    governance.guards.append(_broken_policy_guard(message))
    governance.error = message
    return governance
