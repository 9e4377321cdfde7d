"""The GitHub Action: one workflow event in, one recorded step (or a clear error) out.

``entrypoint.py`` calls ``main()``. Data flows one way: the event payload → ``github.events`` (typed facts) →
``github.recorder`` (route, plan, record through ``LoopService``) → the report (check run on the PR head,
step summary, outputs). Exit codes: 0 done (also for ignored events), 1 a violation was recorded, the merge gate
blocks (with ``fail-on-block``), or something failed (always with one ``::error`` line saying what to do).
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from loopforge.errors import StoreError
from loopforge.github.commands import Log, append_summary, clean_text, set_output
from loopforge.github.events import Event, MalformedEvent, UnsupportedEvent, parse_event
from loopforge.github.governance import Governance
from loopforge.github.integrity import describe as describe_integrity
from loopforge.github.integrity import integrity_of
from loopforge.github.lookup import PullLookup
from loopforge.github.recorder import Recorded, Route, RunInfo, record_event, route
from loopforge.github.render import GateRow, GateView, SummaryView, check_run_output, render_summary
from loopforge.records import LoopRecord, RecordHead
from loopforge.repository.base import Repository
from loopforge.service import LoopService, Veto
from loopforge.states import LoopState

S = LoopState
#: While a PR is in one of these states, "may not merge yet" is pending, not a failure.
_PENDING_STATES = frozenset({S.PR_CREATED, S.PR_DRAFT, S.CI_PENDING, S.AWAITING_REVIEW})
_OPEN_PR_STATES = frozenset({S.PR_CREATED, S.PR_DRAFT, S.CI_PENDING, S.CI_PASSED, S.CI_FAILED,
                             S.AWAITING_REVIEW, S.CHANGES_REQUESTED, S.APPROVED})


class ActionError(Exception):
    """A failure with a one-line message that tells the user what to do; ``title`` heads the ::error."""

    def __init__(self, title: str, message: str) -> None:
        super().__init__(message)
        self.title = title


def _input(env: Mapping[str, str], name: str, default: str = "") -> str:
    """Inputs arrive as ``INPUT_<NAME>`` upper-cased with hyphens kept (``INPUT_GITHUB-TOKEN``)."""
    value = env.get(f"INPUT_{name.upper()}")
    if value is None:
        value = env.get(f"INPUT_{name.upper().replace('-', '_')}")
    return (value if value is not None else default).strip()


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = _input(env, name, "true" if default else "false").lower()
    if raw in ("true", "1", "yes", "on"):
        return True
    if raw in ("false", "0", "no", "off", ""):
        return False
    raise ActionError("Invalid input", f"input {name} must be true or false, got {raw[:40]!r}")


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

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Config:
        store = _input(env, "store", "branch").lower()
        if store not in ("branch", "dynamodb"):
            raise ActionError("Invalid input", f"input store must be branch or dynamodb, got {store[:40]!r}")
        check_name = _input(env, "check-name", "loopforge") or "loopforge"
        return cls(
            token=_input(env, "github-token"),
            store=store,
            state_branch=_input(env, "state-branch", "loopforge-state") or "loopforge-state",
            dynamodb_table=_input(env, "dynamodb-table", "loopforge") or "loopforge",
            policy=_input(env, "policy", ".github/loopforge.yml"),
            check_name=check_name[:100],
            dry_run=_bool(env, "dry-run", False),
            fail_on_block=_bool(env, "fail-on-block", True),
            governance_token=_input(env, "governance-token"),
            event_name=env.get("GITHUB_EVENT_NAME", ""),
            event_path=env.get("GITHUB_EVENT_PATH", ""),
            repository=env.get("GITHUB_REPOSITORY", ""),
            run=RunInfo(run_id=env.get("GITHUB_RUN_ID", "local"), run_attempt=env.get("GITHUB_RUN_ATTEMPT", "1"),
                        server_url=env.get("GITHUB_SERVER_URL", "https://github.com")),
            api_url=env.get("GITHUB_API_URL", "https://api.github.com"),
            workspace=env.get("GITHUB_WORKSPACE", "/github/workspace"),
            output_path=env.get("GITHUB_OUTPUT") or None,
            summary_path=env.get("GITHUB_STEP_SUMMARY") or None,
            test_fast_retry=_test_fast_retry(env),
        )


def _test_fast_retry(env: Mapping[str, str]) -> int | None:
    raw = env.get("LOOPFORGE_TEST_FAST_RETRY", "").strip()
    if raw in ("", "0"):
        return None
    if not raw.isdigit():
        raise ActionError("Invalid setting", f"LOOPFORGE_TEST_FAST_RETRY must be a whole number of seconds, got "
                                             f"{raw[:40]!r}")
    return int(raw)


def read_event(path: str, name: str) -> Event:
    if not name:
        raise ActionError("No event", "GITHUB_EVENT_NAME is not set: run LoopForge as a step of a workflow")
    if not path:
        raise ActionError("No event", "GITHUB_EVENT_PATH is not set: run LoopForge as a step of a workflow")
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ActionError("Event payload unreadable",
                          f"cannot read the event payload ({exc.strerror or exc}); run LoopForge as a workflow "
                          f"step so the runner provides GITHUB_EVENT_PATH") from None
    if len(raw) > 25 * 1024 * 1024:
        raise ActionError("Event payload too large", "the event payload is over 25 MiB; GitHub caps webhooks at "
                                                     "25 MB, so this file is not a GitHub event")
    try:
        payload = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ActionError("Malformed event payload", "the event payload is not UTF-8 text") from None
    except (json.JSONDecodeError, RecursionError) as exc:
        detail = f"line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else "nesting"
        raise ActionError("Malformed event payload", f"the event payload is not valid JSON ({detail})") from None
    return parse_event(name, payload)


# ---------------------------------------------------------------------------------------------- the report
@dataclass
class Gate:
    view: GateView
    verdict: str  # pass / block / none
    failed: bool  # blocked by a failing rule (not merely pending)
    vetoes: list[Veto]


def evaluate_gate(service: LoopService, record: LoopRecord,
                  policy_rows: Callable[[], list[GateRow]] = list,
                  note: Callable[[], str | None] = lambda: None) -> Gate | None:
    """The dry run of ``merged`` for an open PR: may it merge now, and if not, why (rule by rule)."""
    if record.state not in _OPEN_PR_STATES:
        return None
    check = service.check(record.record_id, S.MERGED, "gate")
    rows = list(policy_rows())  # read after the check: the policy guard evaluated during it
    failed = False
    pending = False
    for veto in check.vetoes:
        if veto.rule == "lifecycle":
            status = "pending" if record.state in _PENDING_STATES else "failed"
            reason = (f"the PR is {record.state.value}; it may merge from ci_passed, awaiting_review or approved"
                      if status == "pending" else veto.reason)
            rows.insert(0, GateRow(rule="lifecycle", status=status, reason=reason))
        elif veto.rule.startswith("policy:") or veto.rule == "loopforge.policy":
            continue  # shown rule by rule from the evaluation
        elif not any(r.rule == veto.rule for r in rows):
            rows.append(GateRow(rule=veto.rule, status="failed", reason=veto.reason))
    if check.allowed and not any(r.rule == "lifecycle" for r in rows):
        rows.insert(0, GateRow(rule="lifecycle", status="passed", reason=f"{record.state.value} may merge"))
    for row in rows:
        failed = failed or row.status == "failed"
        pending = pending or row.status == "pending"
    verdict_view = "pass" if check.allowed and not failed and not pending else ("block" if failed else "pending")
    return Gate(GateView(verdict=verdict_view, rows=rows, note=note()), "pass" if verdict_view == "pass" else "block",
                failed, check.vetoes)


def merged_gate(governance: Governance | None) -> Gate | None:
    """The policy as it stood when the merge was recorded (evaluated while observing ``merged``), so the check
    run of a merge that broke the policy keeps its rule-by-rule table; None without a policy."""
    if governance is None or (governance.evaluation is None and not governance.error):
        return None
    evaluation = governance.evaluation
    rows = governance.rows()
    blocked = bool(governance.error) or evaluation is None or not evaluation.passed
    verdict = "block" if blocked else "pass"
    note = " ".join(filter(None, [governance.note(), "Evaluated when the merge was recorded."]))
    return Gate(GateView(verdict=verdict, rows=rows, note=note), verdict,
                any(r.status == "failed" for r in rows), [])


#: The check run shows the newest entries only: reading a long trail costs API requests on the branch store,
#: and 65,535 bytes hold about this many rows anyway. ``loopforge history`` shows the whole trail.
HISTORY_ROWS = 60


def _summary_view(store: Repository, record: LoopRecord, recorded: Recorded, route_: Route | None,
                  gate: Gate | None, messages: list[str], run_url: str | None) -> SummaryView:
    title = route_.pr.title if route_ and route_.pr else None
    first = max(0, record.last_sequence - HISTORY_ROWS)
    entries = list(store.entries(record.record_id, after=first))
    if first:
        shown_violations = sum(1 for e in entries if e.outcome.value == "violation")
        messages = [*messages, f"Showing the newest {len(entries)} of {record.last_sequence} entries; run "
                               f"`loopforge history {record.record_id}` for the whole trail."]
        if record.violations > shown_violations:
            messages.append(f"{record.violations - shown_violations} earlier violation(s) are not shown here.")
    return SummaryView(record_id=record.record_id, title=title, url=record.ref if record.ref.startswith("http")
                       else None, state=record.state, previous_state=recorded.previous_state,
                       outcome=recorded.outcome, entries=entries, gate=gate.view if gate else None,
                       messages=messages, run_url=run_url)


# ---------------------------------------------------------------------------------------------- wiring
def open_store(cfg: Config, gh_repo: Any) -> Repository:
    if cfg.store == "dynamodb":
        from loopforge.repository.dynamodb import DynamoDBRepository

        dynamo: Repository = DynamoDBRepository(table_name=cfg.dynamodb_table)
        return dynamo
    from loopforge.repository.branch import BranchRepository

    branch: Repository = BranchRepository(gh_repo, branch=cfg.state_branch)
    return branch


def run(env: Mapping[str, str], stream: TextIO | None = None) -> int:
    log = Log(stream or sys.stdout)
    outputs: dict[str, str] = {"record-id": "", "state": "", "previous-state": "", "outcome": "ignored",
                               "verdict": "none"}

    def finish(code: int) -> int:
        for name, value in outputs.items():
            set_output(name, value, path=env.get("GITHUB_OUTPUT"))
        return code

    try:
        cfg = Config.from_env(env)
        try:
            event = read_event(cfg.event_path, cfg.event_name)
        except UnsupportedEvent as exc:
            log.notice(f"{exc}; nothing recorded (outcome=ignored). See the README for the events LoopForge "
                       f"tracks.", title="LoopForge: event ignored")
            return finish(0)
        except MalformedEvent as exc:
            raise ActionError("Malformed event payload", str(exc)) from None
        return finish(_run_event(cfg, event, log, outputs))
    except Exception as exc:  # never a traceback: one ::error saying what failed and what to do
        error = exc if isinstance(exc, ActionError) else _unexpected(exc)
        log.error(str(error), title=f"LoopForge: {error.title}")
        append_summary(f"## LoopForge failed\n\n**{error.title}**: {_md(str(error))}\n",
                       path=env.get("GITHUB_STEP_SUMMARY"))
        return finish(1)


#: Every recorded entry carries an idempotency key derived from the workflow run, so re-running is always safe.
RERUN_HINT = "re-run the job: a re-run completes what was cut off and records nothing twice"


def _unexpected(exc: Exception) -> ActionError:
    """Any exception that is not an ``ActionError`` (a transport error, a store error raised outside the
    recording call, a bug) as one ``ActionError`` with a hint."""
    import requests
    from github import GithubException

    from loopforge.errors import ConcurrencyError

    detail = clean_text(f"{type(exc).__name__}: {exc}", limit=400)
    if isinstance(exc, GithubException):
        return _github_error(exc, "a GitHub API request")
    if isinstance(exc, StoreError):
        return _store_error(exc)
    if isinstance(exc, ConcurrencyError):
        return ActionError("Store busy", f"{detail} — other runs kept writing this record; {RERUN_HINT}")
    if isinstance(exc, requests.RequestException):
        from loopforge.github.client import describe_transport_error

        return ActionError("GitHub unreachable", f"GitHub's API gave no usable answer: "
                                                 f"{clean_text(describe_transport_error(exc), limit=400)} — "
                                                 f"{RERUN_HINT}")
    if type(exc).__module__.startswith(("botocore", "boto3")):
        response = getattr(exc, "response", None) or {}
        code = str(response.get("Error", {}).get("Code", ""))
        status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if not response or status >= 500 or "Throttl" in code or code in (
                "ProvisionedThroughputExceededException", "RequestLimitExceeded"):  # no answer, outage, throttling
            return ActionError("DynamoDB error", f"{detail} — DynamoDB kept failing after botocore's retries; "
                                                 f"{RERUN_HINT}")
        return ActionError("DynamoDB error", f"{detail} — check the table, the region and the credentials, "
                                             f"then {RERUN_HINT}")
    return ActionError("Internal error", f"{detail} — this is a LoopForge bug (please report it); {RERUN_HINT}")


def _store_error(exc: StoreError) -> ActionError:
    text = clean_text(str(exc), limit=600)
    # messages naming a permission or a setting already say what to do; a re-run alone would not help
    fixed_by_rerun = not any(w in text for w in ("permission", "repository does not exist", "empty repository",
                                                 "create it", "check the role", "not a loopforge table"))
    return ActionError("Store error", f"{text} — {RERUN_HINT}" if fixed_by_rerun else text)


def _md(text: str) -> str:
    from loopforge.github.render import md_escape

    return md_escape(text, limit=2000)


def _github_error(exc: Exception, what: str) -> ActionError:
    status = getattr(exc, "status", None)
    data = getattr(exc, "data", None)
    message = data.get("message") if isinstance(data, dict) else None
    hint = {401: "the github-token input is missing or invalid",
            403: "the token lacks a permission (the workflow needs contents: write, checks: write, "
                 "pull-requests: read) or a rate limit was hit; re-run later if it was a rate limit",
            404: "the repository or branch was not found, or the token cannot see it",
            422: "GitHub refused the request as invalid"}.get(status or 0, "GitHub's API failed; re-run the job")
    return ActionError("GitHub API error", f"{what} failed with HTTP {status}"
                                           f"{': ' + str(message)[:200] if message else ''} — {hint}")


def _run_event(cfg: Config, event: Event, log: Log, outputs: dict[str, str]) -> int:
    from github import GithubException

    from loopforge.github.checks import CheckRunPoster, ReadOnlyToken
    from loopforge.github.client import make_github
    from loopforge.github.lookup import GitHubLookup
    from loopforge.repository.overlay import OverlayRepository

    if not cfg.token:
        raise ActionError("Missing token", "the github-token input is empty; pass ${{ github.token }} or a token "
                                           "with contents: write and checks: write")
    repo_name = event.repo or cfg.repository
    gh = make_github(cfg.token, cfg.api_url, for_tests=cfg.test_fast_retry is not None,
                     timeout=cfg.test_fast_retry)
    with warnings.catch_warnings():  # PyGithub 2.x deprecates get_repo(lazy=) for Github(lazy=); same request
        warnings.simplefilter("ignore", DeprecationWarning)
        gh_repo = gh.get_repo(repo_name, lazy=True)  # no GET /repos/{o}/{r}: one request fewer per event
    store: Repository = open_store(cfg, gh_repo)
    if cfg.dry_run:
        store = OverlayRepository(store)
    lookup: PullLookup = GitHubLookup(gh_repo)
    try:
        routed = route(event, lookup, cfg.run.server_url)
    except GithubException as exc:
        raise _github_error(exc, "looking up the pull request") from None
    if routed is None:
        log.notice(f"{event.kind} concerns no open pull request of {repo_name}; nothing recorded "
                   f"(outcome=ignored).", title="LoopForge: event ignored")
        return 0
    integrity_alerts = check_data_branch(cfg, gh, repo_name, store, event)
    governance = _governance(cfg, gh_repo, routed, store, event)
    service = LoopService(repository=store, guards=governance.guards if governance else [])
    try:
        recorded = record_event(service, event, routed, cfg.run, check_name=cfg.check_name)
    except GithubException as exc:
        raise _github_error(exc, "reading or writing the record") from None
    except StoreError as exc:
        if "not accessible by integration" in str(exc):
            log.warning("the token is read-only (a pull request from a fork gets one), so this event was not "
                        "recorded; the workflow_run event of its CI records it with a write token.",
                        title="LoopForge: read-only token")
            append_summary(f"## LoopForge\n\nNot recorded: read-only token. {_md(str(exc))}\n",
                           path=cfg.summary_path)
            return 0
        raise _store_error(exc) from None
    record = recorded.record
    assert record is not None
    outputs.update({"record-id": record.record_id, "state": record.state.value,
                    "previous-state": recorded.previous_state.value if recorded.previous_state else "",
                    "outcome": recorded.outcome})
    gate = None
    queue = event.merge_group if event.kind == "merge_group.checks_requested" else None
    target_sha = queue.head_sha if queue is not None else (routed.pr.head.sha if routed.pr else None)
    integrity = integrity_of(store.head(record.record_id))
    if routed.pr is not None:
        gate = evaluate_gate(service, record, lambda: governance.rows() if governance else [],
                             lambda: governance.note() if governance else None)
        if gate is None and record.state is S.MERGED and recorded.outcome != "duplicate":
            gate = merged_gate(governance)
        if queue is not None:
            gate = queue_gate(gate, record)
        if integrity is not None:
            gate = with_integrity_row(gate, integrity)
    # the verdict per SHA rides in the policy.evaluated entry; without a policy only a merge group's is kept (its
    # own entry, on a rare event): a PR's lifecycle verdict at merge is the transition table's to judge anyway
    has_policy = governance is not None and governance.policy_guard is not None
    evaluated_sha = target_sha if gate is not None and record.state is not S.MERGED and (
        has_policy or queue is not None) else None
    if not cfg.dry_run and (has_policy or evaluated_sha):
        record_evaluation(service, record, governance, gate, evaluated_sha, event, cfg)
        record = service.get(record.record_id) or record
    if governance is not None:
        for problem in governance.permission_errors():
            log.error(problem, title="LoopForge: missing permission")
        if governance.error:
            log.error(governance.error, title="LoopForge: policy error")
    outputs["verdict"] = gate.verdict if gate else "none"
    messages: list[str] = []
    if recorded.outcome == "duplicate":
        messages.append("This workflow run was already recorded; nothing was written again.")
    if cfg.dry_run:
        messages.append("Dry run: nothing was stored and no check run was posted.")
    if integrity is not None:
        messages.append(describe_integrity(record.record_id, integrity))
    if queue is not None and event.queue is not None:
        messages.append(f"Merge queue: this verdict is for the merge group {queue.head_sha[:12]} (PR "
                        f"#{event.queue.number} on {event.queue.base[:100]}, base {(queue.base_sha or '?')[:12]}); "
                        f"the merge is judged against it.")
    view = _summary_view(store, record, recorded, routed, gate, messages, cfg.run.run_url(repo_name))
    log.info("LoopForge: " + clean_text(f"{record.record_id}: "
                                        f"{recorded.previous_state.value if recorded.previous_state else '∅'} → "
                                        f"{record.state.value} ({recorded.outcome})", limit=300))
    append_summary(render_summary(view, max_bytes=1_000_000), path=cfg.summary_path)
    if routed.pr is not None and target_sha is not None and not cfg.dry_run:
        try:
            CheckRunPoster(gh, repo_name).post(target_sha, cfg.check_name, check_run_output(view),
                                               details_url=cfg.run.run_url(repo_name))
        except ReadOnlyToken:
            log.warning("the token cannot write check runs (a pull request from a fork gets a read-only token); "
                        "the history is in this step's summary. Run LoopForge on workflow_run to report on fork "
                        "PRs.", title="LoopForge: check run not posted")
        except GithubException as exc:
            raise _github_error(exc, "posting the check run") from None
    code = 0
    for alert in integrity_alerts:
        log.error(alert, title="LoopForge: audit trail broken")
        code = 1
    if integrity is not None and not any(a.startswith(record.record_id + ":") for a in integrity_alerts):
        log.error(describe_integrity(record.record_id, integrity), title="LoopForge: audit trail broken")
        code = 1
    for entry in recorded.violations:
        log.error(f"{record.record_id}: {entry.from_state.value if entry.from_state else '∅'} → "
                  f"{entry.to_state.value} broke {entry.rule or 'the lifecycle'}: {entry.reason or ''}",
                  title="LoopForge: lifecycle violation")
        code = 1
    fail_on_block = cfg.fail_on_block and (governance is None or governance.fail_job_when_blocked)
    # the audit-trail row has its own ::error above: one line per cause
    failing = ", ".join(r.rule for r in gate.view.rows if r.status == "failed" and r.rule != "audit trail") \
        if gate else ""
    if gate and gate.failed and failing and fail_on_block and record.state is not S.MERGED:
        log.error(f"{record.record_id} may not merge: {failing} failed (see the check run {cfg.check_name})",
                  title="LoopForge: merge blocked")
        code = 1
    return code


def _governance(cfg: Config, gh_repo: Any, routed: Route, store: Repository, event: Event) -> Governance | None:
    """The governance policy of a PR event, read from the PR's base branch; None for issue-only events.

    A merge is judged by the policy at the base commit before it, a merge group by the policy at the group's
    base: never at the base branch's tip, which after a merge holds the PR's own edits."""
    if routed.pr is None or not cfg.policy:
        return None
    from github import GithubException

    from loopforge.github import governance

    head = store.head(routed.record_id)
    try:
        at = policy_commit(gh_repo, event, routed, head)
        return governance.load(gh_repo, routed.pr.base.ref, routed.pr.number, cfg.policy,
                               head=head, governance_token=cfg.governance_token, api_url=cfg.api_url, at=at,
                               fallback=event.queue.base if event.queue is not None else None)
    except GithubException as exc:
        raise _github_error(exc, "reading the policy from the base branch") from None


def policy_commit(gh_repo: Any, event: Event, routed: Route, head: RecordHead | None) -> str | None:
    """The base commit whose policy judges this event, or None for the base branch's current tip."""
    from github import GithubException

    from loopforge.github.merge_judgement import CommitInfo, merge_policy_commit

    if event.merge_group is not None:
        return event.merge_group.base_sha  # the queue tests the group on top of this base
    pr = routed.pr
    if pr is None or not (event.name == "pull_request" and event.action == "closed" and pr.merged):
        return None

    def commit_of(sha: str) -> CommitInfo:
        commit = gh_repo.get_git_commit(sha)
        return CommitInfo(parents=[p.sha for p in commit.parents], message=str(commit.message or ""))

    try:
        return merge_policy_commit(pr.merge_commit_sha, pr.head.sha, pr.commits, head.metadata if head else {},
                                   commit_of) or pr.base.sha
    except GithubException as exc:
        if exc.status != 404:
            raise
        return pr.base.sha  # the merge commit is not readable: the base the PR was last compared with


