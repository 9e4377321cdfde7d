"""External reviewer gates: a command or an HTTP endpoint that reads the PR as JSON and answers a verdict.

The question (stdin of the command, body of the POST)::

    {"version": 1, "gate": "...", "rule": "...", "repository": "o/r", "risk_tier": "high",
     "pull_request": {"number": 7, "title": ..., "body": ..., "author": ..., "base_ref": ..., "head_sha": ...,
                      "draft": false, "labels": [...]},
     "changed_files": [{"filename": ..., "status": ..., "additions": 1, "deletions": 0}],
     "diff": "...", "diff_truncated": false, "record": {...} | null}

The answer (stdout of the command, body of the response)::

    {"verdict": "allow" | "block", "reason": "one line", "summary": "markdown, optional"}

Anything else blocks: a malformed answer, a non-zero exit, an HTTP error, a gate that cannot be reached. A
time-out blocks unless the gate says ``on_timeout: allow``. Commands run without a shell, in the base-branch
checkout, with the GitHub tokens removed from their environment.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import re
import shlex
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import requests

from loopforge.policy.model import Gate

#: Environment variables never passed to a gate command (the Action's GitHub credentials).
_SECRET_ENV = re.compile(r"^(GITHUB_TOKEN|GH_TOKEN|ACTIONS_RUNTIME_TOKEN|ACTIONS_ID_TOKEN_REQUEST_TOKEN|"
                         r"ACTIONS_ID_TOKEN_REQUEST_URL|INPUT_.*TOKEN.*)$", re.IGNORECASE)
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_ANSWER_LIMIT = 1_000_000
_REASON_LIMIT = 500
_SUMMARY_LIMIT = 60_000


@dataclass
class GateVerdict:
    gate: str
    verdict: Literal["allow", "block"]
    reason: str
    summary: str = ""
    timed_out: bool = False
    error: bool = False  # the gate did not answer properly (malformed, crashed, unreachable)
    duration_ms: int = 0
    head_sha: str | None = None

    @property
    def allowed(self) -> bool:
        return self.verdict == "allow"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateVerdict:
        return cls(gate=str(data["gate"]), verdict="allow" if data.get("verdict") == "allow" else "block",
                   reason=str(data.get("reason", "")), summary=str(data.get("summary", "")),
                   timed_out=bool(data.get("timed_out")), error=bool(data.get("error")),
                   duration_ms=int(data.get("duration_ms", 0)), head_sha=data.get("head_sha"))


def _one_line(text: str, limit: int = _REASON_LIMIT) -> str:
    text = " ".join(re.sub(r"[\x00-\x1f\x7f]", " ", text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse_answer(text: str) -> tuple[Literal["allow", "block"], str, str]:
    """``(verdict, reason, summary)`` from a gate's answer, or ``ValueError`` saying what is wrong with it."""
    if len(text) > _ANSWER_LIMIT:
        raise ValueError(f"answer larger than {_ANSWER_LIMIT} bytes")
    stripped = text.strip()
    if not stripped:
        raise ValueError("empty answer")
    try:
        data = json.loads(stripped)
    except json.JSONDecodeError:
        last = stripped.splitlines()[-1].strip()  # tolerate log lines before the JSON answer
        try:
            data = json.loads(last)
        except json.JSONDecodeError:
            raise ValueError("answer is not JSON") from None
    if not isinstance(data, dict):
        raise ValueError("answer is not a JSON object")
    verdict = data.get("verdict")
    if verdict not in ("allow", "block"):
        raise ValueError(f"verdict must be \"allow\" or \"block\", got {json.dumps(verdict)[:40]}")
    reason = data.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise ValueError("reason must be a non-empty string")
    summary = data.get("summary", "")
    if summary is None:
        summary = ""
    if not isinstance(summary, str):
        raise ValueError("summary must be a string")
    return verdict, _one_line(reason), summary[:_SUMMARY_LIMIT]


