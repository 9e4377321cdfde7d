"""The ``loopforge`` command: read, verify and export the audit trail; draw the lifecycle; replay events.

Thin on purpose: every command parses its options, calls the library, and formats the answer. Errors are one
line on stderr (``loopforge: error: ...``) with exit code 2 for bad input and 1 for a failed check.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import click

from loopforge.errors import LoopForgeError, RecordNotFound
from loopforge.records import RecordHead, record_id_for
from loopforge.repository.base import RecordQuery, Repository, all_pages
from loopforge.service import LoopService
from loopforge.states import LoopState, mermaid, table_as_json
from loopforge.trail import LoopTransition, utcnow


class Failed(click.ClickException):
    """A check that ran and failed (exit 1), as opposed to bad input (exit 2)."""

    exit_code = 1


def _parse_since(value: str) -> datetime:
    """``2026-11-01``, an ISO timestamp, or a relative ``30m``/``24h``/``7d``."""
    units = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
    if value and value[-1] in units and value[:-1].isdigit():
        return utcnow() - timedelta(**{units[value[-1]]: int(value[:-1])})
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date, an ISO time or a duration like 24h/7d",
                                 param_hint="--since") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=utcnow().tzinfo)


def open_repository(db: str | None, dynamodb_table: str | None, branch: str | None = None) -> Repository:
    if branch:
        return _branch_repository(branch)
    if dynamodb_table:
        from loopforge.repository.dynamodb import DynamoDBRepository

        return DynamoDBRepository(table_name=dynamodb_table)
    from loopforge.repository.sqlite import SQLiteRepository

    return SQLiteRepository(db)


def _branch_repository(spec: str) -> Repository:
    """``OWNER/REPO[@BRANCH]``: the Action's branch store, read through GitHub's API (``GITHUB_TOKEN`` or
    ``GH_TOKEN``; ``GITHUB_API_URL`` for GitHub Enterprise Server)."""
    from loopforge.github.client import make_github
    from loopforge.repository.branch import DEFAULT_BRANCH, BranchRepository

    full_name, _, branch = spec.partition("@")
    if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", full_name):
        raise click.BadParameter(f"expected OWNER/REPO[@BRANCH], got {spec!r}", param_hint="--branch")
    token = os.environ.get("GITHUB_TOKEN") or os.environ.get("GH_TOKEN")
    gh = make_github(token, os.environ.get("GITHUB_API_URL") or "https://api.github.com")
    return BranchRepository((gh, full_name), branch=branch or DEFAULT_BRANCH)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", envvar="LOOPFORGE_DB", default="loopforge.db", show_default=True,
              help="SQLite store file (env LOOPFORGE_DB).")
@click.option("--dynamodb-table", envvar="LOOPFORGE_DYNAMODB_TABLE", default=None,
              help="Use this DynamoDB table instead of SQLite (env LOOPFORGE_DYNAMODB_TABLE).")
@click.option("--branch", "branch_store", envvar="LOOPFORGE_BRANCH", default=None, metavar="OWNER/REPO[@BRANCH]",
              help="Use the Action's branch store on GitHub (default branch loopforge-state; token from "
                   "GITHUB_TOKEN or GH_TOKEN; env LOOPFORGE_BRANCH).")
@click.version_option(package_name="loopforge")
@click.pass_context
def cli(ctx: click.Context, db: str, dynamodb_table: str | None, branch_store: str | None) -> None:
    """LoopForge: the lifecycle and audit trail of every issue and pull request."""
    ctx.ensure_object(dict)
    ctx.obj["db"] = db
    ctx.obj["dynamodb_table"] = dynamodb_table
    ctx.obj["branch"] = branch_store


def _service(ctx: click.Context) -> LoopService:
    obj = ctx.find_root().obj
    return LoopService(repository=open_repository(obj["db"], obj["dynamodb_table"], obj.get("branch")))


def _table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    out = [line.rstrip(), "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(out)


def _clean(text: object, limit: int = 60) -> str:
    """One line, no control characters, bounded: safe to print in a terminal or a CI log."""
    s = "".join(ch if ch.isprintable() else " " for ch in str(text if text is not None else ""))
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _ts(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S")


@cli.command()
@click.argument("ref")
@click.option("--repo", help="owner/name, when REF is a bare number like 42.")
@click.option("--json", "as_json", is_flag=True, help="Print the entries as JSON lines.")
@click.pass_context
def history(ctx: click.Context, ref: str, repo: str | None, as_json: bool) -> None:
    """The audit trail of one record (REF: org/repo#42, an issue or PR URL, or a record id)."""
    service = _service(ctx)
    record = service.get_by_ref(ref, repo)
    if record is None:
        raise click.UsageError(f"no record for {ref!r} (looked up id {record_id_for(ref, repo)!r})")
    if as_json:
        for entry in record.transitions:
            click.echo(json.dumps(entry.to_json_dict(), ensure_ascii=False))
        return
    click.echo(f"{record.record_id}  state: {record.state.value}  entries: {record.last_sequence}"
               f"  violations: {record.violations}")
    rows = [[str(e.sequence), _ts(e.occurred_at), f"{e.from_state or '∅'} → {e.to_state}", e.outcome.value,
             _clean(e.trigger, 32), _clean(e.actor or "", 20), _clean(e.reason or "", 70)]
            for e in record.transitions]
    click.echo(_table(rows, ["#", "time (UTC)", "transition", "outcome", "trigger", "actor", "reason"]))


@cli.command(name="list")
@click.option("--state", type=click.Choice([s.value for s in LoopState]), help="Only records in this state.")
@click.option("--repo", help="Only records of this repository (owner/name).")
@click.option("--since", help="Changed since: a date, an ISO time, or 30m/24h/7d.")
@click.option("--violations", is_flag=True, help="Only records with at least one violation.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=100, show_default=True)
@click.pass_context
def list_(ctx: click.Context, state: str | None, repo: str | None, since: str | None, violations: bool,
          limit: int) -> None:
    """Records, newest first."""
    query = RecordQuery(state=LoopState(state) if state else None, repo=repo,
                        since=_parse_since(since) if since else None, violations_only=violations,
                        limit=min(limit, 1000))
    heads: list[RecordHead] = []
    for head in all_pages(_service(ctx).repository, query):
        heads.append(head)
        if len(heads) >= limit:
            break
    rows = [[_clean(h.record_id, 50), h.state.value, _clean(h.repo or "", 40), _ts(h.updated_at),
             str(h.last_sequence), str(h.violations)] for h in heads]
    click.echo(_table(rows, ["record", "state", "repo", "updated (UTC)", "entries", "violations"]))


@cli.command()
@click.argument("ref", required=False)
@click.option("--repo", help="owner/name, when REF is a bare number; without REF, verify this repo's records.")
@click.pass_context
def verify(ctx: click.Context, ref: str | None, repo: str | None) -> None:
    """Check hash chains: every edited, removed or reordered entry is named. Exit 1 if any is found."""
    service = _service(ctx)
    if ref:
        ids = [record_id_for(ref, repo)]
    else:
        ids = [h.record_id for h in all_pages(service.repository, RecordQuery(repo=repo, limit=1000))]
    bad = 0
    for rid in ids:
        try:
            report = service.verify(rid)
        except RecordNotFound:
            raise click.UsageError(f"no record {rid!r}") from None
        if report.ok:
            click.echo(f"ok      {_clean(rid, 80)} ({report.entries} entries)")
        else:
            bad += 1
            for problem in report.problems:
                click.echo(f"TAMPERED {_clean(rid, 80)}: {problem}")
    click.echo(f"{len(ids) - bad} of {len(ids)} records verify")
    if bad:
        raise Failed(f"{bad} record(s) failed verification")


_CSV_FIELDS = ["record_id", "sequence", "from_state", "to_state", "trigger", "outcome", "reason", "rule", "actor",
               "occurred_at", "recorded_at", "idempotency_key", "evidence", "metadata", "prev_hash", "hash"]


def _export_rows(service: LoopService, repo: str | None) -> Iterator[LoopTransition]:
    for head in all_pages(service.repository, RecordQuery(repo=repo, limit=1000)):
        yield from service.repository.entries(head.record_id)


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True)
@click.option("--repo", help="Only records of this repository.")
@click.option("--output", "-o", type=click.File("w", encoding="utf-8"), default="-", help="File (default stdout).")
@click.pass_context
def export(ctx: click.Context, fmt: str, repo: str | None, output: io.TextIOBase) -> None:
    """Every entry of every record, as JSON lines or CSV (evidence and metadata as JSON)."""
    service = _service(ctx)
    if fmt == "jsonl":
        for entry in _export_rows(service, repo):
            output.write(json.dumps(entry.to_json_dict(), ensure_ascii=False) + "\n")
        return
    writer = csv.DictWriter(output, fieldnames=_CSV_FIELDS)
    writer.writeheader()
    for entry in _export_rows(service, repo):
        row: dict[str, Any] = entry.to_json_dict()
        row["evidence"] = json.dumps(row["evidence"], ensure_ascii=False, sort_keys=True)
        row["metadata"] = json.dumps(row["metadata"], ensure_ascii=False, sort_keys=True)
        writer.writerow({k: row.get(k) for k in _CSV_FIELDS})


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["mermaid", "json"]), default="mermaid", show_default=True)
@click.option("--current", type=click.Choice([s.value for s in LoopState]), help="Highlight this state.")
def graph(fmt: str, current: str | None) -> None:
    """The lifecycle: a Mermaid stateDiagram-v2, or the transition table as JSON."""
    click.echo(mermaid(LoopState(current) if current else None) if fmt == "mermaid" else table_as_json())


def _add_optional_groups() -> None:
    for module, name in (("loopforge.policy.cli", "policy"), ("loopforge.cli_dynamodb", "dynamodb"),
                         ("loopforge.action_cli", "replay")):
        try:
            mod = __import__(module, fromlist=[name])
        except ImportError:
            continue
        cli.add_command(getattr(mod, name))


_add_optional_groups()


def main(argv: list[str] | None = None) -> int:
    try:
        cli.main(args=argv, prog_name="loopforge", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("loopforge: error: aborted", err=True)
        return 1
    except click.ClickException as exc:
        message = " ".join(exc.format_message().split())
        click.echo(f"loopforge: error: {message}", err=True)
        return 2 if isinstance(exc, click.UsageError | click.BadParameter) else exc.exit_code
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except OSError as exc:
        click.echo(f"loopforge: error: {exc}", err=True)
        return 2
    except LoopForgeError as exc:  # the store failed (unreachable, no permission, no table): one line, no traceback
        click.echo(f"loopforge: error: {' '.join(str(exc).split())}", err=True)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
