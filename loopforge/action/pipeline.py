"""The Action's pipeline, step by step; each step is a module of this package.

``handle`` reads like the table of contents: read event (in ``run``) → route → check the data branch → load
facts → plan → govern → record → report → exit code. Data only flows forward: each step takes what earlier
steps returned.
"""

from __future__ import annotations

from loopforge.action.config import Config
from loopforge.action.exit import ending, exit_code
from loopforge.action.facts import load_facts
from loopforge.action.govern import govern, judge
from loopforge.action.integrity import check_data_branch
from loopforge.action.plan import plan_run
from loopforge.action.record import record, record_policy
from loopforge.action.report import Report, report
from loopforge.action.route import ignored, route_event
from loopforge.action.session import open_session
from loopforge.github.events import Event
from loopforge.github.workflow_commands import Log


def handle(cfg: Config, event: Event, log: Log, outputs: dict[str, str]) -> int:
    """One event, after it was read: the exit code of the step (exceptions go to ``errors.report_failure``)."""
    session = open_session(cfg, event, log, outputs)
    routed = route_event(session, event)
    if routed is None:
        return ignored(session, event)
    tampered = check_data_branch(session, event, routed.record_id)
    facts = load_facts(session, routed, event)
    plan = plan_run(cfg, routed, facts, event)
    service = govern(session, facts)
    recorded = record(session, service, event, routed)
    if recorded is None:
        return 0  # a read-only token: warned; the workflow_run of the PR's CI records it
    gate = judge(service, recorded, facts, queue=plan.queue) if plan.judge_gate else None
    current = recorded.record
    assert current is not None
    if plan.record_policy or plan.keep_verdict:
        current = record_policy(service, recorded, facts, f"gh:{cfg.run.run_id}:{event.kind}#policy", event,
                                gate=gate if plan.keep_verdict else None, sha=plan.check_sha,
                                run_url=cfg.run.run_url(session.repo_name))
    report(session, plan, Report(routed, recorded, current, gate, event))
    return exit_code(session, ending(session, plan, recorded, gate, facts, tampered))
