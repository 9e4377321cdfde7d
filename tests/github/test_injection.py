"""Injection: workflow commands, markdown/HTML, mentions, links, ANSI and bidi controls, 100 KB strings in every
field LoopForge echoes, and in the reasons the policy derives from PR-controlled text.

Each scenario is a real payload (tests/fixtures/lifecycle, from @octokit/webhooks-examples) with the attack
string in every field of that scenario that LoopForge reads or shows (PR title, body, head/base branch, labels,
author, sender, requested reviewer, reviewer, assignee, issue title/body/labels, CI name; and for the policy:
changed file names, the reviewer and the label adder its reasons quote). Every attack string goes into every field
(``test_every_attack_in_every_field``: the whole matrix, through ``loopforge.action.run`` exactly as
``entrypoint.py`` calls it); every scenario also goes through ``entrypoint.py`` itself (``run_step``, the real
process) with all attack strings at once and with 100 KB strings.

What must hold: no stdout line is a workflow command except the Action's own (``::error/warning/notice`` with
its escaped ``LoopForge: ...`` title and data on one line, ``::debug``, ``::group``/``::endgroup``,
``::stop-commands::<random token>`` closed by ``::<token>::``); no ``::add-mask::``, no legacy ``##[`` command,
no raw ANSI escape, bidi override or carriage return. The check run (title and summary) and the step summary
hold no raw ``<img``, ``<details>`` or ``</details>``, no ``javascript:``, no live ``@mention``, no ANSI/bidi
control and no ``|`` that breaks a table row. Everything stays bounded (check run summary <= 65,535 bytes, no
huge log line, step summary well under 1 MiB). The outputs file holds exactly the five outputs.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from loopforge.action import run
from tests.action_harness import parse_output_file, run_step
from tests.fakegithub import FakeGitHub
from tests.fakegithub.fixtures import assert_clean
from tests.paths import lifecycle_event as fixture

REPO = "Codertocat/Hello-World"
PR = 2
HEAD = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
OUTPUT_NAMES = {"record-id", "state", "previous-state", "outcome", "verdict"}

HUNDRED_KB = "::error::A " + "<img src=x onerror=alert(1)> @org/team |" * 2600  # ~100 KB
ATTACKS: dict[str, str] = {
    "error command": "::error::pwned",
    "add-mask": "::add-mask::ghs_secret",
    "stop-commands": "::stop-commands::deadbeef",
    "encoded newline": "%0A::error::x",
    "CRLF warning": "\r\n::warning::y",
    "LF error": "title\n::error file=a.py,line=1::injected",
    "set-output": "::set-output name=x::y",
    "group": "::group::x",
    "legacy command": "##[error]x",
    "details": "</details><details open><summary>x</summary>",
    "img onerror": '<img src=x onerror="alert(1)">',
    "team mention": "@org/team and @octocat",
    "javascript link": "[x](javascript:alert(1)) <javascript:alert(2)>",
    "ANSI": "\x1b[31mred\x1b[0m \x1b]8;;https://evil.example\x07link\x1b]8;;\x07",
    "RLO": "safe\u202etxt.exe",
    "table": "a | b || c\\|d",
    "markdown": "# Heading\n```\ncode\n---\n> quote ![i](https://evil.example/x.png)",
    "100 KB": HUNDRED_KB,
}
ALL_AT_ONCE = "\n".join(v for k, v in ATTACKS.items() if k != "100 KB")


def user(login: str) -> dict[str, Any]:
    base = copy.deepcopy(fixture("pull_request-opened")["sender"])
    base["login"] = login
    return base


def label(name: str) -> dict[str, Any]:
    return {"id": 1, "node_id": "MDU6TGFiZWwx", "url": f"https://api.github.com/repos/{REPO}/labels/x",
            "name": name, "color": "d73a4a", "default": False, "description": None}


# ---------------------------------------------------------------------------------------------- scenarios
@dataclass
class Scenario:
    """One event with ``evil`` in its ``fields``; ``seed`` prepares the fake GitHub (the facts the API returns)."""

    fields: list[str]
    event: Callable[[str], tuple[str, dict[str, Any]]]
    seed: Callable[[FakeGitHub, str], None]


def _pr_fields(payload: dict[str, Any], evil: str) -> None:
    pr = payload["pull_request"]
    pr["title"] = evil
    pr["body"] = evil + "\n\nFixes #1"
    pr["head"]["ref"] = evil
    pr["base"]["ref"] = evil
    pr["labels"] = [label(evil)]
    pr["user"]["login"] = evil
    payload["sender"]["login"] = evil


def pr_review_requested(evil: str) -> tuple[str, dict[str, Any]]:
    payload = fixture("pull_request-opened")
    payload["action"] = "review_requested"
    _pr_fields(payload, evil)
    payload["requested_reviewer"] = user(evil)
    return "pull_request", payload


def pr_labeled(evil: str) -> tuple[str, dict[str, Any]]:
    payload = fixture("pull_request-opened")
    payload["action"] = "labeled"
    payload["label"] = label(evil)
    payload["pull_request"]["labels"] = [label(evil)]
    payload["sender"]["login"] = evil
    return "pull_request", payload


def review_submitted(evil: str) -> tuple[str, dict[str, Any]]:
    payload = fixture("pull_request_review-submitted")
    payload["review"]["user"]["login"] = evil
    payload["review"]["body"] = evil
    payload["sender"]["login"] = evil
    return "pull_request_review", payload


def issue_assigned(evil: str) -> tuple[str, dict[str, Any]]:
    payload = fixture("issues-assigned")
    issue = payload["issue"]
    issue["title"] = evil
    issue["body"] = evil
    issue["labels"] = [label(evil)]
    issue["user"]["login"] = evil
    payload["assignee"] = user(evil)
    payload["sender"]["login"] = evil
    return "issues", payload


def ci_failed(evil: str) -> tuple[str, dict[str, Any]]:
    payload = fixture("workflow_run-completed")
    run_ = payload["workflow_run"]
    run_.update({"name": evil, "display_title": evil, "conclusion": "failure", "head_branch": evil})
    payload["sender"]["login"] = evil
    return "workflow_run", payload


def merged_against_policy(evil: str) -> tuple[str, dict[str, Any]]:
    payload = fixture("pull_request-closed")
    payload["pull_request"]["title"] = evil
    payload["sender"]["login"] = evil
    return "pull_request", payload


POLICY = """\
version: 1
risk:
  high: {files: ["infra/**"]}
