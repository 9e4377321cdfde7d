"""Load and concurrency: 16 writers at once on ONE record and spread over 100 records, for every store.

Each writer makes its calls through its own ``LoopService``, each call with its own idempotency key: a third
``note``, two thirds ``transition`` to ``ci_failed`` or ``ci_pending`` (``ci_failed → ci_failed`` is not in the
table: that call is refused and recorded as ``rejected``, still one entry). The calls are planned up front
(which writer, which record, which key); in "100 records" each call picks its record at random. All writers
start together (a barrier). Afterwards every record is read back and checked against the plan: every attempted
call is exactly one entry (by key) on the record it named, sequences are 1..n, each call's answer (sequence,
outcome) is what the store holds, and every hash chain and head verifies (``LoopService.verify``).

Reported per store and scenario: events (attempted calls), seconds (first writer start to last writer end),
events/s (recorded events per second), conflict retries (sum of ``service.conflicts``: conditional appends that
lost to another writer and were re-validated and retried), branch rebases, and three counts that must be 0:
gave up (the call raised, e.g. ``ConcurrencyError`` after the service's last retry: the caller is told, nothing
is written), lost (no entry although the call did not raise) and duplicated (a key stored twice).

* sqlite: one WAL file; writers are separate processes (``spawn``), 16 x 125 calls per scenario.
* dynamodb: moto's server as tests/dynamo_server.py runs it (one request at a time, so transactions stay
  atomic), started here with one change: a ``TransactWriteItems`` backs up only the items it touches instead
  of deep-copying the whole table once per item (see ``_touched_items_rollback``; with that copy an append
  costs time in proportion to the table and a run of thousands takes hours; ``--moto-full-copy`` uses
  tests/dynamo_server.py unchanged). ``--dynamodb-url`` targets any other server. Writers are processes,
  16 x 63 calls per scenario (2,016 per store), a fresh table per scenario. The emulator serves one request at a
  time on a shared CPU: its figures measure moto, not DynamoDB.
* branch: ``BranchRepository`` against the fake GitHub (tests/fakegithub) served on 127.0.0.1 in this process;
  writers are threads, each with its own ``Github`` client (PyGithub clients are not thread-safe), 16 x 25
  calls per scenario: the fake validates every request and response against GitHub's OpenAPI description and
  shares the GIL with the writers (a call is a few requests: a GraphQL read, ``createCommitOnBranch``), so this
  store gets fewer calls. All records live on one branch: writers of different records still race for the
  branch tip, and the store commits the same files on the new tip (a "rebase", not a conflict); only a change
  to the same record is a conflict.

    python3 benchmarks/load.py                  # everything (a few minutes)
    python3 benchmarks/load.py --quick          # 16 x 5 calls (branch 4 x 3): a smoke run
    python3 benchmarks/load.py --stores sqlite --calls 500 --json out.json

Prints a markdown table (progress on stderr); ``--json FILE`` writes the figures. Exit code 1 if any call gave
up, was lost or duplicated, or any check failed. No figure here is comparable across machines: read ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import platform
import random
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing; spawned writers inherit sys.path
    sys.path.insert(0, str(ROOT))

from loopforge import LoopService, LoopState, RecordNotFound  # noqa: E402
from loopforge.repository.base import Repository  # noqa: E402
from loopforge.trail import LoopTransition, VerifyReport, verify_entries  # noqa: E402

S = LoopState
STORES = ("sqlite", "dynamodb", "branch")
SCENARIOS = ("one record", "100 records")
SPREAD = 100
REPO = "load/bench"
FAKE_OWNER, FAKE_REPO = "octo-org", "octo-repo"

#: one planned call: (idempotency key, record id, operation) with operation "note", "ci_failed" or "ci_pending"
Call = tuple[str, str, str]


# ---------------------------------------------------------------------------------------------- planning
def record_ids(scenario: str, records: int = SPREAD) -> list[str]:
    if scenario == "one record":
        return [f"{REPO}#1"]
    return [f"{REPO}#{n}" for n in range(1, records + 1)]


def plan(writers: int, calls: int, rids: list[str], seed: int = 0) -> list[list[Call]]:
    """Every writer's calls, decided up front so the check does not depend on what the writers report."""
    out = []
    for w in range(writers):
        rng = random.Random(seed * 100_003 + w)
        ops = []
        for i in range(calls):
            op = ("note", "ci_failed", "ci_pending")[i % 3]
            ops.append((f"w{w}:{i}", rids[0] if len(rids) == 1 else rng.choice(rids), op))
        out.append(ops)
    return out


