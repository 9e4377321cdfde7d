"""``loopforge history | list | verify | export | import | graph``: read, check, export and import the trail.

A REF names a record in one of these forms (anything else gets a hint listing them):

* ``owner/repo#42`` — issue or PR 42 (GitHub numbers issues and PRs in one sequence);
* ``https://github.com/owner/repo/issues/42`` — issue 42's record;
* ``https://github.com/owner/repo/pull/42`` — the record PR 42 was routed to: the record of the issue it closes
  (records keep the PR in their metadata and in each entry's evidence), else the PR's own record;
* ``42`` or ``#42`` with ``--repo owner/repo``;
* a record id exactly as stored (``loopforge list`` shows them).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, TextIO

from loopforge.cli.options import store_from_args, store_parent
from loopforge.cli.output import CsvWriter, clean, fail, json_line, table, timestamp
from loopforge.cli.progress import echo, progress
from loopforge.errors import InputError, RecordNotFound
from loopforge.github.lifecycle import FACTS_KEY
from loopforge.records import RecordHead, apply_entry, record_id_for
from loopforge.records import replay as replay_head
from loopforge.repository.base import RecordQuery, Repository, all_pages
from loopforge.service import LoopService
from loopforge.states import LoopState, mermaid, table_as_json
from loopforge.trail import LoopTransition, utcnow, verify_entries

_URL = re.compile(r"^https?://[^/\s]+/(?P<owner>[\w.-]+)/(?P<repo>[\w.-]+)/(?P<kind>issues|pull|pulls)/(?P<n>\d+)"
                  r"(?:/[\w./-]*)?(?:[?#]\S*)?$")
_SHORT = re.compile(r"^(?P<owner>[\w.-]+)/(?P<repo>[\w.-]+)#(?P<n>\d+)$")
_NUMBER = re.compile(r"^#?(?P<n>\d+)$")
_FULL_NAME = re.compile(r"^[\w.-]+/[\w.-]+$")
#: shapes that look like an attempt at a GitHub reference but are none of the accepted forms.
_WRONG_SHAPES = (
    re.compile(r"^#?\d+$"),                                   # 42, #42 without --repo
    re.compile(r"^[\w.-]+/[\w.-]+/(?:(?:issues|pull|pulls)/)?\d+/?$"),  # o/r/42, o/r/pull/42
    re.compile(r"^[\w.-]+#\d+$"),                             # repo#42 (no owner)
    re.compile(r"^(?:https?://|www\.|github\.com/)"),         # a URL that is not an issue or PR URL
)

ACCEPTED_FORMS = ("owner/repo#N, https://github.com/owner/repo/issues/N, https://github.com/owner/repo/pull/N, "
                  "N or #N with --repo owner/repo, or a record id as `loopforge list` shows it")
_CSV_FIELDS = ["record_id", "sequence", "from_state", "to_state", "trigger", "outcome", "reason", "rule", "actor",
               "occurred_at", "recorded_at", "idempotency_key", "evidence", "metadata", "prev_hash", "hash"]


# ---------------------------------------------------------------------------------------------- refs
def parse_since(value: str) -> datetime:
    """``2026-11-01``, an ISO timestamp, or a relative ``30m``/``24h``/``7d``/``2w``."""
    units = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
    if value and value[-1] in units and value[:-1].isdigit():
        return utcnow() - timedelta(**{units[value[-1]]: int(value[:-1])})
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"--since: {value!r} is not a date, an ISO time or a duration like 24h/7d") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=utcnow().tzinfo)


def _pull_numbers(head: RecordHead) -> set[int]:
    meta = head.metadata or {}
    facts = meta.get(FACTS_KEY) if isinstance(meta.get(FACTS_KEY), dict) else {}
    pr = facts.get("pr") if isinstance(facts, dict) and isinstance(facts.get("pr"), dict) else {}
    found = {meta.get("pr_number"), pr.get("number") if isinstance(pr, dict) else None}
    return {n for n in found if isinstance(n, int)}


def record_of_pull(repository: Repository, repo: str, number: int) -> str | None:
    """The id of the record pull request ``number`` of ``repo`` was routed to, or None.

    The PR's own record (``repo#number`` whose ref is not an issue URL) first; then the newest record of the
    repository whose metadata names the PR (the issue it closes); then a record with an entry whose evidence
    names it (a second PR that also linked an issue another PR was following).
    """
    own = repository.head(f"{repo}#{number}")
    if own is not None and "/issues/" not in own.ref:
        return own.record_id
    heads = list(all_pages(repository, RecordQuery(repo=repo, limit=1000)))
    for head in heads:  # newest first
        if number in _pull_numbers(head):
            return head.record_id
    for head in heads:
        for entry in repository.entries(head.record_id):
            if entry.evidence.get("pr") == number:
                return head.record_id
    return None


def resolve_ref(repository: Repository, ref: str, repo: str | None) -> str:
    """The record id ``ref`` names (see the module docstring). ``InputError`` with the accepted forms when
    ``ref`` has none of them, or ``RecordNotFound`` when it is well formed but no record matches."""
    ref = ref.strip()
    if repo is not None and not _FULL_NAME.match(repo):
        raise InputError(f"--repo: expected owner/name, got {clean(repo, 80)!r}")
    url, short, number = _URL.match(ref), _SHORT.match(ref), _NUMBER.match(ref)
    if url or short or (number and repo):
        if url:
            full, n, kind = f"{url['owner']}/{url['repo']}", int(url["n"]), url["kind"]
        elif short:
            full, n, kind = f"{short['owner']}/{short['repo']}", int(short["n"]), "any"
        else:
            assert number is not None and repo is not None
            full, n, kind = repo, int(number["n"]), "any"
        rid = f"{full}#{n}"
        if kind == "issues":
            if repository.head(rid) is not None:
                return rid
        elif kind == "any" and repository.head(rid) is not None:
            return rid
        else:
            found = record_of_pull(repository, full, n)
            if found is not None:
                return found
            if kind == "any":
                raise RecordNotFound(rid)
            raise InputError(f"no record for pull request {full}#{n} (no record is the PR's own or names it)")
        raise RecordNotFound(rid)
    rid = record_id_for(ref, repo)
    if repository.head(rid) is not None:
        return rid
    if any(shape.match(ref) for shape in _WRONG_SHAPES) or not ref:
        raise InputError(f"{clean(ref, 80)!r} is not a record reference: use {ACCEPTED_FORMS}")
    raise RecordNotFound(rid)


def _resolve(repository: Repository, ref: str, repo: str | None) -> str:
    try:
        return resolve_ref(repository, ref, repo)
    except RecordNotFound as exc:
        raise InputError(f"no record for {clean(ref, 120)!r} (looked up id {clean(exc.args[0], 120)!r}; "
                         "`loopforge list` shows the records)") from None


# ---------------------------------------------------------------------------------------------- commands
def history(args: argparse.Namespace) -> int:
    service = LoopService(repository=store_from_args(args))
    rid = _resolve(service.repository, args.ref, args.repo)
    record = service.get(rid)
    if record is None:  # removed between the lookup and the read
        raise InputError(f"no record {clean(rid, 120)!r}")
    if args.json:
        for entry in record.transitions:
            echo(json_line(entry.to_json_dict()))
        return 0
    echo(f"{clean(record.record_id, 120)}  state: {record.state.value}  entries: {record.last_sequence}"
         f"  violations: {record.violations}")
    rows = [[str(e.sequence), timestamp(e.occurred_at), f"{e.from_state or '∅'} → {e.to_state}", e.outcome.value,
             clean(e.trigger, 32), clean(e.actor or "", 20), clean(e.reason or "", 70)] for e in record.transitions]
    echo(table(rows, ["#", "time (UTC)", "transition", "outcome", "trigger", "actor", "reason"]))
    return 0


def list_records(args: argparse.Namespace) -> int:
    query = RecordQuery(state=LoopState(args.state) if args.state else None, repo=args.repo,
                        since=parse_since(args.since) if args.since else None, violations_only=args.violations,
                        limit=min(args.limit, 1000))
    heads: list[RecordHead] = []
    for head in all_pages(store_from_args(args), query):
        heads.append(head)
        if len(heads) >= args.limit:
            break
    rows = [[clean(h.record_id, 50), h.state.value, clean(h.repo or "", 40), timestamp(h.updated_at),
             str(h.last_sequence), str(h.violations)] for h in heads]
    echo(table(rows, ["record", "state", "repo", "updated (UTC)", "entries", "violations"]))
    return 0


def verify(args: argparse.Namespace) -> int:
    service = LoopService(repository=store_from_args(args))
    if args.ref:
        ids = [_resolve(service.repository, args.ref, args.repo)]
    else:
        ids = [h.record_id for h in all_pages(service.repository, RecordQuery(repo=args.repo, limit=1000))]
    bad = 0
    for rid in progress(ids, total=len(ids), label="verify", unit="record"):
        report = service.verify(rid)
        if report.ok:
            echo(f"ok      {clean(rid, 80)} ({report.entries} entries)")
        else:
            bad += 1
            for problem in report.problems:
                echo(f"TAMPERED {clean(rid, 80)}: {clean(problem, 300)}")
    echo(f"{len(ids) - bad} of {len(ids)} records verify")
    if bad:
        return fail(f"{bad} record(s) failed verification")
    return 0


def _entries(repository: Repository, heads: list[RecordHead]) -> Iterator[dict[str, Any]]:
    for head in progress(heads, total=len(heads), label="export", unit="record"):
        for entry in repository.entries(head.record_id):
            yield entry.to_json_dict()


def export(args: argparse.Namespace) -> int:
    repository = store_from_args(args)
    heads = list(all_pages(repository, RecordQuery(repo=args.repo, limit=1000)))
    with contextlib.ExitStack() as stack:
        out: TextIO = sys.stdout
        if args.output and args.output != "-":
            out = stack.enter_context(open(args.output, "w", encoding="utf-8", newline=""))
        if args.format == "jsonl":
            for row in _entries(repository, heads):
                out.write(json_line(row) + "\n")
        else:
            writer = CsvWriter(out, _CSV_FIELDS)
            writer.writeheader()
            writer.writerows(_entries(repository, heads))
    return 0


#: entries per append when importing: a DynamoDB transaction holds 100 items (an entry, its key, the head).
IMPORT_CHUNK = 40


def _read_export(path: str) -> Iterator[LoopTransition]:
    """The entries of a JSON-lines export; ``InputError`` naming the file, line (and column) of a bad line."""
    try:
        stream = sys.stdin if path == "-" else open(path, encoding="utf-8")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        for number, line in enumerate(stream, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{number}:{exc.colno}: malformed JSON: {exc.msg}") from None
            if not isinstance(data, dict):
                raise InputError(f"{path}:{number}: expected a JSON object (one trail entry), "
                                 f"got {type(data).__name__}")
            try:
                yield LoopTransition.model_validate(data)
            except ValueError as exc:  # pydantic's ValidationError
                first = str(exc).splitlines()
                raise InputError(f"{path}:{number}: not a trail entry ({clean(' '.join(first[:3]), 300)})") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    finally:
        if stream is not sys.stdin:
            stream.close()


def import_entries(args: argparse.Namespace) -> int:
    """Check everything first (JSON, entries, every record's hash chain, what the store already holds), then
    append: a bad input leaves the store untouched."""
    records: dict[str, list[LoopTransition]] = {}
    for path in args.files:
        for entry in _read_export(path):
            records.setdefault(entry.record_id, []).append(entry)
    for rid, entries in records.items():
        entries.sort(key=lambda e: e.sequence)
        report = verify_entries(rid, entries)
        if not report.ok:
            raise InputError(f"{clean(rid, 120)}: the imported trail does not verify: {clean(report.problems[0], 300)}")
    repository = store_from_args(args, create=True)
    plan: list[tuple[list[LoopTransition], int]] = []
    present = 0
    for rid, entries in records.items():
        stored = repository.head(rid)
        have = stored.last_sequence if stored else 0
        if stored is not None and (have > len(entries) or entries[have - 1].hash != stored.last_hash):
            raise InputError(f"{clean(rid, 120)}: the store holds a different trail for this record (entry {have}); "
                             "nothing was imported")
        present += have == len(entries)
        if have < len(entries):
            plan.append((entries, have))
    written = 0
    for entries, have in progress(plan, total=len(plan), label="import", unit="record"):
        # the stored head (checked above) is the fold of the entries it already has; a writer that appended
        # since then makes the append below fail instead of being folded in unchecked
        head = replay_head(entries[:have])
        for start in range(have, len(entries), IMPORT_CHUNK):
            chunk = entries[start:start + IMPORT_CHUNK]
            for entry in chunk:
                head = apply_entry(head, entry)
            assert head is not None
            repository.append(head, chunk)
            written += len(chunk)
    echo(f"imported {written} entries of {len(plan)} record(s); {present} record(s) already complete")
    return 0


def graph(args: argparse.Namespace) -> int:
    echo(mermaid(LoopState(args.current) if args.current else None) if args.format == "mermaid"
         else table_as_json())
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    states = [s.value for s in LoopState]
    store = [store_parent()]

    p = sub.add_parser("history", parents=store, help="the audit trail of one record",
                       description="The audit trail of one record. " + (__doc__ or "").split("\n\n", 1)[1],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("ref", metavar="REF")
    p.add_argument("--repo", help="owner/name, when REF is a bare number like 42")
    p.add_argument("--json", action="store_true", help="print the entries as JSON lines")
    p.set_defaults(func=history)

    p = sub.add_parser("list", parents=store, help="records, newest first")
    p.add_argument("--state", choices=states, metavar="STATE", help=f"only records in this state ({', '.join(states)})")
    p.add_argument("--repo", help="only records of this repository (owner/name)")
    p.add_argument("--since", help="changed since: a date, an ISO time, or 30m/24h/7d")
    p.add_argument("--violations", action="store_true", help="only records with at least one violation")
    p.add_argument("--limit", type=_limit, default=100, help="at most this many records (default 100)")
    p.set_defaults(func=list_records)

    p = sub.add_parser("verify", parents=store, help="check hash chains (exit 1 naming any tampered entry)",
                       description="Check hash chains: every edited, removed or reordered entry is named. "
                                   "Exit 1 if any is found.")
    p.add_argument("ref", metavar="REF", nargs="?", help="one record (default: every record)")
    p.add_argument("--repo", help="owner/name, when REF is a bare number; without REF, verify this repo's records")
    p.set_defaults(func=verify)

    p = sub.add_parser("export", parents=store, help="every entry of every record as JSON lines or CSV")
    p.add_argument("--format", choices=["jsonl", "csv"], default="jsonl", help="default jsonl")
    p.add_argument("--repo", help="only records of this repository")
    p.add_argument("--output", "-o", default="-", metavar="FILE", help="file (default stdout)")
    p.set_defaults(func=export)

    p = sub.add_parser("import", parents=store, help="append the entries of `export` files (JSON lines) to a store",
                       description="Append the entries of JSON-lines exports (FILE, or - for stdin) to the store, "
                                   "e.g. to move a trail from SQLite to DynamoDB. Every line, every record's hash "
                                   "chain and what the store already holds are checked before anything is written; "
                                   "records already complete are skipped. Creates the store if it does not exist.")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.set_defaults(func=import_entries)

    p = sub.add_parser("graph", help="the lifecycle as Mermaid or the transition table as JSON")
    p.add_argument("--format", choices=["mermaid", "json"], default="mermaid", help="default mermaid")
    p.add_argument("--current", choices=states, metavar="STATE", help="highlight this state")
    p.set_defaults(func=graph)


def _limit(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 100_000:
        raise argparse.ArgumentTypeError(f"expected a number from 1 to 100000, got {value!r}")
    return int(value)


__all__ = ["ACCEPTED_FORMS", "add_commands", "parse_since", "record_of_pull", "resolve_ref"]
