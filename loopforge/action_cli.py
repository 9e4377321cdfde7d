"""``loopforge replay``: run event payload files through the Action's pipeline on the local SQLite store.

No GitHub API is used: pull requests are remembered from earlier payloads (a CI event finds its PR by number
or head SHA among them), and no check run is posted; the summary the check run would carry is written to a
file instead. Each file gets a run id derived from its content, so replaying the same files twice records
nothing new.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import click

from loopforge.github.events import MalformedEvent, UnsupportedEvent, parse_event
from loopforge.github.lookup import OfflineLookup
from loopforge.github.recorder import RunInfo, route_and_record
from loopforge.github.render import SummaryView, render_summary
from loopforge.records import LoopRecord
from loopforge.service import LoopService

_SHAPES = (("workflow_run", "workflow_run"), ("check_suite", "check_suite"), ("merge_group", "merge_group"),
           ("review", "pull_request_review"), ("pull_request", "pull_request"), ("issue", "issues"))


def guess_event_name(payload: object) -> str | None:
    if not isinstance(payload, dict):
        return None
    for key, name in _SHAPES:
        if key in payload:
            return name
    return None


@click.command()
@click.argument("events", nargs=-1, required=True)
@click.option("--summary", "summary_path", type=click.Path(dir_okay=False, writable=True),
              default="loopforge-summary.md", show_default=True, help="Where to write the rendered summary.")
@click.pass_context
def replay(ctx: click.Context, events: tuple[str, ...], summary_path: str) -> None:
    """Replay event payloads (FILE or EVENT_NAME=FILE, in order) through the Action's pipeline.

    The event name is guessed from the payload's shape when not given (issues, pull_request,
    pull_request_review, workflow_run, check_suite, merge_group).
    """
    from loopforge.cli import Failed, _clean, _service

    service: LoopService = _service(ctx)
    lookup = OfflineLookup()
    last: LoopRecord | None = None
    failures = 0
    for spec in events:
        name, _, path = spec.rpartition("=") if "=" in spec and not Path(spec).exists() else ("", "", spec)
        try:
            raw = Path(path).read_bytes()
            payload = json.loads(raw.decode("utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise click.UsageError(f"{path}: not a readable JSON event payload ({type(exc).__name__})") from None
        name = name or guess_event_name(payload) or ""
        try:
            event = parse_event(name, payload)
        except UnsupportedEvent as exc:
            click.echo(f"{path}: ignored ({exc})")
            continue
        except MalformedEvent as exc:
            raise click.UsageError(f"{path}: {exc}") from None
        lookup.remember(event.pull_request)
        run = RunInfo(run_id="replay-" + hashlib.sha256(raw).hexdigest()[:12])
        recorded = route_and_record(service, event, lookup, run)
        if recorded is None or recorded.route is None:
            click.echo(f"{path}: ignored ({event.kind} concerns no pull request seen so far)")
            continue
        routed = recorded.route
        last = recorded.record
        if recorded.outcome == "duplicate":
            click.echo(f"{_clean(routed.record_id)}: {event.kind}: already recorded")
        for entry in recorded.entries:
            click.echo(f"{_clean(routed.record_id)}: {entry.from_state or '∅'} → {entry.to_state} "
                       f"[{entry.outcome.value}] {_clean(entry.trigger, 50)}"
                       + (f" — {_clean(entry.reason, 100)}" if entry.reason else ""))
            failures += entry.outcome.value == "violation"
    if last is not None:
        view = SummaryView(record_id=last.record_id, title=None, url=None, state=last.state, previous_state=None,
                           outcome="replay", entries=last.transitions, gate=None, messages=[], run_url=None)
        Path(summary_path).write_text(render_summary(view), encoding="utf-8")
        click.echo(f"summary of {_clean(last.record_id)} written to {summary_path}")
    if failures:
        raise Failed(f"{failures} violation(s) recorded")
