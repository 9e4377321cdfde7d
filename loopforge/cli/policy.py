"""``loopforge policy validate | schema | explain``: policy files (``.github/loopforge.yml``), offline.

Exit codes as everywhere: ``validate`` exits 1 when the file it checks is invalid (the check failed) and lists
every problem on its one error line; ``explain`` exits 2 on an invalid policy or event (bad input); a file that
does not exist is 2. Malformed JSON is named with its file, line and column.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from loopforge.cli.output import clean, fail
from loopforge.cli.progress import echo
from loopforge.errors import InputError
from loopforge.policy.context import ChangedFile, CheckState, FakeContext, LabelEvent
from loopforge.policy.evaluate import evaluate
from loopforge.policy.model import DEFAULT_POLICY_PATH, PolicyError, load_policy_file, policy_json_schema_text


def _existing(path: str, what: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{path}: no such {what} file")
    return p


def read_json_file(path: Path | str) -> Any:
    """Parse a JSON file; ``InputError`` naming the file, line and column of malformed JSON."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}:{exc.colno}: malformed JSON: {exc.msg}") from None


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


def validate(args: argparse.Namespace) -> int:
    _existing(args.file, "policy")
    try:
        loaded = load_policy_file(args.file)
    except PolicyError as exc:
        return fail(str(exc))
    echo(f"{clean(args.file, 200)}: valid ({len(loaded.rules)} rule{'s' if len(loaded.rules) != 1 else ''}, "
         f"sha256 {loaded.digest[:12]})")
    return 0


def schema(args: argparse.Namespace) -> int:
    sys.stdout.write(policy_json_schema_text())
    return 0


def explain(args: argparse.Namespace) -> int:
    event_path = _existing(args.event_file, "event")
    _existing(args.policy_file, "policy")
    try:
        loaded = load_policy_file(args.policy_file)
    except PolicyError as exc:
        raise InputError(str(exc)) from None
    changed: list[str] | None = None
    if args.changed_file is not None:
        text = sys.stdin.read() if args.changed_file == "-" else \
            _existing(args.changed_file, "changed-files").read_text(encoding="utf-8", errors="replace")
        changed = [line.strip() for line in text.splitlines() if line.strip()]
    event = read_json_file(event_path)
    if not isinstance(event, dict):
        raise InputError(f"{args.event_file}: the event is not a JSON object")
    try:
        ctx = _context_from_event(event, changed)
    except ValueError as exc:
        raise InputError(f"{args.event_file}: {exc}") from None
    evaluation = evaluate(loaded, ctx, run_gates=False)
    if args.json:
        echo(evaluation.to_json(indent=2))
        return 0
    echo(f"policy {clean(args.policy_file, 200)} (sha256 {loaded.digest[:12]}): PR #{ctx.number} by "
         f"{clean(ctx.author, 40)} into {clean(ctx.base_ref, 100)} at {ctx.head_sha[:7]}")
    if changed is None:
        echo("note: changed files not known (pass --changed-files, e.g. from git diff --name-only)")
    echo(evaluation.text())
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("policy", help="policy files (.github/loopforge.yml): validate, schema, explain",
                       description="Policy files (.github/loopforge.yml): validate, schema, explain.")
    commands = p.add_subparsers(dest="policy_command", metavar="COMMAND", required=True)

    v = commands.add_parser("validate", help="check FILE; exit 1 listing every problem if it is invalid")
    v.add_argument("file", metavar="FILE")
    v.set_defaults(func=validate)

    s = commands.add_parser("schema", help="print the JSON Schema of the policy file")
    s.set_defaults(func=schema)

    e = commands.add_parser("explain", help="which rules apply to the PR in an event, and why (offline)",
                            description="Which rules apply to the PR in an event, and why (offline: unknown facts "
                                        "are reported, never assumed to pass; gates and guards are not run).")
    e.add_argument("--pr-event", dest="event_file", required=True, metavar="FILE",
                   help="a webhook payload (GITHUB_EVENT_PATH) with a PR")
    e.add_argument("--policy", dest="policy_file", default=DEFAULT_POLICY_PATH, metavar="FILE",
                   help=f"the policy file (default {DEFAULT_POLICY_PATH})")
    e.add_argument("--changed-files", dest="changed_file", default=None, metavar="FILE",
                   help="a file listing the PR's changed paths, one per line ('-' for stdin)")
    e.add_argument("--json", action="store_true", help="print the evaluation as JSON")
    e.set_defaults(func=explain)


__all__ = ["add_commands", "read_json_file"]
