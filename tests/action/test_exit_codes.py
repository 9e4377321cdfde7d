"""The exit-code contract (issue 10 item 4; docs/action.md "Exit codes"), through ``entrypoint.py`` as the runner
starts it, against the fake GitHub, for every event kind in blocked, pending and violation states:

* 1 with one ``::error``: LoopForge could not do its job, or a violation was recorded;
* 1 with ``fail-on-block`` only when the gate failed and the job runs for the PR's own commit (``pull_request``,
  ``pull_request_review``, ``pull_request_target``);
* 0 otherwise: a pending gate, CI seen through ``workflow_run``/``check_suite``, issue events.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest

from tests.action_harness import StepResult
from tests.governance import BASE, HEAD, PR, REPO, Event, Repo, merged
from tests.paths import lifecycle_event as fixture
from tests.paths import webhook_examples

EXAMPLES = webhook_examples()
# the PR changes the README only (no risk tier); run ids from 3000
REPO_OPTIONS = {"run_id": 3000, "files": [("README.md", 1, 1)]}
BLOCKING_POLICY = "version: 1\nrules:\n  - name: no blockers\n    require:\n      no_labels: [do-not-merge]\n"
APPROVAL_POLICY = ("version: 1\nrules:\n  - name: one approval\n    require:\n"
                   "      approvals: {count: 1, from: {users: [alice]}}\n")


def pr(action: str, name: str = "pull_request", labels: tuple[str, ...] = ()) -> Event:
    payload = fixture("pull_request-opened")
    payload["action"] = action
    payload["pull_request"]["labels"] = [{"id": i, "node_id": f"L{i}", "url": f"https://api.github.com/repos/{REPO}"
                                          f"/labels/{n}", "name": n, "color": "ffffff", "default": False,
                                          "description": None} for i, n in enumerate(labels, 1)]
    if action == "labeled":
        payload["label"] = payload["pull_request"]["labels"][-1]
    return name, payload


def workflow_run(action: str) -> Event:
    return "workflow_run", fixture(f"workflow_run-{'completed' if action == 'completed' else 'requested'}")


def check_suite() -> Event:
    found = [ex for e in EXAMPLES if e["name"] == "check_suite" for ex in e["examples"]
             if ex["action"] == "completed" and [p["number"] for p in ex["check_suite"]["pull_requests"]] == [PR]]
    payload = copy.deepcopy(found[0])
    payload["check_suite"]["head_sha"] = HEAD
    for pull in payload["check_suite"]["pull_requests"]:
        pull["head"]["sha"] = HEAD
    return "check_suite", payload


def review() -> Event:
    return "pull_request_review", fixture("pull_request_review-submitted")


def issue(action: str) -> Event:
    return "issues", fixture(f"issues-{action}")


def assert_exit(result: StepResult, code: int, error_title: str | None = None) -> None:
    """``code``, and exactly one ``::error`` (with this title) when it is 1, none when it is 0."""
    errors = result.commands("error")
    assert result.code == code, result.stdout
    if code == 0:
        assert errors == [], errors
    else:
        assert len(errors) == 1 and errors[0].startswith(f"::error title=LoopForge%3A {error_title}::"), errors


# ---------------------------------------------------------------------------------------------- blocked
#: a failed gate (a forbidden label on a PR whose CI passed): (event, inputs, exit code, ::error title)
BLOCKED: list[tuple[str, Callable[[], Event], dict[str, str], int, str | None]] = [
    ("workflow_run", lambda: workflow_run("completed"), {}, 0, None),
    ("check_suite", check_suite, {}, 0, None),
    ("pull_request", lambda: pr("labeled", labels=("do-not-merge",)), {}, 1, "merge blocked"),
    ("pull_request_target", lambda: pr("labeled", "pull_request_target", ("do-not-merge",)), {}, 1,
     "merge blocked"),
    ("pull_request_review", review, {}, 1, "merge blocked"),
    ("pull_request, fail-on-block false", lambda: pr("labeled", labels=("do-not-merge",)),
     {"fail-on-block": "false"}, 0, None),
    ("issues", lambda: issue("assigned"), {}, 0, None),
]


def test_a_failed_gate_fails_only_the_jobs_of_the_prs_own_commit(repo: Repo) -> None:
    repo.fake.set_file(BASE, ".github/loopforge.yml", BLOCKING_POLICY)
    repo.pull(labels=("do-not-merge",))
    assert_exit(repo.step(issue("opened")), 0)
    assert_exit(repo.step(pr("opened", labels=("do-not-merge",))), 1, "merge blocked")  # failed, not pending
    seen: list[str] = []
    for what, event, inputs, code, title in BLOCKED:
        result = repo.step(event(), inputs=inputs)
        assert_exit(result, code, title)
        if what != "issues":
            assert result.outputs["verdict"] == "block", (what, result.stdout)
            assert result.outputs["state"] in ("ci_passed", "approved"), (what, result.stdout)
            assert "no blockers failed" in result.stdout, (what, result.stdout)
        seen.append(what)
    assert len(seen) == len(BLOCKED)
    checks = [r for r in repo.fake.check_runs(HEAD) if r.name == "loopforge"]
    assert len(checks) == 1 and checks[0].conclusion == "failure"  # the check run carries the block throughout
    # merged anyway: a violation, whatever fail-on-block says
    result = repo.step(merged(repo.merge_commit()), inputs={"fail-on-block": "false"})
    assert_exit(result, 1, "lifecycle violation")
    assert result.outputs["state"] == "merged" and "broke policy:no blockers" in result.commands("error")[0]


# ---------------------------------------------------------------------------------------------- pending
def test_a_pending_gate_never_fails_the_job(repo: Repo) -> None:
    """Waiting for CI (the lifecycle) or for an approval (the policy) is pending on every event kind."""
    repo.fake.set_file(BASE, ".github/loopforge.yml", APPROVAL_POLICY)
    repo.pull()
    steps: list[tuple[str, Event, str]] = [
        ("pull_request", pr("opened"), "pr_created"),
        ("pull_request_target", pr("synchronize", "pull_request_target"), "ci_pending"),
        ("workflow_run", workflow_run("requested"), "ci_pending"),
        ("check_suite", check_suite(), "ci_pending"),  # the workflow still runs
        ("workflow_run", workflow_run("completed"), "ci_passed"),
        ("pull_request", pr("labeled", labels=("docs",)), "ci_passed"),
        ("pull_request_target", pr("labeled", "pull_request_target", ("docs",)), "ci_passed"),
    ]
    for what, event, state in steps:
        result = repo.step(event)
        assert_exit(result, 0)
        assert (result.outputs["verdict"], result.outputs["state"]) == ("block", state), (what, result.stdout)
        assert "may not merge" not in result.stdout, (what, result.stdout)  # nothing failed: only waiting
    checks = [r for r in repo.fake.check_runs(HEAD) if r.name == "loopforge"]
    assert len(checks) == 1 and checks[0].conclusion != "success"


# ---------------------------------------------------------------------------------------------- violation
@pytest.mark.parametrize("inputs", [{}, {"fail-on-block": "false"}])
def test_a_violation_fails_the_job_with_one_error(repo: Repo, inputs: dict[str, str]) -> None:
    """Merged while CI never passed: the lifecycle forbade it (no policy at all)."""
    repo.pull()
    assert_exit(repo.step(pr("opened"), inputs=inputs), 0)  # pr_created: pending, not failed
    result = repo.step(merged(repo.merge_commit()), inputs=inputs)
    assert_exit(result, 1, "lifecycle violation")
    assert result.outputs["state"] == "merged" and "pr_created → merged" in result.commands("error")[0]


# ---------------------------------------------------------------------------------------------- issues
def test_issue_events_exit_0(repo: Repo) -> None:
    for action in ("opened", "assigned", "closed"):
        result = repo.step(issue(action))
        assert_exit(result, 0)
        assert result.outputs["verdict"] == "none" and result.outputs["record-id"] == f"{REPO}#1"


# ---------------------------------------------------------------------------------------------- failures
def test_could_not_do_its_job_fails_on_every_event_kind(repo: Repo) -> None:
    """A policy that cannot be used is a configuration failure: exit 1 even where a blocked gate would not."""
    repo.fake.set_file(BASE, ".github/loopforge.yml", "version: 1\nrules: [\n")
    repo.pull()
    assert_exit(repo.step(workflow_run("completed")), 1, "policy error")
    assert_exit(repo.step(check_suite()), 1, "policy error")
    assert_exit(repo.step(pr("labeled", labels=("docs",))), 1, "policy error")
    result = repo.step(issue("assigned"), inputs={"store": "nowhere"})
    assert_exit(result, 1, "Invalid input")
    assert "input store must be branch or dynamodb" in result.commands("error")[0]
    assert "**Invalid input**" in result.summary  # the same words in the step summary


@pytest.mark.parametrize("name, url", [
    ("GITHUB_API_URL", "ftp://ghe.example.com/api/v3"),  # PyGithub asserts on the scheme
    ("GITHUB_API_URL", "http://[::1/api/v3"),  # urllib: Invalid IPv6 URL
    ("GITHUB_GRAPHQL_URL", "ghe.example.com/api/graphql"),  # no scheme: was "Store unavailable", re-run
])
def test_a_runner_url_that_is_not_an_http_url_is_invalid_input(repo: Repo, name: str, url: str) -> None:
    result = repo.step(issue("opened"), extra_env={name: url})
    assert_exit(result, 1, "Invalid input")
    assert f"{name} must be an http(s) URL of the GitHub API" in result.commands("error")[0]
