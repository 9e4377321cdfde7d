"""The pull request's facts from the one GraphQL read agree with the REST context, fact by fact."""

from __future__ import annotations

from pathlib import Path

from loopforge.github.client import make_github
from loopforge.github.graphql import GraphQLClient
from loopforge.github.pr_context import GitHubPullRequestContext
from loopforge.github.pr_context_graphql import GraphQLPullRequestContext
from loopforge.github.pr_facts import (
    base_file,
    codeowners_file,
    our_check_run,
    pull_request_extra,
    route_pulls,
    route_query,
    write_tree,
)
from loopforge.policy.rules import latest_reviews
from loopforge.repository.branch import BranchRepository
from tests.fakegithub import FakeGitHub

HEAD = "c" * 40
REPO = "octo-org/octo-repo"


def seeded(fake: FakeGitHub) -> None:
    fake.set_file("main", ".github/loopforge.yml", "version: 1\n")
    fake.set_file("main", ".github/loopforge/guards/g.py", "X = 1\n")
    fake.set_file("main", ".github/loopforge/gates/deep/x.sh", "echo hi\n")
    fake.add_pull(7, HEAD, body="Fixes #3", labels=["risk:low", "area/x"],
                  files=[("src/a.py", 3, 1), ("docs/x.md", 1, 0), ("old.txt", 0, 4, "removed")])
    fake.add_review(7, "alice", "CHANGES_REQUESTED")
    fake.add_review(7, "alice", "APPROVED")
    fake.add_review(7, "bob", "COMMENTED")
    fake.add_review(7, "carol", "APPROVED")
    fake.add_review(7, "carol", "DISMISSED")
    fake.add_label_event(7, "risk:low", "dave")
    fake.add_label_event(7, "area/x", "erin")
    fake.add_label_event(7, "area/x", "erin", event="unlabeled")
    fake.add_label_event(7, "area/x", "erin")
    fake.add_workflow_run(11, HEAD, name="CI", conclusion="failure")
    fake.add_workflow_run(12, HEAD, name="CI", conclusion="success")
    fake.add_workflow_run(13, HEAD, name="Lint", status="in_progress", conclusion=None)


def test_graphql_facts_match_rest(fake_github: FakeGitHub, tmp_path: Path) -> None:
    fake = fake_github
    seeded(fake)
    gh = make_github("t", fake.base_url, for_tests=True)
    store = BranchRepository((gh, REPO))
    before = len(fake.requests)
    snap = store.snapshot(f"{REPO}#3", extras=[pull_request_extra(
        7, HEAD, "loopforge", policy_path=".github/loopforge.yml", code_dir=".github/loopforge")])
    assert len(fake.requests) - before == 1  # everything below comes from this one read
    rest_calls: list[str] = []

    def rest() -> GitHubPullRequestContext:
        rest_calls.append("built")
        return GitHubPullRequestContext(gh.get_repo(REPO), 7)

    ctx = GraphQLPullRequestContext(REPO, snap.extra, rest)
    ref = GitHubPullRequestContext(gh.get_repo(REPO), 7)
    for name in ("number", "title", "body", "author", "author_association", "base_ref", "head_ref", "head_sha",
                 "draft"):
        assert getattr(ctx, name) == getattr(ref, name), name
    assert sorted(ctx.labels) == sorted(ref.labels)
    assert [(f.filename, f.status, f.additions, f.deletions) for f in ctx.changed_files()] == [
        (f.filename, f.status, f.additions, f.deletions) for f in ref.changed_files()]
    assert ctx.line_counts() == ref.line_counts() and ctx.files_truncated() is ref.files_truncated() is False
    assert {k: (r.state, r.commit_id) for k, r in latest_reviews(ctx.reviews()).items()} == {
        k: (r.state, r.commit_id) for k, r in latest_reviews(ref.reviews()).items()}
    assert [(e.label, e.actor, e.action) for e in ctx.label_events()] == [
        (e.label, e.actor, e.action) for e in ref.label_events()]
    workflows = ctx.workflow_runs()
    assert {k: (v.status, v.conclusion) for k, v in workflows.items()} == {
        "CI": ("completed", "success"), "Lint": ("in_progress", None)}
    assert ctx.check_runs() == {}
    assert [r.display() for r in ctx.linked_issues()] == [r.display() for r in ref.linked_issues()]
    assert rest_calls == [] and ctx.rest_reads == []
    assert write_tree(snap.extra, "code", tmp_path, ".github/loopforge")
    assert (tmp_path / ".github/loopforge/gates/deep/x.sh").read_text() == "echo hi\n"
    assert (tmp_path / ".github/loopforge/guards/g.py").read_text() == "X = 1\n"
    assert base_file(snap.extra) == "version: 1\n"
    assert our_check_run(snap.extra) is None
    assert fake.violations == []


