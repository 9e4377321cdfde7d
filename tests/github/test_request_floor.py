"""GitHub requests per event kind, asserted exactly, at 10 and 1,000 entries (issue "The Action at GitHub's floor").

The floor is one read (a GraphQL query), one conditional write (``createCommitOnBranch``) and one check-run
create/update. A CI event (``workflow_run``) names its pull request only by number, and the record it belongs to
depends on the PR's body: it reads the PR first (one GraphQL query), then the record. The first write to a
repository also creates the data branch (an orphan root commit through REST, then ``createRef``). The counts do
not depend on the history length: rendering reads the window in ``head.json``, the key checks read the key
files in the same query, and the check run is PATCHed by the id the read found.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.floor import Floor

READ = "POST /graphql/query/repository"
WRITE = "POST /graphql/mutation/createCommitOnBranch"
CHECK_CREATE = "POST /repos/Codertocat/Hello-World/check-runs"
CHECK_UPDATE = "PATCH /repos/Codertocat/Hello-World/check-runs/{id}"

#: event → the exact requests it makes in the steady state
EXPECTED: dict[str, list[str]] = {
    "issues.opened": [READ, "POST /repos/Codertocat/Hello-World/git/trees",
                      "POST /repos/Codertocat/Hello-World/git/commits", "POST /graphql/mutation/createRef", WRITE],
    "issues.assigned": [READ, WRITE],
    "pull_request.opened": [READ, WRITE, CHECK_CREATE],
    "workflow_run.requested": [READ, READ, WRITE, CHECK_UPDATE],
    "workflow_run.completed": [READ, READ, WRITE, CHECK_UPDATE],
    "workflow_run.completed (failure)": [READ, READ, WRITE, CHECK_UPDATE],
    "pull_request.synchronize": [READ, WRITE, CHECK_UPDATE],
    "pull_request_review.submitted": [READ, WRITE, CHECK_UPDATE],
    "pull_request.closed": [READ, WRITE, CHECK_UPDATE],
    "issues.closed": [READ, WRITE],
}


@pytest.mark.parametrize("governed", [False, True], ids=["plain", "governed"])
@pytest.mark.parametrize("history", [10, 1000])
def test_requests_per_event_kind(tmp_path: Path, history: int, governed: bool) -> None:
    floor = Floor(tmp_path, history=history, governed=governed)
    measured = floor.lifecycle()
    run_id = floor.fake.check_runs(floor.head_sha)[0].id
    assert len(floor.fake.check_runs(floor.head_sha)) == 1
    for m in measured:
        expected = [c.replace("{id}", str(run_id)) for c in EXPECTED[m.label]]
        assert m.calls == expected, (m.label, m.calls)
        assert m.code in (0, 1)
        if m.label != "issues.opened":  # the first write ever also creates the data branch
            assert m.requests <= 4
    assert max(m.requests for m in measured) <= 5  # the hard ceiling
    record = floor.fake.branch_files("loopforge-state")
    assert sum(1 for p in record if p.startswith("records/Codertocat/Hello-World/1/entries/")) > history
    assert floor.fake.violations == [] and floor.fake.errors == []
    if governed:  # the policy was evaluated from the one read: its note is in the trail
        notes = [p for p, text in record.items() if "policy.evaluated" in text and "/entries/" in p]
        assert notes


def test_a_rerun_of_a_recorded_event_reads_once_and_writes_nothing(tmp_path: Path) -> None:
    floor = Floor(tmp_path, history=1000)
    with floor.serving() as url:
        from tests.floor import events

        for i, (label, name, payload) in enumerate(events()[:3]):
            floor.step(label, name, payload, url)
            if i == 0:
                floor.pad(1000)
        label, name, payload = events()[2]
        floor._run -= 1  # the same workflow run again (a re-run)
        again = floor.step(label, name, payload, url)
    assert again.calls[:1] == [READ] and WRITE not in again.calls
    assert again.calls[1:] == [CHECK_UPDATE.replace("{id}", str(floor.fake.check_runs(floor.head_sha)[0].id))]


@pytest.mark.parametrize("served", [False, True], ids=["in-process", "http"])
def test_github_enterprise_server(tmp_path: Path, served: bool) -> None:
    """GHES: REST under ``https://HOST/api/v3`` (``GITHUB_API_URL``), GraphQL at ``https://HOST/api/graphql``
    (``GITHUB_GRAPHQL_URL``); the same requests, the same outcome."""
    floor = Floor(tmp_path, history=10, ghes=True, served=served)
    measured = floor.lifecycle()
    assert floor.fake.graphql_url.endswith("/api/graphql")
    assert [m.requests for m in measured] == [len(EXPECTED[m.label]) for m in measured]
    assert all(m.code in (0, 1) and "::error" not in m.stdout.replace("::error title=LoopForge%3A merge", "")
               for m in measured), [m.stdout for m in measured if m.code]
    assert floor.fake.violations == [] and floor.fake.graphql_count("mutation", "createCommitOnBranch") == 11


def test_the_benchmark_prints_its_table(tmp_path: Path) -> None:
    """``benchmarks/action.py`` (one ``entrypoint.py`` process per event) on one round at one history length."""
    import json
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "action.py"
    out = tmp_path / "action.json"
    proc = subprocess.run([sys.executable, str(script), "--rounds", "1", "--histories", "10", "--json", str(out)],
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "| event | requests @10 | ms @10 | × ignored |" in proc.stdout
    assert "| *ignored event (floor)* | 0 |" in proc.stdout
    figures = json.loads(out.read_text())
    assert {r["event"]: r["requests"]["10"] for r in figures["rows"]} == {
        label: len(calls) for label, calls in EXPECTED.items()}
    assert figures["ignored_ms"] > 0 and all(r["ratio_to_ignored"] > 0 for r in figures["rows"])