# ---------------------------------------------------------------------------------------------- edges
def queue_gate(gate: Gate | None, record: LoopRecord) -> Gate:
    """The verdict posted on a merge group's head: final (the queue waits for it and nothing re-evaluates a
    group later), so a pending rule blocks; a record that is not an open PR blocks with the lifecycle's reason."""
    if gate is None:
        row = GateRow(rule="lifecycle", status="failed",
                      reason=f"the PR is {record.state.value}; only an open PR that may merge can be queued")
        return Gate(GateView(verdict="block", rows=[row]), "block", True, [])
    if gate.view.verdict == "pending":
        note = " ".join(filter(None, [gate.view.note, "The merge queue needs a final answer: pending rules block "
                                                      "the group."]))
        return Gate(gate.view.model_copy(update={"verdict": "block", "note": note}), "block", gate.failed,
                    gate.vetoes)
    return gate


def with_integrity_row(gate: Gate | None, integrity: dict[str, Any]) -> Gate | None:
    """A record whose trail was changed outside LoopForge cannot pass the gate: its facts cannot be trusted."""
    if gate is None:
        return None
    first = integrity.get("first_bad")
    row = GateRow(rule="audit trail", status="failed",
                  reason=f"changed outside LoopForge at {f'entry {first}' if first is not None else 'its files'}: "
                         f"{str(integrity.get('problem'))[:300]}")
    return Gate(gate.view.model_copy(update={"verdict": "block", "rows": [row, *gate.view.rows]}), "block", True,
                gate.vetoes)


