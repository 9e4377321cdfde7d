"""Governance beyond policy-bot, end to end: ``entrypoint.py`` run as the Actions runner runs the container, against
the fake GitHub on 127.0.0.1 (validated against GitHub's OpenAPI description).

* approvals that survive a rebase with the same diff, and go stale (listed in the check run) when the diff changes;
* a CODEOWNERS rule across two owners' paths;
* a disapproval and its release;
* a shared policy read from another repository (blocked with an ``::error`` without the governance token);
* ``loopforge policy explain --pr`` against the same fake, agreeing with the Action's verdict.

Commits here are real commits of the fake's git store, so blob ids and merge bases are what GitHub would answer.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
from pathlib import Path
from typing import Any

from loopforge.github.render import md_escape
from loopforge.policy.explain import run as explain_run
from tests.action_harness import StepResult
from tests.fakegithub.gitstore import Person, TreeEntry
from tests.governance import (
    BASE,
    HEAD_REF,
    PR,
    RECORD,
    SAME_DIFF_POLICY,
    VPC,
    Repo,
    assert_checked,
    ci_completed,
    pr_event,
    reason_of,
    same_diff_life,
    second_ci_event,
    statuses,
)
from tests.paths import ROOT

REPO_OPTIONS = {"record": RECORD}


def rebase(repo: Repo, files: dict[str, str]) -> str:
    """The head branch recreated with ``files`` on a newer tip of the base branch: a rebase (new SHA, new parent).

    The base moves first (a file the PR does not touch), so the rebased commit never equals the old head: the fake
    dates commits to the second, and the same tree on the same parent in the same second would be the same SHA."""
    repo.fake.set_file(BASE, f"base-moved-{len(repo.fake.requests)}.txt", "the base moved on\n")
    repo.fake.delete_branch(HEAD_REF)
    sha = ""
    for path, text in files.items():
        sha = repo.fake.set_file(HEAD_REF, path, text)
    return sha


def stale_section(summary: str) -> str:
    assert "**Stale approvals**" in summary, summary
    return summary.split("**Stale approvals**", 1)[1]


def approved_vpc(repo: Repo) -> tuple[str, StepResult]:
    """The same-diff policy, a PR adding infra/vpc.tf approved by alice, and its CI run: (head SHA, CI step)."""
    repo.policy(SAME_DIFF_POLICY)
    first = repo.fake.set_file(HEAD_REF, "infra/vpc.tf", VPC)
    repo.pull(first, files=[("infra/vpc.tf", 1, 0, "added")])
    repo.fake.add_review(PR, "alice", "APPROVED", first)
    return first, repo.step(ci_completed(first))


# ---------------------------------------------------------------------------------------------- 1 + 2. same diff
def test_approval_survives_a_same_diff_rebase_and_goes_stale_when_the_diff_changes(repo: Repo) -> None:
    first, approved = approved_vpc(repo)
    assert approved.code == 0 and approved.outputs["verdict"] == "pass", approved.stdout
    assert_checked(repo.check(first), "completed", "success", {"infra approval": "passed"})
    evaluation = repo.evaluation()
    fingerprint = evaluation["diff_fingerprint"]["value"]
    assert isinstance(fingerprint, str) and len(fingerprint) == 64
    ledger = repo.head()["metadata"]["policy"]
    assert ledger["diff_fingerprints"] == {first: fingerprint}
    alice = ledger["approvals"]["alice"]
    assert (alice["login"], alice["commit"], alice["fingerprint"]) == ("alice", first, fingerprint)
    assert isinstance(alice["user_id"], int)

    # the base branch moves on (a file the PR does not touch); the author rebases: new SHA, same diff
    repo.fake.set_file(BASE, "docs/release.md", "v2\n")
    rebased = rebase(repo, {"infra/vpc.tf": VPC})
    assert rebased != first
    repo.pull(rebased, files=[("infra/vpc.tf", 1, 0, "added")])
    pushed = repo.step(pr_event("synchronize", sha=rebased, before=first))
    assert pushed.outputs["state"] == "ci_pending" and pushed.code == 0
    still = repo.step(ci_completed(rebased))
    assert still.code == 0 and still.outputs["verdict"] == "pass", still.stdout
    check = repo.check(rebased)
    assert_checked(check, "completed", "success", {"infra approval": "passed"})
    assert "Stale approvals" not in check.output["summary"]
    evaluation = repo.evaluation()
    assert evaluation["head_sha"] == rebased
    assert evaluation["diff_fingerprint"]["value"] == fingerprint  # same files, same blobs on both sides
    carried = f"approval by alice carried from {first[:7]}: same diff"
    assert carried in evaluation["notes"]
    assert carried in reason_of(evaluation, "infra approval")
    assert evaluation["carried_approvals"] == [{"login": "alice", "user_id": alice["user_id"], "from": first,
                                                "to": rebased}]
    assert md_escape(carried, 500) in check.output["summary"]

    # a push that changes the diff: the approval is stale, and the check run lists it with its commit
    changed = repo.fake.set_file(HEAD_REF, "infra/vpc.tf", VPC + 'resource "aws_subnet" "a" {}\n')
    repo.pull(changed, files=[("infra/vpc.tf", 2, 0, "added")])
    repo.step(pr_event("synchronize", sha=changed, before=rebased))
    blocked = repo.step(ci_completed(changed))
    assert blocked.code == 0 and blocked.outputs["verdict"] == "block"  # pending: waiting for a fresh approval
    check = repo.check(changed)
    assert_checked(check, "in_progress", None, {"infra approval": "pending"})
    section = stale_section(check.output["summary"])
    assert f"alice approved `{first[:7]}` — the diff changed" in section, section
    evaluation = repo.evaluation()
    assert evaluation["stale_approvals"] == [{"login": "alice", "commit": first, "why": "the diff changed"}]
    assert evaluation["diff_fingerprint"]["value"] != fingerprint
    assert f"alice approved {first[:7]}, before the latest push (the diff changed)" in reason_of(
        evaluation, "infra approval")


def update_merge(repo: Repo) -> str:
    """GitHub's "Update branch": a merge commit of the base tip into the head (two parents), on the head branch."""
    fake = repo.fake
    head, base = fake.branch_sha(HEAD_REF), fake.branch_sha(BASE)
    assert head and base
    files = fake.git.files(fake.git.commits[head].tree)
    tree = fake.git.edit(fake.git.commits[base].tree,
                         {p: TreeEntry("", "100644", "blob", sha) for p, sha in files.items()
                          if fake.git.lookup(fake.git.commits[base].tree, p) is None})
    me = Person("web-flow", "noreply@github.com", "2026-11-30T09:00:00Z")
    sha = fake.git.put_commit(tree, [head, base], f"Merge branch '{BASE}' into {HEAD_REF}", me, me)
    fake.refs[f"refs/heads/{HEAD_REF}"] = sha
    return sha


