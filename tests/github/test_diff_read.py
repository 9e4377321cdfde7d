"""The blob ids of a diff fingerprint read over GraphQL (``loopforge.github.diff_read``) agree with the REST
context (``GET compare`` for the merge base, ``GET git/trees``) on real commits of the fake's git store, in every
shape of history the merge base can take, with the number of queries each costs; anything GraphQL cannot tell
falls back to REST. Every document is validated by the fake against GitHub's published schema."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from loopforge.errors import FactUnavailable, GitHubUnavailable
from loopforge.github.client import make_github
from loopforge.github.diff_read import merge_base_of, runner
from loopforge.github.graphql import GraphQLClient
from loopforge.github.pr_context import GitHubPullRequestContext
from loopforge.github.pr_context_graphql import GraphQLPullRequestContext
from loopforge.github.pr_facts import pull_request_extra
from loopforge.policy.fingerprint import NULL_OID, head_fingerprint
from loopforge.repository.branch import BranchRepository
from tests.fakegithub import FakeGitHub
from tests.fakegithub.gitstore import Person

REPO = "octo-org/octo-repo"
FILES = [("app.py", 1, 1), ("new.py", 1, 0, "added"), ("gone.py", 0, 1, "removed")]


def contexts(fake: FakeGitHub, number: int = 7) -> tuple[GraphQLPullRequestContext, GitHubPullRequestContext]:
    """The PR's context over the one read plus GraphQL (as the Action builds it), and its REST context."""
    gh = make_github("t", fake.base_url, for_tests=True)
    head = fake.pulls[number].head_sha
    snap = BranchRepository((gh, REPO)).snapshot(f"{REPO}#{number}",
                                                 extras=[pull_request_extra(number, head, "loopforge",
                                                                            policy_path=".github/loopforge.yml")])
    ctx = GraphQLPullRequestContext(REPO, snap.extra, lambda: GitHubPullRequestContext(gh.get_repo(REPO), number),
                                    graphql=runner(GraphQLClient.from_github(gh)))
    return ctx, GitHubPullRequestContext(gh.get_repo(REPO), number)


def seed_base(fake: FakeGitHub) -> None:
    fake.set_file("main", "app.py", "v1\n")
    fake.set_file("main", "gone.py", "old\n")


def edit_branch(fake: FakeGitHub, branch: str) -> str:
    """The PR's change on ``branch``: app.py modified, new.py added, gone.py removed (one commit each)."""
    fake.set_file(branch, "app.py", "v2\n")
    fake.set_file(branch, "new.py", "n\n")
    sha = fake.branch_sha(branch)
    assert sha is not None
    tree = fake.git.edit(fake.git.commits[sha].tree, {"gone.py": None})
    me = Person("octocat", "octocat@example.com", "2026-11-30T09:00:00Z")
    sha = fake.git.put_commit(tree, [sha], "remove gone.py", me, me)
    fake.refs[f"refs/heads/{branch}"] = sha
    return sha


def merge_into(fake: FakeGitHub, branch: str, other: str) -> str:
    """A merge commit of ``other``'s tip into ``branch`` (the base's files, the branch's changes on top)."""
    head, base = fake.branch_sha(branch), fake.branch_sha(other)
    assert head and base
    ours = fake.git.files(fake.git.commits[head].tree)
    theirs = fake.git.files(fake.git.commits[base].tree)
    merged = {**theirs, **{p: s for p, s in ours.items() if p != "gone.py"}}
    tree = fake.git.edit(fake.git.commits[base].tree,
                         {p: fake._blob_entry(fake.git.blobs[s]) for p, s in merged.items()} | {"gone.py": None})
    me = Person("web-flow", "noreply@github.com", "2026-11-30T09:00:00Z")
    sha = fake.git.put_commit(tree, [head, base], f"Merge {other} into {branch}", me, me)
    fake.refs[f"refs/heads/{branch}"] = sha
    return sha


