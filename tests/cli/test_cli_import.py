"""``loopforge import``: an export goes back into any store whole, or nothing is written."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from loopforge import LoopService, LoopState
from loopforge.repository import SQLiteRepository
from loopforge.repository.dynamodb import DynamoDBRepository, create_table
from tests.cli.helpers import run
from tests.dynamo_server import local_server, use_local_aws

S = LoopState


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A store with two records: one of 5 entries, one of 90 entries with idempotency keys (3 chunks)."""
    path = tmp_path / "source.db"
    service = LoopService(repository=SQLiteRepository(path))
    a = service.create(ref="o/r#1", repo="o/r")
    for state in (S.TASK_QUEUED, S.PR_CREATED, S.CI_PENDING, S.CI_FAILED):
        service.transition(a.record_id, state, f"t.{state.value}", actor="=bot")
    b = service.create(ref="o/r#2", repo="o/r", state=S.PR_CREATED)
    for i in range(89):
        service.note(b.record_id, f"note {i}", idempotency_key=f"k{i}")
    return path


def export(capsys: pytest.CaptureFixture[str], db: Path, out: Path) -> list[str]:
    assert run(capsys, "--db", str(db), "export", "-o", str(out))[0] == 0
    return out.read_text(encoding="utf-8").splitlines()


def heads(db: Path) -> dict[str, object]:
    repo = SQLiteRepository(db)
    return {rid: repo.head(rid) for rid in ("o/r#1", "o/r#2")}


def test_round_trip_is_exact_and_idempotent(source: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    dump = tmp_path / "trail.jsonl"
    assert len(export(capsys, source, dump)) == 95
    target = tmp_path / "target.db"
    code, out, err = run(capsys, "--db", str(target), "import", str(dump))
    assert (code, err) == (0, "") and out == "imported 95 entries of 2 record(s); 0 record(s) already complete\n"
    assert heads(target) == heads(source)
    assert export(capsys, target, tmp_path / "again.jsonl") == dump.read_text(encoding="utf-8").splitlines()
    code, out, _ = run(capsys, "--db", str(target), "import", str(dump))
    assert code == 0 and out == "imported 0 entries of 0 record(s); 2 record(s) already complete\n"


def test_a_store_holding_the_start_gets_the_rest(source: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    dump = tmp_path / "trail.jsonl"
    lines = export(capsys, source, dump)
    first = tmp_path / "first.jsonl"
    first.write_text("\n".join(line for line in lines if json.loads(line)["sequence"] <= 3) + "\n")
    target = tmp_path / "target.db"
    assert run(capsys, "--db", str(target), "import", str(first))[0] == 0
    code, out, _ = run(capsys, "--db", str(target), "import", str(dump))
    assert code == 0 and out.startswith("imported 89 entries of 2 record(s)")
    assert heads(target) == heads(source)
    assert run(capsys, "--db", str(target), "verify")[0] == 0


@pytest.mark.parametrize("edit, message", [
    (lambda e: {**e, "trigger": "forged"}, "o/r#2: the imported trail does not verify: entry 2: content does not "
                                           "match its hash"),
    (lambda e: {**e, "sequence": "x"}, ":2: not a trail entry"),
    (lambda e: [e], ":2: expected a JSON object (one trail entry), got list"),
])
def test_a_bad_line_writes_nothing(source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                   edit: object, message: str) -> None:
    dump = tmp_path / "trail.jsonl"
    lines = export(capsys, source, dump)
    lines[1] = json.dumps(edit(json.loads(lines[1])))  # type: ignore[operator]
    dump.write_text("\n".join(lines) + "\n")
    target = tmp_path / "target.db"
    code, out, err = run(capsys, "--db", str(target), "import", str(dump))
    assert code == 2 and out == "" and len(err.splitlines()) == 1 and message in err, err
    assert not target.exists()


def test_malformed_json_line_and_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dump = tmp_path / "trail.jsonl"
    dump.write_text('\n{"record_id": "o/r#1", }\n')
    code, _, err = run(capsys, "--db", str(tmp_path / "t.db"), "import", str(dump))
    assert code == 2
    assert err == f"loopforge: error: {dump}:2:24: malformed JSON: Expecting property name enclosed in double quotes\n"


def test_a_different_trail_in_the_store_is_refused(source: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    dump = tmp_path / "trail.jsonl"
    export(capsys, source, dump)
    target = tmp_path / "target.db"
    other = LoopService(repository=SQLiteRepository(target))
    other.create(ref="o/r#2", repo="o/r", state=S.PR_CREATED)
    before = SQLiteRepository(target).head("o/r#2")
    code, _, err = run(capsys, "--db", str(target), "import", str(dump))
    assert code == 2 and "o/r#2: the store holds a different trail for this record (entry 1)" in err
    assert SQLiteRepository(target).head("o/r#1") is None and SQLiteRepository(target).head("o/r#2") == before


@pytest.fixture
def dynamo(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with local_server() as url:
        use_local_aws(monkeypatch, url)
        yield url


def test_sqlite_to_dynamodb(source: Path, tmp_path: Path, dynamo: str, capsys: pytest.CaptureFixture[str]) -> None:
    dump = tmp_path / "trail.jsonl"
    export(capsys, source, dump)
    create_table("imported")
    code, out, _ = run(capsys, "--dynamodb-table", "imported", "import", str(dump))
    assert code == 0 and out.startswith("imported 95 entries of 2 record(s)")
    table = DynamoDBRepository("imported")
    assert {rid: table.head(rid) for rid in ("o/r#1", "o/r#2")} == heads(source)
    code, out, _ = run(capsys, "--dynamodb-table", "imported", "verify")
    assert code == 0 and "2 of 2 records verify" in out