def gate_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a gate command: the current one without the GitHub tokens."""
    env = dict(os.environ if base is None else base)
    return {k: v for k, v in env.items() if not _SECRET_ENV.match(k)}


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):  # pragma: no cover - already gone
        proc.kill()


def _run_command(gate: Gate, body: bytes, cwd: Path, env: Mapping[str, str] | None) -> GateVerdict:
    name = gate.display_name
    assert gate.command is not None
    try:
        args = shlex.split(gate.command)
    except ValueError as exc:
        return GateVerdict(name, "block", f"gate {name}: cannot parse the command: {exc}", error=True)
    if not args:
        return GateVerdict(name, "block", f"gate {name}: empty command", error=True)
    try:
        proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                cwd=str(cwd), env=gate_environment(env), start_new_session=True)
    except OSError as exc:
        return GateVerdict(name, "block", f"gate {name}: cannot start {args[0]}: {exc.strerror or exc}",
                           error=True)
    try:
        out, err = proc.communicate(body, timeout=gate.timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        with contextlib.suppress(subprocess.TimeoutExpired):  # a child that survives SIGKILL
            proc.communicate(timeout=5)
        return _timed_out(gate)
    if proc.returncode != 0:
        tail = _one_line(err.decode("utf-8", "replace")[-300:], 300)
        return GateVerdict(name, "block", f"gate {name} exited with status {proc.returncode}"
                                          + (f": {tail}" if tail else ""), error=True)
    return _answer(name, out.decode("utf-8", "replace"))


def _timed_out(gate: Gate) -> GateVerdict:
    name = gate.display_name
    if gate.on_timeout == "allow":
        return GateVerdict(name, "allow", f"gate {name} timed out after {gate.timeout:g}s (on_timeout: allow)",
                           timed_out=True)
    return GateVerdict(name, "block", f"gate {name} timed out after {gate.timeout:g}s (fail-closed)",
                       timed_out=True)


def _answer(name: str, text: str) -> GateVerdict:
    try:
        verdict, reason, summary = parse_answer(text)
    except ValueError as exc:
        return GateVerdict(name, "block", f"gate {name} gave a malformed answer: {exc}", error=True)
    return GateVerdict(name, verdict, reason, summary)


def _expand_headers(headers: Mapping[str, str], env: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in headers.items():
        missing = [v for v in _VAR.findall(value) if v not in env]
        if missing:
            raise KeyError(f"header {key} uses ${{{missing[0]}}}, which is not set")
        out[key] = _VAR.sub(lambda m: env[m.group(1)], value)
    return out


def _post(gate: Gate, body: bytes, env: Mapping[str, str] | None) -> GateVerdict:
    name = gate.display_name
    assert gate.url is not None
    try:
        headers = _expand_headers(gate.headers, os.environ if env is None else env)
    except KeyError as exc:
        return GateVerdict(name, "block", f"gate {name}: {exc.args[0]}", error=True)
    headers.setdefault("Content-Type", "application/json")
    headers.setdefault("User-Agent", "loopforge-policy-gate")

    def send() -> requests.Response:
        return requests.post(gate.url or "", data=body, headers=headers, timeout=gate.timeout,
                             allow_redirects=False)

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        future = pool.submit(send)
        try:
            response = future.result(timeout=gate.timeout)  # a total deadline, not only per socket read
        except (concurrent.futures.TimeoutError, requests.Timeout):
            return _timed_out(gate)
        except requests.RequestException as exc:
            return GateVerdict(name, "block", f"gate {name} could not be reached: {type(exc).__name__}",
                               error=True)
    finally:
        pool.shutdown(wait=False)
    if not 200 <= response.status_code < 300:
        return GateVerdict(name, "block", f"gate {name} answered HTTP {response.status_code}", error=True)
    return _answer(name, response.text)


def run_gate(gate: Gate, payload: Mapping[str, Any], *, cwd: str | Path | None = None,
             env: Mapping[str, str] | None = None) -> GateVerdict:
    """Ask one gate. ``cwd`` (the base-branch checkout) is required for a ``command`` gate. Never raises for
    anything the gate does: every failure is a ``block`` verdict with its reason."""
    started = time.monotonic()
    body = json.dumps(payload, default=str).encode("utf-8")
    if gate.command is not None:
        if cwd is None:
            verdict = GateVerdict(gate.display_name, "block", f"gate {gate.display_name}: no base-branch checkout "
                                                              "to run the command in", error=True)
        else:
            verdict = _run_command(gate, body, Path(cwd), env)
    else:
        verdict = _post(gate, body, env)
    verdict.duration_ms = int((time.monotonic() - started) * 1000)
    head = payload.get("pull_request", {}).get("head_sha") if isinstance(payload.get("pull_request"), dict) else None
    verdict.head_sha = head
    return verdict


def gate_key(gate: Gate) -> str:
    """A stable key for a gate's verdict (to reuse it for the same head SHA)."""
    return gate.display_name


def truncate_utf8(text: str, limit: int) -> tuple[str, bool]:
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text, False
    return data[:limit].decode("utf-8", "ignore"), True
