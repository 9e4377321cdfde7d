"""Merge-queue events, the queue-branch parser and the merge judgement, without HTTP (real payload shapes)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from loopforge.github.events import MalformedEvent, parse_event, parse_queue_ref
from loopforge.github.lifecycle import MAX_QUEUE_GROUPS, plan_event
from loopforge.github.merge_judgement import (
    MAX_VERDICTS,
    CommitInfo,
    base_parent,
    check_vetoes,
    gate_verdict,
    merge_basis,
    merge_policy_commit,
    verdict_for,
    with_verdict,
)
from loopforge.states import LoopState

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SHA = "929f8209d40f77f4abc622a499c93a83babdbe64"


def example(event: str, action: str) -> dict[str, Any]:
    examples = json.loads((FIXTURES / "webhooks" / "webhooks-examples.json").read_text())
    found = [ex for e in examples if e["name"] == event for ex in e["examples"] if ex.get("action") == action]
    return copy.deepcopy(found[0])  # type: ignore[no-any-return]


def destroyed(reason: Any) -> dict[str, Any]:
    payload = example("merge_group", "checks_requested")
    payload["action"] = "destroyed"
    payload["reason"] = reason
    return payload


# ---------------------------------------------------------------------------------------------- the parser
@pytest.mark.parametrize(("head_ref", "base", "number"), [
    (f"refs/heads/gh-readonly-queue/main/pr-104-{SHA}", "main", 104),
    (f"gh-readonly-queue/main/pr-1-{SHA}", "main", 1),
    (f"refs/heads/gh-readonly-queue/release/v1.2/pr-7-{SHA}", "release/v1.2", 7),
    (f"refs/heads/gh-readonly-queue/main/pr-2147483647-{SHA}", "main", 2147483647),
    (f"refs/heads/gh-readonly-queue/main/pr-3-{SHA}{'a' * 24}", "main", 3),  # SHA-256 repositories
])
def test_queue_branch_names_github_builds(head_ref: str, base: str, number: int) -> None:
    parsed = parse_queue_ref(head_ref)
    assert (parsed.base, parsed.number) == (base, number)
    assert parsed.pr_head_sha.startswith(SHA)


@pytest.mark.parametrize("head_ref", [
    "", "main", f"refs/heads/main/pr-1-{SHA}", f"refs/heads/gh-readonly-queue/pr-1-{SHA}",
    f"refs/heads/gh-readonly-queue/main/pr-0-{SHA}", f"refs/heads/gh-readonly-queue/main/pr-01-{SHA}",
    f"refs/heads/gh-readonly-queue/main/pr--1-{SHA}", f"refs/heads/gh-readonly-queue/main/pr-1-{SHA[:39]}",
    f"refs/heads/gh-readonly-queue/main/pr-1-{SHA.upper()}", f"refs/heads/gh-readonly-queue/main/pr-1-{SHA}x",
    f"refs/heads/gh-readonly-queue/main/pr-1-{SHA}\n", f"refs/heads/gh-readonly-queue/main/pr-99999999999-{SHA}",
    f"refs/heads/gh-readonly-queue/main/pr-2147483648-{SHA}",
    f"refs/heads/gh-readonly-queue/../pr-1-{SHA}", f"refs/heads/gh-readonly-queue/a/../b/pr-1-{SHA}",
    f"refs/heads/gh-readonly-queue/.hidden/pr-1-{SHA}", f"refs/heads/gh-readonly-queue/x.lock/pr-1-{SHA}",
    f"refs/heads/gh-readonly-queue/a//b/pr-1-{SHA}", f"refs/heads/gh-readonly-queue/ma in/pr-1-{SHA}",
    f"refs/heads/gh-readonly-queue/ma~in/pr-1-{SHA}", f"refs/heads/gh-readonly-queue/m\x1bain/pr-1-{SHA}",
    f"refs/heads/gh-readonly-queue/{'b' * 300}/pr-1-{SHA}", f"x/refs/heads/gh-readonly-queue/main/pr-1-{SHA}",
])
def test_hostile_queue_branch_names_are_rejected(head_ref: str) -> None:
    with pytest.raises(ValueError):
        parse_queue_ref(head_ref)


def test_the_base_in_the_branch_name_must_be_base_ref() -> None:
    assert parse_queue_ref(f"gh-readonly-queue/main/pr-1-{SHA}", "refs/heads/main").base == "main"
    with pytest.raises(ValueError, match="another base"):
        parse_queue_ref(f"gh-readonly-queue/main/pr-1-{SHA}", "refs/heads/release")


# ---------------------------------------------------------------------------------------------- the events
def test_real_checks_requested_payload() -> None:
    event = parse_event("merge_group", example("merge_group", "checks_requested"))
    assert event.kind == "merge_group.checks_requested"
    assert event.queue is not None and event.queue.number == 104 and event.queue.base == "main"
    assert event.pull_numbers == (104,) and event.ci_sha is None
    assert event.merge_group is not None
    assert event.merge_group.head_sha == "2ffea6db159f6b6c47a24e778fb9ef40cf6b1c7d"
    assert event.merge_group.base_sha == "380387fbc80638b734a49e1be1c4dfec1c01b33c"
    assert event.queue_reason is None


@pytest.mark.parametrize("reason", ["merged", "invalidated", "dequeued"])
def test_destroyed_keeps_its_reason(reason: str) -> None:
    event = parse_event("merge_group", destroyed(reason))
    assert event.kind == "merge_group.destroyed" and event.queue_reason == reason


@pytest.mark.parametrize("reason", [None, "", "MERGED", "gone", 3, ["merged"]])
def test_destroyed_without_a_documented_reason_is_malformed(reason: Any) -> None:
    with pytest.raises(MalformedEvent, match="reason"):
        parse_event("merge_group", destroyed(reason))


def test_hostile_head_ref_is_a_malformed_event_naming_the_field() -> None:
    payload = example("merge_group", "checks_requested")
    payload["merge_group"]["head_ref"] = "refs/heads/gh-readonly-queue/main/pr-1-nothex"
    with pytest.raises(MalformedEvent, match=r"merge_group\.head_ref"):
        parse_event("merge_group", payload)


def _pr_payload() -> dict[str, Any]:
    payload = example("pull_request", "opened")
    payload["pull_request"]["number"] = 104
    payload["pull_request"]["head"]["sha"] = SHA
    payload["pull_request"]["body"] = ""
    return payload


@pytest.mark.parametrize(("value", "kept"), [(SHA, SHA), (SHA + "\n", None), (SHA.upper(), None), ("HEAD", None),
                                             (None, None), (40, None)])
def test_a_merge_commit_sha_that_is_not_a_sha_is_left_out(value: Any, kept: str | None) -> None:
    """An extra fact, not one routing needs: anything but a SHA (a trailing line break too) is None, never a
    malformed payload."""
    payload = _pr_payload()
    payload["pull_request"]["merge_commit_sha"] = value
    pr = parse_event("pull_request", payload).pull_request
    assert pr is not None and pr.merge_commit_sha == kept


@pytest.mark.parametrize("stored", ["a string", ["a", "list"], {"pr": "not a mapping"}, {"pr": 7}])
def test_facts_of_a_hand_edited_head_that_are_not_mappings_are_not_used(stored: Any) -> None:
    """LoopForge writes its facts as mappings; an edited head may hold anything (the integrity check reports the
    edit): planning goes on from no facts instead of raising AttributeError."""
    event = parse_event("pull_request", _pr_payload())
    assert event.pull_request is not None
    plan = plan_event(event, LoopState.PR_CREATED, {"github": stored}, event.pull_request)
    clean = plan_event(event, LoopState.PR_CREATED, {}, event.pull_request)
    assert [(s.kind, s.state) for s in plan.steps] == [(s.kind, s.state) for s in clean.steps]


def test_a_head_with_a_negative_sequence_or_violation_count_does_not_parse() -> None:
    from pydantic import ValidationError

    from loopforge.records import RecordHead

    for field in ("last_sequence", "violations"):
        with pytest.raises(ValidationError):
            RecordHead.model_validate({"record_id": "o/r#1", "ref": "o/r#1", "state": "pr_created", field: -1})


def test_the_record_keeps_each_group_bounded() -> None:
    pr = parse_event("pull_request", _pr_payload()).pull_request
    assert pr is not None
    metadata: dict[str, Any] = {}
    for i in range(MAX_QUEUE_GROUPS + 3):
        payload = example("merge_group", "checks_requested")
        payload["merge_group"]["head_sha"] = f"{i:02x}" * 20
        plan = plan_event(parse_event("merge_group", payload), LoopState.CI_PASSED, metadata, pr)
        (step,) = plan.steps
        assert step.kind == "note" and f"{i:02x}" * 6 in (step.reason or "")
        metadata = {"github": plan.facts}
    groups = metadata["github"]["pr"]["queue"]["groups"]
    newest = f"{MAX_QUEUE_GROUPS + 2:02x}" * 20
    assert len(groups) == MAX_QUEUE_GROUPS and newest in groups and "00" * 20 not in groups
    gone = destroyed("dequeued")
    gone["merge_group"]["head_sha"] = newest
    plan = plan_event(parse_event("merge_group", gone), LoopState.CI_PASSED, metadata, pr)
    kept = plan.facts["pr"]["queue"]["groups"][newest]
    assert (kept["status"], kept["reason"], kept["base_sha"]) == ("destroyed", "dequeued",
                                                                 "380387fbc80638b734a49e1be1c4dfec1c01b33c")
    assert "destroyed (dequeued)" in (plan.steps[0].reason or "")


# ---------------------------------------------------------------------------------------------- the judgement
def _verdict(verdict: str, **kw: Any) -> dict[str, Any]:
    return gate_verdict(verdict, [("lifecycle", "passed"), ("two approvals", "pending" if verdict != "pass"
                                                             else "passed")], kind="head", at="t", **kw)


def test_verdicts_are_kept_per_sha_bounded_and_written_only_when_they_change() -> None:
    metadata: dict[str, Any] = {}
    for i in range(MAX_VERDICTS + 5):
        patch = with_verdict(metadata, f"{i:040x}", _verdict("block"))
        assert patch is not None
        metadata.update(patch)
    assert len(metadata["gate"]["verdicts"]) == MAX_VERDICTS and verdict_for(metadata, f"{0:040x}") is None
    newest = f"{MAX_VERDICTS + 4:040x}"
    assert with_verdict(metadata, newest, {**_verdict("block"), "at": "later"}) is None  # same verdict
    changed = with_verdict(metadata, newest, _verdict("pass"))
    assert changed is not None and changed["gate"]["verdicts"][newest]["verdict"] == "pass"


def test_a_merge_is_judged_against_the_verdict_of_the_merged_commit() -> None:
    head = "a" * 40
    metadata: dict[str, Any] = {"github": {"pr": {"head_sha": head, "merge_commit_sha": "m" * 40}}}
    basis = merge_basis(metadata)
    assert (basis.merged_sha, basis.via_queue) == (head, False)
    assert check_vetoes(metadata, basis, "loopforge") == []  # never evaluated: the policy judges alone
    metadata.update(with_verdict(metadata, head, _verdict("pass")) or {})
    assert check_vetoes(metadata, basis, "loopforge") == []
    metadata.update(with_verdict(metadata, head, _verdict("block", policy_sha256="d" * 64)) or {})
    (veto,) = check_vetoes(metadata, basis, "loopforge")
    assert veto.rule == "check:loopforge" and "two approvals" in veto.reason and head[:12] in veto.reason


def test_a_queue_merge_is_judged_against_the_group() -> None:
    group, base = "b" * 40, "c" * 40
    metadata: dict[str, Any] = {"github": {"pr": {"head_sha": "a" * 40, "merge_commit_sha": group, "queue": {
        "groups": {group: {"base_sha": base, "status": "checks_requested"}}}}}}
    basis = merge_basis(metadata)
    assert (basis.merged_sha, basis.base_parent, basis.via_queue) == (group, base, True)
    assert merge_policy_commit(group, "a" * 40, 3, metadata, lambda sha: pytest.fail("no read needed")) == base
    metadata.update(with_verdict(metadata, group, _verdict("block")) or {})
    (veto,) = check_vetoes(metadata, basis, "gate")
    assert "merge group" in veto.reason and veto.rule == "check:gate"


def _history(commits: dict[str, CommitInfo]) -> Any:
    reads: list[str] = []

    def commit_of(sha: str) -> CommitInfo:
        reads.append(sha)
        return commits[sha]

    return commit_of, reads


def test_base_parent_of_a_merge_commit_a_squash_and_a_rebase() -> None:
    base = CommitInfo(parents=["0" * 40], message="base")
    head_msg = "edit the policy and infra"
    commits = {
        "b" * 40: base,
        "merge": CommitInfo(parents=["b" * 40, "h" * 40], message="Merge pull request #2"),
        "squash": CommitInfo(parents=["b" * 40], message="Title (#2)"),
        "h" * 40: CommitInfo(parents=["g" * 40], message=head_msg),
        "r1": CommitInfo(parents=["b" * 40], message="first"),
        "r2": CommitInfo(parents=["r1"], message="second"),
        "r3": CommitInfo(parents=["r2"], message=head_msg),
    }
    commit_of, reads = _history(commits)
    assert base_parent("merge", "h" * 40, 3, commit_of) == "b" * 40 and reads == ["merge"]
    commit_of, reads = _history(commits)
    assert base_parent("squash", "h" * 40, 3, commit_of) == "b" * 40 and reads == ["squash", "h" * 40]
    commit_of, _ = _history(commits)
    assert base_parent("squash", "h" * 40, 1, commit_of) == "b" * 40
    commit_of, reads = _history(commits)
    assert base_parent("r3", "h" * 40, 3, commit_of) == "b" * 40  # never r2, which holds the PR's own commits
    assert reads == ["r3", "h" * 40, "r2", "r1"]
    # the one read resolved r3~3: no walk; an ancestor it could not resolve (None): the walk as before
    commit_of, reads = _history(commits)
    asked: list[int] = []
    assert base_parent("r3", "h" * 40, 3, commit_of, lambda n: asked.append(n) or "b" * 40) == "b" * 40
    assert reads == ["r3", "h" * 40] and asked == [3]
    commit_of, reads = _history(commits)
    assert base_parent("r3", "h" * 40, 3, commit_of, lambda n: None) == "b" * 40 and reads[2:] == ["r2", "r1"]
    # a merge commit or a squash never asks for the ancestor
    commit_of, _ = _history(commits)
    assert base_parent("merge", "h" * 40, 3, commit_of, lambda n: "wrong") == "b" * 40


def test_a_merge_commit_without_a_parent_is_a_malformed_event() -> None:
    """A payload naming a root commit as the merge: one "Malformed event payload" line, not an internal error."""
    from loopforge.action.errors import classify

    commit_of, _ = _history({"root": CommitInfo(parents=[], message="Initial commit")})
    with pytest.raises(MalformedEvent, match=r"pull_request\.merge_commit_sha: root has no parent") as caught:
        base_parent("root", "h" * 40, 1, commit_of)
    assert classify(caught.value).title == "Malformed event payload"