def setup_records(repository: Repository, rids: list[str]) -> None:
    """Create each record in ``pr_created`` (one append each; ``ci_failed`` and ``ci_pending`` may follow)."""
    service = LoopService(repository=repository)
    for rid in rids:
        service.create(ref=rid, repo=REPO, state=S.PR_CREATED, idempotency_key="setup:create")


# ---------------------------------------------------------------------------------------------- writing
def write(repository: Repository, writer: int, calls: list[Call], barrier: Any = None) -> dict[str, Any]:
    """One writer: its calls, in order, through its own ``LoopService``. Returns what each call answered."""
    service = LoopService(repository=repository)
    if barrier is not None:  # every writer starts at once
        barrier.wait(timeout=300)
    started = time.time()
    answers: dict[str, list[Any]] = {}
    errors: dict[str, str] = {}  # key -> what the call raised
    for key, rid, op in calls:
        try:
            if op == "note":
                result = service.note(rid, "load.note", evidence={"writer": writer, "key": key},
                                      idempotency_key=key)
            else:
                result = service.transition(rid, S(op), "load.transition", evidence={"writer": writer},
                                            idempotency_key=key)
        except Exception as exc:  # reported: the check counts it as "gave up" (or "failed but written")
            errors[key] = f"{type(exc).__name__}: {exc}"[:300]
            continue
        entry = result.entry
        answers[key] = [entry.sequence if entry else None, result.outcome.value if result.outcome else None,
                        result.duplicate]
    return {"writer": writer, "pid": os.getpid(), "thread": threading.get_ident(), "start": started,
            "end": time.time(), "conflicts": service.conflicts, "rebases": getattr(repository, "rebases", 0),
            "answers": answers, "errors": errors}


def open_store(store: dict[str, Any]) -> Repository:
    """A repository from a picklable description (what a spawned writer gets)."""
    kind = store["kind"]
    if kind == "sqlite":
        from loopforge.repository.sqlite import SQLiteRepository

        return SQLiteRepository(store["path"])
    if kind == "dynamodb":
        from loopforge.repository.dynamodb import DynamoDBRepository

        return DynamoDBRepository(store["table"], endpoint_url=store["url"])
    if kind == "branch":
        from loopforge.github.client import make_github
        from loopforge.repository.branch import BranchRepository

        return BranchRepository((make_github("load-token", store["url"], for_tests=True), store["repo"]))
    raise ValueError(f"unknown store {kind!r}")


_BARRIER: Any = None  # set in each writer process by ``_init_process``


def _process_writer(store: dict[str, Any], writer: int, calls: list[Call]) -> dict[str, Any]:
    try:
        repository = open_store(store)
        repository.head(calls[0][1] if calls else "")  # connect (a boto3 client is slow to make) before the start
    except BaseException:
        _BARRIER.abort()  # the other writers would wait for this one forever
        raise
    return write(repository, writer, calls, barrier=_BARRIER)


def _init_process(env: dict[str, str], barrier: Any) -> None:
    global _BARRIER
    _BARRIER = barrier
    os.environ.update(env)
    import importlib

    importlib.import_module("loopforge.repository.sqlite")  # warm the imports before the clock starts
    with contextlib.suppress(ImportError):  # boto3 missing: only the DynamoDB scenarios need it
        importlib.import_module("loopforge.repository.dynamodb")


def _ready(_: int) -> int:
    _BARRIER.wait(timeout=300)
    return os.getpid()


