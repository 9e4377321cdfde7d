"""``loopforge replay``: run event payload files through the Action's pipeline on a local store.

No GitHub API is used: pull requests are remembered from earlier payloads (a CI event finds its PR by number
or head SHA among them), and no check run is posted; the summary the check run would carry is written to a
file instead. Each file gets a run id derived from its content, so replaying the same files twice records
nothing new. Every file is read and parsed before anything is recorded: a malformed one (named with its line
and column) stops the command with exit 2 and an untouched store. Recording uses
``loopforge.github.recorder.route_and_record``, the path the Action's tests share. ``replay`` writes, so it is
the command that creates a SQLite store when ``--db`` does not exist yet.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from loopforge.cli.options import store_from_args, store_parent
from loopforge.cli.output import clean, fail
from loopforge.cli.progress import echo, progress
from loopforge.errors import InputError
from loopforge.github.events import Event, MalformedEvent, UnsupportedEvent, parse_event
from loopforge.github.lookup import OfflineLookup
from loopforge.github.recorder import RunInfo, route_and_record
from loopforge.github.render import SummaryView, render_summary
from loopforge.records import LoopRecord
from loopforge.service import LoopService

_SHAPES = (("workflow_run", "workflow_run"), ("check_suite", "check_suite"), ("merge_group", "merge_group"),
           ("review", "pull_request_review"), ("pull_request", "pull_request"), ("issue", "issues"))


def guess_event_name(payload: object) -> str | None:
    """The webhook event name a payload's shape implies (None if it has none of the known keys)."""
    if not isinstance(payload, dict):
        return None
    for key, name in _SHAPES:
        if key in payload:
            return name
    return None


@dataclass
class _Input:
    path: str
    run_id: str
    event: Event | None  # None: a kind LoopForge does not track
    skipped: str = ""


def _read(spec: str) -> _Input:
    name, _, path = spec.rpartition("=") if "=" in spec and not Path(spec).exists() else ("", "", spec)
    try:
        raw = Path(path).read_bytes()
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not an event payload file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        payload = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}:{exc.colno}: malformed JSON: {exc.msg}") from None
    event_name = name or guess_event_name(payload) or ""
    run_id = "replay-" + hashlib.sha256(raw).hexdigest()[:12]
    try:
        return _Input(path, run_id, parse_event(event_name, payload))
    except UnsupportedEvent as exc:
        return _Input(path, run_id, None, str(exc))
    except MalformedEvent as exc:
        raise InputError(f"{path}: {exc}") from None


def replay(args: argparse.Namespace) -> int:
    inputs = [_read(spec) for spec in args.events]  # all parsed before anything is written
    service = LoopService(repository=store_from_args(args, create=True))
    lookup = OfflineLookup()
    last: LoopRecord | None = None
    violations = 0
    for item in progress(inputs, total=len(inputs), label="replay", unit="event"):
        where = clean(item.path, 200)
        if item.event is None:
            echo(f"{where}: ignored ({clean(item.skipped, 200)})")
            continue
        event = item.event
        lookup.remember(event.pull_request)
        recorded = route_and_record(service, event, lookup, RunInfo(run_id=item.run_id))
        if recorded is None or recorded.route is None:
            echo(f"{where}: ignored ({event.kind} concerns no pull request seen so far)")
            continue
        rid = clean(recorded.route.record_id)
        last = recorded.record or last
        if recorded.outcome == "duplicate":
            echo(f"{rid}: {event.kind}: already recorded")
        for entry in recorded.entries:
            echo(f"{rid}: {entry.from_state or '∅'} → {entry.to_state} [{entry.outcome.value}] "
                 f"{clean(entry.trigger, 50)}" + (f" — {clean(entry.reason, 100)}" if entry.reason else ""))
            violations += entry.outcome.value == "violation"
    if last is not None:
        view = SummaryView(record_id=last.record_id, title=None, url=None, state=last.state, previous_state=None,
                           outcome="replay", entries=last.transitions, gate=None, messages=[], run_url=None)
        try:
            Path(args.summary).write_text(render_summary(view), encoding="utf-8")
        except OSError as exc:
            raise InputError(f"--summary {args.summary}: cannot write ({exc.strerror or exc})") from None
        echo(f"summary of {clean(last.record_id)} written to {clean(args.summary, 200)}")
    if violations:
        return fail(f"{violations} violation(s) recorded")
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("replay", parents=[store_parent()],
                       help="run webhook payloads through the Action's pipeline locally",
                       description="Replay event payloads (FILE or EVENT_NAME=FILE, in order) through the Action's "
                                   "pipeline. The event name is guessed from the payload's shape when not given "
                                   "(issues, pull_request, pull_request_review, workflow_run, check_suite, "
                                   "merge_group). Creates the store if it does not exist.")
    p.add_argument("events", nargs="+", metavar="EVENT")
    p.add_argument("--summary", default="loopforge-summary.md", metavar="FILE",
                   help="where to write the rendered summary (default loopforge-summary.md)")
    p.set_defaults(func=replay)


__all__ = ["add_commands", "guess_event_name"]