def agree(fake: FakeGitHub, *, queries: int) -> Mapping[str, tuple[str, str]]:
    """GraphQL and REST give the same blob ids and fingerprint; GraphQL took ``queries`` and no REST request."""
    ctx, rest = contexts(fake)
    before = len(fake.requests)
    blobs = ctx.diff_blobs()
    assert ctx.rest_reads == [] and ctx.graphql_reads == queries
    assert len(fake.requests) - before == queries and fake.count("GET", r"/compare/") == 0
    assert dict(blobs) == dict(rest.diff_blobs())
    assert head_fingerprint(ctx) == head_fingerprint(rest) and head_fingerprint(ctx).value is not None
    assert fake.violations == []
    return blobs


def test_a_head_on_the_base_tip_costs_one_query(fake_github: FakeGitHub) -> None:
    fake = fake_github
    seed_base(fake)
    fake.set_file("main", "docs.md", "the base moved on\n")
    head = edit_branch(fake, "feature")  # branched from the current tip: behind by 0
    fake.add_pull(7, head, head_ref="feature", files=FILES)
    blobs = agree(fake, queries=1)
    assert blobs["new.py"][1] == NULL_OID and blobs["gone.py"][0] == NULL_OID
    assert blobs["app.py"][0] != blobs["app.py"][1]


def test_a_head_behind_its_base_reads_the_merge_base_in_a_second_query(fake_github: FakeGitHub) -> None:
    fake = fake_github
    seed_base(fake)
    head = edit_branch(fake, "feature")
    fake.set_file("main", "app.py", "v1-newer-on-main\n")  # the base moves on after the branch point
    fake.add_pull(7, head, head_ref="feature", files=FILES)
    blobs = agree(fake, queries=2)
    fork = fake.git.commits[fake.git.commits[fake.git.commits[head].parents[0]].parents[0]].parents[0]
    entry = fake.git.lookup(fake.git.commits[fork].tree, "app.py")
    assert entry is not None and blobs["app.py"][1] == entry.sha  # the branch point's blob, not the tip's


def test_a_merge_of_the_base_into_the_head_costs_one_query(fake_github: FakeGitHub) -> None:
    fake = fake_github
    seed_base(fake)
    edit_branch(fake, "feature")
    fake.set_file("main", "docs.md", "the base moved on\n")
    head = merge_into(fake, "feature", "main")  # GitHub's "Update branch"
    fake.add_pull(7, head, head_ref="feature", files=FILES)
    agree(fake, queries=1)


def test_a_branch_that_merged_an_older_base_and_fell_behind_again(fake_github: FakeGitHub) -> None:
    """Two parents outside the branch (the fork point and the merged base tip): the later one is the merge base,
    which GraphQL cannot tell apart, so REST answers (compare + tree)."""
    fake = fake_github
    seed_base(fake)
    edit_branch(fake, "feature")
    fake.set_file("main", "docs.md", "v1\n")
    head = merge_into(fake, "feature", "main")
    fake.set_file("main", "docs.md", "v2\n")  # behind again
    fake.add_pull(7, head, head_ref="feature", files=FILES)
    ctx, rest = contexts(fake)
    assert dict(ctx.diff_blobs()) == dict(rest.diff_blobs())
    assert ctx.graphql_reads == 1
    assert ctx.rest_reads == ["blob ids of the changed files (the branch leaves the base branch at 2 commits)"]


def test_a_head_already_in_the_base_has_no_fingerprint(fake_github: FakeGitHub) -> None:
    fake = fake_github
    seed_base(fake)
    head = edit_branch(fake, "feature")
    fake.refs["refs/heads/main"] = head  # merged by a fast-forward
    fake.add_pull(7, head, head_ref="feature", files=FILES)
    ctx, _rest = contexts(fake)
    with pytest.raises(FactUnavailable, match="already in the base branch"):
        ctx.diff_blobs()
    assert head_fingerprint(ctx).value is None and ctx.rest_reads == []


def test_an_unknown_head_falls_back_to_rest(fake_github: FakeGitHub) -> None:
    """GitHub answers no comparison for a commit it does not have: REST is asked, and says it does not know."""
    fake = fake_github
    seed_base(fake)
    fake.add_pull(7, "e" * 40, files=[("a.py", 1, 0, "added")])
    ctx, _rest = contexts(fake)
    with pytest.raises(FactUnavailable, match="merge base"):
        ctx.diff_blobs()
    assert ctx.rest_reads == [f"blob ids of the changed files (GitHub did not compare main with {'e' * 7})"]


