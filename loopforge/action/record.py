"""Step 6 — record: the event's entries through ``loopforge.github.recorder.record_event`` (idempotent per
workflow run), then the policy evaluation that decided the gate.

A read-only token (a pull request from a fork) cannot write the data branch: that is a warning and exit 0, since
the ``workflow_run`` of the PR's CI records the same facts with a write token.
"""

from __future__ import annotations

from github import GithubException

from loopforge.action.errors import github_call
from loopforge.action.facts import Facts
from loopforge.action.plan import Plan
from loopforge.action.session import Session
from loopforge.errors import ReadOnlyToken, StoreError
from loopforge.github.client import github_error
from loopforge.github.events import Event
from loopforge.github.recorder import Recorded, Route, record_event
from loopforge.github.render import md_escape
from loopforge.github.workflow_commands import append_summary
from loopforge.records import LoopRecord
from loopforge.service import LoopService


def record(session: Session, service: LoopService, event: Event, routed: Route) -> Recorded | None:
    """The recorded step, or None when the token is read-only (warned here)."""
    try:
        with github_call("reading or writing the record"):
            recorded = record_event(service, event, routed, session.cfg.run)
    except StoreError as exc:
        if not read_only(exc):
            raise
        warn_read_only(session, exc)
        return None
    recorded.route = routed
    return recorded


def warn_read_only(session: Session, exc: StoreError) -> None:
    session.log.warning("the token is read-only (a pull request from a fork gets one), so this event was not "
                        "recorded; the workflow_run event of its CI records it with a write token.",
                        title="LoopForge: read-only token")
    append_summary(f"## LoopForge\n\nNot recorded: read-only token. {md_escape(str(exc), limit=2000)}\n",
                   path=session.cfg.summary_path)


def read_only(exc: StoreError) -> bool:
    """The store refused a write because the token is read-only (its cause is, or translates to, ReadOnlyToken)."""
    cause = exc.__cause__
    if isinstance(cause, GithubException):
        cause = github_error(cause, "writing the record")
    return isinstance(cause, ReadOnlyToken)


def record_policy(session: Session, plan: Plan, service: LoopService, event: Event, recorded: Recorded,
                  facts: Facts) -> LoopRecord:
    """Put the policy evaluation (what approved it, what blocked it) in the trail when the plan says so; the
    record as it is now."""
    record_ = recorded.record
    assert record_ is not None
    if not plan.record_policy or facts.governance is None:
        return record_
    key = f"gh:{session.cfg.run.run_id}:{event.kind}#policy"
    facts.governance.record(service, record_.record_id, key, event.actor)
    return service.get(record_.record_id) or record_