def test_approval_survives_an_update_merge_of_the_base(repo: Repo) -> None:
    repo.policy(SAME_DIFF_POLICY)
    first = repo.fake.set_file(HEAD_REF, "infra/vpc.tf", VPC)
    repo.pull(first, files=[("infra/vpc.tf", 1, 0, "added")])
    repo.fake.add_review(PR, "alice", "APPROVED", first)
    assert repo.step(ci_completed(first)).outputs["verdict"] == "pass"
    repo.fake.set_file(BASE, "docs/release.md", "v2\n")
    merged = update_merge(repo)
    repo.pull(merged, files=[("infra/vpc.tf", 1, 0, "added")], commits=[first, merged])
    repo.step(pr_event("synchronize", sha=merged, before=first))
    result = repo.step(ci_completed(merged))
    assert result.outputs["verdict"] == "pass", result.stdout
    assert f"approval by alice carried from {first[:7]}: same diff" in repo.evaluation()["notes"]


def test_a_head_fingerprint_is_read_once_in_one_or_two_queries_and_never_through_rest() -> None:
    """The floor with ``except_same_diff``: the first event that sees a head reads its blob ids in one GraphQL
    query (two when the head is behind its base); every other event finds the fingerprint in the record and costs
    what it costs without the option (3 for a PR event, 4 for ``workflow_run``)."""
    costs = same_diff_life()
    assert [(c.requests, c.queries, c.compares, c.approval, c.verdict) for c in costs] == [
        (7, 2, 0, "none", "block"),  # the first write creates the data branch; the head's fingerprint: +1 query
        (3, 1, 0, "counted", "block"),  # the record has it (CI has not run yet)
        (4, 2, 0, "counted", "pass"),
        (4, 2, 0, "carried over", "block"),  # rebased onto the base's tip: +1 query; CI pending
        (4, 2, 0, "carried over", "pass"),
        (5, 3, 0, "stale: the diff changed", "block"),  # behind the base: +2 queries (the merge base's blobs)
        (4, 2, 0, "stale: the diff changed", "block"),
    ]


