"""GitHub API requests of one governed event, by the policy feature it uses (the cost of the new facts).

Two markdown tables, counts not timings (deterministic), every event run through ``entrypoint.py`` against the fake
GitHub on 127.0.0.1:

1. the same ``workflow_run.completed`` event, the second one on the PR (the record exists), under four policies:
   total requests of the event, and how many were ``GET compare`` (the merge base for diff fingerprints), tree
   reads and CODEOWNERS reads;
2. every event of a PR's life under ``invalidate_on_push: {except_same_diff: true}``
   (``tests.governance.same_diff_life``): requests, GraphQL queries among them, REST ``compare`` reads.

    python3 benchmarks/policy_requests.py
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.governance import same_diff_life, second_ci_event  # noqa: E402

POLICIES = {
    "`invalidate_on_push: true`": "{count: 1, invalidate_on_push: true}",
    "`invalidate_on_push: {except_same_diff: true}`": "{count: 1, invalidate_on_push: {except_same_diff: true}}",
    "`from: {codeowners: true}`": "{count: 1, from: {codeowners: true}}",
    "`from: {codeowners: true}` + `except_same_diff`": "{count: 1, from: {codeowners: true}, "
                                                       "invalidate_on_push: {except_same_diff: true}}",
}


def measure(approvals: str) -> tuple[int, int, int, int, str]:
    calls, result = second_ci_event(approvals)
    return (len(calls), sum("/compare/" in c.path for c in calls),
            sum("/git/trees/" in c.path and c.method == "GET" for c in calls),
            sum(c.path.endswith("CODEOWNERS") for c in calls), result.outputs["verdict"])


def main() -> int:
    print("| policy | requests | compare | tree reads | CODEOWNERS reads | verdict |")
    print("|---|---:|---:|---:|---:|---|")
    for name, approvals in POLICIES.items():
        total, compare, trees, owners, verdict = measure(approvals)
        print(f"| {name} | {total} | {compare} | {trees} | {owners} | {verdict} |")
    print()
    print("| event | requests | GraphQL queries | REST compare | alice's approval | verdict |")
    print("|---|---:|---:|---:|---|---|")
    for c in same_diff_life():
        print(f"| {c.event} | {c.requests} | {c.queries} | {c.compares} | {c.approval} | {c.verdict} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