def record_evaluation(service: LoopService, record: LoopRecord, governance: Governance | None, gate: Gate | None,
                      sha: str | None, event: Event, cfg: Config) -> None:
    """Put the evaluation in the trail: the policy's (``policy.evaluated``) and the verdict the check shows for
    ``sha`` (kept per SHA in ``metadata["gate"]`` so a merge is judged against it without reading the trail)."""
    from loopforge.github.merge_judgement import gate_verdict, with_verdict

    key = f"gh:{cfg.run.run_id}:{event.kind}#policy"
    patch: dict[str, Any] | None = None
    entry: dict[str, Any] | None = None
    if gate is not None and sha is not None:
        ev = governance.evaluation if governance else None
        entry = gate_verdict(gate.verdict, [(r.rule, r.status) for r in gate.view.rows],
                             kind="merge_group" if event.name == "merge_group" else "head",
                             at=event.occurred_at.isoformat(), policy_sha256=ev.policy_digest if ev else None,
                             policy_commit=governance.at if governance and governance.at_commit else None,
                             run_url=cfg.run.run_url(event.repo or cfg.repository))
        patch = with_verdict(record.metadata, sha, entry)
    evaluation = governance.evaluation if governance else None
    if evaluation is not None:
        service.note(record.record_id, "policy.evaluated", reason=f"{evaluation.verdict}: {evaluation.reason}"[:500],
                     evidence={"policy": evaluation.as_dict(), **({"gate": {"sha": sha, **entry}} if entry else {})},
                     metadata={**evaluation.record_metadata(), **(patch or {})}, idempotency_key=key,
                     actor=event.actor)
    elif patch is not None and entry is not None and sha is not None:
        service.note(record.record_id, "gate.evaluated", reason=f"{entry['verdict']} on {sha[:12]}",
                     evidence={"gate": {"sha": sha, **entry}}, metadata=patch, idempotency_key=key,
                     actor=event.actor)


