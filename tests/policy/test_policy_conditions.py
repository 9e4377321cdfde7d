"""Conditions (``if``) and risk tiers, against ``FakeContext``."""

from __future__ import annotations

from typing import Any

import pytest

from loopforge.policy import ChangedFile, FakeContext, Status, evaluate, load_policy
from loopforge.policy.context import parse_closing_references
from loopforge.policy.evaluate import Evaluation


def ctx(**kw: Any) -> FakeContext:
    kw.setdefault("files", [ChangedFile("src/app.py", additions=10, deletions=2)])
    return FakeContext(**kw)


def run(if_: str, context: FakeContext, extra: str = "") -> Evaluation:
    text = f"version: 1\n{extra}rules:\n  - name: r\n    if: {if_}\n    require: {{no_labels: [never]}}\n"
    policy = load_policy(text)
    return evaluate(policy, context)


def applies(if_: str, context: FakeContext, extra: str = "") -> bool:
    result = run(if_, context, extra).result("r")
    assert result.status in (Status.PASSED, Status.SKIPPED), result
    return result.status is Status.PASSED


def test_files_gitignore_globs() -> None:
    c = ctx(files=[ChangedFile("infra/net/main.tf"), ChangedFile("README.md")])
    assert applies('{files: ["infra/**"]}', c)
    assert applies('{files: ["*.tf"]}', c)  # no slash: any depth, as in .gitignore
    assert not applies('{files: ["/main.tf"]}', c)  # anchored
    assert not applies('{files: ["docs/**"]}', c)
    assert not applies('{files: ["infra/**", "!infra/net/**"]}', c)  # negation
    assert "infra/net/main.tf matches infra/**" in run('{files: ["infra/**"]}', c).result("r").applies  # type: ignore[operator]


def test_files_matches_old_name_of_a_renamed_file() -> None:
    moved = ctx(files=[ChangedFile("attic/main.tf.bak", status="renamed", previous_filename="infra/main.tf")])
    assert applies('{files: ["infra/**"]}', moved)


def test_files_truncated_list_is_assumed_to_match() -> None:
    big = ctx(files=[ChangedFile("a.txt")], truncated=True)
    assert applies('{files: ["infra/**"]}', big)
    assert not applies('{only_files: ["*.txt"]}', big)


def test_only_files() -> None:
    docs = ctx(files=[ChangedFile("docs/a.md"), ChangedFile("docs/b/c.md")])
    assert applies('{only_files: ["docs/**", "*.md"]}', docs)
    mixed = ctx(files=[ChangedFile("docs/a.md"), ChangedFile("src/x.py")])
    result = run('{only_files: ["docs/**"]}', mixed).result("r")
    assert result.status is Status.SKIPPED and "src/x.py does not match docs/**" in result.reason
    assert not applies('{only_files: ["docs/**"]}', ctx(files=[]))


def test_labels_any_all_none_case_insensitive() -> None:
    c = ctx(labels=["Risk:High", "backend"])
    assert applies("{labels: [risk:high, other]}", c)
    assert not applies("{labels: [other]}", c)
    assert applies("{labels: {all: [risk:high, backend]}}", c)
    assert not applies("{labels: {all: [risk:high, frontend]}}", c)
    assert applies("{labels: {none: [wip]}}", c)
    assert not applies("{labels: {none: [backend]}}", c)


def test_author_users_not_users_associations_bot() -> None:
    assert applies("{author: {users: [Alice]}}", ctx(author="alice"))
    assert not applies("{author: {users: [bob]}}", ctx(author="alice"))
    assert not applies("{author: {not_users: [alice]}}", ctx(author="alice"))
    assert applies("{author: {not_users: [bob]}}", ctx(author="alice"))
    assert applies("{author: {associations: [first_time_contributor]}}",
                   ctx(author="newbie", author_association="FIRST_TIME_CONTRIBUTOR"))
    assert not applies("{author: {associations: [MEMBER]}}", ctx(author_association="CONTRIBUTOR"))
    assert applies("{author: {bot: true}}", ctx(author="dependabot[bot]"))
    assert not applies("{author: {bot: true}}", ctx(author="alice"))
    assert applies("{author: {bot: false}}", ctx(author="alice"))
    assert applies("{author: {approvers: agents}}", ctx(author="acme-agent"),
                   extra="approvers: {agents: [acme-agent]}\n")


def test_author_teams_read_through_the_context() -> None:
    c = ctx(author="alice", teams={"org/sec": ["alice"], "org/web": []})
    assert applies("{author: {teams: [org/sec]}}", c)
    assert not applies("{author: {teams: [org/web]}}", c)
    assert not applies("{author: {not_teams: [org/sec]}}", c)