def test_plain_invalidate_on_push_lists_the_stale_approval(repo: Repo) -> None:
    repo.policy(SAME_DIFF_POLICY.replace("{except_same_diff: true}", "true"))
    first = repo.fake.set_file(HEAD_REF, "infra/vpc.tf", VPC)
    repo.pull(first, files=[("infra/vpc.tf", 1, 0, "added")])
    repo.fake.add_review(PR, "alice", "APPROVED", first)
    assert repo.step(ci_completed(first)).outputs["verdict"] == "pass"
    rebased = rebase(repo, {"infra/vpc.tf": VPC})
    repo.pull(rebased, files=[("infra/vpc.tf", 1, 0, "added")])
    result = repo.step(ci_completed(rebased))
    assert result.outputs["verdict"] == "block"  # true: any push invalidates, even with the same diff
    assert f"alice approved `{first[:7]}` — a push made it stale" in stale_section(
        repo.check(rebased).output["summary"])
    assert "diff_fingerprints" not in repo.head()["metadata"]["policy"]  # no fingerprints unless asked for
    assert repo.fake.count("GET", r"/compare/") == 0


# ---------------------------------------------------------------------------------------------- 3. CODEOWNERS
CODEOWNERS = """\
# owners of this repository
*            @carol
/infra/      @alice
/docs/       @bob
"""


def test_codeowners_rule_across_two_owners_paths(repo: Repo) -> None:
    repo.policy("version: 1\nrules:\n  - name: code owners\n    require:\n"
                "      approvals: {count: 1, from: {codeowners: true}}\n")
    repo.fake.set_file(BASE, ".github/CODEOWNERS", CODEOWNERS)
    repo.fake.set_file(HEAD_REF, ".github/CODEOWNERS", "* @mallory\n")  # the PR's copy never counts
    repo.pull(files=[("infra/vpc.tf", 10, 0), ("docs/guide.md", 3, 1)])
    repo.fake.add_review(PR, "alice", "APPROVED")
    repo.fake.add_review(PR, "mallory", "APPROVED")
    half = repo.step(ci_completed())
    assert half.code == 0 and half.outputs["verdict"] == "block"
    assert_checked(repo.check(pr_head(repo)), "in_progress", None, {"code owners": "pending"})
    reason = reason_of(repo.evaluation(), "code owners")
    assert "1 of 2 owned file(s) approved by an owner" in reason
    assert "waiting for code owners of docs/guide.md (@bob)" in reason
    files = repo.evaluation()["results"][0]["details"]["files"]
    assert files["infra/vpc.tf"] == {"owners": ["@alice"], "line": 3, "approved_by": "alice"}
    assert files["docs/guide.md"]["approved_by"] is None

    repo.fake.add_review(PR, "bob", "APPROVED")
    both = repo.step(ci_completed())
    assert both.code == 0 and both.outputs["verdict"] == "pass", both.stdout
    assert_checked(repo.check(pr_head(repo)), "completed", "success", {"code owners": "passed"})
    assert "2 of 2 owned file(s) approved by an owner" in reason_of(repo.evaluation(), "code owners")
    # read at the base branch's tip in the event's one GraphQL query, never through REST
    assert not [e for e in repo.fake.log if e["path"].endswith("CODEOWNERS")]


def second_event_requests(rule: str) -> int:
    """Requests of the second CI event on a governed PR (the record exists) under the policy ``rule``."""
    calls, result = second_ci_event(rule)
    assert result.outputs["verdict"] == "pass", result.stdout
    return len(calls)


def test_a_codeowners_policy_costs_no_more_requests_than_a_plain_one() -> None:
    plain = second_event_requests("{count: 1, invalidate_on_push: true}")
    owners = second_event_requests("{count: 1, from: {codeowners: true}, invalidate_on_push: true}")
    # a workflow_run: the routing query, the snapshot query, the write, the check-run PATCH
    assert owners == plain == 4


def test_unparseable_codeowners_fails_naming_the_line(repo: Repo) -> None:
    repo.policy("version: 1\nrules:\n  - name: code owners\n    require:\n"
                "      approvals: {count: 1, from: {codeowners: true}}\n")
    repo.fake.set_file(BASE, "CODEOWNERS", "/infra/ @alice\n!/infra/public/ @bob\n")
    repo.pull(files=[("infra/vpc.tf", 10, 0)])
    repo.fake.add_review(PR, "alice", "APPROVED")
    result = repo.step(ci_completed())
    assert result.code == 0 and result.outputs["verdict"] == "block"  # a CI event's job does not fail: the check does
    assert "may not merge: code owners failed" in result.stdout  # said in the log; the job itself passes
    assert_checked(repo.check(pr_head(repo)), "completed", "failure", {"code owners": "failed"})
    assert "CODEOWNERS line 2: negated pattern" in reason_of(repo.evaluation(), "code owners")