class ProcessWriters:
    """A pool of spawned writer processes, reused across scenarios (spawning 16 interpreters is slow).

    The writers of a run wait on one barrier (passed to every process when it starts), so they start together;
    a process blocked on it takes no second task, so each writer runs in its own process.
    """

    def __init__(self, writers: int, env: dict[str, str] | None = None) -> None:
        self.writers = writers
        ctx = multiprocessing.get_context("spawn")
        barrier = ctx.Barrier(writers)
        self.pool = ctx.Pool(writers, initializer=_init_process, initargs=(dict(env or {}), barrier))
        pids = set(self.pool.map(_ready, range(writers), chunksize=1))
        assert len(pids) == writers, pids

    def run(self, store: dict[str, Any], plans: list[list[Call]]) -> list[dict[str, Any]]:
        assert len(plans) == self.writers
        jobs = [self.pool.apply_async(_process_writer, (store, w, calls)) for w, calls in enumerate(plans)]
        reports = [job.get(timeout=3600) for job in jobs]
        assert len({r["pid"] for r in reports}) == self.writers, "two writers shared a process"
        return reports

    def close(self) -> None:
        self.pool.terminate()  # the writers are idle between runs: nothing to wait for
        self.pool.join()


def run_threads(factory: Callable[[], Repository], plans: list[list[Call]]) -> list[dict[str, Any]]:
    """One thread per writer, each with its own repository (and so its own GitHub client)."""
    barrier = threading.Barrier(len(plans))
    results: list[dict[str, Any] | None] = [None] * len(plans)
    failures: list[BaseException] = []

    def target(w: int) -> None:
        try:
            results[w] = write(factory(), w, plans[w], barrier=barrier)
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=target, args=(w,), name=f"writer-{w}") for w in range(len(plans))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise failures[0]
    return [r for r in results if r is not None]


# ---------------------------------------------------------------------------------------------- checking
@dataclass
class Check:
    """What the store holds, compared with what was attempted and what each call answered."""

    records: int = 0
    entries: int = 0
    recorded: int = 0  # attempted calls with exactly one entry
    gave_up: int = 0  # calls that raised (the caller was told, e.g. ConcurrencyError after the last retry), no entry
    lost: int = 0  # calls that did not raise, or whose writer vanished, with no entry
    duplicated: int = 0  # entries beyond the first for one key
    failed_but_written: int = 0  # calls that raised although their entry was stored
    misplaced: int = 0  # an entry on another record than the call named
    unexpected: int = 0  # entries whose key no call planned
    gaps: int = 0  # records whose sequences are not 1..n
    unverified: int = 0  # records whose hash chain or head failed ``verify``
    mismatched: int = 0  # a call's answer (sequence, outcome) differs from the stored entry
    outcomes: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def safe(self) -> bool:
        """Nothing lost, duplicated, misplaced or inconsistent (calls that gave up are reported, not hidden)."""
        return not (self.lost or self.duplicated or self.failed_but_written or self.misplaced or self.unexpected
                    or self.gaps or self.unverified or self.mismatched)

    @property
    def ok(self) -> bool:
        """Every attempted call is exactly one entry."""
        return self.safe and not self.gave_up


def verify(repository: Repository, rid: str, entries: list[LoopTransition]) -> VerifyReport:
    """``LoopService.verify`` on entries already read (one read of the trail instead of two)."""
    head = repository.head(rid)
    if head is None:
        raise RecordNotFound(rid)
    return verify_entries(rid, entries, last_sequence=head.last_sequence, last_hash=head.last_hash, state=head.state)


