"""Evaluate a policy against one pull request: the verdict, each rule's result and why.

``evaluate`` re-reads the facts every time it is called (give it a fresh context per event). ``PolicyGuard``
plugs the evaluation into ``LoopService(guards=[...])``: a move to ``merged`` is refused (or, when observed,
recorded as a violation) while the verdict is ``block``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from loopforge.errors import TransitionError
from loopforge.policy.context import PullRequestContext
from loopforge.policy.fingerprint import Fingerprint, Ledger
from loopforge.policy.model import Policy, PolicyNode
from loopforge.policy.predicates import assess_risk, safe, short_sha
from loopforge.policy.rules import RuleEnv, RuleResult, Status, evaluate_disapproval, evaluate_rule, latest_reviews
from loopforge.service import Veto
from loopforge.states import LoopState

if TYPE_CHECKING:
    from loopforge.records import LoopRecord

Verdict = Literal["pass", "block"]
_ICON = {Status.PASSED: "✅", Status.PENDING: "⏳", Status.FAILED: "❌", Status.SKIPPED: "⏭️"}


@dataclass
class Evaluation:
    """The result of evaluating a policy for one PR at one head SHA."""

    verdict: Verdict
    reason: str
    risk_tier: str
    risk_reason: str
    results: list[RuleResult]
    blocking: list[str] = field(default_factory=list)  # names of the rules that make the verdict block
    notes: list[str] = field(default_factory=list)
    gates: dict[str, dict[str, Any]] = field(default_factory=dict)
    head_sha: str = ""
    policy_source: str = ""
    policy_digest: str = ""
    risk_missing_permissions: list[str] = field(default_factory=list)
    policy_parts: list[dict[str, str]] = field(default_factory=list)  # [{source, sha256}], shared policy first
    stale_approvals: list[dict[str, Any]] = field(default_factory=list)  # [{login, commit, why}]
    carried_approvals: list[dict[str, Any]] = field(default_factory=list)  # [{login, user_id, from, to}]
    diff_fingerprint: dict[str, Any] | None = None  # {value, why, files, source} when the policy uses fingerprints
    ledger: dict[str, Any] | None = None  # diff_fingerprints and approvals kept in the record

    # ------------------------------------------------------------------ views
    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    def result(self, name: str) -> RuleResult:
        for r in self.results:
            if r.name == name:
                return r
        raise KeyError(name)

    def failed_rules(self) -> list[RuleResult]:
        """Rules whose status is ``failed``."""
        return [r for r in self.results if r.status is Status.FAILED]

    def pending_rules(self) -> list[RuleResult]:
        return [r for r in self.results if r.status is Status.PENDING]

    def blocking_rules(self) -> list[RuleResult]:
        """The failed or pending rules that make the verdict ``block`` (empty when it passes)."""
        return [r for r in self.results if r.name in self.blocking]

    @property
    def missing_permissions(self) -> list[str]:
        """Permissions the token lacked for a check that mattered (print an ``::error`` for each)."""
        perms = list(self.risk_missing_permissions)
        for r in self.results:
            perms += r.missing_permissions
        return list(dict.fromkeys(perms))

    def permission_errors(self) -> list[str]:
        """One line per rule that failed for lack of a permission, naming it (for ``::error`` annotations)."""
        lines = [f"LoopForge policy rule {r.name!r}: missing permission {', '.join(r.missing_permissions)}: "
                 f"{r.reason}" for r in self.results if r.missing_permissions]
        if self.risk_missing_permissions:
            lines.append(f"LoopForge policy risk tier: missing permission "
                         f"{', '.join(self.risk_missing_permissions)}: {self.risk_reason}")
        return lines

    def as_vetoes(self) -> list[Veto]:
        """The blocking rules as ``Veto`` objects (for ``LoopService.observe(..., violations=...)``)."""
        if self.passed:
            return []
        vetoes = [Veto(rule=f"policy:{r.name}", reason=f"{r.name}: {r.reason}",
                       details={"status": r.status.value, "risk_tier": self.risk_tier,
                                "policy_digest": self.policy_digest}, source="policy")
                  for r in self.blocking_rules()]
        return vetoes or [Veto(rule="policy", reason=self.reason, details={"risk_tier": self.risk_tier},
                               source="policy")]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready evidence for the trail."""
        return {
            "verdict": self.verdict,
            "reason": self.reason,
            "risk_tier": self.risk_tier,
            "risk_reason": self.risk_reason,
            "head_sha": self.head_sha,
            "policy": {"source": self.policy_source, "sha256": self.policy_digest,
                       "parts": [dict(p) for p in self.policy_parts]},
            "blocking": list(self.blocking),
            "stale_approvals": [dict(a) for a in self.stale_approvals],
            "carried_approvals": [dict(a) for a in self.carried_approvals],
            "diff_fingerprint": dict(self.diff_fingerprint) if self.diff_fingerprint else None,
            "results": [r.as_dict() for r in self.results],
            "notes": list(self.notes),
            "missing_permissions": self.missing_permissions,
            "gates": dict(self.gates),
        }

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.as_dict(), indent=indent, default=str, sort_keys=True)

    def record_metadata(self) -> dict[str, Any]:
        """What belongs in the record's metadata: the verdict and each gate's verdict and summary."""
        meta: dict[str, Any] = {"verdict": self.verdict, "risk_tier": self.risk_tier, "head_sha": self.head_sha,
                                "policy_sha256": self.policy_digest, "blocking": list(self.blocking),
                                "gates": dict(self.gates)}
        if len(self.policy_parts) > 1:
            meta["policy_parts"] = [dict(p) for p in self.policy_parts]
        if self.ledger is not None:
            meta.update(self.ledger)
        return {"policy": meta}

    def markdown(self) -> str:
        """A Markdown summary (rule table, notes, gate summaries). Reasons are escaped for table cells."""

        def cell(text: str) -> str:
            return safe(text, 1000).replace("|", "\\|")

        lines = [f"**Policy verdict: {self.verdict.upper()}** (risk tier **{self.risk_tier}**: "
                 f"{cell(self.risk_reason)})", ""]
        for note in self.notes:
            lines.append(f"> {cell(note)}")
        if self.notes:
            lines.append("")
        lines += ["| | Rule | Status | Why |", "|---|---|---|---|"]
        for r in self.results:
            lines.append(f"| {_ICON[r.status]} | {cell(r.name)} | {r.status.value} | {cell(r.reason)} |")
        if self.stale_approvals:
            lines += ["", "Stale approvals (a push made them stale; ask again):"]
            lines += [f"- {cell(a['login'])} approved {cell(str(a['commit'])[:7])} ({cell(a['why'])})"
                      for a in self.stale_approvals]
        for key, gate in self.gates.items():
            summary = str(gate.get("summary") or "").strip()
            if summary:
                lines += ["", f"<details><summary>Gate {cell(key)}: {gate.get('verdict')}</summary>", "",
                          summary, "", "</details>"]
        return "\n".join(lines)

    def text(self) -> str:
        """Plain-text explanation (``loopforge policy explain``)."""
        lines = [f"risk tier: {self.risk_tier} ({self.risk_reason})"]
        for r in self.results:
            lines.append(f"[{r.status.value}] {r.name}: {r.reason}")
            if r.applies and r.status is not Status.SKIPPED:
                lines.append(f"    applies: {r.applies}")
        lines += [f"stale approval: {safe(a['login'])} approved {str(a['commit'])[:7]} ({safe(a['why'])})"
                  for a in self.stale_approvals]
        lines += [f"note: {n}" for n in self.notes]
        lines.append(f"verdict: {self.verdict} ({self.reason})")
        return "\n".join(lines)


