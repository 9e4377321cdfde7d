"""The full fault sweep: every request position of the fixture lifecycle × every fault kind, then exactly-once.

For each fault kind and each request position N of the 8-event lifecycle (counted over all its requests), a
fresh fake GitHub on 127.0.0.1 answers request N with the fault, the Action runs the 8 workflow runs in-process,
a failed run is re-run (same run id, next attempt), and the store is checked: each of the 8 transitions once,
hash chain intact, one check run on the PR head with each step's state, one ``::error`` and no traceback per
failed run (``tests/faults.py``). Then the same with ``store: dynamodb`` (the local DynamoDB server behind a
fault-injecting proxy; every DynamoDB request position × every DynamoDB fault kind).

Prints a markdown table per store: kind, faults injected, faulty answers, runs (re-runs included), completed
after retries, failed with one ::error then repaired by the re-run, lost, duplicated. ``--json FILE`` writes
the figures and every scenario.

    python3 benchmarks/faults.py [--workers 2] [--kinds 502,reset] [--every 1] [--no-dynamodb] [--json out.json]

Every scenario runs the whole lifecycle from step 0 unless ``--resume`` (start at the step holding the fault,
on a snapshot of the fault-free run; about twice as fast, same checks).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.faults import DYNAMO_KINDS, GITHUB_KINDS, LifecycleDriver, Scenario, Tally, plan, sweep, tally  # noqa: E402

COLUMNS = ["kind", "faults injected", "faulty answers", "runs (incl. re-runs)", "completed after retries",
           "failed with one ::error, repaired by re-run", "lost", "duplicated", "broken"]


def table(title: str, tallies: dict[str, Tally]) -> str:
    lines = [f"### {title}", "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    total = Tally("**total**")
    for t in tallies.values():
        lines.append(_row(t))
        for name in ("faults", "answers", "runs", "completed", "repaired", "lost", "duplicated"):
            setattr(total, name, getattr(total, name) + getattr(t, name))
        total.broken += t.broken
    lines.append(_row(total))
    return "\n".join(lines)


def _row(t: Tally) -> str:
    cells = [t.kind, t.faults, t.answers, t.runs, t.completed, t.repaired, t.lost, t.duplicated, len(t.broken)]
    return "| " + " | ".join(f"{c:,}" if isinstance(c, int) else str(c) for c in cells) + " |"


def run_store(name: str, config: dict[str, Any], kinds: list[str], every: int, workers: int,
              verbose: bool) -> tuple[dict[str, Tally], list[Scenario], float]:
    with LifecycleDriver(**config) as driver:
        items = plan(driver, kinds, {k: every for k in kinds})
        print(f"{name}: {len(driver.baseline_calls)} requests in the fault-free lifecycle; {len(items)} scenarios "
              f"({', '.join(kinds)})", file=sys.stderr, flush=True)
    started = time.monotonic()
    done = [0]

    def progress(s: Scenario) -> None:
        done[0] += 1
        if verbose or s.verdict not in ("completed", "repaired"):
            print(f"  [{done[0]}/{len(items)}] {s.kind}@{s.position} {s.target}: {s.verdict} ({s.runs} runs, "
                  f"{s.seconds:.1f} s) {'; '.join(s.problems)[:500]}", file=sys.stderr, flush=True)
        elif done[0] % 100 == 0:
            print(f"  {done[0]}/{len(items)} ({time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True)

    scenarios = sweep(config, items, workers=workers, progress=progress)
    return tally(scenarios), scenarios, time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    parser.add_argument("--kinds", help="comma-separated fault kinds (default: all)")
    parser.add_argument("--every", type=int, default=1, help="every n-th position only (default: every position)")
    parser.add_argument("--resume", action="store_true", help="start each scenario at the step holding the fault")
    parser.add_argument("--no-branch", action="store_true", help="skip the branch store sweep")
    parser.add_argument("--no-dynamodb", action="store_true", help="skip the DynamoDB sweep")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--json", help="write figures and scenarios here")
    args = parser.parse_args(argv)
    wanted = set(args.kinds.split(",")) if args.kinds else None
    report: dict[str, Any] = {"every": args.every, "resume": args.resume, "stores": {}}
    broken = 0
    with tempfile.TemporaryDirectory(prefix="loopforge-faults-") as tmp:
        stores: list[tuple[str, dict[str, Any], list[str]]] = []
        if not args.no_branch:
            stores.append(("branch", {"workdir": Path(tmp) / "branch", "resume": args.resume},
                           [k for k in GITHUB_KINDS if wanted is None or k in wanted]))
        dynamo_ctx = None
        if not args.no_dynamodb:
            from tests.dynamo_server import local_server

            dynamo_ctx = local_server()
            url = dynamo_ctx.__enter__()
            stores.append(("dynamodb", {"workdir": Path(tmp) / "dynamodb", "store": "dynamodb", "dynamo_url": url},
                           [k for k in DYNAMO_KINDS if wanted is None or k in wanted]))
        try:
            for name, config, kinds in stores:
                if not kinds:
                    continue
                tallies, scenarios, seconds = run_store(name, config, kinds, args.every, args.workers, args.verbose)
                title = ("branch store (fake GitHub on 127.0.0.1)" if name == "branch" else
                         "DynamoDB store (moto server behind a fault proxy; check runs on the fake GitHub)")
                print(table(f"{title} — {len(scenarios):,} scenarios in {seconds:.0f} s", tallies) + "\n",
                      flush=True)
                broken += sum(len(t.broken) + t.lost + t.duplicated for t in tallies.values())
                report["stores"][name] = {
                    "seconds": round(seconds, 1),
                    "kinds": {k: {key: value for key, value in vars(t).items()} for k, t in tallies.items()},
                    "scenarios": [s.summary() for s in scenarios]}
        finally:
            if dynamo_ctx is not None:
                dynamo_ctx.__exit__(None, None, None)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    return 1 if broken else 0


if __name__ == "__main__":
    raise SystemExit(main())
