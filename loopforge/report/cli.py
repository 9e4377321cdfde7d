"""``loopforge report`` and ``loopforge demo``.

::

    loopforge report --html FILE [--since D] [--repo o/r] [--details N] [--markdown FILE]
    loopforge demo [--db FILE] [--html FILE] [--check-run FILE] [--events-dir DIR]

``report`` reads a store (the store options of every command: ``--db``, ``--dynamodb-table``, ``--branch``);
``demo`` writes one (the same options; the SQLite ``--db`` is created if missing; rerunning it records nothing
twice).
Both write files atomically and print one line per file. Errors follow the command line's contract: one line,
exit 2 for bad input (``InputError`` and the other ``LoopForgeError``), exit 1 for a check that failed (the demo's
violation is expected and is not a failure).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable
from pathlib import Path

from loopforge.cli.options import repo_option, store_from_args, store_parent
from loopforge.errors import InputError
from loopforge.records import RecordHead
from loopforge.report.data import Wrap
from loopforge.repository.base import Repository

DEMO_HTML = "loopforge-report.html"
DEMO_CHECK_RUN = "loopforge-check-run.md"


def _open(args: argparse.Namespace, *, create: bool) -> Repository:
    return store_from_args(args, create=create)


def _progress(label: str) -> Wrap:
    """A wrapper drawing a progress bar on a terminal (``loopforge.cli.progress``); identity elsewhere."""
    from loopforge.cli.progress import progress

    def wrap(heads: Iterable[RecordHead]) -> Iterable[RecordHead]:
        return progress(heads, label=label, unit="record")

    return wrap


def _echo(line: str) -> None:
    from loopforge.cli.progress import echo

    echo(line)


def _writable(path: str, option: str) -> str:
    target = Path(path)
    if target.is_dir():
        raise InputError(f"{option} {path}: is a directory")
    if not target.parent.exists() and str(target.parent) not in ("", "."):
        raise InputError(f"{option} {path}: the folder {target.parent} does not exist")
    return path


def _write(path: str, text: str, option: str) -> None:
    from loopforge.report.build import write_atomically

    try:
        write_atomically(path, text)
    except OSError as exc:
        raise InputError(f"{option} {path}: cannot write ({exc.strerror or exc})") from None


def report(args: argparse.Namespace) -> int:
    from loopforge.cli.output import clean
    from loopforge.cli.records import parse_since
    from loopforge.report.build import build_report

    _writable(args.html, "--html")
    if args.markdown:
        _writable(args.markdown, "--markdown")
    if args.repo is not None:
        repo_option(args.repo)
    since = parse_since(args.since) if args.since else None
    repository = _open(args, create=False)
    try:
        data = build_report(repository, args.html, since=since, repo=args.repo, details=args.details,
                            markdown_path=args.markdown, artifact_name=args.artifact_name, wrap=_progress("report"))
    except OSError as exc:
        raise InputError(f"--html {args.html}: cannot write ({exc.strerror or exc})") from None
    _echo(f"report of {len(data.records)} records ({data.total_entries} entries) written to {clean(args.html, 200)}")
    if args.markdown:
        _echo(f"digest written to {clean(args.markdown, 200)}")
    return 0


def demo(args: argparse.Namespace) -> int:
    from loopforge.cli.output import clean
    from loopforge.report import demo as demo_mod
    from loopforge.report.build import build_report

    for path, option in ((args.html, "--html"), (args.check_run, "--check-run")):
        _writable(path, option)
    repository = _open(args, create=True)
    history = demo_mod.build_history(demo_mod.history_end())
    if args.events_dir:
        out = Path(args.events_dir)
        try:
            out.mkdir(parents=True, exist_ok=True)
            for i, (_, name, payload) in enumerate(history.events, 1):
                (out / f"{i:03d}-{name}.json").write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
        except OSError as exc:
            raise InputError(f"--events-dir {args.events_dir}: cannot write ({exc.strerror or exc})") from None
        _echo(f"{len(history.events)} event payloads written to {clean(args.events_dir, 200)} "
              f"(replay them with: loopforge replay {clean(args.events_dir, 200)}/*.json)")
    from loopforge.cli.progress import progress

    result = demo_mod.record_history(repository, history, wrap=lambda events: progress(
        events, total=len(events), label="demo", unit="event"))
    _echo(f"{result.events} events of {len(result.records)} records ({demo_mod.REPO}) recorded into "
          f"{clean(getattr(args, 'db', ''), 200) or 'the store'}: {result.recorded} new entries, "
          f"{result.violations} violation{'s' if result.violations != 1 else ''}")
    data = build_report(repository, args.html, wrap=_progress("report"))
    _echo(f"report of {len(data.records)} records written to {clean(args.html, 200)}")
    _write(args.check_run, demo_mod.check_run_markdown(repository, result.showcase), "--check-run")
    _echo(f"check-run summary of {clean(result.showcase)} (the bypass merge) written to {clean(args.check_run, 200)}")
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("report", parents=[store_parent()], help="write the HTML report of a store",
                       description="Write one self-contained HTML file (no script, no network: opens from disk, a "
                                   "workflow artifact or GitHub Pages) with the lifecycle funnel, lead times, where "
                                   "work waits, CI failures and retries, violations over time, and every record "
                                   "with its path and trail.")
    p.add_argument("--html", required=True, metavar="FILE", help="the HTML file to write")
    p.add_argument("--since", help="records changed since: a date, an ISO time, or 30m/24h/7d")
    p.add_argument("--repo", metavar="OWNER/REPO", help="only this repository's records")
    p.add_argument("--details", type=_count, default=200, metavar="N",
                   help="show the newest N records in full (path and trail); default 200")
    p.add_argument("--markdown", metavar="FILE", help="also write a short markdown digest (for a step summary)")
    p.add_argument("--artifact-name", default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=report)

    d = sub.add_parser("demo", parents=[store_parent()],
                       help="record a bundled multi-PR history and write its report",
                       description="Record a realistic history of acme/widgets (a clean merge, a CI failure and "
                                   "retry, changes requested, an abandoned PR, a governed high-risk PR, a bypass "
                                   "merge flagged as a violation, and more) through the Action's pipeline into a "
                                   "store (the SQLite --db, default loopforge.db), then write the HTML report and the "
                                   "check-run summary of the bypass merge. Running it again records nothing twice.")
    d.add_argument("--html", default=DEMO_HTML, metavar="FILE", help=f"the report (default {DEMO_HTML})")
    d.add_argument("--check-run", default=DEMO_CHECK_RUN, metavar="FILE",
                   help=f"the check-run markdown of one PR (default {DEMO_CHECK_RUN})")
    d.add_argument("--events-dir", metavar="DIR", help="also write the event payloads there (for loopforge replay)")
    d.set_defaults(func=demo)


def _count(value: str) -> int:
    if not value.isdigit() or int(value) > 1_000_000:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}")
    return int(value)


def main(argv: list[str] | None = None) -> int:
    """``python -m loopforge.report``: the ``loopforge`` command line (these two commands are in its
    ``COMMAND_MODULES``; same options, errors and exit codes)."""
    from loopforge.cli import main as cli_main

    return cli_main(argv)


__all__ = ["add_commands", "main"]