def test_renamed_files_are_read_through_rest(fake_github: FakeGitHub) -> None:
    """GraphQL's changed files carry no old name: a PR with a rename is read through REST, as before."""
    fake = fake_github
    seed_base(fake)
    head = edit_branch(fake, "feature")
    fake.add_pull(7, head, head_ref="feature", files=[*FILES[:2], ("app2.py", 0, 0, "renamed")])
    ctx, rest = contexts(fake)
    assert dict(ctx.diff_blobs()) == dict(rest.diff_blobs())
    assert ctx.graphql_reads == 0
    assert ctx.rest_reads == ["blob ids of the changed files (renamed files or over 100)"]
    assert head_fingerprint(ctx) == head_fingerprint(rest)


def test_without_a_graphql_runner_rest_answers(fake_github: FakeGitHub) -> None:
    fake = fake_github
    seed_base(fake)
    head = edit_branch(fake, "feature")
    fake.add_pull(7, head, head_ref="feature", files=FILES)
    ctx, rest = contexts(fake)
    bare = GraphQLPullRequestContext(REPO, ctx._extra, ctx._make_rest)
    assert dict(bare.diff_blobs()) == dict(rest.diff_blobs())
    assert bare.rest_reads == ["blob ids of the changed files (no GraphQL runner)"]


def test_a_failed_query_falls_back_to_rest_and_is_counted(fake_github: FakeGitHub) -> None:
    """GitHub failing the second query (the merge base's blobs): REST answers, and both queries are counted."""
    fake = fake_github
    seed_base(fake)
    head = edit_branch(fake, "feature")
    fake.set_file("main", "app.py", "v1-newer-on-main\n")  # behind its base: two queries
    fake.add_pull(7, head, head_ref="feature", files=FILES)
    ctx, rest = contexts(fake)
    graphql = ctx._graphql
    assert graphql is not None
    sent: list[str] = []

    def flaky(document: str, variables: Mapping[str, Any]) -> Mapping[str, Any]:
        sent.append(document)
        if len(sent) == 2:
            raise GitHubUnavailable("GitHub answered 502 after 3 tries", status=502)
        return graphql(document, variables)

    ctx._graphql = flaky
    assert dict(ctx.diff_blobs()) == dict(rest.diff_blobs())
    assert len(sent) == 2 and ctx.graphql_reads == 2
    assert ctx.rest_reads == ["blob ids of the changed files (GraphQL failed: GitHub answered 502 after 3 tries)"]


def comparison(behind: int, commits: list[tuple[str, list[str]]], total: int | None = None) -> dict[str, Any]:
    return {"aheadBy": len(commits), "behindBy": behind, "baseTarget": {"oid": "b" * 40},
            "headTarget": {"oid": "h" * 40},
            "commits": {"totalCount": len(commits) if total is None else total,
                        "nodes": [{"oid": c, "parents": {"totalCount": len(ps), "nodes": [{"oid": p} for p in ps]}}
                                  for c, ps in commits]}}


@pytest.mark.parametrize(("answer", "expected"), [
    (comparison(0, [("h", ["b"])]), ("b" * 40, "")),
    (comparison(3, [("x", ["m"]), ("h", ["x"])]), ("m", "")),
    (comparison(3, [("x", ["m"]), ("y", ["x", "n"]), ("h", ["y"])]),
     (None, "the branch leaves the base branch at 2 commits")),
    (comparison(3, [("h", ["m"])], total=101), (None, "more than 1 commits are not in the base branch")),
])
def test_the_merge_base_a_comparison_implies(answer: dict[str, Any], expected: tuple[str | None, str]) -> None:
    assert merge_base_of(answer) == expected


def test_a_parent_list_cut_short_is_not_guessed() -> None:
    answer = comparison(3, [("h", ["m"])])
    answer["commits"]["nodes"][0]["parents"]["totalCount"] = 6
    assert merge_base_of(answer) == (None, "a commit has more parents than were read")
