"""Step 8 — attest: the signed evidence of a merge (``loopforge.evidence``), once the merge is recorded.

Runs only for ``pull_request.closed`` with ``merged: true`` on a run that writes, after the one write (outside the
redo loop), and on re-runs too: evidence is written once per merge commit, so a re-run that recorded nothing
still completes it. It never raises: a signer or store failure is one ``::error`` (the exit table's "evidence"
row), a skipped signature one ``::notice``.
"""

from __future__ import annotations

from collections.abc import Sequence

from loopforge.action.plan import Plan
from loopforge.action.session import Session
from loopforge.evidence.action_step import AttestStepOutcome, attest_step
from loopforge.evidence.facts import DEFAULT_POLICY_PATH
from loopforge.github.events import Event
from loopforge.github.recorder import Route
from loopforge.records import LoopRecord
from loopforge.states import LoopState
from loopforge.trail import LoopTransition


def attest(session: Session, plan: Plan, event: Event, routed: Route, record: LoopRecord, *,
           written: Sequence[LoopTransition] = ()) -> AttestStepOutcome:
    """The evidence of this merge, or an empty outcome when the event is not a recorded merge. ``written``: the
    entries this run wrote (the merge and its policy note: then the trail is not read back; a re-run that wrote
    nothing reads it)."""
    merged = (plan.write and event.kind == "pull_request.closed" and routed.pr is not None and routed.pr.merged
              and record.state is LoopState.MERGED)
    if not merged:
        return AttestStepOutcome()
    cfg = session.cfg
    outcome = attest_step(cfg.evidence_env, session.store, record.record_id, written=written,
                          server_url=cfg.run.server_url, policy_path=cfg.policy or DEFAULT_POLICY_PATH)
    if outcome.notice:
        session.log.notice(outcome.notice, title="LoopForge: evidence")
    return outcome
