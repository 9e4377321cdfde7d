"""The ``loopforge`` command on the SQLite store: tables, exit codes, one-line errors."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from loopforge import LoopService, LoopState
from loopforge.repository import SQLiteRepository
from tests.cli.helpers import run
from tests.paths import LIFECYCLE_FILES

S = LoopState


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = str(tmp_path / "cli.db")
    service = LoopService(repository=SQLiteRepository(path))
    a = service.create(ref="https://github.com/org/repo/issues/1", repo="org/repo")
    for state in (S.TASK_QUEUED, S.PR_CREATED, S.CI_PENDING, S.CI_FAILED):
        service.transition(a.record_id, state, f"t.{state.value}", actor="bot")
    b = service.create(ref="org/other#2", repo="org/other", state=S.PR_CREATED)
    service.observe(b.record_id, S.MERGED, "pull_request.closed", actor="admin")
    return path


def test_history_table(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--db", db, "history", "org/repo#1")
    assert code == 0
    assert "org/repo#1  state: ci_failed  entries: 5" in out
    assert "ci_pending → ci_failed" in out and "t.ci_failed" in out and "bot" in out
    code, out, _ = run(capsys, "--db", db, "history", "https://github.com/org/repo/issues/1", "--json")
    assert code == 0 and len([json.loads(line) for line in out.splitlines()]) == 5


def test_list_filters(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "--db", db, "list")
    assert "org/repo#1" in out and "org/other#2" in out
    _, out, _ = run(capsys, "--db", db, "list", "--state", "ci_failed")
    assert "org/repo#1" in out and "org/other#2" not in out
    _, out, _ = run(capsys, "--db", db, "list", "--violations")
    assert "org/other#2" in out and "org/repo#1" not in out
    _, out, _ = run(capsys, "--db", db, "list", "--repo", "org/other", "--since", "1h")
    assert "org/other#2" in out and "org/repo#1" not in out
    _, out, _ = run(capsys, "--db", db, "list", "--since", "2999-01-01")
    assert "org/" not in out


def test_verify_names_the_tampered_entry(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--db", db, "verify")
    assert code == 0 and "2 of 2 records verify" in out
    conn = sqlite3.connect(db)
    body = json.loads(conn.execute("SELECT body FROM entries WHERE record_id='org/repo#1' AND sequence=3")
                      .fetchone()[0])
    body["trigger"] = "forged"
    conn.execute("UPDATE entries SET body=? WHERE record_id='org/repo#1' AND sequence=3", (json.dumps(body),))
    conn.commit()
    conn.close()
    code, out, err = run(capsys, "--db", db, "verify", "org/repo#1")
    assert code == 1
    assert "TAMPERED org/repo#1: entry 3: content does not match its hash" in out
    assert err.strip() == "loopforge: error: 1 record(s) failed verification"


def test_export_jsonl_and_csv(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "--db", db, "export")
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 7 and {r["record_id"] for r in rows} == {"org/repo#1", "org/other#2"}
    _, out, _ = run(capsys, "--db", db, "export", "--format", "csv")
    table = list(csv.DictReader(io.StringIO(out)))
    assert len(table) == 7 and any(r["outcome"] == "violation" for r in table)


def test_graph(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "graph", "--current", "ci_passed")
    assert out.startswith("stateDiagram-v2") and "class ci_passed current" in out
    _, out, _ = run(capsys, "graph", "--format", "json")
    assert "merged" in json.loads(out)["transitions"]["ci_passed"]


@pytest.mark.parametrize("args, fragment", [
    (["history", "org/repo#404"], "no record for 'org/repo#404'"),
    (["list", "--state", "bogus"], "argument --state: invalid choice: 'bogus'"),
    (["list", "--since", "yesterday"], "--since"),
    (["export", "--format", "xml"], "argument --format: invalid choice: 'xml'"),
    (["nonsense"], "invalid choice: 'nonsense'"),
])
def test_bad_input_is_one_line_and_exit_2(db: str, capsys: pytest.CaptureFixture[str], args: list[str],
                                          fragment: str) -> None:
    code, _, err = run(capsys, "--db", db, *args)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("loopforge: error: ") and fragment in err


def test_console_script_and_env_db(db: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "loopforge.cli", "list"], capture_output=True, text=True,
                          env={"LOOPFORGE_DB": db, "PATH": ""}, timeout=60)
    assert proc.returncode == 0 and "org/repo#1" in proc.stdout


def test_replay_fixture_lifecycle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = [str(p) for p in LIFECYCLE_FILES]
    db = str(tmp_path / "replay.db")
    summary = tmp_path / "summary.md"
    code, out, _ = run(capsys, "--db", db, "replay", *files, "--summary", str(summary))
    assert code == 0
    assert out.count("[applied]") == 8 and "approved → merged" in out
    assert "`closed`" in summary.read_text()
    code, out, _ = run(capsys, "--db", db, "replay", *files, "--summary", str(summary))
    assert code == 0 and "[applied]" not in out and out.count("already recorded") == 8
