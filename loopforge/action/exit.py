"""Step 8 — exit code: the contract, as one table (documented in action.yml, docs/action.md and the README).

* exit 1 with one ``::error`` when LoopForge could not do its job (an exception: ``loopforge.action.errors``;
  here: a policy that cannot be used, a fact the token may not read), or a **violation** was recorded (a
  merge/close the lifecycle or the policy forbade), or the record's **trail was changed outside LoopForge**
  (found now by load facts, or flagged by an earlier run: said on every event), or a recorded merge's signed
  **evidence** could not be written (step ``attest``);
* exit 1 with ``fail-on-block: true`` only when the gate **failed** (a rule failed: changes requested, a forged
  label, a gate said block — not merely pending) **and** the job runs for the PR's own commit
  (``pull_request``, ``pull_request_review``, ``pull_request_target``);
* exit 0 otherwise: a pending gate, CI results seen through ``workflow_run``/``check_suite`` (that job runs on
  the default branch), issue events. The check run on the PR head carries the block; merges wait for it.

The first row of ``EXIT_RULES`` that applies gives the one ``::error``; any further row that applies is a
``::warning``. A gate that failed where the job does not fail is one plain log line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from loopforge.action.facts import Facts
from loopforge.action.govern import Gate
from loopforge.action.plan import Plan
from loopforge.action.session import Session
from loopforge.github.integrity import describe as describe_integrity
from loopforge.github.integrity import integrity_of
from loopforge.github.recorder import Recorded
from loopforge.states import LoopState
from loopforge.text import clean_text
from loopforge.trail import LoopTransition


@dataclass(frozen=True)
class Ending:
    """What the exit code depends on, gathered once."""

    record_id: str
    violations: list[LoopTransition]
    policy_error: str | None
    permission_errors: list[str]
    gate: Gate | None
    merged: bool
    plan: Plan
    check_name: str
    #: records whose trail was changed outside LoopForge: found now, or flagged by an earlier run
    tampered: list[str] = field(default_factory=list)
    #: the merge's signed evidence could not be written (loopforge.evidence; a re-run writes it)
    evidence_error: str | None = None

    @property
    def blocked(self) -> bool:
        return self.gate is not None and self.gate.failed and not self.merged


@dataclass(frozen=True)
class ExitRule:
    title: str  # after "LoopForge: "
    applies: Callable[[Ending], bool]
    message: Callable[[Ending], str]


def _violations(e: Ending) -> str:
    return "; ".join(f"{e.record_id}: {v.from_state.value if v.from_state else '∅'} → {v.to_state.value} broke "
                     f"{v.rule or 'the lifecycle'}: {v.reason or ''}" for v in e.violations)


def _blocked(e: Ending) -> str:
    failing = ", ".join(e.gate.failing_rules()) if e.gate else ""
    return f"{e.record_id} may not merge: {failing} failed (see the check run {e.check_name})"


EXIT_RULES: tuple[ExitRule, ...] = (
    ExitRule("audit trail broken", lambda e: bool(e.tampered), lambda e: "; ".join(e.tampered)),
    ExitRule("lifecycle violation", lambda e: bool(e.violations), _violations),
    ExitRule("policy error", lambda e: e.policy_error is not None, lambda e: e.policy_error or ""),
    ExitRule("evidence", lambda e: e.evidence_error is not None, lambda e: e.evidence_error or ""),
    ExitRule("missing permission", lambda e: bool(e.permission_errors), lambda e: "; ".join(e.permission_errors)),
    ExitRule("merge blocked", lambda e: e.blocked and e.plan.fail_on_block and e.plan.on_pr_commit, _blocked),
)


def ending(session: Session, plan: Plan, recorded: Recorded, gate: Gate | None, facts: Facts,
           tampered: list[str] | None = None, evidence_error: str | None = None) -> Ending:
    record = recorded.record
    assert record is not None
    governance = facts.governance
    tampered = list(tampered if tampered is not None else facts.flagged)
    if facts.tampered is not None and facts.tampered.problem is not None and not tampered:
        tampered.append(facts.tampered.message(record.record_id))  # found, but not flagged (e.g. a dry run)
    broken = integrity_of(record.metadata)
    if broken is not None and not any(line.startswith(f"{record.record_id}:") for line in tampered):
        tampered.append(describe_integrity(record.record_id, broken))  # flagged earlier: said on every event
    return Ending(record_id=record.record_id, violations=recorded.violations,
                  policy_error=governance.error if governance else None,
                  permission_errors=governance.permission_errors() if governance else [], gate=gate,
                  merged=record.state is LoopState.MERGED, plan=plan, check_name=session.cfg.check_name,
                  tampered=tampered, evidence_error=evidence_error)


def exit_code(session: Session, end: Ending) -> int:
    """1 if a row of ``EXIT_RULES`` applies (its one ``::error``), else 0."""
    applying = [rule for rule in EXIT_RULES if rule.applies(end)]
    for i, rule in enumerate(applying):
        log = session.log.error if i == 0 else session.log.warning
        log(rule.message(end), title=f"LoopForge: {rule.title}")
    if not applying and end.blocked:  # a plain log line: an annotation on every CI failure would be noise
        session.log.info("LoopForge: " + clean_text(_blocked(end), limit=600) + "; the check run carries the "
                         "block, this job does not fail")
    return 1 if applying else 0
