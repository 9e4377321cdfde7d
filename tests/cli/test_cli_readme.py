"""The README's command-line examples run as printed, in the order printed (``loopforge`` is this tree's CLI)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.paths import ROOT
from tests.readme import CLI_BLOCKS as BLOCKS


def test_the_command_line_section_has_a_runnable_block() -> None:
    assert len(BLOCKS) == 1 and BLOCKS[0].startswith("loopforge --db /tmp/demo.db replay")


def test_the_block_runs_as_printed(tmp_path: Path) -> None:
    script = BLOCKS[0].replace("/tmp/", f"{tmp_path}/")
    prelude = f'set -euo pipefail\nloopforge() {{ "{sys.executable}" -m loopforge.cli "$@"; }}\n'
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPFORGE_")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run(["bash", "-c", prelude + script], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    out = proc.stdout
    assert out.count("[applied]") == 8
    assert out.count("Codertocat/Hello-World#1  state: closed  entries: 8  violations: 0") == 2
    assert "1 of 1 records verify" in out
    assert "class ci_passed current" in out
    assert (tmp_path / "trail.csv").read_text(encoding="utf-8").count("Codertocat/Hello-World#1") == 8
    assert (tmp_path / "summary.md").is_file()
