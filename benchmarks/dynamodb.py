"""Benchmark the DynamoDB store against a local DynamoDB-compatible server.

    python benchmarks/dynamodb.py [--url http://127.0.0.1:PORT] [--history 10000] [--samples 7] [--json FILE]

Without ``--url`` (or ``$LOOPFORGE_TEST_DYNAMODB_URL``) it starts moto's server the way the tests do
(tests/dynamo_server.py). It measures, with botocore's event system, the HTTP requests of one transition and of
one current-state read, and the time of each at a history of 10 and of ``--history`` entries:

* ``short``: a record with 10 entries in a table holding only it;
* ``long``: a record with ``--history`` entries;
* ``short, big table``: a record with 10 entries in the same table as ``long``.

The last row separates history length from table size: moto copies the whole table for every item of a
``TransactWriteItems``, so on moto a write costs time in proportion to the TABLE, whatever the record's history;
DynamoDB's cost per request does not depend on either. The request counts are what carries over to AWS.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from dynamo_server import DUMMY_AWS_ENV, RequestCounter, local_server, seed_history

from loopforge.records import RecordHead
from loopforge.repository.dynamodb import DynamoDBRepository
from loopforge.service import LoopService


def measure(repo: DynamoDBRepository, record_id: str, samples: int) -> dict[str, Any]:
    """Requests and median milliseconds of ``samples`` transitions (a keyed note) and current-state reads."""
    service = LoopService(repository=repo)
    counter = RequestCounter(repo.client)
    write_ms, read_ms = [], []
    write_requests, read_requests = set(), set()
    try:
        for i in range(samples):
            counter.reset()
            start = time.perf_counter()
            result = service.note(record_id, "bench.tick", idempotency_key=f"bench:{uuid.uuid4().hex}:{i}")
            write_ms.append((time.perf_counter() - start) * 1000)
            assert result.success
            write_requests.add(json.dumps(dict(sorted(counter.counts.items()))))
            counter.reset()
            start = time.perf_counter()
            record = service.get(record_id)
            read_ms.append((time.perf_counter() - start) * 1000)
            assert record is not None
            read_requests.add(json.dumps(dict(sorted(counter.counts.items()))))
    finally:
        counter.close()
    assert len(write_requests) == 1 and len(read_requests) == 1, (write_requests, read_requests)
    head = repo.head(record_id)
    assert head is not None
    writes, reads = json.loads(write_requests.pop()), json.loads(read_requests.pop())
    return {
        "history": head.last_sequence - samples,
        "requests_per_transition": sum(writes.values()), "transition_requests": writes,
        "requests_per_read": sum(reads.values()), "read_requests": reads,
        "ms_per_transition": round(statistics.median(write_ms), 2),
        "ms_per_read": round(statistics.median(read_ms), 2),
    }


def record_with_history(repo: DynamoDBRepository, record_id: str, history: int) -> RecordHead:
    record = LoopService(repository=repo).create(ref=record_id, repo="org/bench")
    head = record.head()
    return seed_history(repo, head, history - 1) if history > 1 else head


def run(url: str, history: int, samples: int) -> list[dict[str, Any]]:
    small = DynamoDBRepository(f"bench-small-{uuid.uuid4().hex[:8]}", endpoint_url=url)
    big = DynamoDBRepository(f"bench-big-{uuid.uuid4().hex[:8]}", endpoint_url=url)
    small.create_table()
    big.create_table()
    rows = []
    start = time.perf_counter()
    record_with_history(small, "org/bench#1", 10)
    rows.append({"case": "short", **measure(small, "org/bench#1", samples)})
    record_with_history(big, "org/bench#2", history)
    built = time.perf_counter() - start
    record_with_history(big, "org/bench#3", 10)
    rows.append({"case": "long", **measure(big, "org/bench#2", samples)})
    rows.append({"case": "short, big table", **measure(big, "org/bench#3", samples)})
    print(f"(built the histories in {built:.1f} s)", file=sys.stderr)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    header = ["case", "history", "requests/transition", "requests/read", "ms/transition", "ms/read"]
    lines = [" | ".join(header), " | ".join("---" for _ in header)]
    for r in rows:
        per_op = ", ".join(f"{n} {op}" for op, n in r["transition_requests"].items())
        lines.append(" | ".join([r["case"], str(r["history"]), f"{r['requests_per_transition']} ({per_op})",
                                 f"{r['requests_per_read']} (GetItem)" if r["read_requests"] == {"GetItem": 1}
                                 else json.dumps(r["read_requests"]),
                                 f"{r['ms_per_transition']:.1f}", f"{r['ms_per_read']:.1f}"]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("LOOPFORGE_TEST_DYNAMODB_URL"),
                        help="a running DynamoDB-compatible server (default: start moto's)")
    parser.add_argument("--history", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=7)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    for name, value in DUMMY_AWS_ENV.items():
        os.environ.setdefault(name, value)
    if args.url:
        os.environ["LOOPFORGE_TEST_DYNAMODB_URL"] = args.url
    with local_server() as url:
        rows = run(url, args.history, args.samples)
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps({"server": "moto (tests/dynamo_server.py)" if not args.url else args.url,
                                         "samples": args.samples, "results": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