def test_our_check_run_and_rollup_come_from_the_same_read(fake_github: FakeGitHub) -> None:
    fake = fake_github
    seeded(fake)
    gh = make_github("t", fake.base_url, for_tests=True)
    requester = gh.requester
    for name, conclusion in (("loopforge", None), ("tests", "failure"), ("tests", "success")):
        body = {"name": name, "head_sha": HEAD, **({"conclusion": conclusion} if conclusion else {})}
        requester.requestJsonAndCheck("POST", f"/repos/{REPO}/check-runs", input=body)
    snap = BranchRepository((gh, REPO)).snapshot(f"{REPO}#3", extras=[pull_request_extra(7, HEAD, "loopforge")])
    ours = our_check_run(snap.extra)
    assert ours is not None and ours.id == fake.check_runs(HEAD)[0].id and ours.status == "queued"
    ctx = GraphQLPullRequestContext(REPO, snap.extra, lambda: GitHubPullRequestContext(gh.get_repo(REPO), 7))
    assert ctx.check_runs()["tests"].conclusion == "success"  # the latest of the name


def test_renamed_files_fall_back_to_rest_for_their_old_names(fake_github: FakeGitHub) -> None:
    fake = fake_github
    fake.add_pull(8, HEAD, files=[("new/name.py", 0, 0, "renamed")])
    gh = make_github("t", fake.base_url, for_tests=True)
    snap = BranchRepository((gh, REPO)).snapshot(f"{REPO}#8", extras=[pull_request_extra(8, HEAD, "loopforge")])
    ctx = GraphQLPullRequestContext(REPO, snap.extra, lambda: GitHubPullRequestContext(gh.get_repo(REPO), 8))
    assert [f.filename for f in ctx.changed_files()] == ["new/name.py"]
    assert ctx.rest_reads == ["changed files (renames or over 100)"]


def test_routing_a_ci_event_reads_its_pull_requests_in_one_query(fake_github: FakeGitHub) -> None:
    fake = fake_github
    seeded(fake)
    fake.add_pull(9, "d" * 40, body="no link")
    gql = GraphQLClient.from_github(make_github("t", fake.base_url, for_tests=True))
    doc, variables = route_query("octo-org", "octo-repo", [9, 7, 404], None)
    answer = gql.execute(doc, variables, optional=("p2",))
    assert [p.number for p in route_pulls(answer.data, REPO)] == [9, 7]
    doc, variables = route_query("octo-org", "octo-repo", [], HEAD)
    pulls = route_pulls(gql.execute(doc, variables).data, REPO)
    assert [(p.number, p.head.sha, p.base.ref, p.body) for p in pulls] == [(7, HEAD, "main", "Fixes #3")]
    assert fake.graphql_count() == 2 and fake.violations == []


# ---------------------------------------------------------------------------------------------- CODEOWNERS
def _with_codeowners(co0: object, co1: object, co2: object) -> dict[str, object]:
    return {"pr": {"number": 1, "baseRef": {"target": {"oid": "b" * 40, "co0": co0, "co1": co1, "co2": co2}}}}


def test_codeowners_query_is_only_asked_with_a_policy_read_at_the_base_tip() -> None:
    asked = pull_request_extra(1, "a" * 40, "loopforge", policy_path=".github/loopforge.yml", codeowners=True)
    assert "co0: file(path: $co0)" in asked.selection and asked.variables["co2"] == ("String!", "docs/CODEOWNERS")
    plain = pull_request_extra(1, "a" * 40, "loopforge", policy_path=".github/loopforge.yml")
    assert "co0" not in plain.selection and "co0" not in plain.variables
    at_commit = pull_request_extra(1, "a" * 40, "loopforge", policy_path="p.yml", at_commit="c" * 40,
                                   codeowners=True)
    assert "co0" not in at_commit.selection  # judged at a base commit: CODEOWNERS through REST


def test_the_read_and_rest_look_for_codeowners_in_the_same_places() -> None:
    """pr_facts keeps its own copy of the locations (it must not load the policy machinery): the two agree."""
    from loopforge.github import pr_facts
    from loopforge.policy import codeowners

    assert pr_facts.CODEOWNERS_PATHS == codeowners.CODEOWNERS_PATHS


def test_codeowners_first_found_wins_in_githubs_order() -> None:
    blob = {"object": {"text": "* @root\n", "isTruncated": False}}
    assert codeowners_file(_with_codeowners(None, blob, {"object": {"text": "* @docs\n"}})) == ("CODEOWNERS",
                                                                                                  "* @root\n")
    assert codeowners_file(_with_codeowners(None, None, None)) is None
    assert codeowners_file(_with_codeowners(None, {"object": {"text": None, "isTruncated": True}}, None)) is False
    assert codeowners_file({"pr": {"baseRef": {"target": {"oid": "b" * 40}}}}) is False  # not asked


def test_graphql_context_falls_back_to_rest_only_when_the_read_did_not_carry_codeowners() -> None:
    class Rest:
        def codeowners(self) -> tuple[str, str]:
            return "CODEOWNERS", "* @rest\n"

    found = GraphQLPullRequestContext("o/r", _with_codeowners({"object": {"text": "* @a\n"}}, None, None),
                                      lambda: Rest())  # type: ignore[arg-type,return-value]
    assert found.codeowners() == (".github/CODEOWNERS", "* @a\n") and found.rest_reads == []
    none = GraphQLPullRequestContext("o/r", _with_codeowners(None, None, None), lambda: Rest())  # type: ignore[arg-type,return-value]
    assert none.codeowners() is None and none.rest_reads == []
    unasked = GraphQLPullRequestContext("o/r", {"pr": {"number": 1}}, lambda: Rest())  # type: ignore[arg-type,return-value]
    assert unasked.codeowners() == ("CODEOWNERS", "* @rest\n") and unasked.rest_reads == ["CODEOWNERS"]
