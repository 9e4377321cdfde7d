"""The README opens with two commands, and both work on a fresh machine as printed.

``pip install . && loopforge demo`` runs for real: in a new virtual environment (no site packages), in a clean
``git clone`` of this repository (its committed HEAD), with nothing else on the path. ``bash .ci/run`` is the whole
of CI, and running it here would run this test again; so the test checks that it runs the README's test command,
that it says what needs root before anything else runs, and runs its ``--plan`` as root under ``CI=true`` and as a
normal user.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.paths import ROOT
from tests.readme import README, TWO_COMMANDS

CI_RUN = ROOT / ".ci" / "run"


def first_block() -> str:
    m = re.search(r"```bash\n(.*?)```", README, re.S)
    assert m is not None
    return m.group(1)


def test_readme_opens_with_the_two_commands() -> None:
    assert first_block() == TWO_COMMANDS
    before = README.split("```bash", 1)[0]
    assert before.count("\n## ") == 1 and "## Start here: two commands" in before  # the first section


def clean_env(venv: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LOOPFORGE_", "PYTHON", "PIP_REQUIRE", "VIRTUAL_ENV"))}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def test_pip_install_and_demo_in_a_fresh_venv_from_a_clean_clone(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True, timeout=120)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    command = first_block().splitlines()[0]
    proc = subprocess.run(["bash", "-c", f"set -e; {command}"], cwd=clone, env=clean_env(venv),
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    out = [line for line in proc.stdout.splitlines() if line.startswith(("236 events", "report of", "check-run"))]
    # the figures the README gives: 236 payloads, 20 records, the bypass merge is acme/widgets#29
    assert out == ["236 events of 20 records (acme/widgets) recorded into loopforge.db: 402 new entries, 1 violation",
                   "report of 20 records written to loopforge-report.html",
                   "check-run summary of acme/widgets#29 (the bypass merge) written to loopforge-check-run.md"], out
    assert "20 issues and pull requests" in README and "236 bundled" in README and "acme/widgets#29" in README
    html = (clone / "loopforge-report.html").read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and html.count('<svg role="img"') == 7 and "<script" not in html
    check_run = (clone / "loopforge-check-run.md").read_text(encoding="utf-8")
    assert "```mermaid\nflowchart TD" in check_run and "violation" in check_run
    assert (clone / "loopforge.db").stat().st_size > 100_000
    # the installed command, not this checkout, did it; and the README's follow-up commands work as printed
    assert (venv / "bin" / "loopforge").exists()
    for follow_up in re.findall(r"`(loopforge (?:list|history) [^`]+)`", README.split("**`bash .ci/run`**")[0]):
        done = subprocess.run(["bash", "-c", follow_up], cwd=clone, env=clean_env(venv), capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0 and done.stdout and not done.stderr, (follow_up, done.stderr)


def ci_lines() -> list[str]:
    return CI_RUN.read_text(encoding="utf-8").splitlines()


def test_ci_run_runs_the_readme_test_command() -> None:
    lines = ci_lines()
    assert "python3 -m pytest -q" in lines
    assert "`python3 -m pytest -q`" in README
    assert "bash .ci/run" in first_block()


def test_ci_run_says_what_needs_root_before_anything_runs() -> None:
    lines = ci_lines()
    plan = lines.index('echo "== plan"')
    first_work = min(i for i, line in enumerate(lines) if line.startswith(('echo "== install"', "$PY -m pip")))
    root_check = next(i for i, line in enumerate(lines) if "id -u" in line)
    smoke_note = next(i for i, line in enumerate(lines) if "container smoke test needs root" in line)
    assert root_check < plan < smoke_note < first_work
    assert any("apt-get install -y -qq chromium" in line for line in lines)
    smoke = next(i for i, line in enumerate(lines) if "scripts/container-smoke.sh" in line)
    assert lines[smoke - 3].strip() == 'if [ "$smoke" = run ]; then'


def plan(env: dict[str, str], user: str | None = None) -> subprocess.CompletedProcess[str]:
    command = ["bash", str(CI_RUN), "--plan"]
    if user is not None:
        command = ["runuser", "-u", user, "--", "env", *(f"{k}={v}" for k, v in env.items()), *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=60,
                          env={**os.environ, **env} if user is None else None)


def test_ci_run_plan_as_root_in_ci_and_as_a_normal_user() -> None:
    if os.getuid() == 0:
        root = plan({"CI": "true"})
        assert root.returncode == 0, root.stderr
        assert "running as root: the container smoke test (rootful podman) runs at the end" in root.stdout
        assert "container smoke test: run" in root.stdout
        assert shutil.which("runuser"), "runuser (util-linux) is needed to try .ci/run as a normal user"
        user = plan({"CI": ""}, user="nobody")
        in_ci = plan({"CI": "true"}, user="nobody")
    else:
        user = plan({"CI": ""})
        in_ci = plan({"CI": "true"})
    assert user.returncode == 0, user.stderr
    assert user.stdout.splitlines()[1].startswith("NOTE: not root")  # said first
    assert "container smoke test: skip" in user.stdout
    assert in_ci.returncode == 1 and "CI must be able to run the container smoke test" in in_ci.stderr