approvers:
  security: [alice]
rules:
  - name: high-risk governance
    if: {risk: high}
    require:
      approvals: {count: 1, from: {approvers: security}}
      label: {name: governance-approved, added_by: {approvers: security}}
  - name: no blockers
    require:
      no_labels: [do-not-merge]
"""


def seed_pr(fake: FakeGitHub, evil: str) -> None:
    fake.add_pull(PR, HEAD, base="master", title=evil, body=evil, user=_login(evil), head_ref="changes")


def seed_policy(fake: FakeGitHub, evil: str) -> None:
    """A strict policy on the base branch; the PR's files, reviewer and label adder carry the attack string."""
    fake.set_file("master", ".github/loopforge.yml", POLICY)
    login = _login(evil)
    fake.add_pull(PR, HEAD, base="master", title=evil, body="Fixes #1", user=login, head_ref="changes",
                  files=[(f"infra/{evil}", 3, 0), (evil, 1, 1)], labels=["do-not-merge"], state="closed",
                  merged=True, merged_by=login)
    fake.add_review(PR, login, "APPROVED", HEAD)
    fake.add_label_event(PR, "governance-approved", login)
    # the commit the merge made on master (its parent holds the policy): what the payload names, see with_merge
    fake.pulls[PR].merge_commit_sha = fake.set_file("master", "merged.txt", "merged\n")


def with_merge(payload: dict[str, Any], fake: FakeGitHub) -> dict[str, Any]:
    """A merged PR's payload names the merge commit the fake made (the fixture's SHA is not in the fake)."""
    pull = payload.get("pull_request") or {}
    if pull.get("merged") and fake.pulls.get(PR) and fake.pulls[PR].merge_commit_sha:
        pull["merge_commit_sha"] = fake.pulls[PR].merge_commit_sha
    return payload


def _login(evil: str) -> str:
    return evil


SCENARIOS: dict[str, Scenario] = {
    "pull_request.review_requested": Scenario(
        ["pull_request.title", "pull_request.body", "pull_request.head.ref", "pull_request.base.ref",
         "pull_request.labels[].name", "pull_request.user.login", "sender.login", "requested_reviewer.login"],
        pr_review_requested, seed_pr),
    "pull_request.labeled": Scenario(["label.name", "pull_request.labels[].name", "sender.login"], pr_labeled,
                                     seed_pr),
    "pull_request_review.submitted": Scenario(["review.user.login", "review.body", "sender.login"],
                                              review_submitted, seed_pr),
    "issues.assigned": Scenario(["issue.title", "issue.body", "issue.labels[].name", "issue.user.login",
                                 "assignee.login", "sender.login"], issue_assigned,
                                lambda fake, evil: None),
    "workflow_run.completed": Scenario(["workflow_run.name", "workflow_run.display_title",
                                        "workflow_run.head_branch", "sender.login"], ci_failed, seed_pr),
    "pull_request.closed (policy reasons)": Scenario(
        ["changed file names", "reviewer login", "label adder login", "pull_request.title", "sender.login"],
        merged_against_policy, seed_policy),
}