def check_data_branch(cfg: Config, gh: Any, repo_name: str, store: Repository, event: Event) -> list[str]:
    """Tamper check of the branch store before anything is appended: a tip LoopForge did not make gets every
    record it changed verified and flagged (``github.integrity``). One ``::error`` line per broken record."""
    from loopforge.github import integrity
    from loopforge.repository.branch import BranchRepository

    inner = getattr(store, "base", store)  # a dry run wraps the store in an overlay
    if not isinstance(inner, BranchRepository):
        return []
    reader = integrity.RestDataBranch(gh.requester, repo_name, cfg.state_branch)
    # a store that reads the tip with the record (the GraphQL snapshot) offers it as ``tip_commit()``; one that
    # writes through createCommitOnBranch sets ``signs_commits`` (GitHub signs those: an unsigned tip is foreign)
    tip = getattr(inner, "tip_commit", None)
    commit = tip() if callable(tip) else reader.tip()
    if commit is None or integrity.made_by_loopforge(
            commit, require_signature=bool(getattr(inner, "signs_commits", False))):
        return []
    found = integrity.investigate(reader, commit, store)
    integrity.flag(store, found, key=f"gh:{cfg.run.run_id}:integrity:{commit.oid[:12]}", actor=event.actor,
                   run_url=cfg.run.run_url(repo_name))
    return [clean_text(f"{f.record_id}: the audit trail was changed outside LoopForge by {found.commits_text()}: "
                       f"{f.summary()} (run `loopforge verify`)", limit=600) for f in found.findings]


def main(argv: list[str] | None = None) -> int:
    return run(os.environ)

