"""Wall time and GitHub API requests per event, for each event kind the Action handles.

Runs the Action's pipeline in-process (``loopforge.action.run`` with the runner's environment) against the fake
GitHub served on 127.0.0.1, over the whole fixture lifecycle plus a synchronize / failing CI / re-run detour,
``--rounds`` times, each round on a fresh fake. Prints a markdown table; ``--json FILE`` writes the figures.
Times are medians and only comparable within one run (the machine is shared): read them as ratios.

    python3 benchmarks/action.py [--rounds 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from loopforge.action import run  # noqa: E402
from tests.fakegithub import FakeGitHub  # noqa: E402

LIFECYCLE = sorted((ROOT / "tests" / "fixtures" / "lifecycle").glob("*.json"))
REPO = "Codertocat/Hello-World"


def events() -> list[tuple[str, str, dict[str, Any]]]:
    loaded = [(p.stem.split("-")[1], json.loads(p.read_text())) for p in LIFECYCLE]
    out = [(f"{n}.{p['action']}", n, p) for n, p in loaded]
    # a detour before the merge: CI fails, a push, CI passes again
    _, ci_done = loaded[4]
    failed = copy.deepcopy(ci_done)
    failed["workflow_run"]["conclusion"] = "failure"
    sync = copy.deepcopy(loaded[2][1])
    sync["action"] = "synchronize"
    detour = [("workflow_run.completed (failure)", "workflow_run", failed),
              ("pull_request.synchronize", "pull_request", sync),
              ("workflow_run.completed", "workflow_run", ci_done)]
    return out[:5] + detour + out[5:]


def one_round(tmp: Path) -> dict[str, tuple[float, int]]:
    fake = FakeGitHub(owner="Codertocat", repo="Hello-World", default_branch="master")
    pr = json.loads(LIFECYCLE[2].read_text())["pull_request"]
    fake.add_pull(2, pr["head"]["sha"], base="master", body=pr["body"], title=pr["title"], user="Codertocat")
    results: dict[str, tuple[float, int]] = {}
    with fake.serve() as url:
        for i, (label, name, payload) in enumerate(events()):
            event_path = tmp / f"event{i}.json"
            event_path.write_text(json.dumps(payload))
            env = {"GITHUB_EVENT_NAME": name, "GITHUB_EVENT_PATH": str(event_path), "GITHUB_REPOSITORY": REPO,
                   "GITHUB_RUN_ID": str(100 + i), "GITHUB_RUN_ATTEMPT": "1", "GITHUB_API_URL": url,
                   "GITHUB_SERVER_URL": "https://github.com", "INPUT_GITHUB-TOKEN": "t",
                   "GITHUB_OUTPUT": str(tmp / "out"), "GITHUB_STEP_SUMMARY": str(tmp / "summary")}
            before = len(fake.requests)
            start = time.perf_counter()
            code = run(env, stream=io.StringIO())
            elapsed = time.perf_counter() - start
            if code not in (0, 1):
                raise SystemExit(f"{label}: exit {code}")
            results[label] = (elapsed, len(fake.requests) - before)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args()
    rounds: list[dict[str, tuple[float, int]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            rounds.append(one_round(Path(tmp)))
    rows = []
    for label in rounds[0]:
        times = [r[label][0] * 1000 for r in rounds]
        requests = [r[label][1] for r in rounds]
        rows.append({"event": label, "median_ms": round(statistics.median(times), 1),
                     "requests": max(requests)})
    print(f"| event | requests | median ms ({args.rounds} rounds) |")
    print("|---|---:|---:|")
    for row in rows:
        print(f"| {row['event']} | {row['requests']} | {row['median_ms']} |")
    total = sum(r["requests"] for r in rows)
    print(f"\n{len(rows)} events, {total} requests in all ({total / len(rows):.1f} per event)")
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
