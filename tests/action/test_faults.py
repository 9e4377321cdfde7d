"""Faults (issue part 1): one fault at each request position of a whole lifecycle, then exactly-once.

The driver (``tests/faults.py``) runs the 8 real payloads of ``tests/fixtures/lifecycle`` through the Action
against a fake GitHub on 127.0.0.1, injects one fault at request N (counted over the whole lifecycle), re-runs
any workflow run that failed (same run id, next attempt) and checks that the store holds the 8 transitions
exactly once with an intact hash chain, that the check run on the PR head exists once with the right state
after every PR step, and that every failed run printed exactly one ``::error`` and no traceback.

Sampling, to keep this file under ~4 minutes on 2 cores (``benchmarks/faults.py`` runs every position of every
kind): ``SAMPLE`` gives, per kind, every how-many-th eligible position is run (from a fixed per-kind offset):
every position for reset-after (the fault that finds lost answers), 409 and 422 (they only answer writes, so
every write), every 4th for 502, every 8th for 500, 503, 403-secondary, 429, reset and the two outages, every
12th for time-outs (each costs the 1 s client timeout): about 420 scenarios. The sweep runs in 2 processes and
resumes each scenario at the step holding the fault (the steps before it are the fault-free baseline's,
restored from a snapshot).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from loopforge.errors import ConcurrencyError, StoreError
from tests.faults import (
    EXPECTED,
    GITHUB_KINDS,
    HEAD_SHA,
    RECORD_DIR,
    STATE_BRANCH,
    LifecycleDriver,
    Scenario,
    Tally,
    plan,
    sweep,
    tally,
)
from tests.paths import ROOT

SAMPLE = {"reset-after": 1, "409": 1, "422": 1, "502": 4, "500": 8, "503": 8, "403-secondary": 8, "429": 8,
          "reset": 8, "outage-502": 8, "outage-reset": 8, "timeout": 12}
#: kinds that never fail a run: GitHub refused the request without running it and said when to retry
ALWAYS_ABSORBED = {"403-secondary", "429"}


@pytest.fixture(scope="module")
def branch_sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[tuple[str, int]], list[Scenario]]:
    config = {"workdir": tmp_path_factory.mktemp("faults"), "resume": True}
    with LifecycleDriver(**config) as driver:  # type: ignore[arg-type]
        items = plan(driver, list(GITHUB_KINDS), SAMPLE)
    return items, sweep(config, items, workers=2)


@pytest.fixture(scope="module")
def tallies(branch_sweep: tuple[list[tuple[str, int]], list[Scenario]]) -> dict[str, Tally]:
    return tally(branch_sweep[1])


@pytest.mark.parametrize("kind", list(GITHUB_KINDS))
def test_every_sampled_position_ends_exactly_once(kind: str, branch_sweep: tuple[list[tuple[str, int]],
                                                                                 list[Scenario]],
                                                  tallies: dict[str, Tally]) -> None:
    items, _ = branch_sweep
    t = tallies[kind]
    planned = sum(1 for k, _ in items if k == kind)
    assert planned > 0
    assert t.broken == [], "\n".join(t.broken[:5])
    assert (t.lost, t.duplicated) == (0, 0)
    assert t.faults == planned == t.completed + t.repaired  # every fault fired and every scenario ended well
    if kind in ALWAYS_ABSORBED:
        assert t.repaired == 0, "a rate-limited request is retried after retry-after, POST and PATCH included"
    if GITHUB_KINDS[kind].persistent:
        assert t.completed == 0 and t.repaired == planned, "an outage must fail the run, then the re-run completes"


def test_every_failed_run_said_one_thing_with_a_hint(branch_sweep: tuple[list[tuple[str, int]],
                                                                         list[Scenario]]) -> None:
    _, scenarios = branch_sweep
    failed = [(s, step) for s in scenarios for step in s.steps if step.code != 0]
    assert failed, "the sweep must include failing runs"
    for s, step in failed:
        assert step.code == 1 and not step.traceback and len(step.errors) == 1, (s.kind, s.position, step)
        line = step.errors[0]
        assert line.startswith("::error title=LoopForge%3A "), line
        assert "re-run" in line or "refused the request as invalid" in line, line
        assert "Traceback" not in line and "{'data'" not in line and "HTTPConnectionPool" not in line, line


def test_faults_at_writes_cover_every_write_of_the_lifecycle(branch_sweep: tuple[list[tuple[str, int]],
                                                                                 list[Scenario]]) -> None:
    """409 and 422 were injected at every write: each of the 8 appends (createCommitOnBranch; a 422 there is
    GitHub's STALE_DATA answer, a stale ``expectedHeadOid``), the branch creation (orphan tree and commit,
    createRef), and every check-run create/update."""
    _, scenarios = branch_sweep
    targets = {s.target.split(" ", 1)[0] + " " + s.target.rsplit("/", 1)[-1]
               for s in scenarios if s.kind == "409"}
    assert {"POST trees", "POST commits", "POST createRef", "POST createCommitOnBranch", "POST check-runs"} <= targets
    stale = [s for s in scenarios if s.kind == "422" and s.target.endswith("/createCommitOnBranch")]
    assert len(stale) == len(EXPECTED) and all(s.verdict == "completed" for s in stale)  # rebased, no re-run
    assert sum(1 for s in scenarios if s.kind == "409" and "/check-runs/" in s.target) == 4  # PATCHes


def _run_one(tmp: Path, kind: str, method: str, path_part: str, occurrence: int = 0, **kw: object) -> Scenario:
    with LifecycleDriver(tmp, **kw) as driver:  # type: ignore[arg-type]
        calls = driver.baseline()
        positions = [i for i, (m, p) in enumerate(calls) if m == method and path_part in p]
        return driver.run(kind, positions[occurrence])


def test_a_failed_check_run_update_is_repaired_by_the_rerun(tmp_path: Path) -> None:
    # the 3rd check-run update is the one of workflow_run.completed (ci_passed): 502 on its PATCH
    scenario = _run_one(tmp_path, "502", "PATCH", "/check-runs/", occurrence=1)
    assert scenario.verdict == "repaired", scenario.problems
    failed = [s for s in scenario.steps if s.code]
    assert len(failed) == 1 and failed[0].attempt == 1
    assert "posting the check run failed with HTTP 502" in failed[0].errors[0]
    rerun = next(s for s in scenario.steps if s.index == failed[0].index and s.attempt == 2)
    assert rerun.code == 0 and rerun.outcome == "duplicate" and rerun.state == EXPECTED[failed[0].index][0]


def test_a_created_check_run_whose_answer_was_lost_is_not_created_twice(tmp_path: Path) -> None:
    scenario = _run_one(tmp_path, "reset-after", "POST", "/check-runs")
    assert scenario.verdict == "repaired" and scenario.failed_runs == 1, scenario.problems
    assert "GitHub unreachable" in next(s for s in scenario.steps if s.code).errors[0]


@pytest.mark.parametrize("method, path_part", [("POST", "/graphql/mutation/createCommitOnBranch"),
                                               ("POST", "/graphql/mutation/createRef"), ("POST", "/git/commits")])
def test_a_write_whose_answer_was_lost_is_reconciled_without_a_rerun(tmp_path: Path, method: str,
                                                                       path_part: str) -> None:
    scenario = _run_one(tmp_path, "reset-after", method, path_part)
    assert scenario.verdict == "completed" and scenario.runs == len(EXPECTED), scenario.problems


def test_an_outage_during_the_ref_update_fails_fast_and_the_rerun_completes(tmp_path: Path) -> None:
    """A persistent 5xx on the append must not be taken for a lost race (10 rebases per append and 60 service
    retries, minutes of requests): the branch is read back, the commit tried 3 times, then one ::error."""
    scenario = _run_one(tmp_path, "outage-502", "POST", "/graphql/mutation/createCommitOnBranch", occurrence=3)
    assert scenario.verdict == "repaired" and scenario.failed_runs == 1, scenario.problems
    failed = next(s for s in scenario.steps if s.code)
    assert "Store unavailable" in failed.errors[0] and "502" in failed.errors[0]
    assert scenario.injected <= 12 and scenario.seconds < 30


def test_a_ref_update_that_keeps_failing_is_an_error_not_a_lost_race() -> None:
    """Only the append fails (reads work): the branch is read back after each 502, still at the old tip, so the
    commit is tried 3 times and then raised as StoreError; the record was not moved and nothing was written."""
    from loopforge.github.client import make_github
    from loopforge.repository.branch import BranchRepository
    from loopforge.service import LoopService
    from tests.fakegithub import FakeGitHub, on

    fake = FakeGitHub()
    with fake.serve() as url:
        service = LoopService(repository=BranchRepository((make_github("t", url, for_tests=True),
                                                           "octo-org/octo-repo")))
        service.create(ref="octo-org/octo-repo#1", repo="octo-org/octo-repo")
        tip = fake.branch_sha(STATE_BRANCH)
        fake.inject(on("POST", "/graphql/mutation/createCommitOnBranch", (502, {}, {"message": "Bad Gateway"}),
                       times=None))
        before = fake.graphql_count("mutation")
        with pytest.raises(StoreError, match="502 Bad Gateway"):
            service.note("octo-org/octo-repo#1", "x", idempotency_key="k")
        assert fake.graphql_count("mutation") - before == 3 and fake.branch_sha(STATE_BRANCH) == tip
        fake.clear_faults()
        assert service.note("octo-org/octo-repo#1", "x", idempotency_key="k").success
        assert [e.sequence for e in service.history("octo-org/octo-repo#1")] == [1, 2]


def test_the_container_contract_under_faults(tmp_path: Path) -> None:
    """A few positions through ``entrypoint.py`` as the runner starts it (a real process: a traceback would
    reach stderr): a lost check-run creation, a connection reset on the 6th read, a time-out of the last append."""
    with LifecycleDriver(tmp_path, subprocess=True, resume=True) as driver:
        calls = driver.baseline()
        chosen = {"reset-after": next(i for i, (m, p) in enumerate(calls) if m == "POST" and p.endswith("/check-runs")),
                  "reset": [i for i, (m, p) in enumerate(calls) if p.startswith("/graphql/query")][5],
                  "timeout": [i for i, (m, p) in enumerate(calls) if p.endswith("/createCommitOnBranch")][-1]}
        for kind, position in chosen.items():
            scenario = driver.run(kind, position)
            assert scenario.verdict in ("completed", "repaired"), (kind, scenario.problems)
            assert (scenario.lost, scenario.duplicated) == (0, 0)
        assert scenario.verdict == "completed"  # the timed-out append was read back: it had not landed


# ---------------------------------------------------------------------------------------------- DynamoDB
def test_dynamodb_faults_end_exactly_once(tmp_path: Path, dynamo: str) -> None:
    """``store: dynamodb`` behind a proxy on 127.0.0.1 that injects DynamoDB faults: throttling, 5xx, a
    transaction conflict, resets before and after the server applied the request, a time-out and an outage,
    each at a sampled DynamoDB request of the lifecycle (the writes of two steps and some reads)."""
    with LifecycleDriver(tmp_path, store="dynamodb", dynamo_url=dynamo) as driver:
        calls = driver.baseline()
        writes = [i for i, (_m, op) in enumerate(calls) if op == "TransactWriteItems"]
        reads = [i for i, (_m, op) in enumerate(calls) if op != "TransactWriteItems"]
        assert len(writes) == len(EXPECTED)
        chosen = [("reset-after", writes[0]), ("reset-after", writes[4]), ("transaction-conflict", writes[0]),
                  ("throttling", writes[5]), ("500", reads[7]), ("reset", reads[20]), ("timeout", writes[2]),
                  ("outage-500", writes[6]), ("provisioned-throughput", reads[30]), ("503", writes[1])]
        results = [driver.run(kind, position) for kind, position in chosen]
    for scenario in results:
        assert scenario.verdict in ("completed", "repaired"), (scenario.kind, scenario.target, scenario.problems)
        assert (scenario.lost, scenario.duplicated) == (0, 0)
    outage = results[7]
    assert outage.verdict == "repaired" and "DynamoDB error" in next(s for s in outage.steps if s.code).errors[0]
    # a transaction applied whose answer was lost is retried by botocore and recognised, not written twice
    assert results[0].verdict == results[1].verdict == "completed"
    # a transient TransactionConflict on the record's first write is retried (it once failed the run: the
    # service took any conflict on a create for "the record exists")
    assert results[2].verdict == "completed"


def test_the_state_branch_after_a_fault_is_the_fault_free_one(tmp_path: Path) -> None:
    """The entries, their key files and the check run are those of a lifecycle without faults."""
    with LifecycleDriver(tmp_path) as driver:
        driver.baseline()
        scenario, fake = driver._run(GITHUB_KINDS["reset-after"], next(
            i for i, (m, p) in enumerate(driver.baseline_calls) if p.endswith("/createCommitOnBranch")))
        assert scenario.verdict == "completed", scenario.problems
        files = fake.branch_files(STATE_BRANCH)
        entries = sorted(p for p in files if p.startswith(f"{RECORD_DIR}/entries/"))
        keys = sorted(p for p in files if p.startswith(f"{RECORD_DIR}/keys/"))
        assert len(entries) == len(keys) == len(EXPECTED)
        assert [json.loads(files[p])["to_state"] for p in entries] == [s for s, _ in EXPECTED]
        runs = fake.check_runs(HEAD_SHA)
        assert len(runs) == 1 and (runs[0].status, runs[0].conclusion) == ("completed", "neutral")


def test_the_benchmark_prints_its_table(tmp_path: Path) -> None:
    """``benchmarks/faults.py`` (the full sweep) on a tiny sample, so it keeps working."""
    import subprocess
    import sys

    out = tmp_path / "faults.json"
    script = ROOT / "benchmarks" / "faults.py"
    proc = subprocess.run([sys.executable, str(script), "--kinds", "409", "--every", "12", "--no-dynamodb",
                           "--workers", "1", "--resume", "--json", str(out)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "| kind | faults injected |" in proc.stdout and "| 409 |" in proc.stdout
    figures = json.loads(out.read_text())["stores"]["branch"]["kinds"]["409"]
    assert figures["faults"] >= 2 and figures["lost"] == figures["duplicated"] == 0 and figures["broken"] == []


@pytest.mark.parametrize("exc, title", [
    (RuntimeError("boom"), "Internal error"),
    (requests.exceptions.ConnectionError("Connection aborted."), "GitHub unreachable"),
    (StoreError("GitHub API error on GET x: 502"), "Store error"),
    (ConcurrencyError("kept moving"), "Store busy"),
])
def test_any_exception_ends_as_one_error_with_a_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     exc: Exception, title: str) -> None:
    from loopforge import action
    from tests.faults import event, run_in_process

    def explode(*_args: object, **_kw: object) -> int:
        raise exc

    monkeypatch.setattr(action, "handle", explode)
    name, payload = event(0)
    result = run_in_process(tmp_path, name, payload, api_url="http://127.0.0.1:9", run_id=1, attempt=1,
                            inputs={}, extra_env={})
    assert result.code == 1 and not result.stderr
    errors = result.commands("error")
    assert len(errors) == 1 and f"LoopForge%3A {title}::" in errors[0] and "re-run the job" in errors[0], errors
    assert f"**{title}**" in result.summary
