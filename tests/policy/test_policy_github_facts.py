"""The REST implementation of the new facts (``diff_blobs``, ``codeowners``, reviewer ids) against the fake GitHub,
the stale-approvals section of the check run, and ``--pr`` references."""

from __future__ import annotations

import pytest
from github import Auth, Github

from loopforge.errors import InputError
from loopforge.github.pr_context import GitHubPullRequestContext
from loopforge.github.render import GateRow, GateView, StaleApproval, SummaryView, render_summary
from loopforge.policy import FactUnavailable
from loopforge.policy.explain import parse_pr_ref
from loopforge.policy.fingerprint import NULL_OID, head_fingerprint
from loopforge.states import LoopState
from tests.fakegithub import FakeGitHub


def context(fake: FakeGitHub, number: int = 7) -> GitHubPullRequestContext:
    gh = Github(auth=Auth.Token("t"), base_url="https://api.github.com", retry=None, seconds_between_requests=None,
                seconds_between_writes=None, lazy=True)
    return GitHubPullRequestContext(gh.get_repo(fake.full_name), number)


def blob(fake: FakeGitHub, branch: str, path: str) -> str:
    sha = fake.branch_sha(branch)
    assert sha is not None
    entry = fake.git.lookup(fake.git.commits[sha].tree, path)
    assert entry is not None
    return entry.sha


def test_diff_blobs_use_the_merge_base_not_the_base_tip(fake_github: FakeGitHub) -> None:
    fake = fake_github
    fake.set_file("main", "app.py", "v1\n")
    fake.set_file("main", "gone.py", "old\n")
    head = fake.set_file("feature", "app.py", "v2\n")
    fake.set_file("main", "app.py", "v1-newer-on-main\n")  # the base moves on after the branch point
    fake.add_pull(7, head, base="main", head_ref="feature",
                  files=[("app.py", 1, 1), ("new.py", 1, 0, "added"), ("gone.py", 0, 1, "removed")])
    fake.set_file("feature", "new.py", "n\n")
    fake.pulls[7].head_sha = head = fake.branch_sha("feature") or ""
    ctx = context(fake)
    blobs = ctx.diff_blobs()
    merge_base = ctx.merge_base()
    base_tree = fake.git.commits[merge_base].tree
    old_app = fake.git.lookup(base_tree, "app.py")
    assert old_app is not None and old_app.sha != blob(fake, "main", "app.py")  # the branch point's blob
    assert blobs["app.py"] == (blob(fake, "feature", "app.py"), old_app.sha)
    assert blobs["new.py"] == (blob(fake, "feature", "new.py"), NULL_OID)
    assert blobs["gone.py"][0] == NULL_OID
    assert head_fingerprint(ctx).value is not None
    assert fake.count("GET", r"/compare/main\.\.\.") == 1 and fake.count("GET", r"/git/trees/") == 1


def test_diff_blobs_unknown_when_the_head_is_not_a_known_commit(fake_github: FakeGitHub) -> None:
    fake_github.add_pull(7, "e" * 40, base="main", files=[("a.py", 1, 0)])
    with pytest.raises(FactUnavailable, match="merge base"):
        context(fake_github).diff_blobs()
    assert head_fingerprint(context(fake_github)).value is None


def test_codeowners_first_found_on_the_base_branch(fake_github: FakeGitHub) -> None:
    fake = fake_github
    fake.add_pull(7, fake.set_file("feature", "x.py", "x"), base="main", head_ref="feature")
    assert context(fake).codeowners() is None
    fake.set_file("main", "docs/CODEOWNERS", "* @docs\n")
    assert context(fake).codeowners() == ("docs/CODEOWNERS", "* @docs\n")
    fake.set_file("main", "CODEOWNERS", "* @root\n")
    fake.set_file("feature", ".github/CODEOWNERS", "* @pr-author\n")  # only on the PR's branch: ignored
    assert context(fake).codeowners() == ("CODEOWNERS", "* @root\n")
    fake.set_file("main", ".github/CODEOWNERS", "* @gh\n")
    assert context(fake).codeowners() == (".github/CODEOWNERS", "* @gh\n")


def test_reviews_carry_the_reviewer_id(fake_github: FakeGitHub) -> None:
    fake_github.add_pull(7, "e" * 40, base="main")
    fake_github.add_review(7, "alice", "APPROVED")
    review = context(fake_github).reviews()[0]
    assert review.user == "alice" and review.user_id == fake_github.user("alice")["id"]


# ---------------------------------------------------------------------------------------------- rendering
def test_stale_approvals_are_listed_with_their_commit_and_escaped() -> None:
    gate = GateView(verdict="pending", rows=[GateRow(rule="review", status="pending", reason="waiting")],
                    stale=[StaleApproval(login="alice", commit="a" * 40, why="the diff changed"),
                           StaleApproval(login="@evil|<b>x</b>", commit="not a sha `", why="[x](https://e.vil)")])
    summary = render_summary(SummaryView(record_id="o/r#1", state=LoopState.CI_PASSED, gate=gate))
    section = summary.split("**Stale approvals**", 1)[1]
    assert "- alice approved `aaaaaaa` — the diff changed" in section
    assert "<b>" not in section and "](https" not in section and "@evil" not in section
    assert "\\|" in section and "not a sha `" not in section
    tight = render_summary(SummaryView(record_id="o/r#1", state=LoopState.CI_PASSED, gate=gate), max_bytes=1200)
    assert len(tight.encode()) <= 1200


@pytest.mark.parametrize("text, expected", [
    ("octo/app#12", ("octo/app", 12)),
    ("https://github.com/octo/app.js/pull/3", ("octo/app.js", 3)),
    ("https://ghe.example.com/octo/app/pull/3/", ("octo/app", 3)),
])
def test_pr_references(text: str, expected: tuple[str, int]) -> None:
    assert parse_pr_ref(text) == expected


@pytest.mark.parametrize("text", ["octo/app/12", "#12", "12", "octo/app#0", "octo/app#12 extra",
                                  "https://github.com/octo/app/issues/3"])
def test_bad_pr_references_name_the_accepted_forms(text: str) -> None:
    with pytest.raises(InputError, match=r"expected owner/repo#N \(e.g. octo/app#12\) or a pull request URL"):
        parse_pr_ref(text)
