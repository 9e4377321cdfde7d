"""``GitHubPullRequestContext`` against ``responses`` mocks (a few simple cases; end-to-end tests use the fake
GitHub server). PyGithub puts the port in URLs, so the mocks do too."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import responses
from github import Auth, Github

from loopforge.github.pr_context import GitHubPullRequestContext, fetch_base_tree, read_base_file
from loopforge.policy import IssueRef, PermissionMissing, Status, evaluate, load_policy

API = "https://api.github.com"
MOCK = "https://api.github.com:443"
REPO = f"{API}/repos/octo/repo"
SHA = "abc1234" + "0" * 33
HTML = "https://github.com/x"


def client() -> Github:
    return Github(auth=Auth.Token("token"), base_url=API, retry=None, seconds_between_requests=None,
                  seconds_between_writes=None)


def user(login: str) -> dict[str, Any]:
    return {"login": login, "id": abs(hash(login)) % 10_000, "type": "Bot" if login.endswith("[bot]") else "User"}


def check(run_id: int, conclusion: str, app: str) -> dict[str, Any]:
    return {"id": run_id, "name": "test", "status": "completed", "conclusion": conclusion, "app": {"slug": app},
            "html_url": HTML}


def pull_json(**over: Any) -> dict[str, Any]:
    data = {"number": 5, "url": f"{REPO}/pulls/5", "issue_url": f"{REPO}/issues/5", "title": "Add VPC",
            "body": "Fixes #3 and closes other/repo#4", "user": user("dev"), "author_association": "MEMBER",
            "draft": False, "labels": [{"name": "governance-approved"}], "state": "open",
            "base": {"ref": "main", "sha": "b" * 40}, "head": {"ref": "vpc", "sha": SHA},
            "additions": 12, "deletions": 3, "changed_files": 2}
    data.update(over)
    return data


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.get(f"{MOCK}/repos/octo/repo", json={"full_name": "octo/repo", "name": "repo", "url": REPO,
                                                  "owner": user("octo")})
        rsps.get(f"{MOCK}/repos/octo/repo/pulls/5", json=pull_json())
        rsps.get(f"{MOCK}/repos/octo/repo/pulls/5/files", json=[
            {"filename": "infra/vpc.tf", "status": "added", "additions": 10, "deletions": 0, "patch": "+x"},
            {"filename": "new/place.py", "status": "renamed", "additions": 2, "deletions": 3,
             "previous_filename": "infra/old.py"}])
        rsps.get(f"{MOCK}/repos/octo/repo/pulls/5/reviews", json=[
            {"id": 1, "user": user("alice"), "state": "APPROVED", "commit_id": SHA,
             "submitted_at": "2026-01-01T10:00:00Z"},
            {"id": 2, "user": user("bob"), "state": "APPROVED", "commit_id": "0" * 40,
             "submitted_at": "2026-01-01T09:00:00Z"}])
        rsps.get(f"{MOCK}/repos/octo/repo/issues/5/events", json=[
            {"id": 1, "event": "labeled", "label": {"name": "governance-approved", "color": "fff"},
             "actor": user("mallory"), "created_at": "2026-01-01T11:00:00Z"},
            {"id": 2, "event": "referenced", "actor": user("dev"), "created_at": "2026-01-01T11:30:00Z"}])
        rsps.get(f"{MOCK}/repos/octo/repo/commits/{SHA}", json={"sha": SHA, "url": f"{REPO}/commits/{SHA}"})
        rsps.get(f"{MOCK}/repos/octo/repo/commits/{SHA}/check-runs", json={"total_count": 3, "check_runs": [
            check(10, "failure", "github-actions"), check(11, "success", "github-actions"),
            check(12, "success", "other-app")]})
        rsps.get(f"{MOCK}/repos/octo/repo/commits/{SHA}/status", json={"state": "pending", "statuses": [
            {"context": "ci/legacy", "state": "pending", "target_url": None}]})
        rsps.get(f"{MOCK}/repos/octo/repo/actions/runs", json={"total_count": 3, "workflow_runs": [
            {"id": 100, "name": "CI", "status": "completed", "conclusion": "failure", "workflow_id": 1,
             "head_sha": SHA, "html_url": HTML},
            {"id": 101, "name": "CI", "status": "completed", "conclusion": "success", "workflow_id": 2,
             "head_sha": SHA, "html_url": HTML},
            {"id": 102, "name": "Lint", "status": "in_progress", "conclusion": None, "workflow_id": 3,
             "head_sha": SHA, "html_url": HTML}]})
        rsps.get(f"{MOCK}/repos/octo/repo/issues/3", json={"number": 3, "state": "open", "url": f"{REPO}/issues/3"})
        yield rsps


def context(gov: Github | None = None) -> GitHubPullRequestContext:
    return GitHubPullRequestContext(client().get_repo("octo/repo"), 5, governance_gh=gov)


def test_facts_are_read_lazily_and_mapped(mocked: responses.RequestsMock) -> None:
    ctx = context()
    assert (ctx.repo, ctx.number, ctx.title, ctx.author, ctx.author_association) == (
        "octo/repo", 5, "Add VPC", "dev", "MEMBER")
    assert (ctx.base_ref, ctx.head_ref, ctx.head_sha, ctx.draft, list(ctx.labels)) == (
        "main", "vpc", SHA, False, ["governance-approved"])
    files = ctx.changed_files()
    assert [f.paths for f in files] == [("infra/vpc.tf",), ("new/place.py", "infra/old.py")]
    assert ctx.files_truncated() is False and ctx.line_counts() == (12, 3)
    assert [(r.user, r.state, (r.commit_id or "")[:7]) for r in ctx.reviews()] == [("alice", "APPROVED", "abc1234"),
                                                                           ("bob", "APPROVED", "0000000")]
    assert [(e.label, e.actor, e.action) for e in ctx.label_events()] == [("governance-approved", "mallory",
                                                                           "labeled")]
    calls = len(mocked.calls)
    ctx.reviews()
    assert len(mocked.calls) == calls  # cached for the life of the context
    assert "diff --git a/infra/old.py b/new/place.py" in ctx.diff()


def test_checks_and_workflows_keep_the_worst_of_the_same_name(mocked: responses.RequestsMock) -> None:
    ctx = context()
    checks = ctx.check_runs()
    assert checks["test"].conclusion == "success"  # the latest github-actions run (id 11) and other-app agree
    assert checks["ci/legacy"].status == "in_progress"
    runs = ctx.workflow_runs()
    assert runs["CI"].conclusion == "failure"  # a second workflow file named CI cannot mask the failing one
    assert runs["Lint"].status == "in_progress"


def test_linked_issues_and_permissions(mocked: responses.RequestsMock) -> None:
    ctx = context()
    assert [r.display() for r in ctx.linked_issues()] == ["#3", "other/repo#4"]
    assert ctx.issue_state(IssueRef(3)) == "open"
    with pytest.raises(PermissionMissing) as info:
        ctx.issue_state(IssueRef(4, "other/repo"))
    assert info.value.permission == "issues: read"
    mocked.get(f"{MOCK}/repos/octo/repo/issues/9", status=404, json={"message": "Not Found"})
    assert ctx.issue_state(IssueRef(9)) is None
    mocked.get(f"{MOCK}/repos/octo/repo/collaborators/alice/permission",
               json={"permission": "write", "role_name": "maintain", "user": user("alice")})
    assert ctx.user_permission("alice") == "maintain"
    mocked.get(f"{MOCK}/repos/octo/repo/collaborators/mallory/permission", status=403,
               json={"message": "Resource not accessible by integration"})
    with pytest.raises(PermissionMissing) as info:
        ctx.user_permission("mallory")
    assert info.value.permission == "metadata: read"


def test_teams_need_the_governance_token(mocked: responses.RequestsMock) -> None:
    with pytest.raises(PermissionMissing) as info:
        context().is_team_member("acme/sec", "alice")
    assert info.value.permission == "members: read"
    assert not [c for c in mocked.calls if "/orgs/" in str(c.request.url)]  # not even tried with GITHUB_TOKEN


def test_teams_with_the_governance_token(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{MOCK}/orgs/acme", json={"login": "acme", "url": f"{API}/orgs/acme"})
    mocked.get(f"{MOCK}/orgs/acme/teams/sec", json={"id": 7, "slug": "sec", "url": f"{API}/orgs/acme/teams/sec"})
    membership = {"state": "active", "role": "member", "url": f"{API}/orgs/acme/teams/sec/memberships/alice"}
    mocked.get(f"{MOCK}/orgs/acme/teams/sec/memberships/alice", json=membership)
    mocked.get(f"{MOCK}/orgs/acme/teams/sec/memberships/bob", status=404, json={"message": "Not Found"})
    mocked.get(f"{MOCK}/orgs/acme/teams/hidden", status=404, json={"message": "Not Found"})
    ctx = context(gov=client())
    assert ctx.is_team_member("acme/sec", "alice") is True
    assert ctx.is_team_member("acme/sec", "bob") is False
    with pytest.raises(PermissionMissing) as info:
        ctx.is_team_member("acme/hidden", "alice")
    assert info.value.permission == "members: read" and "acme/hidden" in info.value.detail


def test_evaluate_over_the_api(mocked: responses.RequestsMock) -> None:
    policy = load_policy("""version: 1
