"""Concurrent writers on every store, at a small scale (benchmarks/load.py runs the same at full scale).

16 writer processes x 10 calls on ONE record and spread over 100 records, for SQLite (a WAL file) and DynamoDB
(moto's server, one request at a time); 8 writer threads x 5 calls on one record and over 25 records for the
branch store against the fake GitHub.
After each run the store is read back independently of the benchmark's own check: every call is exactly one
entry (by its idempotency key) on the record it named, sequences are 1..n, every hash chain verifies. On one
record the writers must really have collided (conflict retries > 0). No timing assertions: the machine is shared.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks import load
from tests.dynamo_server import CLEARED_AWS_ENV, DUMMY_AWS_ENV

WRITERS = 16
CALLS = 10
BRANCH_WRITERS = 8
BRANCH_CALLS = 5
BRANCH_RECORDS = 25  # the branch store's "spread" scenario: reading 100 records back through the fake is slow


@pytest.fixture(scope="module")
def aws() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        for name in CLEARED_AWS_ENV:
            mp.delenv(name, raising=False)
        for name, value in DUMMY_AWS_ENV.items():
            mp.setenv(name, value)
        yield


@pytest.fixture(scope="module")
def pool(aws: None) -> Iterator[load.ProcessWriters]:
    writers = load.ProcessWriters(WRITERS, dict(DUMMY_AWS_ENV))
    yield writers
    writers.close()


@pytest.fixture(scope="module")
def dynamodb_url(aws: None) -> Iterator[str]:
    with load.dynamodb_server() as url:
        yield url


def assert_exactly_once(row: load.Row, writers: int, calls: int) -> None:
    """Read the store back (without ``load.check``) and check every call left exactly one entry."""
    repository = load.open_store(row.location)
    rids = load.record_ids(row.scenario, row.records)
    planned = {key: rid for calls_ in load.plan(writers, calls, rids) for key, rid, _op in calls_}
    assert len(planned) == writers * calls == row.calls
    where: dict[str, list[str]] = {}
    total = 0
    for rid in rids:
        entries = list(repository.entries(rid))
        total += len(entries)
        assert [e.sequence for e in entries] == list(range(1, len(entries) + 1)), rid
        assert entries[0].idempotency_key == "setup:create"
        for e in entries[1:]:
            assert e.idempotency_key is not None
            where.setdefault(e.idempotency_key, []).append(rid)
        report = load.verify(repository, rid, entries)  # what service.verify does, on the entries read here
        assert report.ok, (rid, [str(p) for p in report.problems])
    assert total == len(rids) + writers * calls
    assert {key: rids_[0] for key, rids_ in where.items()} == planned  # nothing lost, nothing misplaced
    assert Counter(len(v) for v in where.values()) == Counter({1: writers * calls})  # nothing duplicated
    # the benchmark's own check agrees
    assert row.check.ok, row.check.problems
    assert (row.check.lost, row.check.duplicated, row.check.gave_up, row.check.recorded) == (0, 0, 0, row.calls)
    close = getattr(repository, "close", None)
    if close is not None:
        close()


def assert_contention(row: load.Row) -> None:
    if row.scenario == "one record":
        assert row.conflicts > 0, "the writers never collided: the test did not test concurrency"


@pytest.mark.parametrize("scenario", load.SCENARIOS)
def test_sqlite_processes(scenario: str, pool: load.ProcessWriters, tmp_path: Path) -> None:
    row = load.run(load.sqlite_store(tmp_path), scenario, CALLS, pool=pool)
    print(load.table([row]))
    assert_exactly_once(row, WRITERS, CALLS)
    assert_contention(row)


@pytest.mark.parametrize("scenario", load.SCENARIOS)
def test_dynamodb_processes(scenario: str, pool: load.ProcessWriters, dynamodb_url: str) -> None:
    store = load.dynamodb_store(dynamodb_url)
    row = load.run(store, scenario, CALLS, pool=pool)
    print(load.table([row]))
    assert_exactly_once(row, WRITERS, CALLS)
    assert_contention(row)
    load.drop_dynamodb_table(store)


@pytest.mark.parametrize("scenario", load.SCENARIOS)
def test_branch_threads(scenario: str) -> None:
    with load.fake_github() as (fake, url, full_name):
        row = load.run({"kind": "branch", "url": url, "repo": full_name}, scenario, BRANCH_CALLS,
                       writers=BRANCH_WRITERS, records=BRANCH_RECORDS)
        print(load.table([row]))
        assert_exactly_once(row, BRANCH_WRITERS, BRANCH_CALLS)
        assert_contention(row)
        # the branch's root commit, then one commit per append, each on the previous tip: nothing force-pushed
        log = fake.branch_log("loopforge-state")
        assert len(log) == 1 + row.records + BRANCH_WRITERS * BRANCH_CALLS
    assert not fake.violations and not fake.errors


def test_writers_really_run_apart(pool: load.ProcessWriters, tmp_path: Path) -> None:
    """Each writer of a run is its own process (SQLite and DynamoDB), not this one."""
    store = load.sqlite_store(tmp_path)
    rids = load.record_ids("one record")
    load.setup_records(load.open_store(store), rids)
    reports = pool.run(store, load.plan(WRITERS, 2, rids))
    assert len({r["pid"] for r in reports}) == WRITERS and os.getpid() not in {r["pid"] for r in reports}


def test_the_benchmark_command_quick(tmp_path: Path, aws: None) -> None:
    """``benchmarks/load.py --quick`` (here with 4 writers, SQLite only, to stay fast) prints the table and JSON."""
    out = tmp_path / "load.json"
    code = load.main(["--quick", "--stores", "sqlite", "--writers", "4", "--json", str(out)])
    assert code == 0
    figures: dict[str, Any] = json.loads(out.read_text())
    assert [(r["store"], r["scenario"]) for r in figures["rows"]] == [("sqlite", s) for s in load.SCENARIOS]
    for r in figures["rows"]:
        assert r["calls"] == 4 * 5 and r["check"]["ok"] and r["check"]["lost"] == 0 and r["check"]["duplicated"] == 0