def check(repository: Repository, rids: list[str], plans: list[list[Call]],
          reports: list[dict[str, Any]]) -> Check:
    """Read every record back and compare it with the planned calls and the writers' answers."""
    planned = {key: rid for calls in plans for key, rid, _op in calls}
    failed = {key for rep in reports for key in rep["errors"]}
    seen: Counter[str] = Counter()
    stored: dict[str, tuple[int, str]] = {}
    out = Check(records=len(rids))
    outcomes: Counter[str] = Counter()
    for rid in rids:
        entries = list(repository.entries(rid))
        out.entries += len(entries)
        if [e.sequence for e in entries] != list(range(1, len(entries) + 1)):
            out.gaps += 1
            out.problems.append(f"{rid}: sequences are not contiguous")
        report = verify(repository, rid, entries)
        if not report.ok:
            out.unverified += 1
            out.problems.append(f"{rid}: {[str(p) for p in report.problems[:3]]}")
        for e in entries:
            key = e.idempotency_key or ""
            if key.startswith("setup:"):
                continue
            seen[key] += 1
            stored[key] = (e.sequence, e.outcome.value)
            outcomes[e.outcome.value] += 1
            if key not in planned:
                out.unexpected += 1
                out.problems.append(f"{rid}#{e.sequence}: unexpected key {key!r}")
            elif planned[key] != rid:
                out.misplaced += 1
                out.problems.append(f"{key} planned for {planned[key]}, stored on {rid}")
    for key in planned:
        if seen[key] == 1:
            out.recorded += 1
        if key in failed:
            if seen[key]:
                out.failed_but_written += 1
                out.problems.append(f"{key}: the call raised but its entry is stored")
            else:
                out.gave_up += 1
        elif not seen[key]:
            out.lost += 1
            out.problems.append(f"{key}: no entry")
    out.duplicated = sum(n - 1 for n in seen.values() if n > 1)
    for rep in reports:
        for key, (sequence, outcome, duplicate) in rep["answers"].items():
            if duplicate or stored.get(key) != (sequence, outcome):
                out.mismatched += 1
                out.problems.append(f"{key}: answered {sequence}/{outcome}, stored {stored.get(key)}")
    out.outcomes = dict(sorted(outcomes.items()))
    out.problems = out.problems[:20]
    return out


# ---------------------------------------------------------------------------------------------- running
@dataclass
class Row:
    store: str
    location: dict[str, Any]  # open_store's description of the store the scenario ran on
    scenario: str
    writers: int
    records: int
    calls: int  # attempted service calls (= events)
    seconds: float
    conflicts: int  # conflict retries: sum of service.conflicts
    rebases: int  # branch store only: commits rebuilt because another writer moved the branch
    errors: list[str]  # what the calls that gave up raised (a sample)
    check: Check

    @property
    def per_second(self) -> float:
        return self.check.recorded / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["events_per_second"] = round(self.per_second, 1)
        out["check"].update(ok=self.check.ok, safe=self.check.safe)
        return out


def _row(store: dict[str, Any], scenario: str, rids: list[str], plans: list[list[Call]],
         reports: list[dict[str, Any]], repository: Repository) -> Row:
    errors = [f"{key}: {message}" for r in reports for key, message in r["errors"].items()]
    for e in errors[:5]:
        print(f"{store['kind']}/{scenario}: {e}", file=sys.stderr)
    return Row(store=store["kind"], location=dict(store), scenario=scenario, writers=len(plans), records=len(rids),
               calls=sum(len(p) for p in plans),
               seconds=max(r["end"] for r in reports) - min(r["start"] for r in reports),
               conflicts=sum(r["conflicts"] for r in reports), rebases=sum(r["rebases"] for r in reports),
               errors=errors[:20], check=check(repository, rids, plans, reports))


def run(store: dict[str, Any], scenario: str, calls: int, *, pool: ProcessWriters | None = None, writers: int = 16,
        seed: int = 0, records: int = SPREAD) -> Row:
    """One scenario on an empty store (``open_store``'s description): create the records, run the writers (the
    processes of ``pool``, else ``writers`` threads, each with its own repository), then check everything."""
    repository = open_store(store)
    rids = record_ids(scenario, records)
    setup_records(repository, rids)
    plans = plan(pool.writers if pool is not None else writers, calls, rids, seed)
    reports = pool.run(store, plans) if pool is not None else run_threads(lambda: open_store(store), plans)
    row = _row(store, scenario, rids, plans, reports, repository)
    close = getattr(repository, "close", None)
    if close is not None:
        close()
    return row


def sqlite_store(directory: Path) -> dict[str, Any]:
    return {"kind": "sqlite", "path": str(directory / f"load-{uuid.uuid4().hex[:8]}.db")}


