"""Statements built from real trails: facts read back from the trail, the VSA and its companions, validated
with the in-toto attestation package's bindings."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import pytest
from google.protobuf import json_format

from loopforge.evidence.facts import MergeFactsError, merge_facts_from_record
from loopforge.evidence.statement import (
    LEVEL_APPROVED_HEAD,
    LEVEL_CI,
    LEVEL_LIFECYCLE,
    LEVEL_POLICY,
    LEVEL_REVIEWED,
    PREDICATE_REVIEWS,
    PREDICATE_TEST_RESULT,
    PREDICATE_TRAIL,
    PREDICATE_VSA,
    build_statements,
)
from loopforge.repository.memory import MemoryRepository
from tests.evidence.helpers import HEAD_SHA, MERGE_SHA, POLICY_SHA, RECORD, REVIEWER, Trail, validate_statement

WHEN = datetime(2026, 11, 30, 8, 0, 0, tzinfo=UTC)


def statements(trail: Trail) -> dict[str, dict[str, Any]]:
    built = build_statements(trail.facts(), time_verified=WHEN)
    return {name: built.statement(name) for name in built.payloads}


def test_the_trail_keeps_every_fact_the_evidence_needs() -> None:
    trail = Trail().merged()
    facts = trail.facts()
    assert (facts.repo, facts.base_ref, facts.merge_sha, facts.head_sha, facts.pr_number) == (
        "Codertocat/Hello-World", "master", MERGE_SHA, HEAD_SHA, 2)
    assert (facts.pr_author, facts.pr_author_id, facts.merged_at) == (
        "Codertocat", 21031067, "2019-05-15T15:21:18.000000Z")
    [review] = facts.reviews
    assert (review.login, review.user_id, review.state, review.commit_id) == (
        REVIEWER["login"], REVIEWER["id"], "approved", HEAD_SHA)
    assert [(c.name, c.status) for c in facts.ci] == [("CI", "passed")] and facts.ci_sha == HEAD_SHA
    assert facts.policy.sha256 == POLICY_SHA and facts.policy.verdict == "pass"
    assert facts.policy.base_commit == "f95f852bd8fca8fcc58a9a2d6c842781e32a215e"
    entries = list(trail.repository.entries(RECORD))
    merge = next(e for e in entries if e.to_state.value == "merged")
    assert (facts.merge_sequence, facts.merge_hash) == (merge.sequence, merge.hash)
    assert facts.policy_sequence == merge.sequence + 1 and facts.linked_issue == RECORD
    assert facts.passed


def test_only_the_entries_from_the_merge_on_are_enough() -> None:
    """The Action passes the entries it just wrote, not the whole trail."""
    trail = Trail().merged()
    entries = list(trail.repository.entries(RECORD))
    head = trail.repository.head(RECORD)
    assert head is not None
    merge_at = next(i for i, e in enumerate(entries) if e.to_state.value == "merged")
    assert merge_facts_from_record(head, entries[merge_at:]) == merge_facts_from_record(head, entries)


def test_no_merge_no_facts() -> None:
    trail = Trail()
    trail.send("01")
    head = trail.repository.head(RECORD)
    assert head is not None
    with pytest.raises(MergeFactsError, match="no merge"):
        merge_facts_from_record(head, trail.repository.entries(RECORD))


def test_every_statement_is_valid_for_the_in_toto_bindings() -> None:
    built = statements(Trail().merged())
    assert sorted(built) == ["ci", "reviews", "trail", "vsa"]
    for statement in built.values():
        validate_statement(statement)
    assert {s["predicateType"] for s in built.values()} == {PREDICATE_VSA, PREDICATE_REVIEWS, PREDICATE_TEST_RESULT,
                                                            PREDICATE_TRAIL}


def test_the_validation_rejects_what_the_schema_forbids() -> None:
    """The check is real: a misspelt VSA field, a wrong type and an empty subject each fail."""
    vsa = statements(Trail().merged())["vsa"]
    misspelt = dict(vsa, predicate=dict(vsa["predicate"], verificationResults="PASSED"))
    wrong_type = dict(vsa, predicate=dict(vsa["predicate"], timeVerified="yesterday"))
    no_subject = dict(vsa, subject=[])
    no_result = dict(vsa, predicate={k: v for k, v in vsa["predicate"].items() if k != "verificationResult"})
    levels_string = dict(vsa, predicate=dict(vsa["predicate"], verifiedLevels="ORG_SOURCE_X"))
    for bad in (misspelt, wrong_type):
        with pytest.raises(json_format.ParseError):
            validate_statement(bad)
    with pytest.raises(ValueError, match="subject"):
        validate_statement(no_subject)
    with pytest.raises(ValueError, match="verificationResult"):
        validate_statement(no_result)
    with pytest.raises(ValueError, match="verifiedLevels"):
        validate_statement(levels_string)


def test_the_vsa_says_exactly_what_the_issue_lists() -> None:
    trail = Trail().merged()
    built = statements(trail)
    vsa = built["vsa"]
    assert vsa["_type"] == "https://in-toto.io/Statement/v1"
    assert vsa["subject"] == [{"uri": "git+https://github.com/Codertocat/Hello-World@refs/heads/master",
                               "digest": {"gitCommit": MERGE_SHA}}]
    p = vsa["predicate"]
    assert p["verifier"]["id"].endswith("/action@v0.2.0")
    assert p["timeVerified"] == "2026-11-30T08:00:00Z"
    assert p["resourceUri"] == "git+https://github.com/Codertocat/Hello-World"
    assert p["policy"] == {"uri": "git+https://github.com/Codertocat/Hello-World@"
                                  "f95f852bd8fca8fcc58a9a2d6c842781e32a215e#.github/loopforge.yml",
                           "digest": {"sha256": POLICY_SHA}}
    assert p["verificationResult"] == "PASSED"
    assert p["verifiedLevels"] == sorted([LEVEL_LIFECYCLE, LEVEL_POLICY, LEVEL_CI, LEVEL_REVIEWED,
                                          LEVEL_APPROVED_HEAD])
    payloads = build_statements(trail.facts(), time_verified=WHEN).payloads
    assert p["inputAttestations"] == [
        {"uri": f"attestations/{MERGE_SHA}/{n}", "digest": {"sha256": hashlib.sha256(payloads[n]).hexdigest()}}
        for n in ("reviews", "ci", "trail")]
    for statement in built.values():
        assert statement["subject"] == vsa["subject"]


@pytest.mark.parametrize("case", ["passed", "self-approved", "bypass", "policy-blocked", "no-policy"])
def test_levels_never_claim_what_was_not_checked(case: str) -> None:
    trail = Trail()
    if case == "self-approved":
        trail.merged(reviewer=None)  # the fixture's reviewer is the PR's author
    elif case == "bypass":
        trail.merged(bypass=True)
    elif case == "policy-blocked":
        trail.merged(blocked_by_policy=True)
    elif case == "no-policy":
        trail.merged(policy=None)
    else:
        trail.merged()
    p = statements(trail)["vsa"]["predicate"]
    levels = p["verifiedLevels"]
    assert all(level.startswith("ORG_SOURCE_") for level in levels)
    assert not any("SLSA_SOURCE_LEVEL" in level for level in levels)
    expected = {
        "passed": ("PASSED", {LEVEL_LIFECYCLE, LEVEL_POLICY, LEVEL_CI, LEVEL_REVIEWED, LEVEL_APPROVED_HEAD}),
        "self-approved": ("PASSED", {LEVEL_LIFECYCLE, LEVEL_POLICY, LEVEL_CI}),
        "bypass": ("FAILED", {LEVEL_POLICY}),
        "policy-blocked": ("FAILED", {LEVEL_CI, LEVEL_REVIEWED, LEVEL_APPROVED_HEAD}),
        "no-policy": ("PASSED", {LEVEL_LIFECYCLE, LEVEL_CI, LEVEL_REVIEWED, LEVEL_APPROVED_HEAD}),
    }[case]
    assert (p["verificationResult"], set(levels)) == expected
    if case == "no-policy":
        assert "digest" not in p["policy"]


def test_a_bypass_merge_is_attested_failed_with_its_violation() -> None:
    facts = Trail().merged(bypass=True).facts()
    assert facts.merge_outcome == "violation" and not facts.passed
    assert facts.merge_violation is not None and facts.merge_violation.startswith("lifecycle")
    ci = build_statements(facts, time_verified=WHEN).statement("ci")["predicate"]
    assert ci["result"] == "WARNED" and ci["passedTests"] == []  # no CI was recorded for the merged head


def test_a_policy_block_names_the_rule() -> None:
    facts = Trail().merged(blocked_by_policy=True).facts()
    assert facts.merge_violation == "policy:two-approvals: policy blocks merged: two-approvals is failed"
    assert facts.policy.verdict == "block" and facts.policy.violations == ("two-approvals: 1 of 2 approvals",)


def test_companions_carry_reviews_ci_and_the_trail_binding() -> None:
    trail = Trail().merged()
    built = statements(trail)
    reviews = built["reviews"]["predicate"]
    assert reviews["reviews"] == [{"reviewer": {"login": "octo-reviewer", "id": 583231}, "state": "approved",
                                   "submittedAt": "2019-05-15T15:20:38Z", "commitId": HEAD_SHA}]
    assert reviews["pullRequest"]["author"] == {"login": "Codertocat", "id": 21031067}
    ci = built["ci"]["predicate"]
    assert (ci["result"], ci["passedTests"], ci["failedTests"]) == ("SUCCESS", ["CI"], [])
    assert ci["configuration"][0]["uri"].startswith("https://github.com/Codertocat/Hello-World/actions/runs/")
    binding = built["trail"]["predicate"]
    entries = list(trail.repository.entries(RECORD))
    merge = next(e for e in entries if e.to_state.value == "merged")
    assert binding["recordId"] == RECORD
    assert binding["mergeEntry"] == {"sequence": merge.sequence, "hash": merge.hash, "outcome": "applied"}
    assert binding["policyEntry"]["sequence"] == merge.sequence + 1


def test_statement_bytes_are_deterministic() -> None:
    one = build_statements(Trail(MemoryRepository()).merged().facts(), time_verified=WHEN).payloads
    two = build_statements(Trail(MemoryRepository()).merged().facts(), time_verified=WHEN).payloads
    # entry hashes include recording times, so only the trail binding (and the VSA digesting it) differ
    assert one["reviews"] == two["reviews"] and one["ci"] == two["ci"]
