"""Governance end to end: ``entrypoint.py`` run as the Actions runner runs the container, against the fake GitHub
on 127.0.0.1, with the policy, guards and gate scripts seeded on the base branch (``master``).

Payloads are the real ones of tests/fixtures/lifecycle (built from @octokit/webhooks-examples), changed only where
a scenario needs it (``action``, ``label``, ``sender``, head SHA). Every scenario checks the check run on the PR
head (exactly one named ``loopforge``, its status/conclusion, the rule-by-rule table), the ``verdict`` output, the
exit code and the ``policy.evaluated`` entry on the state branch. The fake validates every request and response
against GitHub's OpenAPI description (teardown fails on a violation).

The fake has no endpoints for commit check runs/statuses, the workflow-runs list or org teams, so these policies
use no ``ci:`` requirement (the lifecycle gate covers CI) and no governance token.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from loopforge.github.render import md_escape
from tests.governance import (
    BASE,
    HEAD,
    HEAD_REF,
    PR,
    RECORD,
    Repo,
    assert_checked,
    ci_completed,
    governance_policy,
    merged,
    pr_event,
    reason_of,
    statuses,
)

CODE_DIR = ".github/loopforge"
REPO_OPTIONS = {"record": RECORD}

POLICY = governance_policy(invalidate_on_push="INVALIDATE")
STRICT = POLICY.replace("INVALIDATE", "true")


# ---------------------------------------------------------------------------------------------- 1. high risk
def test_high_risk_pr_is_blocked_pending_then_failed(repo: Repo) -> None:
    repo.policy(STRICT)
    repo.pull()
    waiting = repo.step(ci_completed())
    # only pending rules block: the check waits (in_progress), the job does not fail
    assert waiting.code == 0, waiting.stdout
    assert waiting.outputs["verdict"] == "block" and waiting.outputs["state"] == "ci_passed"
    assert waiting.commands("error") == []
    check = repo.check(HEAD)
    assert_checked(check, "in_progress", None, {"no blockers": "passed", "high-risk governance": "pending"})
    assert md_escape("risk tier: high", 100) in check.output["summary"]
    evaluation = repo.evaluation()
    assert evaluation["verdict"] == "block" and evaluation["risk_tier"] == "high"
    assert evaluation["risk_reason"] == "infra/vpc.tf matches infra/**"
    assert evaluation["head_sha"] == HEAD and evaluation["blocking"] == ["high-risk governance"]
    assert statuses(evaluation) == {"no blockers": "passed", "high-risk governance": "pending"}
    assert "0 of 2 approvals from approver list security" in reason_of(evaluation, "high-risk governance")

    # a failing rule: the same check run fails, the job fails with one ::error naming the rule
    repo.fake.add_label_event(PR, "do-not-merge", "alice")
    blocked = repo.step(pr_event("labeled", label="do-not-merge", sender="alice"))
    assert blocked.code == 1 and blocked.outputs["verdict"] == "block"
    errors = blocked.commands("error")
    assert len(errors) == 1 and "merge blocked" in errors[0] and "no blockers failed" in errors[0], errors
    again = repo.check(HEAD)
    assert again.id == check.id
    assert_checked(again, "completed", "failure", {"no blockers": "failed", "high-risk governance": "pending"})
    assert again.output["title"].startswith("ci_passed — merge blocked (1 rule failed)")
    evaluation = repo.evaluation()
    assert statuses(evaluation) == {"no blockers": "failed", "high-risk governance": "pending"}
    assert evaluation["blocking"] == ["no blockers", "high-risk governance"]
    assert reason_of(evaluation, "no blockers") == "label do-not-merge is present"


def test_low_risk_pr_under_the_same_policy_may_merge(repo: Repo) -> None:
    repo.policy(STRICT)
    repo.pull(files=[("docs/guide.md", 4, 1)])
    result = repo.step(ci_completed())
    assert result.code == 0 and result.outputs["verdict"] == "pass"
    assert_checked(repo.check(HEAD), "completed", "success", {"no blockers": "passed",
                                                              "high-risk governance": "skipped"})
    evaluation = repo.evaluation()
    assert evaluation["verdict"] == "pass" and evaluation["risk_tier"] == "low"
    assert statuses(evaluation) == {"no blockers": "passed", "high-risk governance": "skipped"}


# ---------------------------------------------------------------------------------------------- 2. approval
def test_governance_approval_flips_the_same_check_run_without_a_push(repo: Repo) -> None:
    repo.policy(STRICT)
    repo.pull()
    repo.fake.add_review(PR, "alice", "APPROVED", HEAD)
    repo.fake.add_review(PR, "bob", "APPROVED", HEAD)
    first = repo.step(ci_completed())
    assert first.code == 0 and first.outputs["verdict"] == "block"
    pending = repo.check(HEAD)
    assert_checked(pending, "in_progress", None, {"high-risk governance": "pending"})
    assert "waiting for label governance-approved" in reason_of(repo.evaluation(), "high-risk governance")

    repo.fake.add_label_event(PR, "governance-approved", "alice")
    approved = repo.step(pr_event("labeled", label="governance-approved", sender="alice"))
    assert approved.code == 0, approved.stdout
    assert approved.outputs["verdict"] == "pass" and approved.outputs["state"] == "ci_passed"
    assert approved.commands("error") == []
    check = repo.check(HEAD)
    assert check.id == pending.id, "the same check run is PATCHed, not a second one added"
    assert_checked(check, "completed", "success", {"no blockers": "passed", "high-risk governance": "passed"})
    assert repo.fake.pulls[PR].head_sha == HEAD  # no push happened
    evaluation = repo.evaluation()
    assert evaluation["verdict"] == "pass" and evaluation["blocking"] == []
    assert statuses(evaluation) == {"no blockers": "passed", "high-risk governance": "passed"}
    reason = reason_of(evaluation, "high-risk governance")
    assert "2 of 2 approvals from approver list security: alice, bob" in reason
    assert "label governance-approved was added by alice" in reason
    label_event = [e for e in repo.entries() if e["trigger"] == "pull_request.labeled"]
    assert len(label_event) == 1 and label_event[0]["outcome"] == "noted"  # facts only: no state change


# ---------------------------------------------------------------------------------------------- 3. new push
@pytest.mark.parametrize("invalidate", [True, False], ids=["invalidate_on_push", "approvals_survive_push"])
def test_push_after_approval_blocks_again_when_configured(repo: Repo, invalidate: bool) -> None:
    repo.policy(POLICY.replace("INVALIDATE", "true" if invalidate else "false"))
    repo.pull()
    for user in ("alice", "bob"):
        repo.fake.add_review(PR, user, "APPROVED", HEAD)
    repo.fake.add_label_event(PR, "governance-approved", "alice")
    approved = repo.step(ci_completed())
    assert approved.code == 0 and approved.outputs["verdict"] == "pass"
    old_check = repo.check(HEAD)
    assert_checked(old_check, "completed", "success", {"high-risk governance": "passed"})

    new = repo.fake.set_file(HEAD_REF, "infra/vpc.tf", 'resource "aws_vpc" "main" {}\n')
    repo.pull(new, labels=("governance-approved",), commits=[HEAD, new])
    pushed = repo.step(pr_event("synchronize", sha=new, before=HEAD))
    assert pushed.code == 0 and pushed.outputs["verdict"] == "block" and pushed.outputs["state"] == "ci_pending"
    assert_checked(repo.check(new), "in_progress", None, {"lifecycle": "pending"})
    assert repo.check(HEAD).id == old_check.id  # the old head keeps its own run; nothing was added there

    ci = repo.step(ci_completed(new))
    assert ci.code == 0 and ci.outputs["state"] == "ci_passed"
    check = repo.check(new)
    evaluation = repo.evaluation()
    assert evaluation["head_sha"] == new
    if invalidate:
        assert ci.outputs["verdict"] == "block"
        assert_checked(check, "in_progress", None, {"no blockers": "passed", "high-risk governance": "pending"})
        reason = reason_of(evaluation, "high-risk governance")
        assert "0 of 2 approvals" in reason and f"alice approved {HEAD[:7]}, before the latest push" in reason
        assert evaluation["verdict"] == "block" and evaluation["blocking"] == ["high-risk governance"]
    else:
        assert ci.outputs["verdict"] == "pass"
        assert_checked(check, "completed", "success", {"no blockers": "passed", "high-risk governance": "passed"})
        assert evaluation["verdict"] == "pass"


# ---------------------------------------------------------------------------------------------- 4. policy edit
def test_pr_weakening_the_policy_is_judged_by_the_base_policy(repo: Repo) -> None:
    repo.policy(STRICT)
    permissive = "version: 1\nrules:\n  - name: anything goes\n    require: {no_labels: [never-used]}\n"
    head = repo.fake.set_file(HEAD_REF, ".github/loopforge.yml", permissive)
    repo.pull(head, files=[(".github/loopforge.yml", 4, 14), ("infra/vpc.tf", 10, 0)])
    result = repo.step(ci_completed(head))
    assert result.code == 0 and result.outputs["verdict"] == "block"
    check = repo.check(head)
    assert_checked(check, "in_progress", None, {"no blockers": "passed", "high-risk governance": "pending"})
    assert "anything goes" not in check.output["summary"]
    note = md_escape("This PR changes .github/loopforge.yml; it was evaluated under the base branch's version", 500)
    assert note in check.output["summary"], check.output["summary"]
    evaluation = repo.evaluation()
    assert evaluation["policy"]["sha256"] == hashlib.sha256(STRICT.encode()).hexdigest()
    assert statuses(evaluation) == {"no blockers": "passed", "high-risk governance": "pending"}
    assert any("evaluated under the base branch's version" in n and "never the PR's" in n
               for n in evaluation["notes"]), evaluation["notes"]
    rest = [entry["query"] for entry in repo.fake.log
            if entry["method"] == "GET" and entry["path"].endswith("/contents/.github/loopforge.yml")]
    assert all(q == f"ref={BASE}" for q in rest), rest  # never the head ref or SHA
    bodies = [json.loads(entry["body"]) for entry in repo.fake.log if entry["path"].startswith("/graphql/query")]
    reads = [b for b in bodies if "policyPath" in b["variables"]]
    # the one read takes the policy at the tip of the PR's base branch (pr.baseRef), never at its head
    assert reads and all("baseRef { target" in b["query"] and "headRef {" not in b["query"] for b in reads), reads


# ---------------------------------------------------------------------------------------------- 5. bypass
def test_bypass_merge_is_a_violation_naming_the_blocking_rules(repo: Repo) -> None:
    repo.policy(STRICT)
    repo.pull(labels=("do-not-merge",))
    blocked = repo.step(ci_completed())
    assert blocked.code == 0 and blocked.outputs["verdict"] == "block"  # workflow_run: the check blocks
    check = repo.check(HEAD)
    assert_checked(check, "completed", "failure", {"no blockers": "failed", "high-risk governance": "pending"})

    merge = repo.merge_commit()
    repo.pull(labels=("do-not-merge",), state="closed", merged=True, merged_by="mallory")
    result = repo.step(merged(merge))
    assert result.code == 1 and result.outputs["state"] == "merged"
    assert result.outputs["verdict"] == "block"  # the gate as it stood when the merge was recorded
    errors = result.commands("error")
    assert len(errors) == 1, result.stdout
    assert ("ci_passed → merged broke policy:no blockers, policy:high-risk governance, check:loopforge"
            in errors[0]), errors
    assert "merged while the check loopforge said block on the head" in errors[0]
    after = repo.check(HEAD)
    assert after.id == check.id
    assert_checked(after, "completed", "failure", {"no blockers": "failed", "high-risk governance": "pending"})
    assert "[!WARNING]" in after.output["summary"] and "1 violation" in after.output["title"]
    violations = [e for e in repo.entries() if e["outcome"] == "violation"]
    assert len(violations) == 1
    assert violations[0]["to_state"] == "merged" and violations[0]["trigger"] == "pull_request.closed"
    assert violations[0]["rule"] == "policy:no blockers, policy:high-risk governance, check:loopforge"
    assert "label do-not-merge is present" in violations[0]["reason"]
    assert repo.head()["state"] == "merged" and repo.head()["violations"] == 1
    evaluation = repo.evaluation()
    assert evaluation["verdict"] == "block"
    assert statuses(evaluation) == {"no blockers": "failed", "high-risk governance": "pending"}


# ---------------------------------------------------------------------------------------------- 6. guards
TICKET_GUARD = """\
from loopforge import TransitionError


