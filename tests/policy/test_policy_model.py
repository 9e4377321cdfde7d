"""The policy file: loading, shorthands, one-line errors naming the key, the published JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema  # type: ignore[import-untyped]
import pytest
import yaml

from loopforge.policy import PolicyError, load_policy, load_policy_file, policy_json_schema
from loopforge.policy.model import policy_json_schema_text
from tests.paths import ROOT

SRC = ".github/loopforge.yml"
SCHEMA_FILE = ROOT / "loopforge" / "schemas" / "policy.schema.json"

SUGGESTED = """
version: 1
risk:
  high: {files: ["infra/**", "*.tf"], labels: ["risk:high"]}
  medium: {lines_changed: {over: 400}}
approvers:
  security: [alice, bob]
rules:
  - name: high-risk needs governance
    if: {risk: high}
    require:
      all:
        - ci: {workflows: [CI]}
        - approvals: {count: 2, from: {approvers: security, teams: [org/sec]}, invalidate_on_push: true}
        - label: {name: governance-approved, added_by: {approvers: security, permission: admin}}
        - no_changes_requested: true
        - linked_issue: true
        - gate: {command: "python3 tools/review.py", timeout: 30, on_timeout: block}
        - guard: "policy_guards:require_ticket"
  - name: any PR needs CI
    require: {ci: {checks: [test]}}
