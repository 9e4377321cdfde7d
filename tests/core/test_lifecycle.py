"""The lifecycle covers the real paths of an issue and its pull requests, refuses the rest with the seed's
message, and exports as JSON and Mermaid."""

from __future__ import annotations

import json

import pytest

from loopforge import VALID_TRANSITIONS, LoopService, LoopState, Outcome
from loopforge import states as states_module
from loopforge.repository import MemoryRepository
from loopforge.states import INITIAL_STATES, invalid_transition_message, is_allowed, mermaid, table_as_json

S = LoopState

#: Each real path: (initial state, [states the record moves through]).
PATHS: dict[str, tuple[LoopState, list[LoopState]]] = {
    "happy path": (S.ISSUE_CREATED, [
        S.TASK_QUEUED, S.PR_CREATED, S.CI_PENDING, S.CI_PASSED, S.MERGED, S.CLOSED]),
    "happy path with review": (S.ISSUE_CREATED, [
        S.TASK_QUEUED, S.PR_CREATED, S.CI_PENDING, S.CI_PASSED, S.AWAITING_REVIEW, S.APPROVED, S.MERGED,
        S.CLOSED]),
    "picked up straight into a PR": (S.ISSUE_CREATED, [
        S.PR_CREATED, S.CI_PENDING, S.CI_PASSED, S.MERGED, S.CLOSED]),
    "CI fails then a new push retries": (S.ISSUE_CREATED, [
        S.TASK_QUEUED, S.PR_CREATED, S.CI_PENDING, S.CI_FAILED, S.CI_PENDING, S.CI_FAILED, S.CI_PENDING,
        S.CI_PASSED, S.MERGED, S.CLOSED]),
    "a re-run of a failed check passes": (S.ISSUE_CREATED, [
        S.TASK_QUEUED, S.PR_CREATED, S.CI_PENDING, S.CI_FAILED, S.CI_PASSED, S.MERGED, S.CLOSED]),
    "a push while CI runs restarts it": (S.ISSUE_CREATED, [
        S.TASK_QUEUED, S.PR_CREATED, S.CI_PENDING, S.CI_PENDING, S.CI_PASSED]),
    "review requested, changes requested, new push, approved": (S.ISSUE_CREATED, [
        S.TASK_QUEUED, S.PR_CREATED, S.CI_PENDING, S.CI_PASSED, S.AWAITING_REVIEW, S.CHANGES_REQUESTED,
        S.CI_PENDING, S.CI_PASSED, S.AWAITING_REVIEW, S.APPROVED, S.MERGED, S.CLOSED]),
    "changes requested, re-requested review, approved": (S.ISSUE_CREATED, [
        S.TASK_QUEUED, S.PR_CREATED, S.CI_PENDING, S.CI_PASSED, S.AWAITING_REVIEW, S.CHANGES_REQUESTED,
        S.AWAITING_REVIEW, S.APPROVED, S.MERGED]),
    "a new push after CI passed returns to ci_pending": (S.ISSUE_CREATED, [
        S.TASK_QUEUED, S.PR_CREATED, S.CI_PENDING, S.CI_PASSED, S.CI_PENDING, S.CI_PASSED, S.MERGED]),
    "a new push after approval returns to ci_pending": (S.ISSUE_CREATED, [
        S.TASK_QUEUED, S.PR_CREATED, S.CI_PENDING, S.CI_PASSED, S.AWAITING_REVIEW, S.APPROVED, S.CI_PENDING,
        S.CI_PASSED, S.APPROVED, S.MERGED, S.CLOSED]),
    "an approval is dismissed": (S.ISSUE_CREATED, [
        S.PR_CREATED, S.CI_PENDING, S.CI_PASSED, S.APPROVED, S.AWAITING_REVIEW, S.APPROVED, S.MERGED]),
    "PR closed without merge, another PR follows": (S.ISSUE_CREATED, [
        S.TASK_QUEUED, S.PR_CREATED, S.CI_PENDING, S.CI_FAILED, S.PR_ABANDONED, S.PR_CREATED, S.CI_PENDING,
        S.CI_PASSED, S.MERGED, S.CLOSED]),
    "PR closed without merge, then reopened": (S.ISSUE_CREATED, [
        S.PR_CREATED, S.CI_PENDING, S.PR_ABANDONED, S.PR_CREATED, S.CI_PENDING, S.CI_PASSED, S.MERGED]),
    "PR closed without merge, back to the queue": (S.ISSUE_CREATED, [
        S.TASK_QUEUED, S.PR_CREATED, S.PR_ABANDONED, S.TASK_QUEUED, S.PR_DRAFT, S.PR_CREATED]),
    "PR closed without merge, issue closed": (S.ISSUE_CREATED, [
        S.TASK_QUEUED, S.PR_CREATED, S.PR_ABANDONED, S.NOT_PLANNED]),
    "issue closed as not planned before any PR": (S.ISSUE_CREATED, [S.NOT_PLANNED]),
    "issue closed as not planned after being queued": (S.ISSUE_CREATED, [S.TASK_QUEUED, S.NOT_PLANNED]),
    "issue closed as completed without a PR": (S.ISSUE_CREATED, [S.CLOSED]),
    "task unassigned": (S.ISSUE_CREATED, [S.TASK_QUEUED, S.ISSUE_CREATED, S.TASK_QUEUED]),
    "issue reopened after completion": (S.ISSUE_CREATED, [
        S.TASK_QUEUED, S.PR_CREATED, S.CI_PENDING, S.CI_PASSED, S.MERGED, S.CLOSED, S.ISSUE_CREATED,
        S.TASK_QUEUED, S.PR_CREATED]),
    "issue reopened after not planned": (S.ISSUE_CREATED, [S.NOT_PLANNED, S.ISSUE_CREATED, S.TASK_QUEUED]),
    "draft PR then ready for review": (S.ISSUE_CREATED, [
        S.TASK_QUEUED, S.PR_DRAFT, S.PR_CREATED, S.CI_PENDING, S.CI_PASSED, S.MERGED, S.CLOSED]),
    "draft, then ready for review, then CI": (S.ISSUE_CREATED, [
        S.TASK_QUEUED, S.PR_DRAFT, S.PR_CREATED, S.CI_PENDING, S.CI_PASSED]),
    "PR converted back to draft": (S.ISSUE_CREATED, [
        S.PR_CREATED, S.CI_PENDING, S.CI_PASSED, S.PR_DRAFT, S.PR_CREATED, S.CI_PENDING]),
    "draft PR abandoned": (S.ISSUE_CREATED, [S.PR_DRAFT, S.PR_ABANDONED, S.PR_DRAFT]),
    "a PR with no issue": (S.PR_CREATED, [S.CI_PENDING, S.CI_PASSED, S.MERGED]),
    "a draft PR with no issue": (S.PR_DRAFT, [S.PR_CREATED, S.CI_PENDING, S.CI_PASSED, S.MERGED]),
    "a late failing check after approval": (S.ISSUE_CREATED, [
        S.PR_CREATED, S.CI_PENDING, S.CI_PASSED, S.APPROVED, S.CI_FAILED, S.CI_PENDING, S.CI_PASSED, S.MERGED]),
    "CI reported before it was seen to start": (S.ISSUE_CREATED, [S.PR_CREATED, S.CI_PASSED, S.MERGED]),
}


