"""``loopforge policy``: validate a policy file, print its JSON Schema, explain it for a PR event (offline).

Exit codes: 0 success, 1 the policy (or event) is invalid, 2 usage error (a file that does not exist).
Errors are one line on stderr.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from loopforge.policy.context import ChangedFile, CheckState, FakeContext, LabelEvent
from loopforge.policy.evaluate import evaluate
from loopforge.policy.model import DEFAULT_POLICY_PATH, PolicyError, load_policy_file, policy_json_schema_text


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"error: {' '.join(message.split())}", err=True)
    sys.exit(code)


def _existing(path: str, what: str) -> Path:
    p = Path(path)
    if not p.is_file():
        _fail(f"{path}: no such {what} file", 2)
    return p


@click.group("policy")
def policy() -> None:
    """Policy files (.github/loopforge.yml): validate, schema, explain."""


@policy.command("validate")
@click.argument("file", type=str)
def validate_cmd(file: str) -> None:
    """Check FILE; print one line naming the key and the problem if it is invalid (exit 1)."""
    _existing(file, "policy")
    try:
        loaded = load_policy_file(file)
    except PolicyError as exc:
        _fail(str(exc), 1)
    click.echo(f"{file}: valid ({len(loaded.rules)} rule{'s' if len(loaded.rules) != 1 else ''}, "
               f"sha256 {loaded.digest[:12]})")


@policy.command("schema")
def schema_cmd() -> None:
    """Print the JSON Schema of the policy file."""
    click.echo(policy_json_schema_text(), nl=False)


def _context_from_event(event: dict[str, Any], changed: list[str] | None) -> FakeContext:
    """What an event payload tells about its PR; everything it does not tell stays unknown."""
    pr = event.get("pull_request") if isinstance(event.get("pull_request"), dict) else None
    if pr is None and "head" in event and "number" in event:
        pr = event
    if pr is None:
        raise ValueError("the event has no pull_request")
    try:
        repo = (event.get("repository") or {}).get("full_name") or pr["base"]["repo"]["full_name"]
        ctx = FakeContext(
            number=int(pr["number"]), title=str(pr.get("title") or ""), body=str(pr.get("body") or ""),
            author=str(pr["user"]["login"]), author_association=str(pr.get("author_association") or "NONE"),
            base_ref=str(pr["base"]["ref"]), head_ref=str(pr["head"].get("ref") or ""),
            head_sha=str(pr["head"]["sha"]), draft=bool(pr.get("draft")),
            labels=[str(label["name"]) for label in pr.get("labels") or []], repo=str(repo),
            files=[ChangedFile(filename=f) for f in changed] if changed is not None else None,
            additions=pr.get("additions"), deletions=pr.get("deletions"),
            review_list=None, label_event_list=None, checks=None, workflows=None, issues=None,
            teams=None, permissions=None, offline=True,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"the event's pull_request lacks {exc}") from None
    if event.get("action") == "labeled" and isinstance(event.get("label"), dict) and event.get("sender"):
        ctx.label_event_list = [LabelEvent(label=str(event["label"]["name"]), actor=str(event["sender"]["login"]))]
    run = event.get("workflow_run") or {}
    if isinstance(run, dict) and run.get("head_sha") == ctx.head_sha and run.get("name"):
        ctx.workflows = {str(run["name"]): CheckState(name=str(run["name"]), status=str(run.get("status")),
                                                      conclusion=run.get("conclusion"), kind="workflow")}
    return ctx


@policy.command("explain")
@click.option("--pr", "pr_ref", default=None, help="owner/repo#N: the live verdict the Action would give now "
                                                   "(token from GITHUB_TOKEN or GH_TOKEN; GITHUB_API_URL honoured).")
@click.option("--state-branch", default="loopforge-state", show_default=True, help="With --pr: the record store.")
@click.option("--pr-event", "event_file", default=None, help="A webhook payload (GITHUB_EVENT_PATH) with a PR.")
@click.option("--policy", "policy_file", default=DEFAULT_POLICY_PATH, show_default=True, help="The policy file.")
@click.option("--changed-files", "changed_file", default=None,
              help="A file listing the PR's changed paths, one per line ('-' for stdin); the event does not hold them.")
@click.option("--json", "as_json", is_flag=True, help="Print the evaluation as JSON.")
def explain_cmd(pr_ref: str | None, state_branch: str, event_file: str | None, policy_file: str,
                changed_file: str | None, as_json: bool) -> None:
    """Which rules apply to a PR, and why: --pr reads the live PR as the Action does; --pr-event is offline
    (unknown facts are reported, never assumed to pass; gates and guards are not run)."""
    if (pr_ref is None) == (event_file is None):
        _fail("give exactly one of --pr owner/repo#N or --pr-event FILE", 2)
    if pr_ref is not None:
        import os

        from loopforge.policy.explain import run

        sys.exit(run(pr_ref, os.environ, sys.stdout, sys.stderr, policy_path=policy_file, state_branch=state_branch))
    assert event_file is not None
    event_path = _existing(event_file, "event")
    _existing(policy_file, "policy")
    try:
        loaded = load_policy_file(policy_file)
    except PolicyError as exc:
        _fail(str(exc), 1)
    changed: list[str] | None = None
    if changed_file is not None:
        text = sys.stdin.read() if changed_file == "-" else _existing(changed_file, "changed-files").read_text()
        changed = [line.strip() for line in text.splitlines() if line.strip()]
    try:
        event = json.loads(event_path.read_text(encoding="utf-8"))
        if not isinstance(event, dict):
            raise ValueError("the event is not a JSON object")
        ctx = _context_from_event(event, changed)
    except (ValueError, UnicodeDecodeError) as exc:
        _fail(f"{event_file}: {exc}", 1)
    evaluation = evaluate(loaded, ctx, run_gates=False)
    if as_json:
        click.echo(evaluation.to_json(indent=2))
        return
    click.echo(f"policy {policy_file} (sha256 {loaded.digest[:12]}): PR #{ctx.number} by {ctx.author} "
               f"into {ctx.base_ref} at {ctx.head_sha[:7]}")
    if changed is None:
        click.echo("note: changed files not known (pass --changed-files, e.g. from git diff --name-only)")
    click.echo(evaluation.text())
