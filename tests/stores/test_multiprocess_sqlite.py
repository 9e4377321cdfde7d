"""Eight processes append to one SQLite record at once: nothing is lost, nothing is written twice, the chain
verifies."""

from __future__ import annotations

import json
import multiprocessing
import random
from collections import Counter
from pathlib import Path
from typing import Any

from loopforge import VALID_TRANSITIONS, LoopService, LoopState, Outcome
from loopforge.repository import SQLiteRepository

PROCESSES = 8
CALLS = 25
RID = "org/repo#1"


def _worker(db: str, n: int, barrier: Any, out: str) -> None:
    """Run in a spawned process: ``CALLS`` transitions, some valid, some not, each with its own key."""
    rng = random.Random(n)
    service = LoopService(repository=SQLiteRepository(db))
    results: list[dict[str, Any]] = []
    barrier.wait(timeout=60)
    for i in range(CALLS):
        head = service.repository.head(RID)
        assert head is not None
        # mostly a move the table allows from what we last saw (it may be stale by now), sometimes anything
        allowed = VALID_TRANSITIONS[head.state] if rng.random() < 0.6 else tuple(LoopState)
        target = rng.choice(allowed)
        key = f"w{n}:{i}"
        result = service.transition(RID, target, f"worker{n}.{i}", idempotency_key=key)
        results.append({"key": key, "target": target.value, "success": result.success,
                        "outcome": result.outcome.value if result.outcome else None,
                        "duplicate": result.duplicate, "sequence": result.entry.sequence if result.entry else None})
    Path(out).write_text(json.dumps({"results": results, "conflicts": service.conflicts}))


def test_eight_processes_append_to_one_record(tmp_path: Path) -> None:
    db = str(tmp_path / "loopforge.db")
    service = LoopService(repository=SQLiteRepository(db))
    record = service.create(ref="https://github.com/org/repo/issues/1", repo="org/repo")
    assert record.record_id == RID

    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(PROCESSES)
    outs = [tmp_path / f"worker{n}.json" for n in range(PROCESSES)]
    procs = [ctx.Process(target=_worker, args=(db, n, barrier, str(outs[n]))) for n in range(PROCESSES)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    for p in procs:
        if p.is_alive():  # pragma: no cover - only on a hang
            p.kill()
    assert [p.exitcode for p in procs] == [0] * PROCESSES

    reports = [json.loads(out.read_text()) for out in outs]
    attempted = {r["key"]: r for rep in reports for r in rep["results"]}
    assert len(attempted) == PROCESSES * CALLS
    assert not any(r["duplicate"] for r in attempted.values())

    entries = service.history(RID)
    # contiguous sequences, one chain
    assert [e.sequence for e in entries] == list(range(1, len(entries) + 1))
    # every attempted call ended as exactly one entry, applied or rejected
    by_key = Counter(e.idempotency_key for e in entries[1:])
    assert None not in by_key
    assert set(by_key) == set(attempted)
    assert set(by_key.values()) == {1}
    assert len(entries) == 1 + PROCESSES * CALLS
    for entry in entries[1:]:
        report = attempted[entry.idempotency_key]  # type: ignore[index]
        assert entry.outcome in (Outcome.APPLIED, Outcome.REJECTED)
        assert report["outcome"] == entry.outcome.value
        assert report["success"] is (entry.outcome is Outcome.APPLIED)
        assert report["sequence"] == entry.sequence
        assert entry.to_state.value == report["target"]
        if entry.outcome is Outcome.APPLIED:
            assert entry.to_state in VALID_TRANSITIONS[entry.from_state]  # type: ignore[index]
    outcomes = Counter(e.outcome for e in entries[1:])
    assert outcomes[Outcome.APPLIED] > 0 and outcomes[Outcome.REJECTED] > 0

    print(f"conflicts retried: {sum(rep['conflicts'] for rep in reports)}, outcomes: {dict(outcomes)}")
    report = service.verify(RID)
    assert report.ok, [str(p) for p in report.problems]
    assert report.entries == 1 + PROCESSES * CALLS
    head = service.get(RID)
    assert head is not None and head.last_sequence == len(entries)
    assert head.state is entries[-1].state_after