def test_author_team_unreadable_fails_the_rule_never_skips_it() -> None:
    result = run("{author: {teams: [org/sec]}}", ctx(author="alice", teams=None)).result("r")
    assert result.status is Status.FAILED
    assert result.missing_permissions == ["members: read"]
    assert "members: read" in result.reason


def test_author_listed_user_needs_no_team_lookup() -> None:
    c = ctx(author="alice", teams=None)
    assert applies("{author: {users: [alice], teams: [org/sec]}}", c)
    assert not any(call.startswith("team:") for call in c.calls)


def test_base_draft_title_lines() -> None:
    assert applies("{base: main}", ctx(base_ref="main"))
    assert applies('{base: ["release/*"]}', ctx(base_ref="release/1.2"))
    assert not applies('{base: ["release/*"]}', ctx(base_ref="main"))
    assert applies("{draft: true}", ctx(draft=True))
    assert not applies("{draft: true}", ctx(draft=False))
    assert applies("{draft: false}", ctx(draft=False))
    assert applies('{title: "^(feat|fix)(\\\\(.+\\\\))?:"}', ctx(title="feat(api): x"))
    assert not applies('{title: "^feat"}', ctx(title="chore: x"))
    assert applies('{title: {not_matches: "WIP"}}', ctx(title="feat: x"))
    assert not applies('{title: {not_matches: "WIP"}}', ctx(title="WIP feat: x"))
    big = ctx(files=[ChangedFile("a", additions=300, deletions=150)])
    assert applies("{lines_changed: {over: 400}}", big)
    assert not applies("{lines_changed: {over: 450}}", big)
    assert applies("{lines_changed: {under: 451}}", big)
    assert not applies("{lines_changed: {over: 10, under: 400}}", big)
    assert applies("{lines_changed: {over: 400}}", ctx(files=[], additions=500, deletions=0))


def test_keys_combine_with_and_and_any_all_not() -> None:
    c = ctx(base_ref="main", draft=False, labels=["x"])
    assert applies("{base: main, draft: false}", c)
    assert not applies("{base: main, draft: true}", c)
    assert applies("{any: [{draft: true}, {labels: [x]}]}", c)
    assert not applies("{any: [{draft: true}, {labels: [y]}]}", c)
    assert applies("{all: [{base: main}, {labels: [x]}]}", c)
    assert applies("{not: {draft: true}}", c)
    assert not applies("{not: {labels: [x]}}", c)


def test_cheap_conditions_first_stop_before_lookups() -> None:
    c = ctx(draft=True, teams=None)
    assert not applies("{author: {teams: [org/sec]}, draft: false}", c)  # draft decides; team never read
    assert not any(call.startswith("team:") for call in c.calls)


def test_skipped_rule_says_why() -> None:
    result = run("{base: main}", ctx(base_ref="dev")).result("r")
    assert result.status is Status.SKIPPED
    assert result.reason == "does not apply: base branch dev is not main"


RISK = """risk:
  high: {files: ["infra/**", "*.tf"], labels: ["risk:high"]}
  medium: {lines_changed: {over: 400}}
"""


@pytest.mark.parametrize(("context", "tier"), [
    (ctx(files=[ChangedFile("infra/a.py")]), "high"),
    (ctx(files=[ChangedFile("x/main.tf")]), "high"),
    (ctx(labels=["risk:high"]), "high"),  # any signal suffices
    (ctx(files=[ChangedFile("src/a.py", additions=401)]), "medium"),
    (ctx(files=[ChangedFile("infra/a.py", additions=401)]), "high"),  # the highest tier wins
    (ctx(), "low"),
])
def test_risk_tier(context: FakeContext, tier: str) -> None:
    evaluation = run("{risk: [low, medium, high]}", context, extra=RISK)
    assert evaluation.risk_tier == tier
    assert applies(f"{{risk: {tier}}}", context, extra=RISK)


def test_risk_tier_that_cannot_be_checked_is_assumed_and_reported() -> None:
    extra = "risk:\n  high: {author: {teams: [org/contractors]}}\n"
    evaluation = run("{risk: high}", ctx(teams=None), extra=extra)
    assert evaluation.risk_tier == "high"
    assert "assumed high" in evaluation.risk_reason
    assert evaluation.missing_permissions == ["members: read"]
    assert any("members: read" in line for line in evaluation.permission_errors())


def test_closing_references() -> None:
    body = ("Fixes #12, closes octo/other#3 and resolved: #4.\nRefs #5. Fixed https://github.com/o/r/issues/9\n"
            "prefix#7 fixes octo/repo#12 FIXES #12")
    refs = [(r.repo, r.number, r.keyword) for r in parse_closing_references(body, "octo/repo")]
    assert refs == [(None, 12, "fixes"), ("octo/other", 3, "closes"), (None, 4, "resolved"), ("o/r", 9, "fixed")]
    assert parse_closing_references("closes#1 fixes #0 prefixes #3", None) == []
