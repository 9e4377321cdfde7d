"""Shared helpers for the report tests (their fixtures are in conftest.py): a small store whose figures are known
by hand, the demo run's files, and how Chromium is launched."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from loopforge import LoopService, LoopState
from loopforge.repository.base import Repository

S = LoopState
T0 = datetime(2026, 9, 7, 9, 0, tzinfo=UTC)  # a Monday
H = timedelta(hours=1)


def walk(service: LoopService, ref: str, start: datetime, steps: list[tuple[LoopState, float]], *,
         state: LoopState = S.ISSUE_CREATED, observe_last: bool = False, rule: str | None = None) -> str:
    """A record created at ``start`` that moves through ``steps`` ((state, hours after start), in order)."""
    record = service.create(ref=ref, repo=ref.split("#")[0], state=state, occurred_at=start)
    for i, (target, hours) in enumerate(steps):
        at = start + hours * H
        if observe_last and i == len(steps) - 1:
            from loopforge.service import Veto

            service.observe(record.record_id, target, "pull_request.closed", occurred_at=at,
                            violations=[Veto(rule=rule or "policy:x", reason="merged while blocked")])
        else:
            result = service.transition(record.record_id, target, f"to.{target.value}", occurred_at=at)
            assert result.success, result.error
    return record.record_id


def known_store(repository: Repository) -> Repository:
    """Four records with figures worked out by hand in test_report_data.py."""
    service = LoopService(repository=repository)
    # a: issue -> PR -> CI fails, retried, passes -> approved -> merged -> closed
    walk(service, "o/r#1", T0, [(S.TASK_QUEUED, 2), (S.PR_CREATED, 10), (S.CI_PENDING, 11), (S.CI_FAILED, 12),
                                (S.CI_PENDING, 14), (S.CI_PASSED, 15), (S.APPROVED, 20), (S.MERGED, 22),
                                (S.CLOSED, 23)])
    # b: a PR of its own (no issue), CI passes, merged while a rule forbade it (a violation), week 2
    walk(service, "o/r#2", T0 + 7 * 24 * H, [(S.CI_PENDING, 1), (S.CI_PASSED, 2), (S.MERGED, 6)],
         state=S.PR_CREATED, observe_last=True, rule="policy:needs-review")
    # c: issue closed as not planned
    walk(service, "o/r#3", T0 + 24 * H, [(S.NOT_PLANNED, 48)])
    # d: another repository: PR, CI fails twice (two retries), abandoned
    walk(service, "x/y#4", T0 + 2 * 24 * H, [(S.CI_PENDING, 1), (S.CI_FAILED, 2), (S.CI_PENDING, 3),
                                            (S.CI_FAILED, 4), (S.CI_PENDING, 5), (S.PR_ABANDONED, 9)],
         state=S.PR_CREATED)
    return repository


@dataclass
class DemoRun:
    folder: Path
    db: Path
    html: Path
    check_run: Path
    out: str
    code: int


CHROMIUM = "/usr/bin/chromium"
#: headless Chromium on a closed network: no background connections (they would be refused, noisily)
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-default-apps", "--disable-extensions"]