def pr_head(repo: Repo) -> str:
    return repo.fake.pulls[PR].head_sha


# ---------------------------------------------------------------------------------------------- 4. disapproval
def test_disapproval_blocks_until_the_same_person_approves(repo: Repo) -> None:
    repo.policy("version: 1\ndisapproval:\n  from: {users: [carol]}\nrules:\n  - name: no blockers\n"
                "    require: {no_labels: [do-not-merge]}\n")
    repo.pull(files=[("src/app.py", 3, 1)])
    repo.fake.add_review(PR, "dave", "CHANGES_REQUESTED")  # not one of the disapprovers: no effect
    review = repo.fake.add_review(PR, "carol", "CHANGES_REQUESTED")
    blocked = repo.step(pr_event("labeled", label="ready", sender="carol"))  # the PR's own job: it fails
    assert blocked.code == 1 and blocked.outputs["verdict"] == "block"
    errors = blocked.commands("error")
    assert len(errors) == 1 and "disapproval failed" in errors[0], errors
    assert_checked(repo.check(pr_head(repo)), "completed", "failure",
                   {"no blockers": "passed", "disapproval": "failed"})
    evaluation = repo.evaluation()
    assert evaluation["blocking"] == ["disapproval"]
    standing = evaluation["results"][-1]["details"]["disapprovals"]
    assert [(d["login"], d["at"], d["commit"]) for d in standing] == [("carol", review.submitted_at,
                                                                       pr_head(repo))]
    assert f"disapproved by carol at {review.submitted_at}" in reason_of(evaluation, "disapproval")

    repo.fake.add_review(PR, "carol", "APPROVED")
    released = repo.step(ci_completed())
    assert released.code == 0 and released.outputs["verdict"] == "pass", released.stdout
    assert_checked(repo.check(pr_head(repo)), "completed", "success",
                   {"no blockers": "passed", "disapproval": "passed"})
    assert statuses(repo.evaluation()) == {"no blockers": "passed", "disapproval": "passed"}


# ---------------------------------------------------------------------------------------------- 5. extends
SHARED = """\
version: 1
approvers:
  security: [alice]
rules:
  - name: security review
    require: {approvals: {count: 1, from: {approvers: security}}}
  - name: no blockers
    require: {no_labels: [do-not-merge]}
"""
LOCAL = """\
version: 1
extends: acme/.github:loopforge/base.yml@main
rules:
  - name: no blockers
    require: {no_labels: [do-not-merge, wip]}
"""


def test_shared_policy_from_another_repository(repo: Repo) -> None:
    repo.policy(LOCAL)
    repo.fake.add_other_repo_file("acme/.github", "main", "loopforge/base.yml", SHARED, tokens=("ghs_governance",))
    repo.pull(files=[("src/app.py", 3, 1)], labels=("wip",))
    repo.fake.add_review(PR, "alice", "APPROVED")

    # the workflow's GITHUB_TOKEN cannot read another repository: blocked, with an ::error naming the permission
    unread = repo.step(ci_completed())
    assert unread.code == 1 and unread.outputs["verdict"] == "block"
    policy_errors = [e for e in unread.commands("error") if "policy error" in e]
    assert len(policy_errors) == 1, unread.stdout
    assert "cannot read the shared policy acme/.github:loopforge/base.yml@main" in policy_errors[0]
    assert "needs contents: read on acme/.github" in policy_errors[0]
    assert_checked(repo.check(pr_head(repo)), "completed", "failure", {"policy": "failed"})

    # with the governance token: merged, both digests in the trail and in the summary
    result = repo.step(ci_completed(), inputs={"GOVERNANCE-TOKEN": "ghs_governance"})
    assert result.outputs["verdict"] == "block" and result.code == 0  # the local rule adds "wip"
    assert result.commands("error") == []
    check = repo.check(pr_head(repo))
    assert_checked(check, "completed", "failure", {"security review": "passed", "no blockers": "failed"})
    evaluation = repo.evaluation()
    shared_sha = hashlib.sha256(SHARED.encode()).hexdigest()
    local_sha = hashlib.sha256(LOCAL.encode()).hexdigest()
    assert evaluation["policy"]["parts"] == [
        {"source": "acme/.github:loopforge/base.yml@main", "sha256": shared_sha},
        {"source": ".github/loopforge.yml", "sha256": local_sha}]
    assert evaluation["policy"]["sha256"] == hashlib.sha256(f"{shared_sha}\n{local_sha}".encode()).hexdigest()
    summary = check.output["summary"]
    assert md_escape(f"sha256 {shared_sha[:12]}", 500) in summary and md_escape(f"sha256 {local_sha[:12]}",
                                                                                  500) in summary
    assert reason_of(evaluation, "no blockers") == "label wip is present"


