"""``distinct_teams`` (approvals from N different teams) and the top-level ``disapproval``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from loopforge.policy import FakeContext, PolicyError, Review, evaluate, load_policy
from loopforge.policy.rules import Status, _match_teams

HEAD = "f" * 40
TEAMS = load_policy("version: 1\nrules:\n  - name: two teams\n    require:\n"
                    "      approvals: {count: 2, from: {teams: [acme/web, acme/api, acme/db]}, distinct_teams: 2}\n")


def at(minute: int) -> datetime:
    return datetime(2026, 11, 30, 9, minute, tzinfo=UTC)


def ctx(reviews: list[tuple[str, str, int]], **kw: Any) -> FakeContext:
    base: dict[str, Any] = dict(head_sha=HEAD, author="dev",
                                review_list=[Review(u, s, HEAD, at(m)) for u, s, m in reviews])
    base.update(kw)
    return FakeContext(**base)


MEMBERS = {"acme/web": ["ann", "bea"], "acme/api": ["bea", "cid"], "acme/db": []}


def test_two_approvers_of_one_team_are_not_two_teams() -> None:
    result = evaluate(TEAMS, ctx([("ann", "APPROVED", 1)], teams={**MEMBERS, "acme/web": ["ann", "abe"]}))
    assert result.verdict == "block"
    same_team = evaluate(TEAMS, ctx([("ann", "APPROVED", 1), ("abe", "APPROVED", 2)],
                                    teams={**MEMBERS, "acme/web": ["ann", "abe"]})).result("two teams")
    assert same_team.status is Status.PENDING
    assert "1 of 2 distinct teams (acme/web: " in same_team.reason
    assert "waiting for approvals from 1 more team(s)" in same_team.reason


def test_an_approver_in_two_teams_counts_for_one_and_the_matching_finds_the_other() -> None:
    # bea is in web and api; ann only in web: the assignment must give web to ann and api to bea
    result = evaluate(TEAMS, ctx([("bea", "APPROVED", 1), ("ann", "APPROVED", 2)], teams=MEMBERS)).result("two teams")
    assert result.status is Status.PASSED, result.reason
    assert result.details["teams"] == {"acme/api": "bea", "acme/web": "ann"}
    assert _match_teams({"bea": {"acme/web", "acme/api"}, "ann": {"acme/web"}}) == {"acme/web": "ann",
                                                                                   "acme/api": "bea"}


def test_team_lookups_without_the_token_fail_and_never_approve() -> None:
    result = evaluate(TEAMS, ctx([("bea", "APPROVED", 1), ("ann", "APPROVED", 2)])).result("two teams")
    assert result.status is Status.FAILED and result.missing_permissions == ["members: read"]


@pytest.mark.parametrize("spec, problem", [
    ("{count: 2, from: {teams: [a/b]}, distinct_teams: 2}", "needs at least that many teams"),
    ("{count: 1, from: {teams: [a/b, a/c]}, distinct_teams: 2}", "cannot exceed count"),
    ("{count: 2, distinct_teams: 0, from: {teams: [a/b]}}", "must be >= 1"),
])
def test_distinct_teams_is_checked_on_load(spec: str, problem: str) -> None:
    with pytest.raises(PolicyError, match=problem):
        load_policy(f"version: 1\nrules:\n  - name: r\n    require:\n      approvals: {spec}\n")


# ---------------------------------------------------------------------------------------------- disapproval
DISAPPROVAL = load_policy("version: 1\napprovers:\n  leads: [lee]\ndisapproval:\n  from: {users: [carol], "
                          "approvers: leads}\nrules:\n  - name: one review\n    require: {approvals: {count: 1}}\n")


def test_a_disapproval_blocks_with_who_and_when() -> None:
    evaluation = evaluate(DISAPPROVAL, ctx([("zed", "APPROVED", 1), ("carol", "CHANGES_REQUESTED", 2),
                                            ("dave", "CHANGES_REQUESTED", 3)]))
    assert evaluation.verdict == "block" and evaluation.blocking == ["disapproval"]
    result = evaluation.result("disapproval")
    assert result.status is Status.FAILED
    assert result.details["disapprovals"] == [{"login": "carol", "user_id": None, "at": "2026-11-30T09:02:00Z",
                                              "commit": HEAD}]
    assert result.reason.startswith("disapproved by carol at 2026-11-30T09:02:00Z on fffffff")
    assert evaluation.result("one review").status is Status.PASSED


@pytest.mark.parametrize("release", ["APPROVED", "DISMISSED"])
def test_the_disapprover_releases_it_by_approving_or_dismissal(release: str) -> None:
    evaluation = evaluate(DISAPPROVAL, ctx([("zed", "APPROVED", 1), ("lee", "CHANGES_REQUESTED", 2),
                                            ("lee", release, 3)]))
    assert evaluation.verdict == "pass", evaluation.reason
    assert evaluation.result("disapproval").reason == "no standing disapproval from users carol or approver list leads"


def test_a_comment_does_not_release_it_and_someone_else_cannot() -> None:
    evaluation = evaluate(DISAPPROVAL, ctx([("carol", "CHANGES_REQUESTED", 1), ("carol", "COMMENTED", 2),
                                            ("zed", "APPROVED", 3)]))
    assert evaluation.verdict == "block"


def test_disapproval_applies_even_when_no_rule_does_and_is_a_reserved_name() -> None:
    only = load_policy("version: 1\ndisapproval: {from: {users: [carol]}}\n")
    assert evaluate(only, ctx([])).verdict == "pass"
    assert evaluate(only, ctx([("carol", "CHANGES_REQUESTED", 1)])).verdict == "block"
    with pytest.raises(PolicyError, match="taken by the top-level disapproval"):
        load_policy("version: 1\ndisapproval: {from: {users: [c]}}\nrules:\n  - name: disapproval\n"
                    "    require: {no_labels: [x]}\n")
    with pytest.raises(PolicyError, match="unknown approver list 'nope'"):
        load_policy("version: 1\ndisapproval: {from: {approvers: nope}}\n")


def test_no_rule_applies_still_decides_when_only_disapproval_is_set() -> None:
    deny = load_policy("version: 1\ndisapproval: {from: {users: [carol]}}\noptions: {no_rule_applies: block}\n")
    assert evaluate(deny, ctx([])).verdict == "block"
