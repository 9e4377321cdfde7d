"""Step 0 — the Action's settings: its inputs (``INPUT_*``) and the runner's variables (``GITHUB_*``).

A bad value is an ``InputError`` with one line saying what is accepted; nothing is read from GitHub here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from loopforge.errors import InputError
from loopforge.evidence.action_step import evidence_env
from loopforge.evidence.facts import DEFAULT_POLICY_PATH
from loopforge.github.recorder import RunInfo
from loopforge.github.workflow_commands import action_input

#: Events whose job runs for the pull request's own head commit: only there does a failing job sit on the PR
#: (the exit-code contract in ``loopforge.action.exit``).
PR_COMMIT_EVENTS = frozenset({"pull_request", "pull_request_review", "pull_request_target"})


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = action_input(env, name, "true" if default else "false").lower()
    if raw in ("true", "1", "yes", "on"):
        return True
    if raw in ("false", "0", "no", "off", ""):
        return False
    raise InputError(f"input {name} must be true or false, got {raw[:40]!r}")


def _test_fast_retry(env: Mapping[str, str]) -> int | None:
    raw = env.get("LOOPFORGE_TEST_FAST_RETRY", "").strip()
    if raw in ("", "0"):
        return None
    if not raw.isdigit():
        raise InputError(f"LOOPFORGE_TEST_FAST_RETRY must be a whole number of seconds, got {raw[:40]!r}")
    return int(raw)


def _url(env: Mapping[str, str], name: str, default: str) -> str:
    """``GITHUB_API_URL`` / ``GITHUB_GRAPHQL_URL`` (the runner sets both): an http(s) URL with a host, or the
    default when unset ("" for the GraphQL URL: derived from the REST one)."""
    url = env.get(name, default)
    if url == default:
        return url
    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # an unclosed [IPv6 address, a port that is not a number
        ok = False
    if not ok:
        raise InputError(f"{name} must be an http(s) URL of the GitHub API, got {url[:80]!r}")
    return url


@dataclass
class Config:
    token: str
    store: str
    state_branch: str
    dynamodb_table: str
    policy: str
    check_name: str
    dry_run: bool
    fail_on_block: bool
    governance_token: str
    event_name: str
    event_path: str
    repository: str
    run: RunInfo
    api_url: str
    workspace: str
    output_path: str | None
    summary_path: str | None
    #: test-only (``LOOPFORGE_TEST_FAST_RETRY=<seconds>``): the retry policy without sleeps and this client
    #: timeout (whole seconds), for fault-injection tests against a fake GitHub (``make_github(for_tests=True)``)
    test_fast_retry: int | None = None
    #: the inputs attest and signing-key and the OIDC variables (loopforge.evidence.action_step.attest_step)
    evidence_env: Mapping[str, str] = field(default_factory=dict)
    #: ``GITHUB_GRAPHQL_URL`` (set on every runner; GHES: ``https://HOST/api/graphql``); "" derives it from
    #: ``api_url`` (``loopforge.github.graphql.graphql_url_for``)
    graphql_url: str = ""

    @property
    def on_pr_commit(self) -> bool:
        """The job runs for the PR's own commit, so its status shows on the PR (see ``PR_COMMIT_EVENTS``)."""
        return self.event_name in PR_COMMIT_EVENTS

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Config:
        store = action_input(env, "store", "branch").lower()
        if store not in ("branch", "dynamodb"):
            raise InputError(f"input store must be branch or dynamodb, got {store[:40]!r}")
        return cls(
            token=action_input(env, "github-token"),
            store=store,
            state_branch=action_input(env, "state-branch", "loopforge-state") or "loopforge-state",
            dynamodb_table=action_input(env, "dynamodb-table", "loopforge") or "loopforge",
            policy=action_input(env, "policy", DEFAULT_POLICY_PATH),
            check_name=(action_input(env, "check-name", "loopforge") or "loopforge")[:100],
            dry_run=_bool(env, "dry-run", False),
            fail_on_block=_bool(env, "fail-on-block", True),
            governance_token=action_input(env, "governance-token"),
            event_name=env.get("GITHUB_EVENT_NAME", ""),
            event_path=env.get("GITHUB_EVENT_PATH", ""),
            repository=env.get("GITHUB_REPOSITORY", ""),
            run=RunInfo(run_id=env.get("GITHUB_RUN_ID", "local"), run_attempt=env.get("GITHUB_RUN_ATTEMPT", "1"),
                        server_url=env.get("GITHUB_SERVER_URL", "https://github.com")),
            api_url=_url(env, "GITHUB_API_URL", "https://api.github.com"),
            workspace=env.get("GITHUB_WORKSPACE", "/github/workspace"),
            output_path=env.get("GITHUB_OUTPUT") or None,
            summary_path=env.get("GITHUB_STEP_SUMMARY") or None,
            test_fast_retry=_test_fast_retry(env),
            graphql_url=_url(env, "GITHUB_GRAPHQL_URL", ""),
            evidence_env=evidence_env(env),
        )
