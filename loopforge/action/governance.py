"""Wiring the governance policy into one Action run (the policy rules themselves live in ``loopforge.policy``).

Imported only for pull-request events (``loopforge.action.facts``): it pulls in the policy machinery.

The policy is read from the PR's **base branch** at its current commit (never from the PR head), and guard
modules and gate scripts are copied from the base branch's ``options.code_dir`` into a temporary directory:
a PR that edits the policy or adds a guard is judged by the rules already in force. A merge is judged at the
base commit before it, a merge group at its base (``at``; see ``loopforge.github.merge_judgement``).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from github import GithubException

from loopforge.errors import TransitionError
from loopforge.github.client import make_github
from loopforge.github.pr_context import GitHubPullRequestContext, fetch_base_tree, read_base_file
from loopforge.github.render import GateRow
from loopforge.policy import GuardLoadError, PolicyError, PolicyGuard, load_policy, load_policy_guards
from loopforge.policy.evaluate import Evaluation
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

    def note(self) -> str | None:
        ev = self.evaluation
        if ev is None:
            return None
        where = (f"at base commit {self.at[:12]}" if self.at_commit and self.at else
                 f"from the base branch{' ' + self.at if self.at else ''}")
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


def load(gh_repo: Any, base_ref: str, number: int, policy_path: str, *, head: RecordHead | None,
         governance_token: str = "", api_url: str = "https://api.github.com", at: str | None = None,
         fallback: str | None = None) -> Governance:
    """The governance of one PR event. A missing policy file means no rules (only the lifecycle gates).

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
    if text is None:
        return Governance(**where)
    try:
        policy = load_policy(text, policy_path)
    except PolicyError as exc:
        message = str(exc)
        return Governance(guards=[_broken_policy_guard(message)], error=message, source=policy_path, **where)
    base_dir = _checkout_code_dir(gh_repo, base_ref, policy.options.code_dir)
    cache = ((head.metadata.get("policy") or {}).get("gates") if head else None) or {}
    guard = PolicyGuard(policy, ctx, base_dir=base_dir, gate_cache=cache if isinstance(cache, dict) else {})
    return _with_policy_guards(Governance(guards=[guard], policy_guard=guard, source=policy_path, **where),
                               base_dir, base_ref)


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
