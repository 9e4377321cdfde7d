"""CODEOWNERS parsing (GitHub's rules, pathspec's gitignore matching) and ``from: {codeowners: true}``."""

from __future__ import annotations

from typing import Any

import pytest

from loopforge.policy import ChangedFile, FakeContext, PolicyError, Review, evaluate, load_policy
from loopforge.policy.codeowners import CodeownersError, Owner, parse_codeowners
from loopforge.policy.rules import Status

HEAD = "f" * 40
TEXT = """\
# default owners
*                 @carol
*.md              docs@example.com
/infra/           @alice @acme/platform
/infra/public/    # no owners: nobody owns these
docs/\\#notes.md   @bob
src/**/test_*.py  @dave   # trailing comment
"""


@pytest.mark.parametrize("path, line, owners", [
    ("README.md", 3, ("docs@example.com",)),
    ("main.go", 2, ("@carol",)),
    ("infra/vpc.tf", 4, ("@alice", "@acme/platform")),
    ("infra/modules/net/main.tf", 4, ("@alice", "@acme/platform")),
    ("infra/public/site.tf", 5, ()),
    ("docs/#notes.md", 6, ("@bob",)),
    ("src/a/b/test_x.py", 7, ("@dave",)),
    ("other/infra/x.tf", 2, ("@carol",)),  # /infra/ is anchored at the root
])
def test_last_matching_pattern_wins(path: str, line: int, owners: tuple[str, ...]) -> None:
    parsed = parse_codeowners(TEXT, ".github/CODEOWNERS")
    entry, found = parsed.owners_of(path)
    assert entry is not None and entry.line == line
    assert tuple(o.display() for o in found) == owners


def test_owner_kinds() -> None:
    parsed = parse_codeowners("/x/ @alice @acme/sec bot@example.com @renovate[bot]\n")
    assert parsed.entries[0].owners == (Owner("user", "alice"), Owner("team", "acme/sec"),
                                        Owner("email", "bot@example.com"), Owner("user", "renovate[bot]"))


@pytest.mark.parametrize("text, line, problem", [
    ("/a/ @alice\n!/a/b/ @bob\n", 2, "negated pattern"),
    ("\n\n/a/[bc]/ @bob\n", 3, "no [ ] ranges"),
    ("/a/ alice\n", 1, "'alice' is not an owner"),
    ("# ok\n/a/ @al!ce\n", 2, "is not an owner"),
])
def test_an_unparseable_line_is_an_error_naming_it(text: str, line: int, problem: str) -> None:
    with pytest.raises(CodeownersError) as caught:
        parse_codeowners(text, "CODEOWNERS")
    assert caught.value.line == line and problem in str(caught.value)
    assert str(caught.value).startswith(f"CODEOWNERS line {line}: ")


POLICY = load_policy("version: 1\nrules:\n  - name: owners\n    require:\n"
                     "      approvals: {count: 1, from: {codeowners: true, not_users: [mallory]}}\n")


def ctx(reviews: list[tuple[str, str]], **kw: Any) -> FakeContext:
    base: dict[str, Any] = dict(
        head_sha=HEAD, author="dev",
        files=[ChangedFile("infra/vpc.tf"), ChangedFile("docs/guide.md"), ChangedFile("infra/public/a.tf")],
        codeowners_file=("CODEOWNERS", "/infra/ @alice @acme/platform\n/docs/ @bob @mallory\n/infra/public/\n"),
        review_list=[Review(u, s, HEAD) for u, s in reviews])
    base.update(kw)
    return FakeContext(**base)


def test_every_owned_file_needs_one_of_its_owners() -> None:
    result = evaluate(POLICY, ctx([("alice", "APPROVED")])).result("owners")
    assert result.status is Status.PENDING
    assert "waiting for code owners of docs/guide.md (@bob, @mallory)" in result.reason
    assert result.details["files"]["infra/public/a.tf"] == {"owners": [], "approved_by": None}
    done = evaluate(POLICY, ctx([("alice", "APPROVED"), ("bob", "APPROVED")])).result("owners")
    assert done.status is Status.PASSED and "2 of 2 owned file(s) approved by an owner" in done.reason


def test_excluded_and_author_approvals_never_count_for_a_file() -> None:
    result = evaluate(POLICY, ctx([("alice", "APPROVED"), ("mallory", "APPROVED"), ("dev", "APPROVED")],
                                  codeowners_file=("CODEOWNERS", "* @alice @mallory @dev\n/docs/ @mallory @dev\n")
                                  )).result("owners")
    assert result.status is Status.PENDING and "docs/guide.md (@mallory, @dev)" in result.reason


def test_team_owners_need_the_governance_token() -> None:
    c = ctx([("erin", "APPROVED"), ("bob", "APPROVED")])
    result = evaluate(POLICY, c).result("owners")
    assert result.status is Status.FAILED and result.missing_permissions == ["members: read"]
    assert "never treated as approved" in result.reason
    teams = evaluate(POLICY, ctx([("erin", "APPROVED"), ("bob", "APPROVED")],
                                 teams={"acme/platform": ["erin"]})).result("owners")
    assert teams.status is Status.PASSED
    assert teams.details["files"]["infra/vpc.tf"]["approved_by"] == "erin (@acme/platform)"


def test_missing_or_broken_codeowners_fails() -> None:
    none = evaluate(POLICY, ctx([("alice", "APPROVED")], codeowners_file=None)).result("owners")
    assert none.status is Status.FAILED and "no CODEOWNERS file on the base branch" in none.reason
    broken = evaluate(POLICY, ctx([("alice", "APPROVED")], codeowners_file=("docs/CODEOWNERS", "a @x\n!b @y\n")))
    assert "docs/CODEOWNERS line 2: negated pattern" in broken.result("owners").reason
    truncated = evaluate(POLICY, ctx([("alice", "APPROVED"), ("bob", "APPROVED")], truncated=True))
    assert truncated.result("owners").status is Status.FAILED


def test_codeowners_cannot_be_mixed_with_other_people() -> None:
    with pytest.raises(PolicyError, match="codeowners: true cannot be combined"):
        load_policy("version: 1\nrules:\n  - name: o\n    require:\n"
                    "      approvals: {from: {codeowners: true, teams: [a/b]}}\n")
