"""Property-based tests: random walks over the lifecycle never leave the table and always verify."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loopforge import VALID_TRANSITIONS, LoopRecord, LoopService, LoopState, Outcome, TransitionError
from loopforge.records import replay
from loopforge.repository import MemoryRepository, SQLiteRepository
from loopforge.states import INITIAL_STATES, is_allowed
from loopforge.trail import STATE_CHANGING

STATES = st.sampled_from(list(LoopState))
KEYS = st.one_of(st.none(), st.sampled_from(["k1", "k2", "k3"]))

#: One step of a walk: what to call, the target state, and an optional idempotency key (from a small pool, so
#: redeliveries happen).
OPS = st.one_of(
    st.tuples(st.just("transition"), STATES, KEYS),
    st.tuples(st.just("transition"), STATES, KEYS),  # weighted: the main API
    st.tuples(st.just("observe"), STATES, KEYS),
    st.tuples(st.just("note"), STATES, KEYS),
    st.tuples(st.just("reject"), STATES, KEYS),
)

WALK = st.fixed_dictionaries({
    "initial": st.sampled_from(list(INITIAL_STATES)),
    "ops": st.lists(OPS, min_size=1, max_size=40),
    "guard_blocks": st.one_of(st.none(), STATES),  # a guard refuses moves into this state
    "hook_vetoes": st.one_of(st.none(), STATES),  # a hook vetoes moves into this state
    "hook_fails_on": st.one_of(st.none(), STATES),  # a hook crashes on moves into this state
})


def _service(repository: Any, walk: dict[str, Any]) -> LoopService:
    def guard(record: LoopRecord, current: LoopState, new: LoopState, trigger: str) -> None:
        if new == walk["guard_blocks"]:
            raise TransitionError(f"guard blocks {new.value}", rule="guard")

    def vetoing_hook(record: LoopRecord, previous: LoopState, new: LoopState, trigger: str) -> None:
        record.metadata["hook_saw"] = new.value
        if new == walk["hook_vetoes"]:
            raise TransitionError(f"hook vetoes {new.value}", rule="hook")

    def failing_hook(record: LoopRecord, previous: LoopState, new: LoopState, trigger: str) -> None:
        if new == walk["hook_fails_on"]:
            raise RuntimeError("hook crashed")

    hooks: list[Callable[..., Any]] = [failing_hook, vetoing_hook]
    return LoopService(repository=repository, guards=[guard], hooks=hooks)


def _run_walk(repository: Any, walk: dict[str, Any]) -> None:
    service = _service(repository, walk)
    record = service.create(ref="org/repo#1", repo="org/repo", state=walk["initial"])
    expected = walk["initial"]
    used_keys: dict[str, Any] = {}

    for i, (op, target, key) in enumerate(walk["ops"]):
        before = len(service.history(record.record_id))
        if key is not None and key in used_keys:
            # a redelivery: nothing is written and the first answer is repeated
            result = getattr(service, op)(*_args(record.record_id, op, target, i), idempotency_key=key)
            assert result.duplicate
            assert result.success == used_keys[key]
            assert len(service.history(record.record_id)) == before
            assert record.state is expected
            continue
        result = getattr(service, op)(*_args(record.record_id, op, target, i), idempotency_key=key)
        assert not result.duplicate
        if op == "transition":
            ok = (is_allowed(expected, target) and target != walk["guard_blocks"]
                  and target != walk["hook_vetoes"])
            assert result.success is ok, (expected, target, result.error)
            if ok:
                expected = target
        elif op == "observe":
            assert result.success is True
            expected = target  # a fact always applies (objections are recorded as violations)
        elif op == "note":
            assert result.success is True
        else:
            assert result.success is False
        if key is not None:
            used_keys[key] = result.success
        assert len(service.history(record.record_id)) > before  # every call leaves at least one entry
        assert record.state is expected, (op, target, result)

    _check_trail(service, repository, record.record_id, expected)


def _args(record_id: str, op: str, target: LoopState, i: int) -> tuple[Any, ...]:
    if op == "note":
        return (record_id, f"note.{i}")
    if op == "reject":
        return (record_id, target, f"reject.{i}", "refused by the test")
    return (record_id, target, f"{op}.{i}")


def _check_trail(service: LoopService, repository: Any, record_id: str, expected: LoopState) -> None:
    entries = service.history(record_id)
    assert service.verify(record_id).ok
    assert [e.sequence for e in entries] == list(range(1, len(entries) + 1))
    for prev, entry in zip([None, *entries], entries, strict=False):
        if entry.outcome is Outcome.APPLIED:
            if entry.from_state is None:
                assert entry.to_state in INITIAL_STATES
            else:
                assert entry.to_state in VALID_TRANSITIONS[entry.from_state], entry
        if entry.outcome not in STATE_CHANGING:  # rejected, noted, hook_failed: never change state
            assert entry.from_state is not None and entry.state_after == entry.from_state
        if prev is not None:
            assert entry.from_state == prev.state_after
            assert entry.prev_hash == prev.hash
        if entry.outcome is Outcome.VETOED:
            # a veto undoes the applied move just before it (only hook failures may sit in between)
            earlier = entries[: entry.sequence - 1]
            while earlier and earlier[-1].outcome is Outcome.HOOK_FAILED:
                earlier.pop()
            assert earlier and earlier[-1].outcome is Outcome.APPLIED
            assert entry.to_state == earlier[-1].from_state
    head = repository.head(record_id)
    replayed = replay(entries)
    assert replayed is not None and head is not None
    assert replayed == head
    assert head.state is expected
    assert head.violations == sum(e.outcome is Outcome.VIOLATION for e in entries)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(walk=WALK)
def test_random_walks_on_memory(walk: dict[str, Any]) -> None:
    _run_walk(MemoryRepository(), walk)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(walk=WALK)
def test_random_walks_on_sqlite(walk: dict[str, Any]) -> None:
    _run_walk(SQLiteRepository(":memory:"), walk)


@settings(max_examples=150, deadline=None)
@given(start=st.sampled_from(list(INITIAL_STATES)),
       choices=st.lists(st.integers(min_value=0, max_value=1000), min_size=1, max_size=60))
def test_valid_walks_always_succeed(start: LoopState, choices: list[int]) -> None:
    """Walking only along the table's edges never fails, whatever the route."""
    service = LoopService(repository=MemoryRepository())
    record = service.create(ref="org/repo#2", repo="org/repo", state=start)
    state = start
    for c in choices:
        allowed = VALID_TRANSITIONS[state]
        state = allowed[c % len(allowed)]
        result = service.transition(record.record_id, state, "walk")
        assert result.success, result.error
    assert record.state is state
    assert service.verify(record.record_id).ok
    assert len(record.transitions) == len(choices) + 1
