"""Time one append (a ``LoopService`` transition or note) at history lengths 10, 1,000 and 100,000.

Appending must cost the same whatever the length of the record's history: the service reads the record's head,
never its trail, and each store appends by key. For every store this script builds records whose trails already
hold N entries (prebuilt, hash-chained entries written in batches through ``Repository.append``), then times
service calls on them and prints a markdown table::

    python benchmarks/append.py                 # lengths 10, 1,000, 100,000; 200 calls each
    python benchmarks/append.py --quick         # a smaller run (lengths 10, 1,000, 10,000; 50 calls)
    python benchmarks/append.py --json out.json --lengths 10,100000 --ops 500 --verify

Each timed transition moves the record between ``ci_pending`` and ``ci_failed`` (an allowed cycle) with a fresh
idempotency key, as a webhook delivery would; each timed note records evidence without a state change. The
DynamoDB store is benchmarked by its own helper; ``--dynamodb URL`` is accepted and skipped here.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

try:
    import loopforge
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import loopforge

from loopforge import LoopService, LoopState, Repository
from loopforge.records import RecordHead, apply_entry, creation_entry
from loopforge.repository import MemoryRepository, SQLiteRepository
from loopforge.trail import LoopTransition, Outcome, utcnow

S = LoopState
FULL_LENGTHS = (10, 1_000, 100_000)
QUICK_LENGTHS = (10, 1_000, 10_000)
BATCH = 5_000


def history(record_id: str, length: int) -> Iterator[list[LoopTransition]]:
    """Batches of a valid, hash-chained trail of ``length`` entries ending in ``ci_pending``.

    Entry 1 creates the record in ``pr_created``, entry 2 moves it to ``ci_pending``, the rest are notes (each
    with a little evidence, like a policy evaluation would leave).
    """
    now = utcnow()
    first = creation_entry(record_id, record_id, repo=record_id.split("#")[0], state=S.PR_CREATED)
    batch = [first]
    prev = first
    for seq in range(2, length + 1):
        to = S.CI_PENDING
        from_state = S.PR_CREATED if seq == 2 else S.CI_PENDING
        outcome = Outcome.APPLIED if seq == 2 else Outcome.NOTED
        prev = LoopTransition(
            record_id=record_id, sequence=seq, from_state=from_state, to_state=to,
            trigger="ci.started" if seq == 2 else "bench.prebuilt", outcome=outcome,
            occurred_at=now, recorded_at=now, evidence={"i": seq, "check": "lint", "ok": True},
            prev_hash=prev.hash,
        ).sealed()
        batch.append(prev)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def build(repositories: list[Repository], record_id: str, length: int) -> None:
    """Write the same prebuilt trail of ``length`` entries to every repository, one batch per ``append``."""
    head: RecordHead | None = None
    for batch in history(record_id, length):
        for entry in batch:
            # Past the first two entries, a prebuilt note changes only the head's sequence, hash and time, which
            # the batch's last entry sets again: skipping the others gives the same head, much faster.
            if entry.sequence <= 2 or entry is batch[-1]:
                head = apply_entry(head, entry)
        assert head is not None
        for repository in repositories:
            repository.append(head, batch)


def time_calls(n: int, call: Callable[[int], Any]) -> list[float]:
    gc.collect()
    samples = []
    for i in range(n):
        start = time.perf_counter()
        result = call(i)
        samples.append(time.perf_counter() - start)
        if not result.success:
            raise RuntimeError(f"benchmark call {i} failed: {result.error}")
    return samples


def measure(repository: Repository, record_id: str, ops: int) -> dict[str, list[float]]:
    service = LoopService(repository=repository)
    targets = (S.CI_FAILED, S.CI_PENDING)
    transitions = time_calls(ops, lambda i: service.transition(
        record_id, targets[i % 2], "check_run.completed", idempotency_key=f"bench-t-{i}"))
    if ops % 2:  # leave the record in ci_pending
        service.transition(record_id, S.CI_PENDING, "check_run.rerequested")
    notes = time_calls(ops, lambda i: service.note(
        record_id, "policy.evaluated", evidence={"i": i}, idempotency_key=f"bench-n-{i}"))
    return {"transition": transitions, "note": notes}


def summarise(samples: list[float]) -> dict[str, float]:
    us = sorted(s * 1e6 for s in samples)
    return {"median_us": statistics.median(us), "mean_us": statistics.fmean(us),
            "p95_us": us[min(len(us) - 1, int(len(us) * 0.95))]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="lengths 10, 1,000, 10,000 and 50 calls each")
    parser.add_argument("--lengths", help="comma-separated history lengths (default 10,1000,100000)")
    parser.add_argument("--ops", type=int, help="timed calls of each kind per length (default 200; 50 with --quick)")
    parser.add_argument("--stores", default="memory,sqlite", help="comma-separated: memory, sqlite")
    parser.add_argument("--sqlite-path", help="SQLite file to use (default: a temporary file, deleted afterwards)")
    parser.add_argument("--dynamodb", metavar="URL", help="accepted and skipped: the DynamoDB helper benchmarks it")
    parser.add_argument("--verify", action="store_true", help="verify every benchmarked trail afterwards")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)

    lengths = (tuple(int(x) for x in args.lengths.split(",")) if args.lengths
               else QUICK_LENGTHS if args.quick else FULL_LENGTHS)
    ops = args.ops or (50 if args.quick else 200)
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    unknown = set(stores) - {"memory", "sqlite"}
    if unknown:
        parser.error(f"unknown store(s): {', '.join(sorted(unknown))}")
    if args.dynamodb:
        print(f"DynamoDB ({args.dynamodb}): skipped here; the DynamoDB helper runs its own benchmark.\n")

    with tempfile.TemporaryDirectory(prefix="loopforge-bench-") as tmp:
        repositories: dict[str, Repository] = {}
        for name in stores:
            if name == "memory":
                repositories[name] = MemoryRepository()
            else:
                repositories[name] = SQLiteRepository(args.sqlite_path or Path(tmp) / "bench.db")

        # warm up (imports, caches, the SQLite page cache) so the first measured length is not penalised
        build(list(repositories.values()), "bench/warmup#0", 10)
        for repository in repositories.values():
            measure(repository, "bench/warmup#0", max(ops // 2, 10))

        results: list[dict[str, Any]] = []
        for length in lengths:
            record_id = f"bench/repo#{length}"
            started = time.perf_counter()
            build(list(repositories.values()), record_id, length)
            built = time.perf_counter() - started
            print(f"built {length:,} entries in {built:.1f}s ({', '.join(repositories)})", file=sys.stderr)
            for name, repository in repositories.items():
                samples = measure(repository, record_id, ops)
                for op, values in samples.items():
                    results.append({"store": name, "history": length, "op": op, "calls": len(values),
                                    **summarise(values)})
                if args.verify:
                    report = LoopService(repository=repository).verify(record_id)
                    if not report.ok:
                        print(f"VERIFY FAILED {name} {record_id}: {report.problems[:3]}", file=sys.stderr)
                        return 1
                    print(f"verified {name} {record_id}: {report.entries:,} entries", file=sys.stderr)
        for repository in repositories.values():
            close = getattr(repository, "close", None)
            if close:
                close()

    print(table(results, lengths))
    if args.json:
        Path(args.json).write_text(json.dumps({
            "loopforge": loopforge.__version__, "python": platform.python_version(),
            "platform": platform.platform(), "ops": ops, "lengths": list(lengths), "results": results,
        }, indent=2) + "\n")
    return 0


def table(results: list[dict[str, Any]], lengths: tuple[int, ...]) -> str:
    """Markdown: one row per store and length; the ratio compares each median with the shortest history's."""
    base = {(r["store"], r["op"]): r["median_us"] for r in results if r["history"] == lengths[0]}
    rows = ["| store | history | transition median µs | transition p95 µs | note median µs | note p95 µs "
            "| transition ratio vs shortest |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    by_key = {(r["store"], r["history"], r["op"]): r for r in results}
    for store in dict.fromkeys(r["store"] for r in results):
        for length in lengths:
            t, n = by_key[(store, length, "transition")], by_key[(store, length, "note")]
            ratio = t["median_us"] / base[(store, "transition")]
            rows.append(f"| {store} | {length:,} | {t['median_us']:.0f} | {t['p95_us']:.0f} | {n['median_us']:.0f} "
                        f"| {n['p95_us']:.0f} | {ratio:.2f} |")
    return "\n".join(rows)


if __name__ == "__main__":
    sys.exit(main())
