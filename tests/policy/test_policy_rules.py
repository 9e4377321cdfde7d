"""Requirements, rule combination, the verdict, vetoes, and ``PolicyGuard`` inside ``LoopService``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from loopforge import LoopService, LoopState
from loopforge.policy import (
    CheckState,
    FakeContext,
    LabelEvent,
    PolicyGuard,
    Review,
    Status,
    evaluate,
    load_policy,
)
from loopforge.policy.evaluate import Evaluation
from loopforge.policy.rules import latest_reviews
from loopforge.trail import Outcome

HEAD = "h" * 40
OLD = "o" * 40
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def ctx(**kw: Any) -> FakeContext:
    kw.setdefault("head_sha", HEAD)
    kw.setdefault("author", "author")
    return FakeContext(**kw)


def run(require: str, context: FakeContext, extra: str = "") -> Evaluation:
    policy = load_policy(f"version: 1\n{extra}rules:\n  - name: r\n    require: {require}\n")
    return evaluate(policy, context)


def status(require: str, context: FakeContext, extra: str = "") -> tuple[Status, str]:
    result = run(require, context, extra).result("r")
    return result.status, result.reason


# ---------------------------------------------------------------------------------------------- ci
def test_ci_passed_pending_failed() -> None:
    ok = {"test": CheckState("test", conclusion="success")}
    wf = {"CI": CheckState("CI", conclusion="success", kind="workflow")}
    assert status("{ci: {checks: [test], workflows: [CI]}}", ctx(checks=ok, workflows=wf)) == (
        Status.PASSED, "CI passed on hhhhhhh: workflow CI (success), check test (success)")
    s, reason = status("{ci: {checks: [test, lint]}}", ctx(checks=ok))
    assert s is Status.PENDING and "check lint has not reported" in reason
    s, reason = status("{ci: {workflows: [CI]}}", ctx(workflows={"CI": CheckState("CI", status="in_progress")}))
    assert s is Status.PENDING and "workflow CI is in_progress" in reason
    s, reason = status("{ci: {checks: [test]}}", ctx(checks={"test": CheckState("test", conclusion="failure")}))
    assert s is Status.FAILED and "check test concluded failure" in reason


def test_ci_conclusions_default_and_custom() -> None:
    skipped = ctx(checks={"test": CheckState("test", conclusion="skipped")})
    assert status("{ci: {checks: [test]}}", skipped)[0] is Status.PASSED
    assert status("{ci: {checks: [test], conclusions: [success]}}", skipped)[0] is Status.FAILED


# ---------------------------------------------------------------------------------------------- approvals
def test_latest_review_per_reviewer() -> None:
    reviews = [Review("alice", "APPROVED", HEAD, at(1)), Review("alice", "CHANGES_REQUESTED", HEAD, at(2)),
               Review("bob", "CHANGES_REQUESTED", HEAD, at(1)), Review("bob", "APPROVED", HEAD, at(3)),
               Review("bob", "COMMENTED", HEAD, at(4)), Review("carol", "APPROVED", HEAD, at(1)),
               Review("Carol", "DISMISSED", HEAD, at(5))]
    latest = latest_reviews(reviews)
    assert {k: v.state for k, v in latest.items()} == {"alice": "CHANGES_REQUESTED", "bob": "APPROVED",
                                                       "carol": "DISMISSED"}
    s, reason = status("{approvals: {count: 2}}", ctx(review_list=reviews))
    assert s is Status.PENDING
    assert reason == "1 of 2 approvals from any reviewer: bob; waiting for 1 more"


def test_approvals_from_approver_list_with_reason() -> None:
    reviews = [Review("alice", "APPROVED", HEAD, at(1)), Review("bob", "APPROVED", HEAD, at(2)),
               Review("mallory", "APPROVED", HEAD, at(3))]
    extra = "approvers: {security: [alice, bob]}\n"
    assert status("{approvals: {count: 2, from: {approvers: security}}}", ctx(review_list=reviews), extra) == (
        Status.PASSED, "2 of 2 approvals from approver list security: alice, bob")
    s, reason = status("{approvals: {count: 2, from: {approvers: security}}}",
                       ctx(review_list=reviews[1:]), extra)
    assert s is Status.PENDING
    assert "not counted: mallory (not approver list security)" in reason


def test_author_and_bots_do_not_count_unless_allowed() -> None:
    reviews = [Review("author", "APPROVED", HEAD, at(1)), Review("helper[bot]", "APPROVED", HEAD, at(2))]
    s, reason = status("{approvals: {count: 1}}", ctx(review_list=reviews))
    assert s is Status.PENDING and "author (the author)" in reason and "helper[bot]" in reason
    assert status("{approvals: {count: 1, allow_author: true}}", ctx(review_list=reviews))[0] is Status.PASSED
    assert status("{approvals: {count: 1, from: {users: ['helper[bot]']}}}",
                  ctx(review_list=reviews))[0] is Status.PASSED


def test_invalidate_on_push_uses_the_review_commit() -> None:
    reviews = [Review("alice", "APPROVED", OLD, at(1)), Review("bob", "APPROVED", HEAD, at(2))]
    assert status("{approvals: {count: 2}}", ctx(review_list=reviews))[0] is Status.PASSED
    s, reason = status("{approvals: {count: 2, invalidate_on_push: true}}", ctx(review_list=reviews))
    assert s is Status.PENDING
    assert "dismissed by push: alice approved ooooooo, before the latest push" in reason
    assert status("{approvals: {count: 1, invalidate_on_push: true}}", ctx(review_list=reviews))[0] is Status.PASSED


def test_approvals_from_team_and_permission() -> None:
    reviews = [Review("alice", "APPROVED", HEAD, at(1))]
    teams = {"org/sec": ["alice"]}
    assert status("{approvals: {from: {teams: [org/sec]}}}", ctx(review_list=reviews, teams=teams))[0] is Status.PASSED
    assert status("{approvals: {from: {teams: [org/sec]}}}",
                  ctx(review_list=reviews, teams={"org/sec": []}))[0] is Status.PENDING
    assert status("{approvals: {from: {permission: write}}}",
                  ctx(review_list=reviews, permissions={"alice": "maintain"}))[0] is Status.PASSED
    assert status("{approvals: {from: {permission: admin}}}",
                  ctx(review_list=reviews, permissions={"alice": "write"}))[0] is Status.PENDING


def test_unreadable_team_fails_with_the_permission_never_passes() -> None:
    reviews = [Review("alice", "APPROVED", HEAD, at(1))]
    evaluation = run("{approvals: {count: 1, from: {teams: [org/sec]}}}", ctx(review_list=reviews, teams=None))
    result = evaluation.result("r")
    assert result.status is Status.FAILED
    assert result.missing_permissions == ["members: read"]
    assert "members: read" in result.reason and "never treated as approved" in result.reason
    assert evaluation.verdict == "block"
    assert evaluation.missing_permissions == ["members: read"]
    assert evaluation.permission_errors() == [f"LoopForge policy rule 'r': missing permission members: read: "
                                              f"{result.reason}"]


def test_approver_list_decides_before_any_team_lookup() -> None:
    reviews = [Review("alice", "APPROVED", HEAD, at(1))]
    c = ctx(review_list=reviews, teams=None)
    s, _ = status("{approvals: {from: {approvers: sec, teams: [org/sec]}}}", c, "approvers: {sec: [alice]}\n")
    assert s is Status.PASSED and not any(call.startswith("team:") for call in c.calls)


# ---------------------------------------------------------------------------------------------- labels
GOV = "approvers: {security: [alice]}\n"
LABEL = "{label: {name: governance-approved, added_by: {approvers: security, permission: admin}}}"


def test_label_present_absent() -> None:
    assert status("{label: ship-it}", ctx(labels=["Ship-It"])) == (Status.PASSED, "label ship-it is present")
    assert status("{label: ship-it}", ctx(labels=[])) == (Status.PENDING, "waiting for label ship-it")


def test_forged_label_does_not_count() -> None:
    forged = ctx(labels=["governance-approved"], permissions={"mallory": "write"},
                 label_event_list=[LabelEvent("governance-approved", "mallory", created_at=at(1))])
    assert status(LABEL, forged, GOV) == (
        Status.FAILED, "label governance-approved was added by mallory who is not allowed "
                       "(needs approver list security or admin permission)")
    only_admin = "{label: {name: governance-approved, added_by: {permission: admin}}}"
    assert status(only_admin, forged)[1] == "label governance-approved was added by mallory who is not allowed " \
                                            "(needs admin)"


def test_label_counts_the_latest_adder() -> None:
    events = [LabelEvent("governance-approved", "alice", created_at=at(1)),
              LabelEvent("governance-approved", "alice", action="unlabeled", created_at=at(2)),
              LabelEvent("governance-approved", "mallory", created_at=at(3))]
    c = ctx(labels=["governance-approved"], label_event_list=events, permissions={})
    assert status(LABEL, c, GOV)[0] is Status.FAILED
    events.reverse()  # alice re-added it last
    c2 = ctx(labels=["governance-approved"], label_event_list=sorted(events, key=lambda e: e.actor != "alice"),
             permissions={})
    c2.label_event_list = [LabelEvent("governance-approved", "mallory", created_at=at(1)),
                           LabelEvent("governance-approved", "alice", created_at=at(5))]
    assert status(LABEL, c2, GOV) == (Status.PASSED, "label governance-approved was added by alice is in approver "
                                                     "list security")


def test_label_added_by_admin_permission_and_bots() -> None:
    admin = ctx(labels=["governance-approved"], permissions={"root": "admin"},
                label_event_list=[LabelEvent("governance-approved", "root")])
    assert status(LABEL, admin, GOV)[0] is Status.PASSED
    bot = ctx(labels=["governance-approved"], permissions={"github-actions[bot]": "admin"},
              label_event_list=[LabelEvent("governance-approved", "github-actions[bot]")])
    s, reason = status(LABEL, bot, GOV)
    assert s is Status.FAILED and "github-actions[bot]" in reason


def test_label_adder_unknown_or_unreadable() -> None:
    unknown = ctx(labels=["governance-approved"], label_event_list=[])
    s, reason = status(LABEL, unknown, GOV)
    assert s is Status.FAILED and "cannot be determined" in reason
    unreadable = ctx(labels=["governance-approved"], permissions=None,
                     label_event_list=[LabelEvent("governance-approved", "carol")])
    result = run(LABEL, unreadable, GOV).result("r")
    assert result.status is Status.FAILED and result.missing_permissions == ["metadata: read"]


def test_no_labels() -> None:
    assert status("{no_labels: [do-not-merge, wip]}", ctx(labels=["WIP"])) == (Status.FAILED, "label wip is present")
    assert status("{no_labels: [do-not-merge]}", ctx(labels=["x"]))[0] is Status.PASSED


# ---------------------------------------------------------------------------------------------- reviews, issues
def test_no_changes_requested() -> None:
    reviews = [Review("carol", "CHANGES_REQUESTED", OLD, at(1)), Review("dave", "CHANGES_REQUESTED", HEAD, at(1)),
               Review("dave", "APPROVED", HEAD, at(2))]
    assert status("{no_changes_requested: true}", ctx(review_list=reviews)) == (
        Status.FAILED, "changes requested by carol (on ooooooo)")
    assert status("{no_changes_requested: true}", ctx(review_list=reviews[1:]))[0] is Status.PASSED
    assert status("{no_changes_requested: {from: {users: [dave]}}}", ctx(review_list=reviews))[0] is Status.PASSED
    unreadable = run("{no_changes_requested: {from: {teams: [org/sec]}}}", ctx(review_list=reviews, teams=None))
    assert unreadable.result("r").status is Status.FAILED  # cannot tell: keeps blocking
    assert unreadable.result("r").missing_permissions == ["members: read"]


def test_linked_issue() -> None:
    assert status("{linked_issue: true}", ctx(body="Fixes #3", issues={"#3": "open"})) == (
        Status.PASSED, "fixes #3 (open)")
    s, reason = status("{linked_issue: true}", ctx(body="no link"))
    assert s is Status.FAILED and "no closing keyword" in reason
    s, reason = status("{linked_issue: true}", ctx(body="Fixes #999", issues={}))
    assert s is Status.FAILED and "#999 is not an issue" in reason
    assert status("{linked_issue: {verify: false}}", ctx(body="Fixes #999", issues={}))[0] is Status.PASSED
    assert status("{linked_issue: true}", ctx(body="closes octo/other#2", issues={"octo/other#2": "closed"}))[0] \
        is Status.PASSED


# ---------------------------------------------------------------------------------------------- combining
def test_all_and_any_pending_vs_failed() -> None:
    c = ctx(labels=["x"], checks={"t": CheckState("t", status="queued")})
    assert status("{all: [{label: x}, {ci: {checks: [t]}}]}", c)[0] is Status.PENDING
    assert status("{all: [{label: x}, {no_labels: [x]}, {ci: {checks: [t]}}]}", c)[0] is Status.FAILED
    assert status("{any: [{no_labels: [x]}, {label: x}]}", c) == (Status.PASSED, "label x is present")
    assert status("{any: [{no_labels: [x]}, {ci: {checks: [t]}}]}", c)[0] is Status.PENDING
    s, reason = status("{any: [{no_labels: [x]}, {label: y}]}", c)
    assert s is Status.PENDING and reason.startswith("needs one of: (label x is present) OR (waiting for label y)")
    assert status("{any: [{no_labels: [x]}, {linked_issue: true}]}", c)[0] is Status.FAILED
    # several keys in one requirement: and
    assert status("{label: x, no_labels: [x]}", c)[0] is Status.FAILED


def test_unexpected_context_error_fails_closed() -> None:
    class Broken(FakeContext):
        def reviews(self) -> Any:
            raise RuntimeError("boom")

    result = run("{approvals: {count: 1}}", Broken()).result("r")
    assert result.status is Status.FAILED and "RuntimeError: boom" in result.reason


POLICY = """version: 1
rules:
  - {name: ci, require: {ci: {checks: [t]}}}
  - {name: docs, if: {labels: [docs]}, require: {label: docs-ok}}
  - {name: maint, require: {approvals: {count: 1, from: {users: [alice]}}}}
  - {name: two, require: {approvals: {count: 2}}}
