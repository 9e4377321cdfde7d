"""``benchmarks/append.py --quick`` runs and prints its table (no timing assertions: the machine is noisy)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.paths import ROOT

SCRIPT = ROOT / "benchmarks" / "append.py"


def test_append_benchmark_quick_prints_a_table(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--ops", "10", "--verify", "--json", str(out),
         "--dynamodb", "http://localhost:1"],
        capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| store | history |"))
    assert lines[header + 1].startswith("|---|")
    rows = [line.split("|")[1:-1] for line in lines[header + 2:] if line.startswith("|")]
    cells = [[c.strip() for c in row] for row in rows]
    assert [(c[0], c[1]) for c in cells] == [(store, length) for store in ("memory", "sqlite")
                                            for length in ("10", "1,000", "10,000")]
    for c in cells:
        assert all(float(x) > 0 for x in c[2:])
    assert "DynamoDB" in proc.stdout and "skipped" in proc.stdout
    assert "verified sqlite bench/repo#10000: 10,020 entries" in proc.stderr

    figures = json.loads(out.read_text())
    assert figures["lengths"] == [10, 1_000, 10_000] and figures["ops"] == 10
    assert {(r["store"], r["history"], r["op"]) for r in figures["results"]} == {
        (s, n, op) for s in ("memory", "sqlite") for n in (10, 1_000, 10_000) for op in ("transition", "note")}
    assert all(r["median_us"] > 0 and r["calls"] == 10 for r in figures["results"])