def dynamodb_store(url: str) -> dict[str, Any]:
    """A new, empty table on the server at ``url``."""
    from loopforge.repository.dynamodb import create_table

    store = {"kind": "dynamodb", "url": url, "table": f"load-{uuid.uuid4().hex[:10]}"}
    create_table(store["table"], endpoint_url=url)
    return store


def drop_dynamodb_table(store: dict[str, Any]) -> None:
    from loopforge.repository.dynamodb import make_client

    make_client(endpoint_url=store["url"]).delete_table(TableName=store["table"])


@contextlib.contextmanager
def fake_github() -> Iterator[tuple[Any, str, str]]:
    """(fake, url, "owner/repo") of a fresh fake GitHub served on 127.0.0.1."""
    from tests.fakegithub import FakeGitHub

    fake = FakeGitHub(owner=FAKE_OWNER, repo=FAKE_REPO)
    with fake.serve() as url:
        yield fake, url, fake.full_name
    problems = fake.violations + fake.errors
    if problems:
        raise RuntimeError("the fake GitHub saw problems:\n" + "\n".join(problems[:10]))


# ---------------------------------------------------------------------------------------------- the emulator
def _touched_items_rollback() -> None:
    """Make moto's ``TransactWriteItems`` back up only the items it touches, not whole tables.

    moto deep-copies the table once per item of every transaction (to restore it if a condition fails), so an
    append costs time in proportion to the TABLE: 0.2 s at 500 items, and a load run of thousands of appends
    (failed ones pay too) would measure that copy. In a server that handles one request at a time (this one),
    restoring the few items a transaction touched is the same rollback: nothing else changed meanwhile. moto's own
    condition checks and writes are unchanged.
    """
    import copy

    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    original = DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        backup = []
        for item in transact_items[:100]:
            op_type, op = next(iter(item.items()))
            table = self.tables.get(op.get("TableName")) if isinstance(op, dict) else None
            key = op.get("Item" if op_type == "Put" else "Key") if table is not None else None
            if not isinstance(key, dict) or table.hash_key_attr not in key:
                continue
            h = DynamoType(key[table.hash_key_attr])
            r = DynamoType(key[table.range_key_attr]) if table.range_key_attr in key else None
            if table.has_range_key and r is None:
                continue
            backup.append((table, h, r, copy.deepcopy(table.get_item(h, r))))
        Table.__deepcopy__ = lambda t, memo: t  # moto's whole-table backup becomes the table itself
        try:
            original(self, transact_items)
        except BaseException:
            for table, h, r, old in reversed(backup):
                if r is None:
                    table.items.pop(h, None) if old is None else table.items.__setitem__(h, old)
                else:
                    table.items[h].pop(r, None) if old is None else table.items[h].__setitem__(r, old)
            raise
        finally:
            del Table.__deepcopy__

    DynamoDBBackend.transact_write_items = transact_write_items


@contextlib.contextmanager
def dynamodb_server(url: str | None = None) -> Iterator[str]:
    """``url`` if given; else moto's server as tests/dynamo_server.py runs it (one request at a time), with
    ``_touched_items_rollback``, in a subprocess on a free port."""
    if url:
        yield url.rstrip("/")
        return
    import subprocess

    from tests.dynamo_server import answers, free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--serve-dynamodb", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not answers(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the DynamoDB emulator did not start (exit code {proc.poll()}); "
                                   f"is moto[server] installed?")
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover
            proc.kill()
            proc.wait()


def serve_dynamodb(port: int) -> None:
    from tests.dynamo_server import serve

    _touched_items_rollback()
    serve("127.0.0.1", port)


def aws_env() -> dict[str, str]:
    from tests.dynamo_server import DUMMY_AWS_ENV

    return dict(DUMMY_AWS_ENV)