def _combine(node: PolicyNode, by_name: Mapping[str, RuleResult]) -> tuple[Status, list[str]]:
    """``(status, blocking rule names)`` of a policy node. Skipped rules do not count either way."""
    if node.rule is not None:
        r = by_name[node.rule]
        return r.status, [r.name] if r.blocking else []
    children = [_combine(child, by_name) for child in (node.all or node.any or [])]
    live = [(s, b) for s, b in children if s is not Status.SKIPPED]
    if not live:
        return Status.SKIPPED, []
    statuses = [s for s, _ in live]
    blockers = list(dict.fromkeys(name for s, b in live if s is not Status.PASSED for name in b))
    if node.all is not None:
        if Status.FAILED in statuses:
            return Status.FAILED, blockers
        return (Status.PENDING, blockers) if Status.PENDING in statuses else (Status.PASSED, [])
    if Status.PASSED in statuses:
        return Status.PASSED, []
    return (Status.PENDING if Status.PENDING in statuses else Status.FAILED), blockers


def _policy_edited(policy: Policy, ctx: PullRequestContext) -> str | None:
    path = policy.source.removeprefix("./")
    try:
        files = ctx.changed_files()
    except Exception:  # the note is informative; it must never break an evaluation
        return None
    if any(path in f.paths for f in files):
        return (f"This PR changes {path}; it was evaluated under the base branch's version "
                f"(sha256 {policy.digest[:12] or 'unknown'}), never the PR's.")
    return None