@pytest.fixture
def service() -> LoopService:
    return LoopService(repository=MemoryRepository())


@pytest.mark.parametrize("name", list(PATHS))
def test_real_path_is_allowed(service: LoopService, name: str) -> None:
    initial, moves = PATHS[name]
    ref = "https://github.com/org/repo/pull/7" if initial is not S.ISSUE_CREATED else "org/repo#7"
    record = service.create(ref=ref, repo="org/repo", state=initial)
    assert record.record_id == "org/repo#7"
    assert record.state is initial
    for i, target in enumerate(moves):
        result = service.transition(record.record_id, target, f"step.{i}")
        assert result.success, f"{name}: step {i} ({result.previous_state} → {target}): {result.error}"
        assert result.outcome is Outcome.APPLIED
        assert record.state is target
    assert [t.to_state for t in record.transitions] == [initial, *moves]
    assert all(t.outcome is Outcome.APPLIED for t in record.transitions)
    assert service.verify(record.record_id).ok


def test_every_path_edge_is_in_the_table() -> None:
    for initial, moves in PATHS.values():
        assert initial in INITIAL_STATES
        for a, b in zip([initial, *moves], moves, strict=False):
            assert b in VALID_TRANSITIONS[a], f"{a} → {b}"


def test_table_covers_every_state() -> None:
    assert set(VALID_TRANSITIONS) == set(LoopState)
    reachable = set(INITIAL_STATES)
    frontier = list(INITIAL_STATES)
    while frontier:
        for nxt in VALID_TRANSITIONS[frontier.pop()]:
            if nxt not in reachable:
                reachable.add(nxt)
                frontier.append(nxt)
    assert reachable == set(LoopState)
    # every state has a way on (closed states only by reopening)
    assert all(VALID_TRANSITIONS[s] for s in LoopState)
    assert VALID_TRANSITIONS[S.CLOSED] == (S.ISSUE_CREATED,)
    assert VALID_TRANSITIONS[S.NOT_PLANNED] == (S.ISSUE_CREATED,)


def test_states_print_readably() -> None:
    assert str(S.CI_PASSED) == "ci_passed"
    assert f"{S.CI_PASSED}" == "ci_passed"
    assert LoopState("ci_passed") is S.CI_PASSED