# ---------------------------------------------------------------------------------------------- what must hold
#: the Action's annotations always carry a "LoopForge: ..." title: an injected ``::error::x`` line has none
OWN = re.compile(
    r"^(?:::(?:error|warning|notice) title=LoopForge%3A [^:,\r\n]*::[^\r\n]*|::debug::[^\r\n]*"
    r"|::group::[^\r\n]*|::endgroup::|::stop-commands::(?P<open>[0-9a-f]{32})|::(?P<close>[0-9a-f]{32})::)$")
CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
LIVE_MENTION = re.compile(r"(?<![\w`])@(?!\u200b)[A-Za-z0-9]")
HTML = re.compile(r"(?i)<\s*/?\s*(img|details|summary|script|a\s|iframe)")
TOKENS: set[str] = set()


def unescaped_pipes(line: str) -> int:
    return len(re.findall(r"(?<!\\)\|", re.sub(r"\\\\", "", line)))


def assert_markdown_inert(text: str, where: str) -> None:
    assert not HTML.search(text), (where, HTML.search(text))
    assert "javascript:" not in text.lower(), where
    assert not LIVE_MENTION.search(text), (where, text[max(0, LIVE_MENTION.search(text).start() - 40):][:80])  # type: ignore[union-attr]
    assert not CONTROLS.search(text.replace("\n", "")), (where, repr(CONTROLS.search(text.replace("\n", ""))))
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if line.startswith("|") and i + 1 < len(lines) and re.match(r"^\|[\s:|-]+\|$", lines[i + 1]):
            columns = unescaped_pipes(line)  # a header row: every row below it has as many cell borders
            j = i + 2
            while j < len(lines) and lines[j].startswith("|"):
                assert unescaped_pipes(lines[j]) == columns, (where, lines[j][:300])
                j += 1


def assert_log_inert(stdout: str) -> list[str]:
    """The stdout rules; returns the stop-commands tokens used."""
    assert "\r" not in stdout and "\x1b" not in stdout and "\u202e" not in stdout
    opened: list[str] = []
    closed: list[str] = []
    for line in stdout.split("\n"):
        stripped = line.lstrip()
        assert not stripped.startswith("##["), line[:200]
        assert len(line) <= 10_000, f"a {len(line)}-character log line"
        if not stripped.startswith("::"):
            assert not line or line.startswith("LoopForge: ") or opened[len(closed):], line[:200]
            continue
        m = OWN.match(line)
        assert m, f"not one of the Action's own commands: {line[:300]!r}"
        if m["open"]:
            opened.append(m["open"])
        if m["close"]:
            assert opened and opened[-1] == m["close"], line
            closed.append(m["close"])
    assert opened == closed, "a ::stop-commands:: block was left open"
    return opened


@dataclass
class Seen:
    code: int
    stdout: str
    summary: str
    outputs: dict[str, str]
    checks: list[dict[str, Any]]


def assert_inert(seen: Seen, what: str) -> None:
    assert seen.code in (0, 1), what
    assert "Traceback" not in seen.stdout, what
    if seen.code == 1:
        assert len([line for line in seen.stdout.splitlines() if line.startswith("::error")]) >= 1
    for token in assert_log_inert(seen.stdout):
        assert token not in TOKENS, "a stop-commands token was reused"
        TOKENS.add(token)
    assert set(seen.outputs) == OUTPUT_NAMES, seen.outputs
    assert len(seen.summary.encode()) < 300_000, what
    assert_markdown_inert(seen.summary, f"{what}: step summary")
    for check in seen.checks:
        assert check["name"] == "loopforge"
        assert len(check["summary"].encode()) <= 65_535 and len(check["title"]) <= 1000
        assert_markdown_inert(check["title"], f"{what}: check run title")
        assert_markdown_inert(check["summary"], f"{what}: check run summary")


@contextlib.contextmanager
def github(scenario: Scenario, evil: str) -> Iterator[tuple[FakeGitHub, str]]:
    fake = FakeGitHub(owner="Codertocat", repo="Hello-World", default_branch="master")
    scenario.seed(fake, evil)
    with fake.serve() as url:
        yield fake, url
    assert_clean(fake)