# ---------------------------------------------------------------------------------------------- report
def table(rows: list[Row]) -> str:
    lines = ["| store | scenario | writers | records | events | seconds | events/s | conflict retries "
             "| branch rebases | gave up | lost | duplicated | checks |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        c = r.check
        if c.safe:
            verdict = "ok"
        else:
            verdict = (f"FAILED: {c.gaps} gaps, {c.unverified} unverified, {c.mismatched} mismatched, "
                       f"{c.misplaced} misplaced, {c.unexpected} unexpected, {c.failed_but_written} failed+written")
        lines.append(f"| {r.store} | {r.scenario} | {r.writers} | {r.records} | {r.calls:,} | {r.seconds:.1f} "
                     f"| {r.per_second:,.0f} | {r.conflicts:,} | {r.rebases if r.store == 'branch' else '-'} "
                     f"| {c.gave_up} | {c.lost} | {c.duplicated} | {verdict} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small run: 16 x 5 calls, branch 4 x 3")
    parser.add_argument("--stores", default=",".join(STORES), help="comma-separated: sqlite, dynamodb, branch")
    parser.add_argument("--writers", type=int, default=16, help="concurrent writers (default 16)")
    parser.add_argument("--calls", type=int, help="calls per writer for SQLite (default 125)")
    parser.add_argument("--dynamodb-calls", type=int, help="calls per writer for DynamoDB (default 63)")
    parser.add_argument("--branch-writers", type=int, help="writer threads for the branch store (default --writers)")
    parser.add_argument("--branch-calls", type=int, help="calls per writer for the branch store (default 25)")
    parser.add_argument("--dynamodb-url", help="a running DynamoDB-compatible server (default: start moto's here)")
    parser.add_argument("--moto-full-copy", action="store_true",
                        help="start tests/dynamo_server.py unchanged (moto copies the table for every transaction "
                             "item: much slower)")
    parser.add_argument("--serve-dynamodb", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    if args.serve_dynamodb:
        serve_dynamodb(args.serve_dynamodb)
        return 0

    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    unknown = set(stores) - set(STORES)
    if unknown:
        parser.error(f"unknown store(s): {', '.join(sorted(unknown))}")
    calls = args.calls or (5 if args.quick else 125)
    dynamodb_calls = args.dynamodb_calls or (5 if args.quick else 63)
    branch_writers = args.branch_writers or (4 if args.quick else args.writers)
    branch_calls = args.branch_calls or (3 if args.quick else 25)

    rows: list[Row] = []
    env = aws_env() if "dynamodb" in stores else {}
    os.environ.update(env)

    began = time.monotonic()

    def done(row: Row) -> None:
        rows.append(row)
        print(f"[{time.monotonic() - began:.0f}s]", end=" ", file=sys.stderr)
        c = row.check
        print(f"{row.store} / {row.scenario}: {row.calls} calls in {row.seconds:.1f}s, {row.conflicts} conflict "
              f"retries, gave up {c.gave_up}, lost {c.lost}, duplicated {c.duplicated}, outcomes {c.outcomes}"
              + ("" if c.ok else f" PROBLEMS: {c.problems[:5]}"), file=sys.stderr)

    if "sqlite" in stores or "dynamodb" in stores:
        pool = ProcessWriters(args.writers, env)
        try:
            if "sqlite" in stores:
                with tempfile.TemporaryDirectory(prefix="loopforge-load-") as tmp:
                    for scenario in SCENARIOS:
                        done(run(sqlite_store(Path(tmp)), scenario, calls, pool=pool, seed=args.seed))
            if "dynamodb" in stores:
                from tests.dynamo_server import local_server

                server = local_server() if args.moto_full_copy and not args.dynamodb_url else \
                    dynamodb_server(args.dynamodb_url)
                with server as url:
                    for scenario in SCENARIOS:
                        store = dynamodb_store(url)
                        done(run(store, scenario, dynamodb_calls, pool=pool, seed=args.seed))
                        drop_dynamodb_table(store)
        finally:
            pool.close()
    if "branch" in stores:
        for scenario in SCENARIOS:
            with fake_github() as (_fake, url, full_name):
                store = {"kind": "branch", "url": url, "repo": full_name}
                done(run(store, scenario, branch_calls, writers=branch_writers, seed=args.seed))

    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps({
            "python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
            "calls_per_writer": {"sqlite": calls, "dynamodb": dynamodb_calls, "branch": branch_calls},
            "branch_writers": branch_writers, "seed": args.seed,
            "rows": [r.as_dict() for r in rows]}, indent=2) + "\n")
    return 0 if all(r.check.ok for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