# ------------------------------------------------------------------------------------------------ invalid moves
def test_seed_message_exact(service: LoopService) -> None:
    record = service.create(ref="org/repo#1", repo="org/repo")
    result = service.transition(record.record_id, S.MERGED, "auto.merged")
    assert result.success is False
    assert result.outcome is Outcome.REJECTED
    allowed = ", ".join(s.value for s in VALID_TRANSITIONS[S.ISSUE_CREATED])
    assert result.error == f"Invalid transition: issue_created → merged. Allowed from issue_created: {allowed}"
    assert result.error.startswith("Invalid transition: issue_created → merged. Allowed from issue_created: "
                                   "task_queued")
    assert record.state is S.ISSUE_CREATED
    last = record.transitions[-1]
    assert (last.from_state, last.to_state, last.outcome, last.rule) == (
        S.ISSUE_CREATED, S.MERGED, Outcome.REJECTED, "lifecycle")
    assert last.reason == result.error
    assert service.verify(record.record_id).ok


INVALID = [(a, b) for a in LoopState for b in LoopState if b not in VALID_TRANSITIONS[a]]


@pytest.mark.parametrize(("src", "dst"), INVALID, ids=[f"{a.value}->{b.value}" for a, b in INVALID])
def test_every_invalid_move_is_refused_with_the_table_in_the_message(service: LoopService, src: LoopState,
                                                                       dst: LoopState) -> None:
    record = service.create(ref="org/repo#2", repo="org/repo")
    if src is not S.ISSUE_CREATED:
        assert service.observe(record.record_id, src, "setup").success  # reach src whatever the table says
    assert not is_allowed(src, dst)
    result = service.transition(record.record_id, dst, "bad.move")
    allowed = ", ".join(s.value for s in VALID_TRANSITIONS[src])
    expected = f"Invalid transition: {src.value} → {dst.value}. Allowed from {src.value}: {allowed}"
    assert result.success is False
    assert result.error == expected == invalid_transition_message(src, dst)
    assert record.state is src
    assert service.verify(record.record_id).ok


def test_invalid_initial_state(service: LoopService) -> None:
    with pytest.raises(ValueError, match="Invalid initial state: merged"):
        service.create(ref="org/repo#3", repo="org/repo", state=S.MERGED)
    assert service.get("org/repo#3") is None


def test_state_names_accepted_as_strings(service: LoopService) -> None:
    record = service.create(ref="org/repo#4", repo="org/repo")
    assert service.transition(record.record_id, "task_queued", "worker.picked_up").success  # type: ignore[arg-type]
    assert record.state is S.TASK_QUEUED
    with pytest.raises(ValueError):
        service.transition(record.record_id, "no_such_state", "x")  # type: ignore[arg-type]


def test_can_transition_to_follows_the_table(service: LoopService) -> None:
    record = service.create(ref="org/repo#5", repo="org/repo")
    for target in LoopState:
        assert record.can_transition_to(target) is (target in VALID_TRANSITIONS[S.ISSUE_CREATED])


# ------------------------------------------------------------------------------------------------------ exports
def test_table_as_json() -> None:
    data = json.loads(table_as_json())
    assert [s["name"] for s in data["states"]] == [s.value for s in LoopState]
    assert all(isinstance(s["description"], str) and s["description"] for s in data["states"])
    assert data["initial"] == [s.value for s in INITIAL_STATES]
    assert data["transitions"] == {a.value: [b.value for b in bs] for a, bs in VALID_TRANSITIONS.items()}
    assert json.loads(table_as_json(indent=None)) == data
    assert "\n" not in table_as_json(indent=None)


def test_mermaid_has_every_edge() -> None:
    text = mermaid()
    lines = [line.strip() for line in text.splitlines()]
    assert lines[0] == "stateDiagram-v2"
    edges = {tuple(line.split(" --> ")) for line in lines if " --> " in line}
    expected = {(a.value, b.value) for a, bs in VALID_TRANSITIONS.items() for b in bs}
    expected |= {("[*]", s.value) for s in INITIAL_STATES}
    assert edges == expected
    assert "classDef" not in text and "class " not in text


@pytest.mark.parametrize("current", [S.CI_PASSED, S.ISSUE_CREATED, S.NOT_PLANNED])
def test_mermaid_highlights_the_current_state(current: LoopState) -> None:
    text = mermaid(current)
    lines = [line.strip() for line in text.splitlines()]
    class_lines = [line for line in lines if line.startswith("class ")]
    assert class_lines == [f"class {current.value} current"]
    assert any(line.startswith("classDef current ") for line in lines)
    # the diagram itself is unchanged
    assert [line for line in lines if " --> " in line] == [
        line.strip() for line in mermaid().splitlines() if " --> " in line]
    assert mermaid(current.value) == text  # type: ignore[arg-type]


def test_module_exports() -> None:
    assert states_module.VALID_TRANSITIONS is VALID_TRANSITIONS
