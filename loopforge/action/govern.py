"""Step 5 — govern: the service with the policy's guards (they run before anything is stored), and after
recording, the merge gate: may the PR merge now, and if not, why (rule by rule, ``Veto.source`` says whose)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from loopforge.action.facts import Facts
from loopforge.action.session import Session
from loopforge.github.integrity import integrity_of
from loopforge.github.recorder import Recorded
from loopforge.github.render import GateRow, GateView, StaleApproval
from loopforge.records import LoopRecord
from loopforge.service import LoopService, Veto
from loopforge.states import OPEN_PR_STATES, PENDING_PR_STATES, LoopState

#: The gate row of a record whose trail was changed outside LoopForge (its own ``::error``: see ``exit``).
AUDIT_TRAIL_ROW = "audit trail"


@dataclass
class Gate:
    view: GateView
    verdict: str  # pass / block / none
    failed: bool  # blocked by a failing rule (not merely pending)
    vetoes: list[Veto]

    def failing_rules(self) -> list[str]:
        return [r.rule for r in self.view.rows if r.status == "failed"]


def govern(session: Session, facts: Facts) -> LoopService:
    guards = facts.governance.guards if facts.governance else []
    return LoopService(repository=session.store, guards=guards)


def judge(service: LoopService, recorded: Recorded, facts: Facts, *, queue: bool = False) -> Gate | None:
    """The gate of the PR after this event: the dry run of ``merged`` while it is open; the policy as it stood
    at the merge for a merge recorded now; None otherwise. ``queue``: the final verdict for a merge group. A
    record whose trail was changed outside LoopForge blocks (its facts cannot be trusted)."""
    record = recorded.record
    assert record is not None
    governance = facts.governance
    gate = evaluate_gate(service, record, lambda: governance.rows() if governance else [],
                         lambda: governance.note() if governance else None,
                         lambda: governance.stale() if governance else [])
    if gate is None and record.state is LoopState.MERGED and recorded.outcome != "duplicate":
        gate = merged_gate(facts)
    if queue:
        gate = queue_gate(gate, record)
    broken = integrity_of(record.metadata)
    if broken is not None:
        gate = with_integrity_row(gate, broken)
    return gate


def queue_gate(gate: Gate | None, record: LoopRecord) -> Gate:
    """The verdict posted on a merge group's head: final (the queue waits for it and nothing re-evaluates a
    group later), so a pending rule blocks; a record that is not an open PR blocks with the lifecycle's reason."""
    if gate is None:
        row = GateRow(rule="lifecycle", status="failed",
                      reason=f"the PR is {record.state.value}; only an open PR that may merge can be queued")
        return Gate(GateView(verdict="block", rows=[row]), "block", True, [])
    if gate.view.verdict == "pending":
        note = " ".join(filter(None, [gate.view.note, "The merge queue needs a final answer: pending rules block "
                                                      "the group."]))
        return Gate(gate.view.model_copy(update={"verdict": "block", "note": note}), "block", gate.failed,
                    gate.vetoes)
    return gate


def with_integrity_row(gate: Gate | None, broken: dict[str, Any]) -> Gate | None:
    """A failed ``audit trail`` row first: the record's trail was changed outside LoopForge."""
    if gate is None:
        return None
    first = broken.get("first_bad")
    row = GateRow(rule=AUDIT_TRAIL_ROW, status="failed",
                  reason=f"changed outside LoopForge at {f'entry {first}' if first is not None else 'its files'}: "
                         f"{str(broken.get('problem'))[:300]}")
    return Gate(gate.view.model_copy(update={"verdict": "block", "rows": [row, *gate.view.rows]}), "block", True,
                gate.vetoes)


def evaluate_gate(service: LoopService, record: LoopRecord,
                  policy_rows: Callable[[], list[GateRow]] = list,
                  note: Callable[[], str | None] = lambda: None,
                  stale: Callable[[], list[StaleApproval]] = list) -> Gate | None:
    """The dry run of ``merged`` for an open PR: may it merge now, and if not, why (rule by rule)."""
    if record.state not in OPEN_PR_STATES:
        return None
    check = service.check(record.record_id, LoopState.MERGED, "gate")
    rows = list(policy_rows())  # read after the check: the policy guard evaluated during it
    for veto in check.vetoes:
        if veto.source == "lifecycle":
            rows.insert(0, _lifecycle_row(record, veto))
        elif veto.source != "policy" and not any(r.rule == veto.rule for r in rows):
            rows.append(GateRow(rule=veto.rule, status="failed", reason=veto.reason))  # policy: shown rule by rule
    if check.allowed and not any(r.rule == "lifecycle" for r in rows):
        rows.insert(0, GateRow(rule="lifecycle", status="passed", reason=f"{record.state.value} may merge"))
    failed = any(r.status == "failed" for r in rows)
    pending = any(r.status == "pending" for r in rows)
    shown = "pass" if check.allowed and not failed and not pending else ("block" if failed else "pending")
    return Gate(GateView(verdict=shown, rows=rows, note=note(), stale=stale()), "pass" if shown == "pass" else "block",
                failed, check.vetoes)


def _lifecycle_row(record: LoopRecord, veto: Veto) -> GateRow:
    if record.state in PENDING_PR_STATES:
        return GateRow(rule="lifecycle", status="pending", reason=f"the PR is {record.state.value}; it may merge "
                                                                  f"from ci_passed, awaiting_review or approved")
    return GateRow(rule="lifecycle", status="failed", reason=veto.reason)


def merged_gate(facts: Facts) -> Gate | None:
    """The policy as it stood when the merge was recorded (evaluated while observing ``merged``), so the check
    run of a merge that broke the policy keeps its rule-by-rule table; None without a policy."""
    governance = facts.governance
    if governance is None or (governance.evaluation is None and not governance.error):
        return None
    evaluation = governance.evaluation
    rows = governance.rows()
    verdict = "block" if governance.error or evaluation is None or not evaluation.passed else "pass"
    note = " ".join(filter(None, [governance.note(), "Evaluated when the merge was recorded."]))
    return Gate(GateView(verdict=verdict, rows=rows, note=note, stale=governance.stale()), verdict,
                any(r.status == "failed" for r in rows), [])
