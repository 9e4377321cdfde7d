"""The Action's pipeline, step by step; each step is a module of this package.

``handle`` reads like the table of contents: read event (in ``run``) → route → load facts → plan → govern →
record → report → exit code. Data only flows forward: each step takes what earlier steps returned.

On the branch store, load facts is one GraphQL read and record (with the policy evaluation) is one commit
(``Session.one_write``): if another run changed the same record in between, that commit is refused and the
steps from load facts on run again on what is stored now, after a jittered backoff; like ``LoopService``, a run
that keeps losing gives up (``ConcurrencyError``, "Store busy") only after both ``REDO_ATTEMPTS`` tries and
``REDO_SECONDS``.
"""

from __future__ import annotations

import itertools
import random
import time

from loopforge.action.attest import attest
from loopforge.action.config import Config
from loopforge.action.exit import ending, exit_code
from loopforge.action.facts import load_facts
from loopforge.action.govern import govern, judge
from loopforge.action.plan import plan_run
from loopforge.action.record import read_only, record, record_policy, warn_read_only
from loopforge.action.report import Report, report
from loopforge.action.route import ignored, route_event
from loopforge.action.session import open_session
from loopforge.errors import ConcurrencyError, StoreError
from loopforge.github.events import Event
from loopforge.github.workflow_commands import Log

#: a run whose commit keeps losing to other runs of the same record gives up after both of these
REDO_ATTEMPTS = 60
REDO_SECONDS = 60.0


def handle(cfg: Config, event: Event, log: Log, outputs: dict[str, str]) -> int:
    """One event, after it was read: the exit code of the step (exceptions go to ``errors.report_failure``)."""
    session = open_session(cfg, event, log, outputs)
    routed = route_event(session, event)
    if routed is None:
        return ignored(session, event)
    started = time.monotonic()
    flagged: list[str] = []  # records found changed outside LoopForge (kept across redos: flagged once)
    for attempt in itertools.count(1):
        facts = load_facts(session, routed, event)
        flagged += [line for line in facts.flagged if line not in flagged]
        plan = plan_run(cfg, routed, facts, event)
        service = govern(session, facts)
        try:
            with session.one_write():
                recorded = record(session, service, event, routed)
                if recorded is None:
                    return 0  # a read-only token: warned; the workflow_run of the PR's CI records it
                gate = judge(service, recorded, facts, queue=plan.queue) if plan.judge_gate else None
                current = record_policy(session, plan, service, event, recorded, facts, gate=gate)
        except ConcurrencyError:
            if attempt >= REDO_ATTEMPTS and time.monotonic() - started >= REDO_SECONDS:
                raise
            time.sleep(random.uniform(0, min(2.0, 0.05 * 2 ** min(attempt, 6))))
            continue
        except StoreError as exc:  # the one commit was refused: a read-only token is a warning, not a failure
            if not read_only(exc):
                raise
            warn_read_only(session, exc)
            return 0
        evidence = attest(session, plan, event, routed, current, written=recorded.entries)
        report(session, plan, Report(routed, recorded, current, gate, facts, event, evidence.summary or None))
        return exit_code(session, ending(session, plan, recorded, gate, facts, flagged, evidence.error))
    raise AssertionError("unreachable")  # pragma: no cover
