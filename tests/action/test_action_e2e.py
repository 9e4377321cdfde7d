"""``entrypoint.py`` run as the Actions runner runs the container, against a fake GitHub on 127.0.0.1.

Real payloads (tests/fixtures/lifecycle, built from @octokit/webhooks-examples); every request and response the
Action exchanges is validated against GitHub's OpenAPI description by the fake.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.action_harness import StepResult, run_step
from tests.fakegithub import FakeGitHub
from tests.paths import lifecycle_delivery

REPO = "Codertocat/Hello-World"
HEAD_JSON = "records/Codertocat/Hello-World/1/head.json"


def event(index: int) -> tuple[str, dict[str, Any]]:
    return lifecycle_delivery(index)


def step(tmp_path: Path, gh: tuple[FakeGitHub, str], index: int, run_id: int, **kw: Any) -> StepResult:
    name, payload = event(index)
    pr = payload.get("pull_request") or {}
    if pr.get("merged"):  # the commit the merge made on the base (the fixture's SHA is not in the fake)
        pr["merge_commit_sha"] = gh[0].set_file("master", "merged.txt", "merged\n", message="Merge pull request #2")
    return run_step(tmp_path / f"run{run_id}-{kw.get('attempt', 1)}", name, payload, api_url=gh[1], repo=REPO,
                    run_id=run_id, **kw)


def stored_head(fake: FakeGitHub) -> dict[str, Any]:
    return json.loads(fake.branch_files("loopforge-state")[HEAD_JSON])


EXPECTED = [
    ("issue_created", "", "none"), ("task_queued", "issue_created", "none"), ("pr_created", "task_queued", "block"),
    ("ci_pending", "pr_created", "block"), ("ci_passed", "ci_pending", "pass"), ("approved", "ci_passed", "pass"),
    ("merged", "approved", "none"), ("closed", "merged", "none"),
]
#: check run (status, conclusion) after each PR-related step
CHECKS = {2: ("in_progress", None), 3: ("in_progress", None), 4: ("completed", "success"),
          5: ("completed", "success"), 6: ("completed", "neutral")}


def test_whole_lifecycle_through_the_container_contract(tmp_path: Path, github: tuple[FakeGitHub, str]) -> None:
    fake, _ = github
    head_sha = event(2)[1]["pull_request"]["head"]["sha"]
    for i, (state, previous, verdict) in enumerate(EXPECTED):
        result = step(tmp_path, github, i, 500 + i)
        assert result.code == 0, result.stdout + result.stderr
        assert result.outputs == {"record-id": "Codertocat/Hello-World#1", "state": state,
                                  "previous-state": previous, "outcome": "applied", "verdict": verdict}
        head = stored_head(fake)
        assert head["state"] == state and head["last_sequence"] == i + 1
        assert "Codertocat/Hello\\-World\\#1" in result.summary and f"`{state}`" in result.summary
        runs = fake.check_runs(head_sha)
        if i in CHECKS:
            assert len(runs) == 1, "one check run per (sha, name), updated in place"
            assert (runs[0].status, runs[0].conclusion) == CHECKS[i]
            assert runs[0].name == "loopforge" and f"`{state}`" in runs[0].output["summary"]
        assert not result.stderr.strip()
    files = fake.branch_files("loopforge-state")
    entries = sorted(p for p in files if p.startswith("records/Codertocat/Hello-World/1/entries/"))
    assert len(entries) == 8
    assert [json.loads(files[p])["to_state"] for p in entries] == [s for s, _, _ in EXPECTED]


def test_rerun_of_a_workflow_run_records_nothing_twice(tmp_path: Path, github: tuple[FakeGitHub, str]) -> None:
    fake, _ = github
    for i in range(5):
        assert step(tmp_path, github, i, 600 + i).code == 0
    before = fake.branch_files("loopforge-state")
    again = step(tmp_path, github, 4, 604, attempt=2)
    assert again.code == 0 and again.outputs["outcome"] == "duplicate"
    assert fake.branch_files("loopforge-state") == before
    assert len(fake.check_runs(event(2)[1]["pull_request"]["head"]["sha"])) == 1


def test_dry_run_stores_and_posts_nothing(tmp_path: Path, github: tuple[FakeGitHub, str]) -> None:
    fake, _ = github
    for i in range(2):
        assert step(tmp_path, github, i, 700 + i).code == 0
    before = fake.branch_files("loopforge-state")
    result = step(tmp_path, github, 2, 702, inputs={"dry-run": "true"})
    assert result.code == 0 and result.outputs["state"] == "pr_created"
    assert fake.branch_files("loopforge-state") == before
    assert fake.check_runs(event(2)[1]["pull_request"]["head"]["sha"]) == []
    assert "Dry run" in result.summary


def test_merge_without_ci_is_recorded_as_a_violation_and_fails(tmp_path: Path,
                                                               github: tuple[FakeGitHub, str]) -> None:
    fake, _ = github
    for i in (0, 1, 2, 3):
        assert step(tmp_path, github, i, 800 + i).code == 0
    merged = step(tmp_path, github, 6, 806)
    assert merged.code == 1
    assert merged.outputs["state"] == "merged"
    errors = merged.commands("error")
    assert len(errors) == 1 and "ci_pending → merged" in errors[0] and "lifecycle violation" in errors[0]
    assert stored_head(fake)["violations"] == 1
    assert "[!WARNING]" in merged.summary


def test_unsupported_event_is_a_notice(tmp_path: Path, github: tuple[FakeGitHub, str]) -> None:
    result = run_step(tmp_path, "star", {"action": "created", "repository": {"full_name": REPO}},
                      api_url=github[1], repo=REPO, run_id=900)
    assert result.code == 0 and result.outputs["outcome"] == "ignored" and result.outputs["verdict"] == "none"
    assert len(result.commands("notice")) == 1


def issue_titled(title: str) -> bytes:
    """The real ``issues.opened`` payload with ``title``, as JSON with every non-ASCII character escaped (a
    surrogate pair as its two ``\\uXXXX``, a lone surrogate as its one)."""
    payload = event(0)[1]
    payload["issue"]["title"] = title
    return json.dumps(payload).encode()


@pytest.mark.parametrize("raw, fragment", [
    (b"", "not valid JSON"), (b"{not json", "not valid JSON"), (b"\xff\xfe\x00", "not UTF-8"),
    (issue_titled("half a pair \ud83d"), "not UTF-8 text (it escapes half a UTF-16 surrogate pair)"),
    (b'{"action": "opened"}', "repository: missing"), (b"[1, 2]", "not a JSON object"),
    (b'{"action": "opened", "repository": {"full_name": "a/b"}, "issue": {"number": "NaN"}}', "issue.number"),
])
def test_broken_payloads_fail_with_one_clear_error(tmp_path: Path, github: tuple[FakeGitHub, str], raw: bytes,
                                                   fragment: str) -> None:
    fake, url = github
    result = run_step(tmp_path, "issues", None, raw_payload=raw, api_url=url, repo=REPO, run_id=901)
    assert result.code == 1
    errors = result.commands("error")
    assert len(errors) == 1 and fragment in errors[0], result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert fake.branch_files("loopforge-state") == {} or HEAD_JSON not in fake.branch_files("loopforge-state")


def test_an_escaped_surrogate_pair_is_text(tmp_path: Path, github: tuple[FakeGitHub, str]) -> None:
    raw = issue_titled("deploy \U0001f680")
    assert b"\\ud83d\\ude80" in raw
    result = run_step(tmp_path, "issues", None, raw_payload=raw, api_url=github[1], repo=REPO, run_id=905)
    assert result.code == 0 and result.commands("error") == [], result.stdout + result.stderr
    assert result.outputs["state"] == "issue_created" and stored_head(github[0])["last_sequence"] == 1


def test_missing_token_is_explained(tmp_path: Path, github: tuple[FakeGitHub, str]) -> None:
    result = step(tmp_path, github, 0, 902, inputs={"github-token": ""})
    assert result.code == 1 and "github-token input is empty" in result.commands("error")[0]


def test_fork_read_only_token_warns_and_does_not_crash(tmp_path: Path, github: tuple[FakeGitHub, str]) -> None:
    fake, _ = github
    fake.read_only_token = True
    result = step(tmp_path, github, 2, 903)
    assert result.code == 0, result.stdout + result.stderr
    assert len(result.commands("warning")) == 1 and "read-only" in result.commands("warning")[0]
    assert "Traceback" not in result.stdout + result.stderr


def test_hostile_title_and_branch_are_never_interpreted(tmp_path: Path, github: tuple[FakeGitHub, str]) -> None:
    fake, url = github
    name, payload = event(2)
    evil = "::error::pwned\n::add-mask::x </details><img src=x onerror=alert(1)> @org/team [x](javascript:alert(1))"
    payload["pull_request"]["title"] = evil
    payload["pull_request"]["head"]["ref"] = "::stop-commands::abc"
    payload["sender"]["login"] = "::warning::mallory"
    result = run_step(tmp_path, name, payload, api_url=url, repo=REPO, run_id=904)
    assert result.code == 0, result.stdout
    assert not [line for line in result.stdout.splitlines() if line.startswith("::")]
    summary = fake.check_runs(payload["pull_request"]["head"]["sha"])[0].output["summary"]
    for text in (result.summary, summary):
        assert "<img" not in text and "</details>" not in text and "javascript:" not in text
        assert "@org/team" not in text
