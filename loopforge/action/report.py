"""Step 7 — report: the step outputs, one log line, the step summary and the check run on the PR head (on the
merge group's head for ``merge_group.checks_requested``: the commit the queue waits on).

The check run is what a required status check waits for; it shows the gate rule by rule and the newest
``HISTORY_ROWS`` entries (``loopforge history`` shows the whole trail).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from loopforge.action.errors import github_call
from loopforge.action.facts import Facts
from loopforge.action.govern import Gate
from loopforge.action.plan import Plan
from loopforge.action.session import Session
from loopforge.errors import ReadOnlyToken
from loopforge.github.checks import LOOKUP, CheckRunPoster
from loopforge.github.events import Event
from loopforge.github.integrity import describe as describe_integrity
from loopforge.github.integrity import integrity_of
from loopforge.github.recorder import Recorded, Route
from loopforge.github.render import SummaryView, check_run_output, render_summary
from loopforge.github.workflow_commands import append_summary
from loopforge.records import LoopRecord
from loopforge.text import clean_text

#: The check run shows the newest entries only: reading a long trail costs API requests on the branch store,
#: and 65,535 bytes hold about this many rows anyway. ``loopforge history`` shows the whole trail.
HISTORY_ROWS = 60


@dataclass(frozen=True)
class Report:
    routed: Route
    recorded: Recorded
    record: LoopRecord  # the record after every write of this run
    gate: Gate | None
    facts: Facts | None = None
    event: Event | None = None
    evidence: str | None = None  # one sentence about the merge's signed evidence (loopforge.evidence)


def report(session: Session, plan: Plan, result: Report) -> None:
    set_outputs(session, result)
    view = summary_view(session, plan, result)
    recorded, record = result.recorded, result.record
    before = recorded.previous_state.value if recorded.previous_state else "∅"
    session.log.info("LoopForge: " + clean_text(f"{record.record_id}: {before} → {record.state.value} "
                                                f"({recorded.outcome})", limit=300))
    append_summary(render_summary(view, max_bytes=1_000_000), path=session.cfg.summary_path)
    if plan.post_check and plan.check_sha is not None and result.routed.pr is not None:
        facts = result.facts
        known: dict[str, Any] | object | None = LOOKUP
        on_head = plan.check_sha == result.routed.pr.head.sha  # else a merge group's head
        group = result.event.merge_group if result.event is not None else None
        on_group = group is not None and plan.check_sha == group.head_sha
        if facts is not None and ((on_head and facts.check_run_known)
                                  or (on_group and facts.group_check_run_known)):  # the one read said
            run = facts.check_run if on_head else facts.group_check_run
            known = None if run is None else {"id": run.id, "status": run.status}
        post_check_run(session, plan.check_sha, view, known)


def set_outputs(session: Session, result: Report) -> None:
    recorded, record = result.recorded, result.record
    session.outputs.update({"record-id": record.record_id, "state": record.state.value,
                            "previous-state": recorded.previous_state.value if recorded.previous_state else "",
                            "outcome": recorded.outcome, "verdict": result.gate.verdict if result.gate else "none"})


def summary_view(session: Session, plan: Plan, result: Report) -> SummaryView:
    record, recorded, routed = result.record, result.recorded, result.routed
    messages: list[str] = []
    if recorded.outcome == "duplicate":
        messages.append("This workflow run was already recorded; nothing was written again.")
    if not plan.write:
        messages.append("Dry run: nothing was stored and no check run was posted.")
    broken = integrity_of(record.metadata)
    if broken is not None:
        messages.append(describe_integrity(record.record_id, broken))
    elif result.facts is not None and result.facts.tampered is not None:
        messages.append(result.facts.tampered.message(record.record_id))
    event = result.event
    if plan.queue and event is not None and event.merge_group is not None and event.queue is not None:
        group = event.merge_group
        messages.append(f"Merge queue: this verdict is for the merge group {group.head_sha[:12]} (PR "
                        f"#{event.queue.number} on {event.queue.base[:100]}, base {(group.base_sha or '?')[:12]}); "
                        f"the merge is judged against it.")
    if result.evidence:
        messages.append(result.evidence)
    first = max(0, record.last_sequence - HISTORY_ROWS)
    entries = list(session.store.entries(record.record_id, after=first))
    if first:
        shown_violations = sum(1 for e in entries if e.outcome.value == "violation")
        messages.append(f"Showing the newest {len(entries)} of {record.last_sequence} entries; run "
                        f"`loopforge history {record.record_id}` for the whole trail.")
        if record.violations > shown_violations:
            messages.append(f"{record.violations - shown_violations} earlier violation(s) are not shown here.")
    return SummaryView(record_id=record.record_id, title=routed.pr.title if routed.pr else None,
                       url=record.ref if record.ref.startswith("http") else None, state=record.state,
                       previous_state=recorded.previous_state, outcome=recorded.outcome, entries=entries,
                       gate=result.gate.view if result.gate else None, messages=messages,
                       run_url=session.cfg.run.run_url(session.repo_name),
                       # the path over the whole trail, kept in the head (RecordHead.path); None: from the entries
                       path=getattr(record, "path", None))


def post_check_run(session: Session, sha: str, view: SummaryView, known: Any = LOOKUP) -> None:
    """``known``: the run as the facts read it (``{"id", "status"}``), None (there is none: POST), or ``LOOKUP``."""
    cfg = session.cfg
    try:
        with github_call("posting the check run"):
            CheckRunPoster(session.gh, session.repo_name).post(sha, cfg.check_name, check_run_output(view),
                                                               details_url=cfg.run.run_url(session.repo_name),
                                                               existing=known)
    except ReadOnlyToken:
        session.log.warning("the token cannot write check runs (a pull request from a fork gets a read-only token); "
                            "the history is in this step's summary. Run LoopForge on workflow_run to report on fork "
                            "PRs.", title="LoopForge: check run not posted")
