"""The report's figures, on a store whose answers are worked out by hand (tests/report/conftest.py)."""

from __future__ import annotations

from datetime import date

import pytest

from loopforge import LoopState
from loopforge.paths import edges, path_of
from loopforge.report.data import collect, percentile, week_of
from loopforge.repository.base import Repository
from tests.report.helpers import T0

S = LoopState


def test_funnel_counts_records_that_reached_each_state(known: Repository) -> None:
    data = collect(known, now=T0, details=10)
    funnel = dict(data.funnel())
    assert funnel == {S.ISSUE_CREATED: 2, S.TASK_QUEUED: 1, S.PR_CREATED: 3, S.CI_PENDING: 3, S.CI_FAILED: 2,
                      S.CI_PASSED: 2, S.APPROVED: 1, S.MERGED: 2, S.PR_ABANDONED: 1, S.CLOSED: 1,
                      S.NOT_PLANNED: 1}
    assert [s for s, _ in data.funnel()][:3] == [S.ISSUE_CREATED, S.TASK_QUEUED, S.PR_CREATED]  # lifecycle order


def test_lead_times(known: Repository) -> None:
    data = collect(known, now=T0)
    got = sorted((kind, round(hours, 3)) for kind, _, hours in data.lead_times())
    # o/r#1: issue at 0 h, PR at 10 h, merged at 22 h; o/r#2: PR at 0 h (its creation), merged at 6 h
    assert got == [("PR → merge", 6.0), ("PR → merge", 12.0), ("issue → merge", 22.0)]
    trend = {(kind, week): (median, n) for kind, week, median, n in data.lead_time_trend()}
    assert trend == {("issue → merge", date(2026, 9, 7)): (22.0, 1), ("PR → merge", date(2026, 9, 7)): (12.0, 1),
                     ("PR → merge", date(2026, 9, 14)): (6.0, 1)}


def test_time_in_state(known: Repository) -> None:
    data = collect(known, now=T0)
    rows = {s: (round(m, 3), round(p, 3), n) for s, m, p, n in data.time_in_state()}
    # ci_pending: o/r#1 1 h + 1 h = 2 h; o/r#2 1 h; x/y#4 1 + 1 + 4 = 6 h -> median 2, p90 between 2 and 6
    assert rows[S.CI_PENDING] == (2.0, round(2 + 0.8 * 4, 3), 3)
    assert rows[S.CI_FAILED] == (2.0, 2.0, 2)  # per record, summed: o/r#1 14 - 12 = 2 h; x/y#4 (3 - 2) + (5 - 4)
    assert rows[S.ISSUE_CREATED] == (25.0, 43.4, 2)  # o/r#1: 2 h; o/r#3: 48 h; p90 = 2 + 0.9 * 46
    assert S.MERGED not in rows and S.CLOSED not in rows and S.NOT_PLANNED not in rows  # work is over there


def test_ci_failures_and_retries(known: Repository) -> None:
    data = collect(known, now=T0)
    assert data.ci_totals() == (3, 5)  # failed: 1 (o/r#1) + 2 (x/y#4); passed: o/r#1, o/r#2
    assert data.retries_histogram() == [(0, 1), (1, 1), (2, 1)]
    weekly = {week: (round(rate, 3), n) for week, rate, n in data.ci_weekly()}
    assert weekly == {date(2026, 9, 7): (0.75, 4), date(2026, 9, 14): (0.0, 1)}


def test_violations_over_time(known: Repository) -> None:
    data = collect(known, now=T0)
    assert [(v.record_id, v.rule) for v in data.violations()] == [("o/r#2", "policy:needs-review")]
    assert data.violations_weekly() == [(date(2026, 9, 14), "policy:needs-review", 1)]
    assert data.weeks() == [date(2026, 9, 7), date(2026, 9, 14)]


def test_filters_and_details(known: Repository) -> None:
    data = collect(known, repo="x/y", now=T0)
    assert [r.head.record_id for r in data.records] == ["x/y#4"]
    data = collect(known, details=2, now=T0)
    assert len(data.records) == 4 and data.details == 2
    assert [r.entries is not None for r in data.records] == [True, True, False, False]
    assert data.total_entries == sum(len(list(known.entries(r.head.record_id))) for r in data.records)


def test_path_counts_only_moves() -> None:
    from loopforge import LoopService
    from loopforge.repository import MemoryRepository

    service = LoopService(repository=MemoryRepository())
    rid = service.create(ref="o/r#9", repo="o/r").record_id
    service.transition(rid, S.MERGED, "nope")  # rejected: not an edge
    service.note(rid, "a note")  # noted: not an edge
    service.transition(rid, S.TASK_QUEUED, "go")
    path = path_of(service.repository.entries(rid))
    assert path == {">issue_created": {"taken": 1, "violations": 0},
                    "issue_created>task_queued": {"taken": 1, "violations": 0}}
    assert [(e.source, e.target, e.taken) for e in edges(path)] == [(None, S.ISSUE_CREATED, 1),
                                                                    (S.ISSUE_CREATED, S.TASK_QUEUED, 1)]


@pytest.mark.parametrize(("values", "q", "expected"), [([5.0], 0.9, 5.0), ([1.0, 2.0, 3.0, 4.0], 0.5, 2.5),
                                                       ([0.0, 10.0], 0.9, 9.0)])
def test_percentile(values: list[float], q: float, expected: float) -> None:
    assert percentile(values, q) == pytest.approx(expected)


def test_week_of() -> None:
    assert week_of(T0.replace(day=13)) == date(2026, 9, 7)  # Sunday -> its Monday
    assert week_of(T0.replace(day=14)) == date(2026, 9, 14)