def require_change_ticket(record, previous_state, new_state, trigger):
    title = record.metadata["github"]["pr"]["title"]
    if "CHG-" not in title:
        raise TransitionError(f"no change ticket in {title!r}", rule="change-ticket")
    return True
"""


def loaded_marker(marker: Path) -> str:
    """A module that records being imported (a guard from the PR's code must never be)."""
    return (f"from pathlib import Path\nPath({str(marker)!r}).write_text('imported')\n\n\n"
            "def require_change_ticket(*args):\n    return True\n\n\ndef allow(*args):\n    return True\n")


@pytest.mark.parametrize("title, verdict", [("Update the README with new information.", "block"),
                                            ("CHG-1234: open the VPC", "pass")], ids=["no-ticket", "ticket"])
def test_rule_guard_from_the_base_branch_decides(repo: Repo, tmp_path: Path, title: str, verdict: str) -> None:
    repo.policy("version: 1\nrules:\n  - name: change ticket\n    require:\n"
                "      guard: release_guards:require_change_ticket\n")
    repo.fake.set_file(BASE, f"{CODE_DIR}/release_guards.py", TICKET_GUARD)
    marker = tmp_path / "pr-guard-imported"
    repo.fake.set_file(HEAD_REF, f"{CODE_DIR}/release_guards.py", loaded_marker(marker))
    repo.pull(title=title, labels=())
    result = repo.step(ci_completed(), workspace={f"{CODE_DIR}/release_guards.py": loaded_marker(marker),
                                                  "release_guards.py": loaded_marker(marker)})
    assert result.outputs["verdict"] == verdict
    check = repo.check(HEAD)
    evaluation = repo.evaluation()
    assert result.code == 0  # workflow_run: the check blocks
    if verdict == "block":
        assert_checked(check, "completed", "failure", {"change ticket": "failed"})
        assert (reason_of(evaluation, "change ticket")
                == "guard release_guards:require_change_ticket refused: no change ticket in "
                   "'Update the README with new information.'")
    else:
        assert_checked(check, "completed", "success", {"change ticket": "passed"})
        assert reason_of(evaluation, "change ticket") == "guard release_guards:require_change_ticket allowed"
    assert statuses(evaluation)["change ticket"] == ("failed" if verdict == "block" else "passed")
    assert not marker.exists(), "a guard module from the PR's code was imported"


def test_policy_guard_from_the_base_branch_vetoes_the_merge(repo: Repo, tmp_path: Path) -> None:
    repo.policy('version: 1\nguards: ["freeze:no_merge_during_freeze"]\n'
                "rules:\n  - name: no blockers\n    require: {no_labels: [do-not-merge]}\n")
    repo.fake.set_file(BASE, f"{CODE_DIR}/freeze.py", (
        "from loopforge import LoopState, TransitionError\n\n\n"
        "def no_merge_during_freeze(record, previous_state, new_state, trigger):\n"
        "    if new_state is LoopState.MERGED:\n"
        "        raise TransitionError('merge freeze until the release is out', rule='merge-freeze')\n"))
    marker = tmp_path / "pr-guard-imported"
    repo.fake.set_file(HEAD_REF, f"{CODE_DIR}/freeze.py",
                       loaded_marker(marker) + "\n\ndef no_merge_during_freeze(*args):\n    return True\n")
    repo.pull(files=[("docs/guide.md", 1, 0)])
    result = repo.step(ci_completed(), workspace={f"{CODE_DIR}/freeze.py": loaded_marker(marker)})
    assert result.code == 0 and result.outputs["verdict"] == "block"  # workflow_run: the check blocks
    assert result.outputs["state"] == "ci_passed"  # the guard vetoes merged only, not the other moves
    assert result.commands("error") == [] and "may not merge: merge-freeze failed" in result.stdout
    check = repo.check(HEAD)
    assert_checked(check, "completed", "failure", {"no blockers": "passed", "merge-freeze": "failed"})
    assert "merge freeze until the release is out" in check.output["summary"]
    # the trail's evaluation holds the policy's rules; the guard is a veto on the move, shown in the gate
    assert statuses(repo.evaluation()) == {"no blockers": "passed"}
    assert not marker.exists()


def test_guard_module_only_on_the_pr_head_is_never_loaded(repo: Repo, tmp_path: Path) -> None:
    repo.policy('version: 1\nguards: ["head_only:allow"]\n'
                "rules:\n  - name: no blockers\n    require: {no_labels: [do-not-merge]}\n")
    repo.fake.set_file(BASE, f"{CODE_DIR}/release_guards.py", TICKET_GUARD)  # the code dir exists on the base
    marker = tmp_path / "pr-guard-imported"
    repo.fake.set_file(HEAD_REF, f"{CODE_DIR}/head_only.py", loaded_marker(marker))
    repo.pull(files=[(f"{CODE_DIR}/head_only.py", 9, 0)])
    result = repo.step(ci_completed(), workspace={f"{CODE_DIR}/head_only.py": loaded_marker(marker),
                                                  "head_only.py": loaded_marker(marker)})
    assert not marker.exists(), "a guard module from the PR's code was imported"
    assert result.code == 1 and result.outputs["verdict"] == "block"
    policy_errors = [e for e in result.commands("error") if "policy error" in e]
    assert len(policy_errors) == 1 and "module head_only not found under code_dir" in policy_errors[0]
    check = repo.check(HEAD)
    assert_checked(check, "completed", "failure", {"policy": "failed", "no blockers": "passed"})
    assert "head\\_only" in check.output["summary"]
    assert statuses(repo.evaluation()) == {"no blockers": "passed"}


# ---------------------------------------------------------------------------------------------- 7. gates
REVIEW_SCRIPT = """\
import json
import os
import sys
import time
from pathlib import Path

mode = sys.argv[sys.argv.index("--mode") + 1]
question = json.load(sys.stdin)
seen = {"question": question, "cwd": os.getcwd(), "tokens": sorted(k for k in os.environ if "TOKEN" in k)}
Path(os.environ["GATE_SEEN"]).write_text(json.dumps(seen))
if mode == "timeout":
    time.sleep(60)
print("reviewing...")  # log lines before the answer are tolerated
if mode == "block":
    print(json.dumps({"verdict": "block", "reason": "opens 0.0.0.0/0 on port 22",
                      "summary": "### Findings\\n- ssh open to the world"}))
else:
    print(json.dumps({"verdict": "allow", "reason": "no findings"}))
"""
PR_REVIEW_SCRIPT = 'import json\nprint(json.dumps({"verdict": "allow", "reason": "the PR approves itself"}))\n'


@pytest.mark.parametrize("mode, timeout, verdict, reason", [
    ("block", 30, "block", "gate security-review blocked: opens 0.0.0.0/0 on port 22"),
    ("allow", 30, "pass", "gate security-review allowed: no findings"),
    ("timeout", 2, "block", "gate security-review timed out after 2s (fail-closed)"),
], ids=["blocks", "allows", "times-out"])
def test_external_gate_from_the_base_branch(repo: Repo, tmp_path: Path, mode: str, timeout: int, verdict: str,
                                            reason: str) -> None:
    repo.policy("version: 1\nrisk:\n  high: {files: [\"infra/**\"]}\nrules:\n  - name: security review\n"
                "    if: {risk: high}\n    require:\n      gate:\n        name: security-review\n"
                f"        command: \"python3 {CODE_DIR}/review.py --mode {mode}\"\n        timeout: {timeout}\n")
    repo.fake.set_file(BASE, f"{CODE_DIR}/review.py", REVIEW_SCRIPT)
    repo.fake.set_file(HEAD_REF, f"{CODE_DIR}/review.py", PR_REVIEW_SCRIPT)
    repo.pull()
    seen_file = tmp_path / "gate-seen.json"
    result = repo.step(ci_completed(), workspace={f"{CODE_DIR}/review.py": PR_REVIEW_SCRIPT},
                       extra_env={"GATE_SEEN": str(seen_file), "GITHUB_TOKEN": "ghs_secret", "GH_TOKEN": "x"})
    assert result.outputs["verdict"] == verdict
    assert result.code == 0, result.stdout  # workflow_run: the check blocks
    status = "passed" if verdict == "pass" else "failed"
    check = repo.check(HEAD)
    assert_checked(check, "completed", "success" if verdict == "pass" else "failure", {"security review": status})
    assert md_escape(reason, 300) in check.output["summary"]
    evaluation = repo.evaluation()
    assert statuses(evaluation) == {"security review": status}
    assert reason_of(evaluation, "security review") == reason
    gate = evaluation["gates"]["security-review"]
    assert gate["head_sha"] == HEAD and gate["timed_out"] is (mode == "timeout")
    assert gate["verdict"] == ("allow" if verdict == "pass" else "block")
    if mode == "block":
        assert gate["summary"] == "### Findings\n- ssh open to the world"
    # the base branch's script ran (the PR's copy always allows), in the base checkout, without the tokens
    seen = json.loads(seen_file.read_text())
    assert "loopforge-base-" in seen["cwd"] and "workspace" not in seen["cwd"]
    assert seen["tokens"] == []
    question = seen["question"]
    assert question["gate"] == "security-review" and question["rule"] == "security review"
    assert question["risk_tier"] == "high" and question["pull_request"]["head_sha"] == HEAD
    assert [f["filename"] for f in question["changed_files"]] == ["infra/vpc.tf", "README.md"]


# ---------------------------------------------------------------------------------------------- hostile people
def test_forged_governance_label_does_not_count(repo: Repo) -> None:
    repo.policy(STRICT)
    repo.pull()
    repo.fake.set_permission("mallory", "write")
    for user in ("alice", "bob"):
        repo.fake.add_review(PR, user, "APPROVED", HEAD)
    repo.fake.add_label_event(PR, "governance-approved", "mallory")
    result = repo.step(pr_event("labeled", label="governance-approved", sender="mallory"))
    assert result.code == 1 and result.outputs["verdict"] == "block"
    errors = result.commands("error")
    assert len(errors) == 1 and "high-risk governance failed" in errors[0], errors
    check = repo.check(HEAD)
    assert_checked(check, "completed", "failure", {"no blockers": "passed", "high-risk governance": "failed"})
    evaluation = repo.evaluation()
    assert statuses(evaluation) == {"no blockers": "passed", "high-risk governance": "failed"}
    reason = reason_of(evaluation, "high-risk governance")
    assert "label governance-approved was added by mallory who is not allowed" in reason
    assert "2 of 2 approvals" not in reason  # the approvals were fine: only the label failed
    assert repo.fake.count("GET", r"/collaborators/mallory/permission") >= 1  # the role was really checked


def test_missing_team_permission_is_an_error_and_never_approves(repo: Repo) -> None:
    repo.policy("version: 1\nrules:\n  - name: security team approval\n    require:\n"
                "      approvals: {count: 1, from: {teams: [acme/security]}}\n")
    repo.pull()
    repo.fake.add_team_member("acme", "security", "alice")  # a member, but GITHUB_TOKEN cannot see teams
    repo.fake.add_review(PR, "alice", "APPROVED", HEAD)
    result = repo.step(ci_completed())
    assert result.code == 1 and result.outputs["verdict"] == "block"
    permission_errors = [e for e in result.commands("error") if "missing permission" in e]
    assert len(permission_errors) == 1 and "members: read" in permission_errors[0], result.stdout
    check = repo.check(HEAD)
    assert_checked(check, "completed", "failure", {"security team approval": "failed"})
    assert md_escape("members: read", 100) in check.output["summary"]
    evaluation = repo.evaluation()
    assert evaluation["verdict"] == "block" and evaluation["missing_permissions"] == ["members: read"]
    result_ = evaluation["results"][0]
    assert result_["status"] == "failed" and result_["missing_permissions"] == ["members: read"]
    assert "never treated as approved" in result_["reason"]
    assert repo.fake.count(path=r"^/orgs/") == 0  # not even tried with GITHUB_TOKEN
