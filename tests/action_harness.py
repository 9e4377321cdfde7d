"""Run ``entrypoint.py`` exactly as the Actions runner runs a container step (env vars, file paths)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.paths import ROOT

ENTRYPOINT = ROOT / "entrypoint.py"


@dataclass
class StepResult:
    code: int
    stdout: str
    stderr: str
    outputs: dict[str, str]
    summary: str

    def commands(self, name: str) -> list[str]:
        return [line for line in self.stdout.splitlines() if line.startswith(f"::{name}")]


def parse_output_file(text: str) -> dict[str, str]:
    """Parse ``$GITHUB_OUTPUT`` (``name=value`` lines and ``name<<DELIM`` heredocs) like the runner does."""
    out: dict[str, str] = {}
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        m = re.match(r"^([^=<]+)<<(.+)$", line)
        if m:
            name, delim = m.group(1), m.group(2)
            i += 1
            value: list[str] = []
            while lines[i] != delim:
                value.append(lines[i])
                i += 1
            out[name] = "\n".join(value)
        elif "=" in line:
            name, value_s = line.split("=", 1)
            out[name] = value_s
        i += 1
    return out


def run_step(tmp: Path, event_name: str, payload: Any, *, api_url: str, repo: str, run_id: int,
             inputs: dict[str, str] | None = None, attempt: int = 1, extra_env: dict[str, str] | None = None,
             raw_payload: bytes | None = None) -> StepResult:
    """One container step: /github/workflow/event.json, /github/file_commands/*, INPUT_<NAME> with hyphens kept."""
    workflow = tmp / "github" / "workflow"
    commands = tmp / "github" / "file_commands"
    workspace = tmp / "github" / "workspace"
    for d in (workflow, commands, workspace):
        d.mkdir(parents=True, exist_ok=True)
    event_path = workflow / "event.json"
    event_path.write_bytes(raw_payload if raw_payload is not None else json.dumps(payload).encode())
    output = commands / f"set_output_{run_id}_{attempt}"
    summary = commands / f"step_summary_{run_id}_{attempt}"
    output.write_text("")
    summary.write_text("")
    env = {
        "PATH": os.environ.get("PATH", ""), "HOME": str(tmp), "CI": "true", "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": event_name, "GITHUB_EVENT_PATH": str(event_path), "GITHUB_REPOSITORY": repo,
        "GITHUB_RUN_ID": str(run_id), "GITHUB_RUN_ATTEMPT": str(attempt), "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_API_URL": api_url, "GITHUB_WORKSPACE": str(workspace), "GITHUB_OUTPUT": str(output),
        "GITHUB_STEP_SUMMARY": str(summary), "RUNNER_TEMP": str(tmp),
        "INPUT_GITHUB-TOKEN": "ghs_test_token", "INPUT_STORE": "branch", "INPUT_STATE-BRANCH": "loopforge-state",
        "INPUT_DYNAMODB-TABLE": "loopforge", "INPUT_POLICY": ".github/loopforge.yml", "INPUT_CHECK-NAME": "loopforge",
        "INPUT_DRY-RUN": "false", "INPUT_FAIL-ON-BLOCK": "true", "INPUT_GOVERNANCE-TOKEN": "",
        "PYTHONPATH": str(ROOT),
    }
    for key, value in (inputs or {}).items():
        env[f"INPUT_{key.upper()}"] = value
    env.update(extra_env or {})
    proc = subprocess.run([sys.executable, str(ENTRYPOINT)], env=env, capture_output=True, text=True, timeout=120,
                          cwd=workspace)
    return StepResult(proc.returncode, proc.stdout, proc.stderr, parse_output_file(output.read_text()),
                      summary.read_text())