"""


def test_default_all_and_policy_expression() -> None:
    c = ctx(checks={"t": CheckState("t", conclusion="success")},
            review_list=[Review("alice", "APPROVED", HEAD, at(1))])
    default = evaluate(load_policy(POLICY), c)
    assert default.verdict == "block" and default.blocking == ["two"]
    assert [r.status for r in default.results] == [Status.PASSED, Status.SKIPPED, Status.PASSED, Status.PENDING]
    either = evaluate(load_policy(POLICY + "policy: {all: [ci, docs, {any: [maint, two]}]}\n"), c)
    assert either.verdict == "pass" and either.blocking == [] and either.as_vetoes() == []
    failing = evaluate(load_policy(POLICY + "policy: {all: [ci, docs, {any: [maint, two]}]}\n"),
                       ctx(checks={"t": CheckState("t", conclusion="failure")}))
    assert failing.verdict == "block" and failing.blocking == ["ci", "maint", "two"]


def test_no_rule_applies_option() -> None:
    text = "version: 1\nrules:\n  - {name: a, if: {draft: true}, require: {label: x}}\n"
    assert evaluate(load_policy(text), ctx()).verdict == "pass"
    blocked = evaluate(load_policy(text + "options: {no_rule_applies: block}\n"), ctx())
    assert blocked.verdict == "block" and blocked.as_vetoes()[0].rule == "policy"
    assert evaluate(load_policy("version: 1\n"), ctx()).verdict == "pass"


def test_evaluation_views_and_vetoes() -> None:
    c = ctx(labels=["do-not-merge"], review_list=[], files=[])
    evaluation = evaluate(load_policy("version: 1\nrules:\n  - {name: a, require: {no_labels: [do-not-merge]}}\n"
                                      "  - {name: b, require: {approvals: {count: 1}}}\n"), c)
    assert evaluation.verdict == "block"
    assert [r.name for r in evaluation.failed_rules()] == ["a"]
    assert [r.name for r in evaluation.pending_rules()] == ["b"]
    vetoes = evaluation.as_vetoes()
    assert [v.rule for v in vetoes] == ["policy:a", "policy:b"]
    assert vetoes[0].reason == "a: label do-not-merge is present"
    data = evaluation.as_dict()
    assert data["verdict"] == "block" and data["results"][0]["status"] == "failed"
    assert "| ❌ | a | failed | label do-not-merge is present |" in evaluation.markdown()
    assert evaluation.record_metadata()["policy"]["verdict"] == "block"
    assert evaluation.to_json()


def test_a_pr_that_edits_the_policy_is_noted() -> None:
    from loopforge.policy import ChangedFile

    policy = load_policy("version: 1\n", ".github/loopforge.yml")
    evaluation = evaluate(policy, ctx(files=[ChangedFile(".github/loopforge.yml")]))
    assert any("changes .github/loopforge.yml" in note and "base branch" in note for note in evaluation.notes)
    assert "changes .github/loopforge.yml" in evaluation.markdown()


def test_evaluation_rereads_facts_each_time() -> None:
    policy = load_policy("version: 1\nrules:\n  - {name: a, require: {label: ok}}\n")
    c = ctx(labels=[])
    assert evaluate(policy, c).verdict == "block"
    c.labels.append("ok")
    assert evaluate(policy, c).verdict == "pass"


# ---------------------------------------------------------------------------------------------- the guard
def test_policy_guard_in_loop_service() -> None:
    policy = load_policy("version: 1\nrules:\n  - {name: needs-ok, require: {label: ok}}\n")
    c = ctx(labels=[])
    guard = PolicyGuard(policy, c)
    service = LoopService(guards=[guard])
    record = service.create("octo/repo#1", state=LoopState.PR_CREATED)
    for state in (LoopState.CI_PENDING, LoopState.CI_PASSED):  # only merged is judged
        assert service.transition(record.record_id, state, "ci").success
    check = service.check(record.record_id, LoopState.MERGED)
    assert not check.allowed
    assert check.vetoes[0].rule == "policy:needs-ok"
    assert "needs-ok is pending: waiting for label ok" in check.vetoes[0].reason
    assert check.vetoes[0].details["policy_evaluation"]["verdict"] == "block"
    rejected = service.transition(record.record_id, LoopState.MERGED, "merge")
    assert not rejected.success and rejected.outcome is Outcome.REJECTED
    assert guard.last_evaluation is not None and guard.last_evaluation.verdict == "block"
    observed = service.observe(record.record_id, LoopState.MERGED, "pr.merged")
    assert observed.outcome is Outcome.VIOLATION and observed.entry is not None
    assert observed.entry.rule == "policy:needs-ok"


def test_policy_guard_allows_when_policy_passes() -> None:
    policy = load_policy("version: 1\nrules:\n  - {name: needs-ok, require: {label: ok}}\n")
    service = LoopService(guards=[PolicyGuard(policy, ctx(labels=["ok"]))])
    record = service.create("octo/repo#2", state=LoopState.PR_CREATED)
    service.transition(record.record_id, LoopState.CI_PASSED, "ci")
    assert service.transition(record.record_id, LoopState.MERGED, "merge").success


def test_observe_with_evaluation_vetoes() -> None:
    policy = load_policy("version: 1\nrules:\n  - {name: needs-ok, require: {label: ok}}\n")
    evaluation = evaluate(policy, ctx(labels=[]))
    service = LoopService()
    record = service.create("octo/repo#3", state=LoopState.PR_CREATED)
    service.transition(record.record_id, LoopState.CI_PASSED, "ci")
    result = service.observe(record.record_id, LoopState.MERGED, "pr.merged", violations=evaluation.as_vetoes())
    assert result.outcome is Outcome.VIOLATION and result.entry is not None
    assert result.entry.rule == "policy:needs-ok"


@pytest.mark.parametrize("state", [LoopState.APPROVED])
def test_policy_guard_states_are_configurable(state: LoopState) -> None:
    policy = load_policy("version: 1\nrules:\n  - {name: needs-ok, require: {label: ok}}\n")
    guard = PolicyGuard(policy, ctx(labels=[]), states=[state])
    service = LoopService(guards=[guard])
    record = service.create("octo/repo#4", state=LoopState.PR_CREATED)
    service.transition(record.record_id, LoopState.CI_PASSED, "ci")
    assert not service.transition(record.record_id, state, "review").success


def test_skipped_rules_read_nothing_they_do_not_need() -> None:
    c = ctx(draft=True)
    policy = load_policy("version: 1\nrules:\n  - {name: a, if: {draft: false}, require: {approvals: {count: 1}, "
                         "ci: {checks: [t]}}}\n")
    assert evaluate(policy, c).result("a").status is Status.SKIPPED
    assert c.calls == ["changed_files"]  # only for the "this PR edits the policy" note