# ---------------------------------------------------------------------------------------------- 6. explain --pr
def explain(repo: Repo, *args: str) -> tuple[int, str, str]:
    out = io.StringIO()
    code = explain_run(f"Codertocat/Hello-World#{PR}", {"GITHUB_TOKEN": "ghs_test_token",
                                                         "GITHUB_API_URL": repo.url}, out)
    return code, out.getvalue(), ""


def writes(repo: Repo) -> int:
    """Requests that could write (GraphQL queries are POSTs, not writes)."""
    fake = repo.fake
    return fake.count("POST") - fake.graphql_count("query") + fake.count("PATCH") + fake.count("PUT")


def test_policy_explain_pr_agrees_with_the_action(repo: Repo) -> None:
    first, action = approved_vpc(repo)
    writes_before = writes(repo)
    code, out, err = explain(repo)
    assert err == "" and code == 0 and action.outputs["verdict"] == "pass"
    assert "verdict: pass" in out.splitlines()
    assert "  [passed] infra approval: 1 of 1 approval from users alice: alice" in out.splitlines()
    assert "  [passed] lifecycle: ci_passed may merge" in out.splitlines()
    assert any(line.startswith("  reviews: [alice APPROVED on " + first[:7]) for line in out.splitlines()), out
    fingerprint = repo.evaluation()["diff_fingerprint"]["value"]
    assert f"  diff_fingerprint: {fingerprint[:12]}, kept in the record for this head" in out.splitlines(), out
    assert writes(repo) == writes_before

    # the diff changes: the Action blocks (stale approval); explain says the same, rule by rule
    changed = repo.fake.set_file(HEAD_REF, "infra/vpc.tf", VPC + "# more\n")
    repo.pull(changed, files=[("infra/vpc.tf", 2, 0, "added")])
    repo.step(pr_event("synchronize", sha=changed, before=first))
    action = repo.step(ci_completed(changed))
    code, out, err = explain(repo)
    assert action.outputs["verdict"] == "block" and code == 1 and "verdict: block" in out.splitlines()
    rows = {r["name"]: r["status"] for r in repo.evaluation()["results"]}
    for name, status in rows.items():
        assert any(line.startswith(f"  [{status}] {name}: ") for line in out.splitlines()), out
    assert f"  stale approval: alice approved {first[:7]} (the diff changed)" in out.splitlines()


def test_policy_explain_pr_bad_input_is_one_line(repo: Repo, tmp_path: Path) -> None:
    env: dict[str, Any] = {"PATH": "", "PYTHONPATH": str(ROOT), "GITHUB_API_URL": repo.url}
    for args, env_extra, needle in (
        (["--pr", "Codertocat/Hello-World/2"], {"GITHUB_TOKEN": "x"}, "expected owner/repo#N"),
        (["--pr", "Codertocat/Hello-World#2"], {}, "no token: set GITHUB_TOKEN or GH_TOKEN"),
        (["--pr", "Codertocat/Hello-World#99"], {"GH_TOKEN": "x"}, "no such pull request"),
    ):
        proc = subprocess.run([sys.executable, "-c", "from loopforge.cli import main; raise SystemExit(main())",
                               "policy", "explain", *args],
                              env={**env, **env_extra}, capture_output=True, text=True, timeout=60, cwd=tmp_path)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.count("\n") == 1 and needle in proc.stderr and "Traceback" not in proc.stderr


def test_policy_explain_pr_before_any_event_is_pending_on_the_lifecycle(repo: Repo) -> None:
    repo.policy(SAME_DIFF_POLICY)
    first = repo.fake.set_file(HEAD_REF, "infra/vpc.tf", VPC)
    repo.pull(first, files=[("infra/vpc.tf", 1, 0, "added")])
    repo.fake.add_review(PR, "alice", "APPROVED", first)
    code, out, _ = explain(repo)
    lines = out.splitlines()
    assert code == 1 and lines[-1] == "verdict: block"
    assert "record Codertocat/Hello-World#1 (not recorded yet)" in lines[0]
    assert any(line.startswith("  [pending] lifecycle: no event of this PR has been recorded yet") for line in lines)
    assert "  [passed] infra approval: 1 of 1 approval from users alice: alice" in lines
    assert repo.fake.branch_sha("loopforge-state") is None  # nothing was written
