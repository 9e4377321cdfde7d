"""GitHub requests and wall time per event kind at history 10, 100 and 1,000, beside the ignored-event floor.

Each event runs ``entrypoint.py`` as the Actions runner starts it (a new Python process, the runner's
environment) against the fake GitHub served on 127.0.0.1, over the fixture lifecycle with a CI failure / push /
CI pass detour (``tests/floor.py``); the record is padded to the history length after ``issues.opened`` (written
as LoopForge writes it). ``--governed`` adds a policy on the base branch (CI, one approval, a label only a
maintainer may add), so PR events also evaluate the policy. The **ignored-event floor** is the same process
answering an event it ignores (``watch``: interpreter start, imports, reading the payload; no request), measured
in the same run. Prints a markdown table (medians over ``--rounds``; "× ignored": the median over the history
lengths divided by the floor); ``--json FILE`` writes the figures. Times are only comparable within one run (the
machine is shared): read them as ratios to the floor.

    python3 benchmarks/action.py [--rounds 3] [--histories 10,100,1000] [--governed] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.action_harness import run_step  # noqa: E402
from tests.floor import REPO, Floor, Measured  # noqa: E402


def ignored_floor(tmp: Path, url: str, n: int) -> float:
    times = []
    for i in range(n):
        start = time.perf_counter()
        result = run_step(tmp / f"ignored{i}", "watch", {"action": "started", "repository": {"full_name": REPO}},
                          api_url=url, repo=REPO, run_id=9000 + i)
        times.append(time.perf_counter() - start)
        if result.code != 0:
            raise SystemExit(f"the ignored event exited {result.code}: {result.stdout}")
    return statistics.median(times)


def measure(history: int, governed: bool, tmp: Path) -> tuple[list[Measured], float]:
    floor = Floor(tmp, history=history, governed=governed, subprocess=True)
    measured = floor.lifecycle()
    for m in measured:
        if m.code not in (0, 1) or ("::error" in m.stdout and m.label != "pull_request.synchronize"):
            raise SystemExit(f"{m.label} at {history}: exit {m.code}\n{m.stdout}")
    if floor.fake.violations or floor.fake.errors:
        raise SystemExit("\n".join(floor.fake.violations + floor.fake.errors))
    with floor.fake.serve() as url:
        ignored = ignored_floor(tmp, url, 3)
    return measured, ignored


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--histories", default="10,100,1000")
    parser.add_argument("--governed", action="store_true")
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args()
    histories = [int(h) for h in args.histories.split(",")]
    requests: dict[tuple[str, int], int] = {}
    times: dict[tuple[str, int], list[float]] = {}
    floors: list[float] = []
    labels: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for history in histories:
                measured, ignored = measure(history, args.governed, Path(tmp) / f"r{r}-{history}")
                floors.append(ignored)
                for m in measured:
                    if m.label not in labels:
                        labels.append(m.label)
                    previous = requests.setdefault((m.label, history), m.requests)
                    if previous != m.requests:
                        raise SystemExit(f"{m.label} at {history}: {previous} then {m.requests} requests")
                    times.setdefault((m.label, history), []).append(m.seconds)
    floor_ms = statistics.median(floors) * 1000
    heads = [f"requests @{h}" for h in histories] + [f"ms @{h}" for h in histories] + ["× ignored"]
    kind = "governed PR (policy: CI, approval, maintainer label)" if args.governed else "no policy"
    print(f"Branch store, {kind}; medians of {args.rounds} rounds; one `entrypoint.py` process per event.\n")
    print("| event | " + " | ".join(heads) + " |")
    print("|---|" + "---:|" * len(heads))
    rows = []
    worst = 0.0
    for label in labels:
        ms = [statistics.median(times[(label, h)]) * 1000 for h in histories]
        ratio = statistics.median(ms) / floor_ms  # the history lengths are the same work: their median
        if label != "issues.opened":
            worst = max(worst, ratio)
        rows.append({"event": label, "requests": {h: requests[(label, h)] for h in histories},
                     "median_ms": dict(zip(histories, [round(v, 1) for v in ms], strict=True)),
                     "ratio_to_ignored": round(ratio, 2)})
        print(f"| {label} | " + " | ".join(str(requests[(label, h)]) for h in histories) + " | "
              + " | ".join(f"{v:.0f}" for v in ms) + f" | {ratio:.2f} |")
    print("| *ignored event (floor)* | " + " | ".join("0" for _ in histories) + " | "
          + " | ".join(f"{floor_ms:.0f}" for _ in histories) + " | 1.00 |")
    steady = [r for r in rows if r["event"] != "issues.opened"]
    most = max(max(r["requests"].values()) for r in steady)
    print(f"\nSteady state: at most {most} requests per event at every history length; the first event also "
          f"creates the data branch ({max(rows[0]['requests'].values())}). Slowest event: {worst:.2f}× the "
          f"ignored-event process.")
    if args.json_path:
        Path(args.json_path).write_text(json.dumps({"ignored_ms": round(floor_ms, 1), "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