options: {fail_job_when_blocked: true}
"""


def rule_policy(if_: str = "", require: str = "{ci: {checks: [t]}}", extra: str = "") -> str:
    cond = f"\n    if: {if_}" if if_ else ""
    return f"version: 1\n{extra}rules:\n  - name: r{cond}\n    require: {require}\n"


def error_of(text: str) -> str:
    with pytest.raises(PolicyError) as info:
        load_policy(text, SRC)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_suggested_shape_loads_with_shorthands_normalised() -> None:
    policy = load_policy(SUGGESTED, SRC)
    assert policy.source == SRC
    assert len(policy.digest) == 64
    high = policy.risk.high
    assert high is not None and high.files == ["infra/**", "*.tf"]
    assert high.labels is not None and high.labels.any == ["risk:high"]
    items = policy.rules[0].require.all
    assert items is not None
    assert items[1].approvals is not None and items[1].approvals.from_ is not None
    assert items[1].approvals.from_.approvers == ["security"]  # a single name becomes a list
    assert items[2].label is not None and items[2].label.name == "governance-approved"
    assert items[3].no_changes_requested is not None
    assert items[4].linked_issue is not None and items[4].linked_issue.verify is True
    assert items[5].gate is not None and items[5].gate.on_timeout == "block" and items[5].gate.timeout == 30
    assert items[6].guard == "policy_guards:require_ticket"
    assert policy.rules[0].if_ is not None and policy.rules[0].if_.risk == ["high"]


def test_more_shorthands() -> None:
    policy = load_policy(rule_policy(if_='{title: "^feat", base: main}', require="{label: ship-it}"), SRC)
    cond = policy.rules[0].if_
    assert cond is not None and cond.title is not None and cond.title.matches == "^feat"
    assert cond.base == ["main"]
    assert policy.rules[0].require.label is not None and policy.rules[0].require.label.added_by is None


@pytest.mark.parametrize(("text", "expected"), [
    (rule_policy(if_='{files: "infra/**"}'), f"{SRC}: rules[0].if.files: expected a list of globs, got a string"),
    (rule_policy(if_="{fils: [a]}"), f"{SRC}: rules[0].if.fils: unknown key (did you mean 'files'?)"),
    (rule_policy(require="{}"), f"{SRC}: rules[0].require: empty requirement"),
    (rule_policy(require="{approvals: {count: two}}"),
     f"{SRC}: rules[0].require.approvals.count: expected an integer, got a string"),
    (rule_policy(require="{approvals: {count: 0}}"), f"{SRC}: rules[0].require.approvals.count: must be >= 1"),
    (rule_policy(require="{approvals: {from: {approvers: sec}}}"),
     f"{SRC}: rules[0].require.approvals.from.approvers: unknown approver list 'sec' (defined: none)"),
    (rule_policy(require="{label: {name: x, added_by: {approvers: [secu]}}}", extra="approvers: {security: [a]}\n"),
     f"{SRC}: rules[0].require.label.added_by.approvers: unknown approver list 'secu' (defined: security)"),
    ("version: 2\n", f"{SRC}: version: expected one of 1, got 2"),
    ("rules: []\n", f"{SRC}: version: required"),
    ("version: 1\nversion: 1\n", f"{SRC}:2:1: invalid YAML: duplicate key 'version'"),
    ("version: 1\nrules: [\n", f"{SRC}:3:1: invalid YAML:"),
    ("version: 1\nrules: " + "[" * 5000 + "]" * 5000, f"{SRC}: invalid YAML: collections nested too deeply"),
    ("version: 1\nx: " + "{a: " * 3000 + "1" + "}" * 3000, f"{SRC}: invalid YAML: collections nested too deeply"),
    ("", f"{SRC}: the policy is empty"),
    ("- a\n", f"{SRC}: expected a mapping at the top level, got a list"),
    (rule_policy(require="{gate: {command: x, url: 'http://y'}}"),
     f"{SRC}: rules[0].require.gate: give exactly one of command or url"),
    (rule_policy(require="{gate: {command: x, on_timeout: maybe}}"),
     f"{SRC}: rules[0].require.gate.on_timeout: expected one of 'block' or 'allow', got 'maybe'"),
    (rule_policy(require="{gate: {url: 'ftp://x'}}"), f"{SRC}: rules[0].require.gate.url: expected an http"),
    (rule_policy(require="{linked_issue: false}"),
     f"{SRC}: rules[0].require.linked_issue: false is not allowed here"),
    (rule_policy(if_='{title: "(["}'), f"{SRC}: rules[0].if.title.matches: invalid regular expression"),
    (rule_policy(if_="{risk: critical}"), f"{SRC}: rules[0].if.risk: unknown risk tier 'critical'"),
    (rule_policy(require="{guard: ../evil:f}"), f"{SRC}: rules[0].require.guard: expected module:function"),
    (rule_policy(require="{guard: /abs/path.py}"), f"{SRC}: rules[0].require.guard: expected module:function"),
    (rule_policy(if_="{author: {teams: [sec]}}"), f"{SRC}: rules[0].if.author.teams: 'sec' is not a team"),
    (rule_policy(if_="{author: {users: ['not a login']}}"), f"{SRC}: rules[0].if.author.users: 'not a login'"),
    (rule_policy(if_="{author: {associations: [boss]}}"), f"{SRC}: rules[0].if.author.associations: 'BOSS'"),
    (rule_policy(if_="{labels: x}"), f"{SRC}: rules[0].if.labels: expected a list of labels"),
    (rule_policy(if_='{draft: "no"}'), f"{SRC}: rules[0].if.draft: expected true or false, got a string"),
    (rule_policy(if_="{lines_changed: {}}"), f"{SRC}: rules[0].if.lines_changed: give over or under"),
    (rule_policy(require="{ci: {}}"), f"{SRC}: rules[0].require.ci: give workflows or checks"),
    (rule_policy(require="{ci: {checks: [a], conclusions: [green]}}"),
     f"{SRC}: rules[0].require.ci.conclusions: 'green' is not a conclusion"),
    (rule_policy(require="{all: []}"), f"{SRC}: rules[0].require.all: must not be empty"),
    ("version: 1\nrisk: {high: {risk: high}}\n", f"{SRC}: risk.high.risk: a risk tier cannot depend on the risk"),
    ("version: 1\nrisk: {critical: {labels: [x]}}\n", f"{SRC}: risk.critical: unknown key"),
    ("version: 1\nrules:\n  - {name: a, require: {linked_issue: true}}\n  - {name: a, require: {linked_issue: true}}\n",
     f"{SRC}: rules[1].name: duplicate rule name 'a' (also rules[0])"),
    ("version: 1\npolicy: {any: [a, b]}\nrules:\n  - {name: a, require: {linked_issue: true}}\n",
     f"{SRC}: policy: unknown rule 'b'"),
    ("version: 1\npolicy: a\nrules:\n  - {name: a, require: {linked_issue: true}}\n"
     "  - {name: b, require: {linked_issue: true}}\n", f"{SRC}: rules[1]: rule 'b' is not used in policy"),
    ("version: 1\noptions: {code_dir: ../x}\n", f"{SRC}: options.code_dir: must be a relative path"),
    ("version: 1\napprovers: {security: []}\n", f"{SRC}: approvers: approver list 'security' is empty"),
    ("version: 1\nguards: ['a/b.py']\n", f"{SRC}: guards: 'a/b.py': expected module:function"),
])
def test_errors_are_one_line_naming_the_key(text: str, expected: str) -> None:
    assert error_of(text).startswith(expected)


def test_error_lists_every_problem() -> None:
    message = error_of("version: 1\nrules:\n  - name: a\n    require: {approvals: {count: x, invalidate_on_push: 3}}\n")
    assert "more error" not in message and "\n" not in message
    assert "rules[0].require.approvals.count: " in message
    assert "; rules[0].require.approvals.invalidate_on_push: " in message


def test_error_with_newlines_in_input_stays_one_line() -> None:
    message = error_of('version: 1\nrules:\n  - name: a\n    require: {gate: {command: x, on_timeout: "a\\nb"}}\n')
    assert "\n" not in message


def test_load_policy_file_reports_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as info:
        load_policy_file(tmp_path / "missing.yml")
    assert "cannot read" in str(info.value)


def test_committed_json_schema_is_the_generated_one() -> None:
    committed = SCHEMA_FILE.read_text(encoding="utf-8")
    assert committed == policy_json_schema_text(), (
        "regenerate: python3 -c 'from loopforge.policy.model import policy_json_schema_text as t; "
        "open(\"loopforge/schemas/policy.schema.json\", \"w\").write(t())'")


def test_json_schema_accepts_the_shapes_and_refuses_unknown_keys() -> None:
    schema = policy_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    assert not list(validator.iter_errors(yaml.safe_load(SUGGESTED)))
    shorthand = yaml.safe_load(rule_policy(if_='{title: "^x", base: main, risk: high, labels: [a]}',
                                           require="{label: x, no_changes_requested: true, linked_issue: true}"))
    assert not list(validator.iter_errors(shorthand))
    assert list(validator.iter_errors(yaml.safe_load(rule_policy(if_="{fils: [a]}"))))
    assert list(validator.iter_errors({"version": 2}))
    assert json.loads(SCHEMA_FILE.read_text())["$schema"].startswith("https://json-schema.org/")


def test_policy_expression_names_rules() -> None:
    policy = load_policy("version: 1\npolicy: {any: [a, {all: [b, c]}]}\nrules:\n"
                         "  - {name: a, require: {linked_issue: true}}\n  - {name: b, require: {linked_issue: true}}\n"
                         "  - {name: c, require: {linked_issue: true}}\n", SRC)
    assert policy.policy is not None and sorted(policy.policy.names()) == ["a", "b", "c"]
    assert policy.rule("b").name == "b"