def checks_of(fake: FakeGitHub) -> list[dict[str, Any]]:
    return [{"name": r.name, "title": r.output.get("title") or "", "summary": r.output.get("summary") or ""}
            for r in fake.runs.values()]


def run_in_process(tmp: Path, name: str, payload: dict[str, Any], url: str, run_id: int,
                   capfd: pytest.CaptureFixture[str]) -> Seen:
    """``entrypoint.py`` without the process: ``loopforge.action.run`` with the runner's environment."""
    tmp.mkdir(parents=True)
    (tmp / "event.json").write_text(json.dumps(payload))
    output, summary = tmp / "output", tmp / "summary"
    output.write_text("")
    summary.write_text("")
    env = {"GITHUB_EVENT_NAME": name, "GITHUB_EVENT_PATH": str(tmp / "event.json"), "GITHUB_REPOSITORY": REPO,
           "GITHUB_RUN_ID": str(run_id), "GITHUB_RUN_ATTEMPT": "1", "GITHUB_SERVER_URL": "https://github.com",
           "GITHUB_API_URL": url, "GITHUB_WORKSPACE": str(tmp), "GITHUB_OUTPUT": str(output),
           "GITHUB_STEP_SUMMARY": str(summary), "INPUT_GITHUB-TOKEN": "ghs_test_token"}
    stream = io.StringIO()
    code = run(env, stream=stream)
    captured = capfd.readouterr()
    assert not captured.out.strip() and "Traceback" not in captured.err, captured.err[-2000:]
    return Seen(code, stream.getvalue(), summary.read_text(), parse_output_file(output.read_text()), [])


# ---------------------------------------------------------------------------------------------- the tests
def test_the_matrix_is_complete() -> None:
    pairs = len(ATTACKS) * sum(len(s.fields) for s in SCENARIOS.values())
    assert len(ATTACKS) == 18 and len(SCENARIOS) == 6 and pairs == 18 * 29, pairs


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_every_attack_in_every_field(tmp_path: Path, scenario: str, capfd: pytest.CaptureFixture[str]) -> None:
    spec = SCENARIOS[scenario]
    for i, (attack, evil) in enumerate(ATTACKS.items()):
        name, payload = spec.event(evil)
        with github(spec, evil) as (fake, url):
            seen = run_in_process(tmp_path / f"run{i}", name, with_merge(payload, fake), url, 3000 + i, capfd)
            seen.checks = checks_of(fake)
        what = f"{scenario} / {attack}"
        assert_inert(seen, what)
        if scenario != "issues.assigned":
            assert seen.checks, f"{what}: no check run posted:\n{seen.stdout}"


@pytest.mark.parametrize("evil", [ALL_AT_ONCE, HUNDRED_KB], ids=["all attacks at once", "100 KB"])
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_through_the_entrypoint(tmp_path: Path, scenario: str, evil: str) -> None:
    spec = SCENARIOS[scenario]
    name, payload = spec.event(evil)
    with github(spec, evil) as (fake, url):
        result = run_step(tmp_path, name, with_merge(payload, fake), api_url=url, repo=REPO, run_id=4242)
        checks = checks_of(fake)
    assert not result.stderr.strip(), result.stderr[-2000:]
    assert_inert(Seen(result.code, result.stdout, result.summary, result.outputs, checks), scenario)
    if scenario != "issues.assigned":
        assert checks


def test_policy_reasons_quote_the_hostile_text_escaped(tmp_path: Path) -> None:
    """The violation's ``::error`` quotes the policy's reasons (which name the PR's files and people): escaped
    into the data part of the Action's one line, shown escaped in the check run."""
    spec = SCENARIOS["pull_request.closed (policy reasons)"]
    evil = "::add-mask::x\n::error::mallory"
    name, payload = spec.event(evil)
    with github(spec, evil) as (fake, url):
        result = run_step(tmp_path, name, with_merge(payload, fake), api_url=url, repo=REPO, run_id=4343)
        checks = checks_of(fake)
    assert result.code == 1, result.stdout
    errors = [line for line in result.stdout.splitlines() if line.startswith("::error")]
    assert len(errors) == 1 and "lifecycle violation" in errors[0], result.stdout
    data = errors[0].split("::", 2)[2]
    # the hostile login is in the reason, its line break made a space (text.clean_text): no new command
    assert "::add-mask::x ::error::mallory" in data, data
    assert "label governance-approved was added by ::add-mask::x ::error::mallory" in data, data
    (check,) = checks
    assert check["summary"].count("mallory") >= 1  # shown, as inert text (assert_inert below)
    assert_inert(Seen(result.code, result.stdout, result.summary, result.outputs, checks), "policy reasons")
