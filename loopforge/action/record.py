"""Step 6 — record: the event's entries through ``loopforge.github.recorder.record_event`` (idempotent per
workflow run), then the policy evaluation that decided the gate.

A read-only token (a pull request from a fork) cannot write the data branch: that is a warning and exit 0, since
the ``workflow_run`` of the PR's CI records the same facts with a write token.
"""

from __future__ import annotations

from typing import Any

from github import GithubException

from loopforge.action.errors import github_call
from loopforge.action.facts import Facts
from loopforge.action.govern import Gate
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
from loopforge.states import LoopState


def record(session: Session, service: LoopService, event: Event, routed: Route) -> Recorded | None:
    """The recorded step, or None when the token is read-only (warned here)."""
    try:
        with github_call("reading or writing the record"):
            recorded = record_event(service, event, routed, session.cfg.run, check_name=session.cfg.check_name)
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
                  facts: Facts, *, gate: Gate | None = None) -> LoopRecord:
    """Put the evaluation in the trail when the plan says so, in one entry: the policy's (what approved it, what
    blocked it: ``policy.evaluated``) and the verdict the check shows for ``plan.check_sha``, kept per SHA in
    ``metadata.gate`` so that a merge of that commit is judged against it without reading the trail
    (``gate.evaluated`` when there is no policy: only for a merge group). The record as it is now."""
    from loopforge.github.merge_judgement import gate_verdict, with_verdict

    record_ = recorded.record
    assert record_ is not None
    key = f"gh:{session.cfg.run.run_id}:{event.kind}#policy"
    governance = facts.governance
    evaluation = governance.evaluation if governance is not None and plan.record_policy else None
    sha = plan.check_sha
    entry: dict[str, Any] | None = None
    patch: dict[str, Any] | None = None
    if plan.keep_verdict and gate is not None and sha is not None and record_.state is not LoopState.MERGED:
        entry = gate_verdict(gate.verdict, [(r.rule, r.status) for r in gate.view.rows],
                             kind="merge_group" if event.name == "merge_group" else "head",
                             at=event.occurred_at.isoformat(),
                             policy_sha256=evaluation.policy_digest if evaluation else None,
                             policy_commit=governance.at if governance and governance.at_commit else None,
                             run_url=session.cfg.run.run_url(session.repo_name))
        patch = with_verdict(record_.metadata, sha, entry)
    if evaluation is not None:
        noted = service.note(record_.record_id, "policy.evaluated",
                             reason=f"{evaluation.verdict}: {evaluation.reason}"[:500],
                             evidence={"policy": evaluation.as_dict(),
                                       **({"gate": {"sha": sha, **entry}} if entry else {})},
                             metadata={**evaluation.record_metadata(), **(patch or {})}, idempotency_key=key,
                             actor=event.actor)
    elif patch is not None and entry is not None and sha is not None:
        noted = service.note(record_.record_id, "gate.evaluated", reason=f"{entry['verdict']} on {sha[:12]}",
                             evidence={"gate": {"sha": sha, **entry}}, metadata=patch, idempotency_key=key,
                             actor=event.actor)
    else:
        return record_
    recorded.entries += noted.entries  # what this run wrote, the note too (the evidence reads no trail back)
    return noted.record or record_  # the record after the note (or, for a duplicate, as stored): no second read