def evaluate(
    policy: Policy,
    ctx: PullRequestContext,
    *,
    record: LoopRecord | None = None,
    base_dir: str | Path | None = None,
    previous_state: LoopState | None = None,
    new_state: LoopState = LoopState.MERGED,
    trigger: str = "policy.evaluate",
    run_gates: bool = True,
    gate_cache: Mapping[str, Mapping[str, Any]] | None = None,
    gate_env: Mapping[str, str] | None = None,
    history: Mapping[str, Any] | None = None,
) -> Evaluation:
    """Evaluate ``policy`` for the PR behind ``ctx``.

    ``record`` and ``base_dir`` (a checkout of the base branch) are needed by ``guard`` requirements and by
    ``command`` gates; without them those requirements are pending, never passed. ``gate_cache`` holds gate
    verdicts from an earlier evaluation (``Evaluation.gates``): one given for the same head SHA is reused
    instead of asking the gate again. ``run_gates=False`` never contacts a gate (offline explain).
    ``history`` is what the record keeps from earlier evaluations (``record.metadata["policy"]``: diff
    fingerprints of earlier heads and the approvals ledger); without it no approval carries over a push.
    """
    env = RuleEnv(ctx=ctx, approvers=policy.approvers, record=record,
                  base_dir=Path(base_dir) if base_dir is not None else None,
                  code_dir=policy.options.code_dir, previous_state=previous_state, new_state=new_state,
                  trigger=trigger, run_gates=run_gates, gate_cache=dict(gate_cache or {}), gate_env=gate_env)
    env.ledger = Ledger.from_metadata(history)
    fingerprint: Fingerprint | None = None
    if policy.uses_diff_fingerprints():
        # every head is fingerprinted on its first evaluation (an approval of it may come later, through an event
        # that cannot write: a fork's review); later evaluations take it from the ledger without a read
        fingerprint = env.head_fingerprint()
        env.ledger.remember_head(ctx.head_sha, fingerprint.value)
    risk = assess_risk(policy.risk, env)
    env.risk_tier = risk.tier
    results = [evaluate_rule(rule, env) for rule in policy.rules]
    by_name = {r.name: r for r in results}
    status: Status = Status.SKIPPED
    blocking: list[str] = []
    if policy.rules:
        root = policy.policy or PolicyNode(all=[PolicyNode(rule=r.name) for r in policy.rules])
        status, blocking = _combine(root, by_name)
    if policy.disapproval is not None:
        disapproval = evaluate_disapproval(policy.disapproval, env)
        results.append(disapproval)
        by_name[disapproval.name] = disapproval
        if disapproval.blocking:
            blocking = [*blocking, disapproval.name]
            status = disapproval.status if status is not Status.FAILED else status
        # a standing-free disapproval leaves the verdict to the rules (and to options.no_rule_applies)
    ledger: dict[str, Any] | None = None
    if fingerprint is not None:
        with contextlib.suppress(Exception):  # the ledger stays as it was; the rules reported the problem
            env.ledger.update_approvals(latest_reviews(ctx.reviews()))
        ledger = env.ledger.as_metadata()
    notes: list[str] = []
    notes += [f"approval by {safe(c['login'])} carried from {short_sha(c['from'])}: same diff" for c in env.carried]
    if risk.unknown:
        notes.append(f"Risk tier {risk.tier} assumed: {', '.join(risk.unknown)} not known here.")
    edited = _policy_edited(policy, ctx)
    if edited:
        notes.append(edited)
    counts = {s: sum(1 for r in results if r.status is s) for s in Status}
    tally = ", ".join(f"{counts[s]} {s.value}" for s in Status if counts[s])
    verdict: Verdict
    if status is Status.PASSED:
        verdict, reason = "pass", f"all applicable rules passed ({tally})"
    elif status is Status.SKIPPED:
        verdict = policy.options.no_rule_applies
        reason = (f"no rule applies ({tally or 'no rules'}); options.no_rule_applies is "
                  f"{policy.options.no_rule_applies}")
    else:
        verdict = "block"
        shown = [f"{name} is {by_name[name].status.value}: {by_name[name].reason}" for name in blocking]
        reason = "; ".join(shown) or f"policy is {status.value}"
    return Evaluation(
        verdict=verdict, reason=reason, risk_tier=risk.tier, risk_reason=risk.reason, results=results,
        blocking=blocking if verdict == "block" else [], notes=notes,
        gates={k: v.as_dict() for k, v in env.gates.items()}, head_sha=ctx.head_sha,
        policy_source=policy.source, policy_digest=policy.digest,
        risk_missing_permissions=list(dict.fromkeys(m.permission for m in risk.missing)),
        policy_parts=policy.parts, stale_approvals=list(env.stale), carried_approvals=list(env.carried),
        diff_fingerprint=({"value": fingerprint.value, "why": fingerprint.why, "files": fingerprint.files,
                           "source": fingerprint.source} if fingerprint is not None else None),
        ledger=ledger,
    )


