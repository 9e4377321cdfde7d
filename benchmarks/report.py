"""Time ``loopforge report`` on SQLite stores of 100, 1,000 and 10,000 records: it must grow linearly (or better).

Each record is one realistic trail of 9 to 14 entries (issue → PR → CI, one in three failing once and retried,
review, merge, close; every 25th merged as a violation), spread over 26 weeks and three repositories, written as
prebuilt hash-chained entries through ``Repository.append``. The script then times ``build_report`` (reading
every record through the store protocol, folding the trails, drawing the seven charts, writing the HTML) and
prints a markdown table with the time per record and the ratio to the smallest size::

    python benchmarks/report.py                    # 100, 1,000, 10,000 records; best of 3 runs each
    python benchmarks/report.py --sizes 100,1000 --runs 1 --json out.json

Linear means the time per record stays flat; the ratio column divides each size's time per record by the
smallest size's (1.0 or less is linear or better).
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout this script belongs to

from loopforge.records import RecordHead, apply_entry, creation_entry
from loopforge.report.build import build_report
from loopforge.repository import SQLiteRepository
from loopforge.states import LoopState
from loopforge.trail import LoopTransition, Outcome

S = LoopState
SIZES = (100, 1_000, 10_000)
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
REPOS = ("acme/widgets", "acme/api", "acme/web")


def trail(n: int, rng: random.Random) -> tuple[RecordHead, list[LoopTransition]]:
    """One record's entries (sealed and chained) and its head."""
    repo = REPOS[n % len(REPOS)]
    rid = f"{repo}#{n}"
    at = START + timedelta(hours=rng.uniform(0, 26 * 7 * 24))
    entries = [creation_entry(rid, f"https://github.com/{repo}/issues/{n}", repo=repo, trigger="issues.opened",
                              actor="carol", occurred_at=at)]
    steps = [S.TASK_QUEUED, S.PR_CREATED, S.CI_PENDING]
    steps += [S.CI_FAILED, S.CI_PENDING] if n % 3 == 0 else []
    steps += [S.CI_PASSED, S.AWAITING_REVIEW]
    steps += [S.CHANGES_REQUESTED, S.CI_PENDING, S.CI_PASSED] if n % 4 == 0 else []
    steps += [S.APPROVED, S.MERGED, S.CLOSED]
    state = S.ISSUE_CREATED
    for target in steps:
        at += timedelta(hours=rng.uniform(0.1, 30))
        violation = target is S.MERGED and n % 25 == 0
        entry = LoopTransition(
            record_id=rid, sequence=len(entries) + 1, from_state=state, to_state=target, trigger=f"bench.{target}",
            outcome=Outcome.VIOLATION if violation else Outcome.APPLIED, rule="policy:needs-review" if violation
            else None, reason="merged while blocked" if violation else None, actor="dave", occurred_at=at,
            recorded_at=at, evidence={"run_url": f"https://github.com/{repo}/actions/runs/{n * 100 + len(entries)}"},
            prev_hash=entries[-1].hash).sealed()
        entries.append(entry)
        state = target
    head: RecordHead | None = None
    for entry in entries:
        head = apply_entry(head, entry)
    assert head is not None
    return head, entries


def seed(path: Path, count: int) -> int:
    repository = SQLiteRepository(str(path))
    rng = random.Random(count)
    total = 0
    for n in range(1, count + 1):
        head, entries = trail(n, rng)
        repository.append(head, entries)
        total += len(entries)
    return total


def measure(sizes: list[int], runs: int, folder: Path) -> list[dict[str, Any]]:
    results = []
    for size in sizes:
        db = folder / f"report-{size}.db"
        entries = seed(db, size)
        times = []
        for _ in range(runs):
            out = folder / f"report-{size}.html"
            start = time.perf_counter()
            data = build_report(SQLiteRepository(str(db)), out)
            times.append(time.perf_counter() - start)
            assert len(data.records) == size, (len(data.records), size)
        results.append({"records": size, "entries": entries, "seconds": min(times), "runs": runs,
                        "html_bytes": (folder / f"report-{size}.html").stat().st_size})
        print(f"{size:,} records: {min(times):.2f} s", file=sys.stderr)
    return results


def table(results: list[dict[str, Any]]) -> str:
    base = results[0]["seconds"] / results[0]["records"]
    lines = ["| records | entries | report (s) | ms per record | ratio to the smallest | HTML (MB) |",
             "|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        per = r["seconds"] / r["records"]
        lines.append(f"| {r['records']:,} | {r['entries']:,} | {r['seconds']:.2f} | {per * 1000:.2f} | "
                     f"{per / base:.2f} | {r['html_bytes'] / 1e6:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="record counts, comma-separated")
    parser.add_argument("--runs", type=int, default=3, help="runs per size (the best is reported)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    with tempfile.TemporaryDirectory(prefix="loopforge-report-bench-") as tmp:
        results = measure(sizes, args.runs, Path(tmp))
    print(f"`loopforge report` on SQLite (Python {platform.python_version()}, {platform.machine()}; best of "
          f"{args.runs}; the newest 200 records in full, every record in the table and the charts):\n")
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps({"sizes": sizes, "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
