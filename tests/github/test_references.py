"""The one closing-reference parser, on every form GitHub links, and routing and policy agreeing on it."""

from __future__ import annotations

import pytest

from loopforge.github.events import linked_issues
from loopforge.github.references import IssueRef, closing_references, prose
from loopforge.policy.context import parse_closing_references

REPO = "octo/repo"

# (body, the record ids it closes, in order)
CASES: list[tuple[str, list[str]]] = [
    # every keyword, in any case
    *[(f"{kw} #7", ["octo/repo#7"]) for kw in
      ["close", "closes", "closed", "fix", "fixes", "fixed", "resolve", "resolves", "resolved"]],
    *[(f"{kw} #7", ["octo/repo#7"]) for kw in ["CLOSES", "Fixes", "fIxEd", "RESOLVE"]],
    # optional colon, spaces or tabs
    ("Fixes: #3", ["octo/repo#3"]),
    ("Fixes : #3", ["octo/repo#3"]),
    ("Fixes\t#3", ["octo/repo#3"]),
    ("Fixes   #3", ["octo/repo#3"]),
    # other repositories and URLs on any server
    ("Closes octo-org/octo-repo#100", ["octo-org/octo-repo#100"]),
    ("fixes o/r.js#2", ["o/r.js#2"]),
    ("Fixes https://github.com/o/r/issues/5", ["o/r#5"]),
    ("Fixes https://github.com/o/r/issues/5/", ["o/r#5"]),
    ("resolves http://ghe.example.com:8443/team/app/issues/12.", ["team/app#12"]),
    ("Fixes https://github.com/octo/repo/issues/9", ["octo/repo#9"]),
    ("Fixes https://github.com/o/r/pull/5", []),
    ("Fixes https://github.com/o/r/issues/5/comments", []),
    # this repository written in another case is this repository
    ("Fixes OCTO/Repo#4", ["octo/repo#4"]),
    # several per body, in order, each once
    ("Fixes #12, closes octo/other#3 and resolved: #4.\nfixes #12 again", ["octo/repo#12", "octo/other#3",
                                                                          "octo/repo#4"]),
    ("Resolves #10, resolves #123, resolves octo-org/octo-repo#100",
     ["octo/repo#10", "octo/repo#123", "octo-org/octo-repo#100"]),
    # a comma list after one keyword links only the first (GitHub: "use full syntax for each issue")
    ("Fixes #1, #2 and #3", ["octo/repo#1"]),
    # punctuation around the reference
    ("(fixes #8)", ["octo/repo#8"]),
    ("- [x] Closes #9.", ["octo/repo#9"]),
    ("**Fixes** #9", []),
    # not references
    ("see #3", []),
    ("prefixes #3", []),
    ("closes#1", []),
    ("fixes #0", []),
    ("fixes #x", []),
    ("fixes #12abc", []),
    ("fixes #1234567890", []),
    ("fixes\n#3", []),
    ("fixes octo/repo #3", []),
    ("unfixed #3 and a/fixes #4", []),
    ("", []),
    # code spans, fenced code blocks and HTML comments are not prose
    ("Use `Fixes #1` to link an issue", []),
    ("``Fixes `#1` here``", []),
    ("Fixes `#1`", []),
    ("```\nFixes #1\n```\nCloses #2", ["octo/repo#2"]),
    ("~~~markdown\nFixes #1\n~~~\n", []),
    ("````\n```\nFixes #1\n```\n````\nfixes #3", ["octo/repo#3"]),
    ("```\nFixes #1 (unclosed fence runs to the end)", []),
    ("```\r\nFixes #1\r\n```\r\nCloses #2\r\n", ["octo/repo#2"]),  # Windows line ends, as browsers send them
    ("   ```\nFixes #1\n   ```\nfixes #4", ["octo/repo#4"]),
    ("    ```\nFixes #1", ["octo/repo#1"]),  # indented 4: an indented code line, not a fence; then prose
    ("<!-- Fixes #1 -->\nCloses #2", ["octo/repo#2"]),
    ("<!--\nWrite Fixes #123 here\n-->", []),
    ("<!-- unclosed Fixes #1", []),
    ("Fixes <!-- x --> #1", []),
    ("a ` b\n\nFixes #6 ` c", ["octo/repo#6"]),
]


@pytest.mark.parametrize(("body", "expected"), CASES)
def test_closing_references(body: str, expected: list[str]) -> None:
    assert [r.record_id for r in closing_references(body, REPO)] == expected


@pytest.mark.parametrize(("body", "expected"), CASES)
def test_routing_and_policy_agree(body: str, expected: list[str]) -> None:
    routed = linked_issues(body, REPO)
    policy = [f"{r.repo or REPO}#{r.number}" for r in parse_closing_references(body, REPO)]
    assert routed == policy == expected


def test_the_reference_keeps_its_parts_and_keyword() -> None:
    refs = closing_references("Resolved: o/r#3, FIXES #4", "a/b")
    assert refs == [IssueRef("o", "r", 3), IssueRef("a", "b", 4)]
    assert [r.keyword for r in refs] == ["resolved", "fixes"]
    assert [r.display("a/b") for r in refs] == ["o/r#3", "#4"]
    assert refs[0].full_name == "o/r"


def test_unknown_default_repository() -> None:
    assert closing_references("fixes #2", "") == [IssueRef("", "", 2)]
    assert parse_closing_references("fixes #2, closes o/r#3", None)[0].repo is None
    assert parse_closing_references("fixes #2, closes o/r#3", None)[1].repo == "o/r"
    assert linked_issues(None, REPO) == []


def test_only_the_first_64_kib_is_read() -> None:
    body = "x" * 65_530 + " fixes #1"
    assert closing_references(body, REPO) == []


def test_prose_keeps_lines_and_blanks_code() -> None:
    text = prose("a `b` c\n```\nd\n```\ne")
    assert text.split("\n") == ["a \x00 c", "\x00", "\x00", "\x00", "e"]
