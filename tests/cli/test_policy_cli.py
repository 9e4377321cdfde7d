"""``loopforge policy validate | schema | explain`` through ``loopforge.cli.main``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from loopforge.cli import main
from loopforge.policy.model import policy_json_schema_text

POLICY = """version: 1
risk:
  high: {files: ["infra/**"], labels: ["risk:high"]}
approvers:
  security: [alice]
rules:
  - name: CI
    require: {ci: {workflows: [CI]}}
  - name: docs only
    if: {only_files: ["docs/**"]}
    require: {no_labels: [do-not-merge]}
  - name: high risk
    if: {risk: high}
    require:
      approvals: {count: 1, from: {approvers: security}}
      gate: {name: reviewer, url: "https://review.example.com/verdict"}
  - name: ready
    if: {draft: false}
    require: {no_labels: [wip]}
"""


class Result:
    def __init__(self, exit_code: int, output: str, stderr: str) -> None:
        self.exit_code, self.output, self.stderr = exit_code, output, stderr


@pytest.fixture
def policy(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """``policy(args, input=None)`` runs ``loopforge policy ARGS`` and returns its exit code, stdout, stderr."""

    def invoke(args: list[str], input: str | None = None) -> Result:
        if input is not None:
            import io

            monkeypatch.setattr("sys.stdin", io.StringIO(input))
        code = main(["policy", *args])
        out = capsys.readouterr()
        return Result(code, out.out, out.err)

    return invoke


def event(**pr: Any) -> dict[str, Any]:
    pull = {"number": 12, "title": "Add VPC", "body": "Fixes #3", "user": {"login": "dev"},
            "author_association": "MEMBER", "draft": False, "labels": [{"name": "risk:high"}],
            "base": {"ref": "main", "repo": {"full_name": "octo/repo"}},
            "head": {"ref": "vpc", "sha": "c0ffee" + "0" * 34}, "additions": 10, "deletions": 2}
    pull.update(pr)
    return {"action": "opened", "pull_request": pull, "repository": {"full_name": "octo/repo"}}


def files(tmp_path: Path, ev: dict[str, Any] | None = None, text: str = POLICY) -> tuple[str, str]:
    p = tmp_path / "loopforge.yml"
    p.write_text(text)
    e = tmp_path / "event.json"
    e.write_text(json.dumps(ev if ev is not None else event()))
    return str(p), str(e)


def test_validate_ok(tmp_path: Path, policy: Any) -> None:
    p, _ = files(tmp_path)
    result = policy(["validate", p])
    assert result.exit_code == 0
    assert result.output.startswith(f"{p}: valid (4 rules, sha256 ")


def test_validate_invalid_is_one_line_exit_1(tmp_path: Path, policy: Any) -> None:
    p, _ = files(tmp_path, text="version: 1\nrules:\n  - name: a\n    if: {files: infra}\n    require: {label: x}\n")
    result = policy(["validate", p])
    assert result.exit_code == 1
    assert result.stderr == f"loopforge: error: {p}: rules[0].if.files: expected a list of globs, got a string\n"


def test_validate_missing_file_exit_2(tmp_path: Path, policy: Any) -> None:
    result = policy(["validate", str(tmp_path / "nope.yml")])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "no such policy file" in result.stderr


def test_usage_error_exit_2(policy: Any) -> None:
    assert policy(["explain"]).exit_code == 2


def test_schema_command_prints_the_schema(policy: Any) -> None:
    result = policy(["schema"])
    assert result.exit_code == 0 and result.output == policy_json_schema_text()


def test_explain_offline(tmp_path: Path, policy: Any) -> None:
    p, e = files(tmp_path)
    result = policy(["explain", "--pr-event", e, "--policy", p])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "PR #12 by dev into main at c0ffee0" in out
    assert "note: changed files not known" in out
    assert "risk tier: high (label risk:high present)" in out
    assert "[pending] CI: waiting" not in out  # unknown is reported as unknown, not as waiting
    assert "[pending] CI: ci: workflow runs not known here" in out
    assert "[pending] docs only: cannot tell whether the rule applies: changed files not known here" in out
    assert "[pending] high risk: approvals: reviews not known here; gate reviewer not run (offline)" in out
    assert "    applies: risk tier is high" in out
    assert "[passed] ready: none of wip present" in out
    assert out.rstrip().splitlines()[-1].startswith("verdict: block (")


def test_explain_with_changed_files_and_json(tmp_path: Path, policy: Any) -> None:
    p, e = files(tmp_path, event(labels=[]))
    changed = tmp_path / "files.txt"
    changed.write_text("docs/a.md\ndocs/b.md\n")
    result = policy(["explain", "--pr-event", e, "--policy", p, "--changed-files",
                                         str(changed), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["risk_tier"] == "low"
    statuses = {r["name"]: r["status"] for r in data["results"]}
    assert statuses == {"CI": "pending", "docs only": "passed", "high risk": "skipped", "ready": "passed"}
    stdin = policy(["explain", "--pr-event", e, "--policy", p, "--changed-files", "-"],
                               input="infra/vpc.tf\n")
    assert "risk tier: high (infra/vpc.tf matches infra/**)" in stdin.output


def test_explain_workflow_run_event_knows_that_run(tmp_path: Path, policy: Any) -> None:
    ev = event()
    ev["workflow_run"] = {"name": "CI", "head_sha": ev["pull_request"]["head"]["sha"], "status": "completed",
                          "conclusion": "success"}
    p, e = files(tmp_path, ev)
    result = policy(["explain", "--pr-event", e, "--policy", p])
    assert "[passed] CI: CI passed on c0ffee0: workflow CI (success)" in result.output


def test_explain_bad_inputs(tmp_path: Path, policy: Any) -> None:
    p, e = files(tmp_path, {"action": "created", "issue": {}})
    result = policy(["explain", "--pr-event", e, "--policy", p])
    assert result.exit_code == 2 and result.stderr == f"loopforge: error: {e}: the event has no pull_request\n"
    bad_policy, e2 = files(tmp_path, event(), "version: 3\n")
    result = policy(["explain", "--pr-event", e2, "--policy", bad_policy])
    assert result.exit_code == 2 and "version: expected one of 1" in result.stderr
    result = policy(["explain", "--pr-event", str(tmp_path / "none.json"), "--policy", p])
    assert result.exit_code == 2
    p, _ = files(tmp_path)  # a valid policy again
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    result = policy(["explain", "--pr-event", str(broken), "--policy", p])
    assert result.exit_code == 2 and result.stderr == f"loopforge: error: {broken}:1:2: malformed JSON: " \
        "Expecting property name enclosed in double quotes\n"
    partial = event()
    del partial["pull_request"]["head"]
    p3, e3 = files(tmp_path, partial)
    result = policy(["explain", "--pr-event", e3, "--policy", p3])
    assert result.exit_code == 2 and "lacks 'head'" in result.stderr
