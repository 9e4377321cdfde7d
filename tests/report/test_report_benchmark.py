"""``benchmarks/report.py`` runs and prints its table (small sizes; no timing assertions: the machine is noisy)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.paths import ROOT

SCRIPT = ROOT / "benchmarks" / "report.py"


def test_report_benchmark_prints_a_table(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--sizes", "30,60", "--runs", "1", "--json", str(out)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    header = lines.index("| records | entries | report (s) | ms per record | ratio to the smallest | HTML (MB) |")
    rows = [[c.strip() for c in line.split("|")[1:-1]] for line in lines[header + 2:] if line.startswith("|")]
    assert [r[0] for r in rows] == ["30", "60"] and rows[0][4] == "1.00"
    figures = json.loads(out.read_text())
    assert [r["records"] for r in figures["results"]] == [30, 60]
    for r in figures["results"]:
        # every record is 9 to 14 entries long, and every record made it into the report
        assert 9 * r["records"] <= r["entries"] <= 14 * r["records"] and r["seconds"] > 0
