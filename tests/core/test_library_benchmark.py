"""``benchmarks/library.py`` (this tree beside loopforge 0.1.0): its worker runs, and a missing seed is one line.

No timing assertions (the machine is shared); the figures are in the README, from the command there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.paths import ROOT

SCRIPT = ROOT / "benchmarks" / "library.py"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300,
                          check=False, env=env)


def test_the_tree_worker_times_every_length() -> None:
    proc = run("--worker", "tree", "--lengths", "10,300", "--ops", "6")
    assert proc.returncode == 0, proc.stderr
    figures = json.loads(proc.stdout)
    assert set(figures) == {"10", "300"} and all(v > 0 for v in figures.values())


def test_without_the_seed_it_says_how_to_install_it(tmp_path: Path) -> None:
    proc = run("--seed", str(tmp_path / "nowhere"))
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip() == (f"no loopforge==0.1.0 in {tmp_path / 'nowhere'}: "
                                   f"pip install --no-deps --target {tmp_path / 'nowhere'} loopforge==0.1.0")


def test_a_seed_of_another_version_is_refused() -> None:
    proc = run("--seed", str(ROOT))  # this tree is not 0.1.0
    assert proc.returncode == 2 and "not 0.1.0" in proc.stderr and "Traceback" not in proc.stderr
