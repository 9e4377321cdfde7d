"""What the command line prints: injection-safe CSV cells, and progress bars only on a terminal."""

from __future__ import annotations

import csv
import fcntl
import io
import os
import pty
import select
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from loopforge import LoopService, LoopState
from loopforge.cli import main
from loopforge.cli.output import CsvWriter, csv_cell
from loopforge.cli.progress import echo, enabled, progress
from loopforge.repository import SQLiteRepository
from tests.paths import LIFECYCLE_FILES as LIFECYCLE


@pytest.mark.parametrize("value, cell", [
    ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"), ("+1+1", "'+1+1"), ("-2+3", "'-2+3"),
    ("@SUM(A1)", "'@SUM(A1)"), ("\t=1", "'\t=1"), ("\r=1", "' =1"), ("  =cmd", "'  =cmd"), ("a=b", "a=b"),
    ("", ""), (None, ""), (3, "3"), ({"k": "=x"}, '{"k": "=x"}'), (True, "true"),
    ("ok\x1b[31m red\u202e", "ok [31m red"), ("two\nlines", "two\nlines"),
])
def test_csv_cells_defuse_formulas(value: object, cell: str) -> None:
    assert csv_cell(value) == cell


def test_export_csv_of_a_hostile_trail(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "t.db"
    service = LoopService(repository=SQLiteRepository(db))
    rec = service.create(ref="o/r#1", repo="o/r")
    service.transition(rec.record_id, LoopState.TASK_QUEUED, "=cmd|' /C calc'!A0", actor="@attacker")
    service.note(rec.record_id, "+note", reason="-1+1\nsecond line", actor="\t=1")
    assert main(["--db", str(db), "export", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 3
    assert rows[1]["trigger"] == "'=cmd|' /C calc'!A0" and rows[1]["actor"] == "'@attacker"
    assert rows[2]["reason"] == "'-1+1\nsecond line"  # the data is kept, only defused
    assert rows[2]["trigger"] == "'+note" and rows[2]["actor"] == "'\t=1"
    assert all(not v.startswith(("=", "+", "-", "@", "\t", "\r")) for row in rows for v in row.values())


def test_csv_writer_keeps_quoting(tmp_path: Path) -> None:
    out = io.StringIO()
    writer = CsvWriter(out, ["a", "b"])
    writer.writeheader()
    writer.writerow({"a": 'x,"y"', "b": None})
    assert out.getvalue() == 'a,b\r\n"x,""y""",\r\n'


# ---------------------------------------------------------------------------------------------- progress
def read_all(fd: int) -> bytes:
    chunks = []
    while select.select([fd], [], [], 0.5)[0]:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the other end closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def test_progress_is_silent_when_not_a_tty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOOPFORGE_PROGRESS", raising=False)
    stream = io.StringIO()
    assert not enabled(stream)
    assert list(progress(range(50), total=50, label="verify", stream=stream)) == list(range(50))
    assert stream.getvalue() == ""


def test_progress_draws_counts_and_rate_on_a_tty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOOPFORGE_PROGRESS", raising=False)
    master, slave = pty.openpty()
    with os.fdopen(slave, "w", encoding="utf-8") as stream:
        assert enabled(stream)
        assert list(progress(range(7), total=7, label="report", unit="record", stream=stream)) == list(range(7))
        out = io.StringIO()
        echo("a line", stream=out)
        assert out.getvalue() == "a line\n"
    drawn = read_all(master).decode("utf-8", "replace")
    os.close(master)
    assert "report:" in drawn and "0/7" in drawn and "record/s" in drawn


def test_progress_env_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    monkeypatch.setenv("LOOPFORGE_PROGRESS", "1")
    assert enabled(stream)
    list(progress(range(3), total=3, label="export", stream=stream))
    assert "0/3" in stream.getvalue()
    monkeypatch.setenv("LOOPFORGE_PROGRESS", "0")
    master, slave = pty.openpty()
    with os.fdopen(slave, "w") as tty:
        assert not enabled(tty)
    os.close(master)


def _cli(args: list[str], *, stderr_tty: bool, cwd: Path) -> tuple[int, str, str]:
    """Run ``python -m loopforge.cli ARGS`` with stdout a pipe and stderr a pipe or a pseudo-terminal."""
    env = {k: v for k, v in os.environ.items() if k != "LOOPFORGE_PROGRESS"}
    if not stderr_tty:
        proc = subprocess.run([sys.executable, "-m", "loopforge.cli", *args], capture_output=True, text=True,
                              timeout=120, cwd=cwd, env=env)
        return proc.returncode, proc.stdout, proc.stderr
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # a terminal has a size
    proc2 = subprocess.Popen([sys.executable, "-m", "loopforge.cli", *args], stdout=subprocess.PIPE, stderr=slave,
                             cwd=cwd, env=env)
    os.close(slave)
    drawn = b""
    while proc2.poll() is None:
        drawn += read_all(master)
    drawn += read_all(master)
    stdout = proc2.stdout.read().decode() if proc2.stdout else ""
    if proc2.stdout:
        proc2.stdout.close()
    os.close(master)
    return proc2.wait(), stdout, drawn.decode("utf-8", "replace")


def test_commands_show_bars_only_on_a_terminal(tmp_path: Path) -> None:
    db = str(tmp_path / "t.db")
    files = [str(p) for p in LIFECYCLE]
    code, out, err = _cli(["--db", db, "replay", *files, "--summary", str(tmp_path / "s.md")], stderr_tty=False,
                          cwd=tmp_path)
    assert code == 0 and err == "" and out.count("[applied]") == 8
    for args, bar in ((["verify"], "verify:"), (["export", "-o", str(tmp_path / "x.jsonl")], "export:"),
                      (["replay", *files, "--summary", str(tmp_path / "s.md")], "replay:")):
        code, out, err = _cli(["--db", db, *args], stderr_tty=False, cwd=tmp_path)
        assert code == 0 and err == "", err
        code, out_tty, drawn = _cli(["--db", db, *args], stderr_tty=True, cwd=tmp_path)
        assert code == 0 and out_tty == out  # the data is the same; only stderr gained a bar
        assert bar in drawn, drawn
    assert "0/8" in _cli(["--db", db, "replay", *files], stderr_tty=True, cwd=tmp_path)[2]
    assert "0/1" in _cli(["--db", db, "verify"], stderr_tty=True, cwd=tmp_path)[2]
