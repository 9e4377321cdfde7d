"""External gates: a command (a small Python script) and an HTTP endpoint on 127.0.0.1."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from loopforge import LoopService, LoopState
from loopforge.policy import ChangedFile, FakeContext, Status, evaluate, load_policy
from loopforge.policy.gates import gate_environment, parse_answer, run_gate
from loopforge.policy.model import Gate

PY = sys.executable
HEAD = "a" * 40


def ctx(**kw: Any) -> FakeContext:
    kw.setdefault("head_sha", HEAD)
    kw.setdefault("files", [ChangedFile("src/app.py", additions=1, patch="@@ -0,0 +1 @@\n+print('hi')")])
    return FakeContext(**kw)


def write_script(base: Path, name: str, body: str) -> str:
    path = base / ".github" / "loopforge" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("import json, sys\n" + body)
    return f"{PY} .github/loopforge/{name}"


def gate_policy(gate: str) -> str:
    return f"version: 1\nrules:\n  - name: review\n    require: {{gate: {gate}}}\n"


# ---------------------------------------------------------------------------------------------- command
def test_command_gate_allow_receives_pr_diff_and_record(tmp_path: Path) -> None:
    command = write_script(tmp_path, "allow.py", """
q = json.load(sys.stdin)
open("question.json", "w").write(json.dumps(q))
print(json.dumps({"verdict": "allow", "reason": "looks fine", "summary": "## Review\\nno findings"}))
""")
    service = LoopService()
    record = service.create("octo/repo#7", state=LoopState.PR_CREATED)
    policy = load_policy(gate_policy(f"{{name: reviewer, command: '{command}', timeout: 20}}"))
    evaluation = evaluate(policy, ctx(number=7, title="t"), record=record, base_dir=tmp_path)
    result = evaluation.result("review")
    assert (result.status, result.reason) == (Status.PASSED, "gate reviewer allowed: looks fine")
    gate = evaluation.gates["reviewer"]
    assert gate["verdict"] == "allow" and gate["summary"] == "## Review\nno findings" and gate["head_sha"] == HEAD
    assert evaluation.record_metadata()["policy"]["gates"]["reviewer"]["summary"].startswith("## Review")
    question = json.loads((tmp_path / "question.json").read_text())  # ran in the base checkout
    assert question["pull_request"]["number"] == 7 and question["pull_request"]["head_sha"] == HEAD
    assert "+print('hi')" in question["diff"] and question["diff_truncated"] is False
    assert question["record"]["record_id"] == "octo/repo#7"
    assert question["changed_files"][0]["filename"] == "src/app.py"
    assert question["rule"] == "review"


def test_command_gate_block(tmp_path: Path) -> None:
    command = write_script(tmp_path, "block.py", 'print(json.dumps({"verdict": "block", "reason": "secrets in diff"}))')
    evaluation = evaluate(load_policy(gate_policy(f"{{name: g, command: '{command}'}}")), ctx(), base_dir=tmp_path)
    assert evaluation.verdict == "block"
    assert evaluation.result("review").reason == "gate g blocked: secrets in diff"


@pytest.mark.parametrize(("body", "why"), [
    ('print("not json")', "answer is not JSON"),
    ('print(json.dumps({"verdict": "maybe", "reason": "x"}))', 'verdict must be "allow" or "block", got "maybe"'),
    ('print(json.dumps({"verdict": "allow"}))', "reason must be a non-empty string"),
    ('print(json.dumps(["allow"]))', "answer is not a JSON object"),
    ("pass", "empty answer"),
    ('print(json.dumps({"verdict": "allow", "reason": "x", "summary": 3}))', "summary must be a string"),
])
def test_command_gate_malformed_answer_blocks(tmp_path: Path, body: str, why: str) -> None:
    command = write_script(tmp_path, "bad.py", body)
    evaluation = evaluate(load_policy(gate_policy(f"{{name: g, command: '{command}'}}")), ctx(), base_dir=tmp_path)
    result = evaluation.result("review")
    assert result.status is Status.FAILED
    assert result.reason == f"gate g gave a malformed answer: {why}"
    assert evaluation.gates["g"]["error"] is True


def test_command_gate_log_lines_before_the_answer_are_tolerated(tmp_path: Path) -> None:
    command = write_script(tmp_path, "chatty.py", 'print("thinking...")\nprint(json.dumps({"verdict": "allow", '
                                                  '"reason": "ok"}))')
    evaluation = evaluate(load_policy(gate_policy(f"{{command: '{command}'}}")), ctx(), base_dir=tmp_path)
    assert evaluation.verdict == "pass"


def test_command_gate_nonzero_exit_blocks_even_with_allow(tmp_path: Path) -> None:
    command = write_script(tmp_path, "crash.py", 'print(json.dumps({"verdict": "allow", "reason": "x"}))\n'
                                                 'sys.stderr.write("Traceback: boom\\n")\nsys.exit(3)')
    evaluation = evaluate(load_policy(gate_policy(f"{{name: g, command: '{command}'}}")), ctx(), base_dir=tmp_path)
    assert evaluation.result("review").reason == "gate g exited with status 3: Traceback: boom"


def test_command_gate_timeout_is_fail_closed_and_kills_the_group(tmp_path: Path) -> None:
    grandchild = "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'])\n"
    command = write_script(tmp_path, "slow.py", "import subprocess, time\n" + grandchild + "time.sleep(30)")
    started = time.monotonic()
    evaluation = evaluate(load_policy(gate_policy(f"{{name: g, command: '{command}', timeout: 0.5}}")), ctx(),
                          base_dir=tmp_path)
    assert time.monotonic() - started < 10
    result = evaluation.result("review")
    assert (result.status, result.reason) == (Status.FAILED, "gate g timed out after 0.5s (fail-closed)")
    assert evaluation.gates["g"]["timed_out"] is True


def test_command_gate_timeout_allow_when_configured(tmp_path: Path) -> None:
    command = write_script(tmp_path, "slow.py", "import time\ntime.sleep(30)")
    policy = load_policy(gate_policy(f"{{name: g, command: '{command}', timeout: 0.5, on_timeout: allow}}"))
    evaluation = evaluate(policy, ctx(), base_dir=tmp_path)
    result = evaluation.result("review")
    assert (result.status, result.reason) == (Status.PASSED, "gate g timed out after 0.5s (on_timeout: allow)")


def test_command_gate_missing_program_blocks(tmp_path: Path) -> None:
    evaluation = evaluate(load_policy(gate_policy("{name: g, command: no-such-program-xyz}")), ctx(), base_dir=tmp_path)
    assert evaluation.result("review").reason.startswith("gate g: cannot start no-such-program-xyz")


def test_command_gate_without_base_checkout_is_pending_and_offline_never_runs(tmp_path: Path) -> None:
    policy = load_policy(gate_policy("{name: g, command: 'true'}"))
    result = evaluate(policy, ctx()).result("review")
    assert (result.status, result.reason) == (Status.PENDING, "gate g not run: needs the base-branch checkout")
    offline = evaluate(policy, ctx(), base_dir=tmp_path, run_gates=False).result("review")
    assert (offline.status, offline.reason) == (Status.PENDING, "gate g not run (offline)")


def test_gate_environment_drops_github_tokens() -> None:
    env = gate_environment({"GITHUB_TOKEN": "x", "INPUT_GITHUB-TOKEN": "x", "INPUT_GOVERNANCE-TOKEN": "x",
                            "ACTIONS_RUNTIME_TOKEN": "x", "GH_TOKEN": "x", "OPENAI_API_KEY": "k", "PATH": "/bin"})
    assert env == {"OPENAI_API_KEY": "k", "PATH": "/bin"}


def test_command_gate_does_not_see_tokens(tmp_path: Path) -> None:
    command = write_script(tmp_path, "env.py", 'import os\nprint(json.dumps({"verdict": "allow", '
                                               '"reason": ",".join(sorted(k for k in os.environ if "TOKEN" in k)) '
                                               'or "none"}))')
    gate = Gate(command=command)
    verdict = run_gate(gate, {"pull_request": {"head_sha": HEAD}}, cwd=tmp_path,
                       env={"GITHUB_TOKEN": "secret", "PATH": "/usr/bin:/bin", "MY_TOKEN_X": "y"})
    assert verdict.reason == "MY_TOKEN_X"


def test_gate_verdict_is_reused_for_the_same_head(tmp_path: Path) -> None:
    command = write_script(tmp_path, "count.py", 'open("calls", "a").write("x")\n'
                                                 'print(json.dumps({"verdict": "allow", "reason": "ok"}))')
    policy = load_policy(gate_policy(f"{{name: g, command: '{command}'}}"))
    first = evaluate(policy, ctx(), base_dir=tmp_path)
    again = evaluate(policy, ctx(), base_dir=tmp_path, gate_cache=first.gates)
    assert again.verdict == "pass" and (tmp_path / "calls").read_text() == "x"
    evaluate(policy, ctx(head_sha="b" * 40), base_dir=tmp_path, gate_cache=first.gates)  # new push: asked again
    assert (tmp_path / "calls").read_text() == "xx"


def test_diff_is_truncated(tmp_path: Path) -> None:
    command = write_script(tmp_path, "size.py", 'q = json.load(sys.stdin)\nprint(json.dumps({"verdict": "allow", '
                                                '"reason": str(len(q["diff"])) + " " + str(q["diff_truncated"])}))')
    policy = load_policy(gate_policy(f"{{name: g, command: '{command}', max_diff_bytes: 10}}"))
    evaluation = evaluate(policy, ctx(diff_text="x" * 100), base_dir=tmp_path)
    assert evaluation.result("review").reason == "gate g allowed: 10 True"


def test_parse_answer_keeps_reason_on_one_line() -> None:
    answer = '{"verdict": "block", "reason": "a\\nb\\u001b[31m", "summary": null}'
    assert parse_answer(answer) == ("block", "a b [31m", "")


# ---------------------------------------------------------------------------------------------- url
class _Handler(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length))
        _Handler.received.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
        if self.path == "/slow":
            time.sleep(3)
        answers: dict[str, tuple[int, str]] = {
            "/allow": (200, json.dumps({"verdict": "allow", "reason": "approved by persona", "summary": "fine"})),
            "/block": (200, json.dumps({"verdict": "block", "reason": "risky migration"})),
            "/slow": (200, json.dumps({"verdict": "allow", "reason": "late"})),
            "/error": (500, "oops"),
            "/malformed": (200, "<html>"),
            "/redirect": (302, ""),
        }
        code, text = answers.get(self.path, (404, ""))
        data = text.encode()
        try:
            self.send_response(code)
            if code == 302:
                self.send_header("Location", "http://example.com/")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (time-out tests)
            pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def url_eval(server: str, path: str, extra: str = "", env: dict[str, str] | None = None) -> Any:
    policy = load_policy(gate_policy(f"{{name: g, url: '{server}{path}'{extra}}}"))
    return evaluate(policy, ctx(), gate_env=env)


def test_url_gate_allow_and_headers(server: str) -> None:
    _Handler.received.clear()
    evaluation = url_eval(server, "/allow", ", headers: {Authorization: 'Bearer ${GATE_TOKEN}'}",
                          env={"GATE_TOKEN": "s3cret"})
    assert evaluation.result("review").reason == "gate g allowed: approved by persona"
    assert evaluation.gates["g"]["summary"] == "fine"
    assert _Handler.received[-1]["auth"] == "Bearer s3cret"
    assert _Handler.received[-1]["body"]["pull_request"]["head_sha"] == HEAD


def test_url_gate_block(server: str) -> None:
    evaluation = url_eval(server, "/block")
    assert evaluation.verdict == "block" and evaluation.result("review").reason == "gate g blocked: risky migration"


@pytest.mark.parametrize(("path", "reason"), [
    ("/error", "gate g answered HTTP 500"),
    ("/malformed", "gate g gave a malformed answer: answer is not JSON"),
    ("/redirect", "gate g answered HTTP 302"),
])
def test_url_gate_errors_block(server: str, path: str, reason: str) -> None:
    result = url_eval(server, path).result("review")
    assert (result.status, result.reason) == (Status.FAILED, reason)


def test_url_gate_timeout(server: str) -> None:
    result = url_eval(server, "/slow", ", timeout: 0.5").result("review")
    assert (result.status, result.reason) == (Status.FAILED, "gate g timed out after 0.5s (fail-closed)")
    allowed = url_eval(server, "/slow", ", timeout: 0.5, on_timeout: allow").result("review")
    assert allowed.status is Status.PASSED


def test_url_gate_unreachable_and_missing_header_variable_block(server: str) -> None:
    result = url_eval("http://127.0.0.1:1", "/allow").result("review")
    assert result.status is Status.FAILED and "could not be reached" in result.reason
    missing = url_eval(server, "/allow", ", headers: {Authorization: 'Bearer ${NOPE_NOT_SET}'}", env={})
    assert missing.result("review").reason == "gate g: header Authorization uses ${NOPE_NOT_SET}, which is not set"


def test_policy_guard_asks_a_gate_once_per_head(tmp_path: Path) -> None:
    from loopforge.policy import PolicyGuard

    command = write_script(tmp_path, "count.py", 'open("calls", "a").write("x")\n'
                                                 'print(json.dumps({"verdict": "block", "reason": "no", '
                                                 '"summary": "### findings"}))')
    policy = load_policy(gate_policy(f"{{name: g, command: '{command}'}}"))
    guard = PolicyGuard(policy, ctx(), base_dir=tmp_path)
    service = LoopService(guards=[guard])
    record = service.create("octo/repo#9", state=LoopState.PR_CREATED)
    service.transition(record.record_id, LoopState.CI_PASSED, "ci")
    assert not service.check(record.record_id, LoopState.MERGED).allowed
    result = service.transition(record.record_id, LoopState.MERGED, "merge")
    assert not result.success and result.error is not None and "gate g blocked: no" in result.error
    assert (tmp_path / "calls").read_text() == "x"
    assert guard.last_evaluation is not None
    assert "<summary>Gate g: block</summary>" in guard.last_evaluation.markdown()
    assert "### findings" in guard.last_evaluation.markdown()
