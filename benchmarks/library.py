"""``LoopService.transition`` on the in-memory store: this tree beside the seed package ``loopforge==0.1.0``.

Both run in one invocation, each in its own interpreter (they share the package name ``loopforge``), taking turns
length by length, and the script prints one markdown table::

    pip install --no-deps --target /tmp/seed loopforge==0.1.0     # once: the seed, outside site-packages
    python benchmarks/library.py                                  # lengths 10, 1,000, 5,000
    python benchmarks/library.py --seed /tmp/seed --ops 300 --rounds 5 --json out.json

For each history length N, a record is given N entries (0.1.0: a ``LoopRecord`` whose ``transitions`` list holds
N entries, saved once; this tree: a hash-chained trail of N entries appended through ``Repository.append``), then
the same call is timed ``--ops`` times: ``service.transition(record_id, state, "ci.completed", {"run": i})``
moving the record between ``ci_pending`` and ``ci_failed``, an allowed cycle in both. Each call is timed in CPU
time of the process (``time.process_time_ns``: both packages only compute in memory, and CPU time does not count
the time other processes of a shared machine take). The figure is the median over ``--rounds`` rounds of the
median µs per call. ``ratio`` is 0.1.0's time over this tree's (above 1: this tree is faster), taken within each
round (the two ran one after the other) and the median over rounds, so a busy moment of the machine cancels out.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LENGTHS = (10, 1_000, 5_000)


# ------------------------------------------------------------------------------------------------ workers
def _seed_service(length: int) -> tuple[Any, str, Any]:
    # run with the seed (0.1.0) first on the path: its API, not this tree's (hence Any and the ignores)
    from loopforge import LoopService, LoopState
    from loopforge.repository import MemoryRepository
    from loopforge.states import LoopTransition, create_record  # type: ignore[attr-defined]

    repository: Any = MemoryRepository()
    record = create_record(ref="https://github.com/org/repo/issues/1", ref_number=1, repo="org/repo")
    record.state = LoopState.CI_PENDING
    for i in range(length - len(record.transitions)):
        record.transitions.append(LoopTransition(from_state="ci_pending", to_state="ci_pending",
                                                 trigger="bench.prebuilt", metadata={"i": i}))
    repository.save(record)
    return LoopService(repository=repository), record.record_id, LoopState


def _tree_service(length: int) -> tuple[Any, str, Any]:
    from loopforge import LoopService, LoopState
    from loopforge.records import RecordHead, apply_entry, creation_entry
    from loopforge.repository import MemoryRepository
    from loopforge.trail import LoopTransition, Outcome, utcnow

    repository = MemoryRepository()
    record_id = "org/repo#1"
    now = utcnow()
    prev = creation_entry(record_id, "https://github.com/org/repo/issues/1", repo="org/repo",
                          state=LoopState.PR_CREATED)
    head: RecordHead = apply_entry(None, prev)
    batch = [prev]
    for seq in range(2, length + 1):
        prev = LoopTransition(
            record_id=record_id, sequence=seq, from_state=LoopState.PR_CREATED if seq == 2 else LoopState.CI_PENDING,
            to_state=LoopState.CI_PENDING, trigger="ci.started" if seq == 2 else "bench.prebuilt",
            outcome=Outcome.APPLIED if seq == 2 else Outcome.NOTED, occurred_at=now, recorded_at=now,
            metadata={"i": seq}, prev_hash=prev.hash).sealed()
        head = apply_entry(head, prev)
        batch.append(prev)
    repository.append(head, batch)
    return LoopService(repository), record_id, LoopState


def worker(kind: str, lengths: list[int], ops: int) -> dict[str, float]:
    """Median µs per ``transition`` at each length, for ``kind`` (``seed`` or ``tree``) as imported."""
    import logging

    logging.getLogger("loopforge").setLevel(logging.WARNING)
    out: dict[str, float] = {}
    for length in lengths:
        service, record_id, state = (_seed_service if kind == "seed" else _tree_service)(length)
        cycle = (state.CI_FAILED, state.CI_PENDING)
        for i in range(20):  # warm up
            assert service.transition(record_id, cycle[i % 2], "ci.completed", {"run": i}).success
        times: list[int] = []
        gc.collect()
        for i in range(ops):
            target = cycle[i % 2]
            t0 = time.process_time_ns()
            result = service.transition(record_id, target, "ci.completed", {"run": i})
            times.append(time.process_time_ns() - t0)
            assert result.success, result.error
        out[str(length)] = statistics.median(times) / 1000
    return out


# ------------------------------------------------------------------------------------------------ driver
def _run_worker(kind: str, seed: Path, lengths: list[int], ops: int) -> dict[str, float]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(seed if kind == "seed" else ROOT)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", kind, "--ops", str(ops),
           "--lengths", ",".join(map(str, lengths))]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False, cwd="/")
    if done.returncode != 0:
        raise SystemExit(f"the {kind} worker failed: {done.stderr.strip().splitlines()[-1:]}")
    data: dict[str, float] = json.loads(done.stdout)
    return data


def _version(kind: str, seed: Path) -> str:
    env = dict(os.environ, PYTHONPATH=str(seed if kind == "seed" else ROOT))
    done = subprocess.run([sys.executable, "-c", "import loopforge; print(loopforge.__version__, loopforge.__file__)"],
                          env=env, capture_output=True, text=True, check=True, cwd="/")
    return done.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=Path, default=Path("/tmp/seed"),
                        help="where loopforge==0.1.0 is installed (pip install --no-deps --target DIR ...)")
    parser.add_argument("--lengths", default=",".join(map(str, LENGTHS)))
    parser.add_argument("--ops", type=int, default=200, help="timed calls per length and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (each runs both packages at every length)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--worker", choices=["seed", "tree"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    lengths = [int(x) for x in args.lengths.split(",")]
    if args.worker:
        print(json.dumps(worker(args.worker, lengths, args.ops)))
        return 0
    if not (args.seed / "loopforge" / "__init__.py").is_file():
        print(f"no loopforge==0.1.0 in {args.seed}: pip install --no-deps --target {args.seed} loopforge==0.1.0",
              file=sys.stderr)
        return 2
    seed_version = _version("seed", args.seed)
    if not seed_version.startswith("0.1.0 "):
        print(f"{args.seed} holds loopforge {seed_version.split()[0]}, not 0.1.0", file=sys.stderr)
        return 2
    runs: dict[str, dict[str, list[float]]] = {"seed": {}, "tree": {}}
    for _ in range(args.rounds):
        for length in lengths:
            for kind in ("seed", "tree"):
                got = _run_worker(kind, args.seed, [length], args.ops)
                runs[kind].setdefault(str(length), []).append(got[str(length)])
    table = {kind: {n: statistics.median(v) for n, v in per.items()} for kind, per in runs.items()}
    ratios = {n: statistics.median(s / t for s, t in zip(runs["seed"][n], runs["tree"][n], strict=True))
              for n in runs["seed"]}
    print(f"LoopService.transition on MemoryRepository, median µs of CPU time per call ({args.rounds} rounds x "
          f"{args.ops} calls; Python {platform.python_version()}, {os.cpu_count()} CPUs)\n")
    print("| entries | loopforge 0.1.0 | this tree | ratio (0.1.0 / this tree) |")
    print("|---:|---:|---:|---:|")
    for length in lengths:
        seed_us, tree_us = table["seed"][str(length)], table["tree"][str(length)]
        print(f"| {length:,} | {seed_us:,.0f} | {tree_us:,.0f} | {ratios[str(length)]:,.1f}x |")
    if args.json:
        args.json.write_text(json.dumps({"median_us": table, "ratio": ratios, "rounds": runs, "ops": args.ops},
                                        indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