class PolicyGuard:
    """A guard (``(record, previous_state, new_state, trigger)``) that evaluates the policy for moves into
    ``states`` (default: ``merged``) and raises ``TransitionError`` while the verdict is ``block``.

    ``last_evaluation`` keeps the latest result; gate verdicts are reused across calls for the same head SHA
    (``LoopService`` runs guards for ``check`` and again for ``transition``).
    """

    __name__ = "loopforge.policy"
    veto_source = "policy"  # ``service.Veto.source`` of its vetoes, also when it fails

    def __init__(self, policy: Policy, ctx: PullRequestContext, *, base_dir: str | Path | None = None,
                 states: Sequence[LoopState] = (LoopState.MERGED,),
                 gate_cache: Mapping[str, Mapping[str, Any]] | None = None,
                 gate_env: Mapping[str, str] | None = None,
                 history: Mapping[str, Any] | None = None) -> None:
        self.policy = policy
        self.history = history
        self.ctx = ctx
        self.base_dir = base_dir
        self.states = tuple(LoopState(s) for s in states)
        self.gate_cache: dict[str, Mapping[str, Any]] = dict(gate_cache or {})
        self.gate_env = gate_env
        self.last_evaluation: Evaluation | None = None

    def evaluate(self, record: LoopRecord | None = None, previous_state: LoopState | None = None,
                 new_state: LoopState = LoopState.MERGED, trigger: str = "policy.evaluate") -> Evaluation:
        history = record.metadata.get("policy") if record is not None else self.history
        evaluation = evaluate(self.policy, self.ctx, record=record, base_dir=self.base_dir,
                              previous_state=previous_state, new_state=new_state, trigger=trigger,
                              gate_cache=self.gate_cache, gate_env=self.gate_env,
                              history=history if isinstance(history, Mapping) else None)
        self.gate_cache.update(evaluation.gates)
        self.last_evaluation = evaluation
        return evaluation

    def __call__(self, record: LoopRecord, previous_state: LoopState, new_state: LoopState, trigger: str) -> None:
        if LoopState(new_state) not in self.states:
            return None
        evaluation = self.evaluate(record, previous_state, new_state, trigger)
        if evaluation.verdict == "block":
            rule = ", ".join(f"policy:{name}" for name in evaluation.blocking) or "policy"
            raise TransitionError(f"policy blocks {LoopState(new_state).value}: {evaluation.reason}",
                                  rule=rule, details={"policy_evaluation": evaluation.as_dict()}, source="policy")
        return None