risk: {high: {files: ["infra/**"]}}
rules:
  - name: governance
    if: {risk: high}
    require:
      approvals: {count: 1, from: {teams: [acme/sec]}}
      label: {name: governance-approved, added_by: {users: [alice]}}
""")
    evaluation = evaluate(policy, context())
    result = evaluation.result("governance")
    assert evaluation.risk_tier == "high" and result.status is Status.FAILED
    assert result.missing_permissions == ["members: read"]
    assert "label governance-approved was added by mallory who is not allowed (needs users alice)" in result.reason


def test_read_base_file_and_fetch_base_tree(mocked: responses.RequestsMock, tmp_path: Path) -> None:
    def content(path: str, text: str) -> dict[str, Any]:
        return {"type": "file", "encoding": "base64", "path": path, "name": path.rsplit("/", 1)[-1], "sha": "1",
                "content": base64.b64encode(text.encode()).decode(), "url": f"{REPO}/contents/{path}"}

    mocked.get(f"{MOCK}/repos/octo/repo/contents/.github/loopforge.yml?ref=main",
               json=content(".github/loopforge.yml", "version: 1\n"))
    mocked.get(f"{MOCK}/repos/octo/repo/contents/.github/missing.yml?ref=main", status=404,
               json={"message": "Not Found"})
    repo = client().get_repo("octo/repo")
    assert read_base_file(repo, "main", ".github/loopforge.yml") == "version: 1\n"
    assert read_base_file(repo, "main", ".github/missing.yml") is None
    mocked.get(f"{MOCK}/repos/octo/repo/contents/.github/loopforge?ref=main", json=[
        {"type": "file", "path": ".github/loopforge/guards.py", "name": "guards.py", "sha": "2",
         "url": f"{REPO}/contents/.github/loopforge/guards.py"}])
    mocked.get(f"{MOCK}/repos/octo/repo/contents/.github/loopforge/guards.py?ref=main",
               json=content(".github/loopforge/guards.py", "def g(*a):\n    return True\n"))
    root = fetch_base_tree(repo, "main", [".github/loopforge"], tmp_path / "base")
    assert (root / ".github" / "loopforge" / "guards.py").read_text().startswith("def g")
    with pytest.raises(ValueError, match="refusing"):
        fetch_base_tree(repo, "main", ["../etc"], tmp_path / "base")
