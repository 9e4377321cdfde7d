"""What the report shows, computed from a store through the ``Repository`` protocol (``query`` + ``entries``).

Pure Python, no chart library: ``collect`` reads every record matching the filters once (heads page by page,
then each record's entries), folds each trail into a ``RecordFacts`` and keeps the entries only of the newest
``details`` records (the ones the page shows in full). Memory and time are linear in the number of entries.

Definitions (the page states them too):

* **reached**: the states a record's trail moved into (``loopforge.paths``); the funnel counts records per state.
* **lead time issue → merge**: first entry of a record created as an issue → the entry that moved it to
  ``merged``; **PR → merge**: the first entry into ``pr_created``/``pr_draft`` → ``merged``. Event times
  (``occurred_at``).
* **time in state**: for every move, the time until the next move, credited to the state it left; states that
  end a record's work (merged, closed, not planned, abandoned) and the current, unfinished stay are not counted.
* **CI failure rate**: CI results that moved a record to ``ci_failed`` over all that moved it to ``ci_failed``
  or ``ci_passed``; **retries**: moves ``ci_failed → ci_pending`` (a re-run or a new push after a failure).
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from loopforge.paths import PathCounts, moved
from loopforge.records import RecordHead, fold_path
from loopforge.repository.base import RecordQuery, Repository, all_pages
from loopforge.states import LoopState
from loopforge.trail import LoopTransition, Outcome

S = LoopState
#: States where a record's work is over: no "time spent" is counted in them.
RESTING = frozenset({S.MERGED, S.CLOSED, S.NOT_PLANNED, S.PR_ABANDONED})
#: Lifecycle order for the funnel and the time-in-state chart.
ORDER: tuple[LoopState, ...] = (S.ISSUE_CREATED, S.TASK_QUEUED, S.PR_DRAFT, S.PR_CREATED, S.CI_PENDING,
                                S.CI_FAILED, S.CI_PASSED, S.AWAITING_REVIEW, S.CHANGES_REQUESTED, S.APPROVED,
                                S.MERGED, S.PR_ABANDONED, S.CLOSED, S.NOT_PLANNED)

#: wraps the stream of heads as they are read (e.g. a terminal progress bar); must yield them unchanged
Wrap = Callable[[Iterable[RecordHead]], Iterable[RecordHead]]


@dataclass
class Violation:
    at: datetime
    rule: str
    record_id: str
    sequence: int


@dataclass
class RecordFacts:
    """One record folded for the report."""

    head: RecordHead
    path: PathCounts = field(default_factory=dict)
    reached: set[LoopState] = field(default_factory=set)
    started_at: datetime | None = None
    last_event_at: datetime | None = None
    issue_opened_at: datetime | None = None
    pr_opened_at: datetime | None = None
    merged_at: datetime | None = None
    ci_failed: int = 0
    ci_passed: int = 0
    retries: int = 0
    entries_count: int = 0
    time_in_state: dict[LoopState, float] = field(default_factory=dict)  # seconds, summed per state
    violations: list[Violation] = field(default_factory=list)
    entries: list[LoopTransition] | None = None  # kept for the records shown in full

    @property
    def issue_to_merge(self) -> float | None:
        if self.issue_opened_at is None or self.merged_at is None:
            return None
        return max(0.0, (self.merged_at - self.issue_opened_at).total_seconds())

    @property
    def pr_to_merge(self) -> float | None:
        if self.pr_opened_at is None or self.merged_at is None:
            return None
        return max(0.0, (self.merged_at - self.pr_opened_at).total_seconds())


def fold(head: RecordHead, entries: Iterable[LoopTransition], keep: bool = False) -> RecordFacts:
    facts = RecordFacts(head=head, entries=[] if keep else None)
    last_move: tuple[LoopState, datetime] | None = None
    for entry in entries:
        facts.entries_count += 1
        facts.last_event_at = entry.occurred_at
        if facts.entries is not None:
            facts.entries.append(entry)
        if entry.outcome is Outcome.VIOLATION:
            facts.violations.append(Violation(entry.occurred_at, entry.rule or "lifecycle", head.record_id,
                                              entry.sequence))
        if not moved(entry):
            continue
        facts.path = fold_path(facts.path, entry) or {}
        to, at = entry.to_state, entry.occurred_at
        facts.reached.add(to)
        if entry.from_state is None:
            facts.started_at = at
            if to is S.ISSUE_CREATED:
                facts.issue_opened_at = at
        if to in (S.PR_CREATED, S.PR_DRAFT) and facts.pr_opened_at is None:
            facts.pr_opened_at = at
        if to is S.MERGED and facts.merged_at is None:
            facts.merged_at = at
        if to is S.CI_FAILED:
            facts.ci_failed += 1
        elif to is S.CI_PASSED:
            facts.ci_passed += 1
        if entry.from_state is S.CI_FAILED and to is S.CI_PENDING:
            facts.retries += 1
        if last_move is not None and last_move[0] not in RESTING:
            spent = max(0.0, (at - last_move[1]).total_seconds())
            facts.time_in_state[last_move[0]] = facts.time_in_state.get(last_move[0], 0.0) + spent
        last_move = (entry.state_after, at)
    return facts


@dataclass
class ReportData:
    """Everything the page draws, computed once."""

    records: list[RecordFacts]  # newest first (by head.updated_at)
    generated_at: datetime
    since: datetime | None = None
    repo: str | None = None
    details: int = 0  # how many of ``records`` keep their entries

    # ------------------------------------------------------------------------------------ aggregates
    @property
    def total_entries(self) -> int:
        return sum(r.entries_count for r in self.records)

    def funnel(self) -> list[tuple[LoopState, int]]:
        counts: Counter[LoopState] = Counter()
        for r in self.records:
            counts.update(r.reached)
        return [(s, counts[s]) for s in ORDER if counts[s]]

    def lead_times(self) -> list[tuple[str, datetime, float]]:
        """(kind, merged at, hours) per merged record and kind."""
        out: list[tuple[str, datetime, float]] = []
        for r in self.records:
            if r.merged_at is None:
                continue
            for kind, seconds in (("issue → merge", r.issue_to_merge), ("PR → merge", r.pr_to_merge)):
                if seconds is not None:
                    out.append((kind, r.merged_at, seconds / 3600))
        return out

    def lead_time_trend(self) -> list[tuple[str, date, float, int]]:
        """(kind, week starting, median hours, merges) per kind and ISO week of the merge."""
        groups: dict[tuple[str, date], list[float]] = defaultdict(list)
        for kind, at, hours in self.lead_times():
            groups[(kind, week_of(at))].append(hours)
        return [(kind, week, statistics.median(values), len(values))
                for (kind, week), values in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0]))]

    def time_in_state(self) -> list[tuple[LoopState, float, float, int]]:
        """(state, median hours, 90th percentile hours, records) for each state where time was spent."""
        per_state: dict[LoopState, list[float]] = defaultdict(list)
        for r in self.records:
            for state, seconds in r.time_in_state.items():
                per_state[state].append(seconds / 3600)
        return [(s, statistics.median(v), percentile(v, 0.9), len(v)) for s in ORDER if (v := per_state.get(s))]

    def ci_weekly(self) -> list[tuple[date, float, int]]:
        """(week, failure rate, CI results) per ISO week of the record's start."""
        failed: Counter[date] = Counter()
        results: Counter[date] = Counter()
        for r in self.records:
            if r.started_at is None or not (r.ci_failed or r.ci_passed):
                continue
            week = week_of(r.started_at)
            failed[week] += r.ci_failed
            results[week] += r.ci_failed + r.ci_passed
        return [(w, failed[w] / results[w], results[w]) for w in sorted(results)]

    def ci_totals(self) -> tuple[int, int]:
        """(failed, all) CI results over every record."""
        return (sum(r.ci_failed for r in self.records), sum(r.ci_failed + r.ci_passed for r in self.records))

    def retries_histogram(self) -> list[tuple[int, int]]:
        """(retries, PRs with that many) over records that saw CI."""
        counts = Counter(r.retries for r in self.records if r.ci_failed or r.ci_passed)
        return sorted(counts.items())

    def weeks(self) -> list[date]:
        """Every ISO week from the first record's start to the last event (the time axis of weekly charts)."""
        starts = [r.started_at for r in self.records if r.started_at is not None]
        ends = [r.last_event_at for r in self.records if r.last_event_at is not None]
        if not starts or not ends:
            return []
        week, last = week_of(min(starts)), week_of(max(ends))
        out = []
        while week <= last:
            out.append(week)
            week += timedelta(weeks=1)
        return out

    def violations(self) -> list[Violation]:
        return sorted((v for r in self.records for v in r.violations), key=lambda v: v.at)

    def violations_weekly(self, top: int = 5) -> list[tuple[date, str, int]]:
        """(week, rule, count); rules beyond the ``top`` most frequent are grouped as "other rules"."""
        found = self.violations()
        frequent = {rule for rule, _ in Counter(v.rule for v in found).most_common(top)}
        counts: Counter[tuple[date, str]] = Counter()
        for v in found:
            counts[(week_of(v.at), v.rule if v.rule in frequent else "other rules")] += 1
        return [(week, rule, n) for (week, rule), n in sorted(counts.items())]


def week_of(at: datetime) -> date:
    """The Monday of ``at``'s ISO week (UTC)."""
    day = at.date()
    return day - timedelta(days=day.weekday())


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = q * (len(ordered) - 1)
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def collect(repository: Repository, *, since: datetime | None = None, repo: str | None = None,
            details: int = 200, now: datetime, wrap: Wrap | None = None) -> ReportData:
    """Read every record matching ``since``/``repo`` (by ``updated_at``, newest first) and fold it."""
    query = RecordQuery(since=since, repo=repo, limit=1000)
    records: list[RecordFacts] = []
    heads: Iterable[RecordHead] = all_pages(repository, query)
    for head in wrap(heads) if wrap is not None else heads:
        keep = len(records) < details
        records.append(fold(head, repository.entries(head.record_id), keep=keep))
    return ReportData(records=records, generated_at=now, since=since, repo=repo, details=min(details, len(records)))
