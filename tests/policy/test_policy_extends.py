"""``extends``: the merge rules, the digests, and every way the shared file can be refused."""

from __future__ import annotations

import hashlib

import jsonschema  # type: ignore[import-untyped]
import pytest
import yaml

from loopforge.policy import PolicyError, load_policy, policy_json_schema
from loopforge.policy.extends import SharedPolicyUnreadable, SharedRef, load_extended, merge

SHARED = """\
version: 1
approvers:
  security: [alice, Bob]
risk:
  high: {files: ["infra/**"]}
  medium: {files: ["src/**"]}
rules:
  - name: security review
    require: {approvals: {count: 1, from: {approvers: security}}}
  - name: no blockers
    require: {no_labels: [do-not-merge]}
policy: {all: [security review, no blockers]}
options: {no_rule_applies: block, code_dir: shared/dir}
disapproval: {from: {approvers: security}}
"""
LOCAL = """\
version: 1
extends: acme/.github:policies/base.yml@v2
approvers:
  security: [bob, carol]
  release: [rita]
risk:
  medium: {files: ["app/**"]}
rules:
  - name: no blockers
    require: {no_labels: [do-not-merge, wip]}
  - name: release sign-off
    require: {approvals: {count: 1, from: {approvers: release}}}
options: {code_dir: .github/loopforge}
"""


def fetch_shared(ref: SharedRef) -> str:
    assert ref == SharedRef("acme/.github", "policies/base.yml", "v2")
    return SHARED


def test_merge_rules() -> None:
    policy = load_extended(LOCAL, fetch=fetch_shared)
    assert [r.name for r in policy.rules] == ["security review", "no blockers", "release sign-off"]
    assert policy.rule("no blockers").require.no_labels == ["do-not-merge", "wip"]  # replaced in place
    assert policy.approvers == {"security": ["alice", "Bob", "carol"], "release": ["rita"]}  # merged by name
    assert policy.risk.high is not None and policy.risk.high.files == ["infra/**"]
    assert policy.risk.medium is not None and policy.risk.medium.files == ["app/**"]  # tier replaced
    assert policy.options.no_rule_applies == "block" and policy.options.code_dir == ".github/loopforge"
    assert policy.disapproval is not None and policy.disapproval.from_.approvers == ["security"]
    assert policy.policy is not None and list(policy.policy.names()) == ["security review", "no blockers",
                                                                         "release sign-off"]
    shared_sha = hashlib.sha256(SHARED.encode()).hexdigest()
    local_sha = hashlib.sha256(LOCAL.encode()).hexdigest()
    assert policy.parts == [{"source": "acme/.github:policies/base.yml@v2", "sha256": shared_sha},
                            {"source": ".github/loopforge.yml", "sha256": local_sha}]
    assert policy.digest == hashlib.sha256(f"{shared_sha}\n{local_sha}".encode()).hexdigest()
    assert policy.source == ".github/loopforge.yml"


def test_a_local_policy_node_replaces_the_shared_one() -> None:
    local = LOCAL + "policy: {any: [security review, release sign-off, no blockers]}\n"
    policy = load_extended(local, fetch=fetch_shared)
    assert policy.policy is not None and policy.policy.any is not None


def test_merge_does_not_modify_its_inputs() -> None:
    shared, local = yaml.safe_load(SHARED), yaml.safe_load(LOCAL)
    before = (repr(shared), repr(local))
    merge(shared, local)
    assert (repr(shared), repr(local)) == before


def test_without_extends_nothing_is_fetched() -> None:
    def never(ref: SharedRef) -> str:
        raise AssertionError("fetched")

    policy = load_extended("version: 1\nrules: []\n", fetch=never)
    assert len(policy.parts) == 1 and policy.parts[0]["sha256"] == policy.digest


@pytest.mark.parametrize("shared, problem", [
    ("version: 1\nextends: a/b:c.yml@main\n", "acme/.github:policies/base.yml@v2: extends: a shared policy cannot "
                                              "extend another"),
    ("version: 1\nguards: ['m:f']\n", "a shared policy cannot name guards"),
    ("version: 1\nrules: [\n", "acme/.github:policies/base.yml@v2:3:1: invalid YAML"),
    ("version: 2\n", "acme/.github:policies/base.yml@v2: version: expected one of 1"),
])
def test_a_bad_shared_policy_is_named(shared: str, problem: str) -> None:
    with pytest.raises(PolicyError) as caught:
        load_extended(LOCAL, fetch=lambda ref: shared)
    assert problem in str(caught.value)


def test_a_reference_that_neither_file_defines_is_an_error_of_the_merged_policy() -> None:
    local = LOCAL.replace("from: {approvers: release}", "from: {approvers: nobody}")
    with pytest.raises(PolicyError, match=r"\(extends acme/.github:policies/base.yml@v2\): rules\[2\].*nobody"):
        load_extended(local, fetch=fetch_shared)


def test_an_unreadable_shared_policy_names_the_permission() -> None:
    def denied(ref: SharedRef) -> str:
        raise SharedPolicyUnreadable(ref, ".github/loopforge.yml", "HTTP 404", f"contents: read on {ref.repo}")

    with pytest.raises(SharedPolicyUnreadable) as caught:
        load_extended(LOCAL, fetch=denied)
    assert caught.value.permission == "contents: read on acme/.github"
    assert str(caught.value) == (".github/loopforge.yml: extends: cannot read the shared policy "
                                 "acme/.github:policies/base.yml@v2: HTTP 404 (needs contents: read on acme/.github)")


@pytest.mark.parametrize("spec", ["acme/.github", "acme/.github:base.yml", "acme:base.yml@main",
                                  "acme/.github:@main", "acme/.github:a b.yml@main"])
def test_extends_must_name_repo_path_and_ref(spec: str) -> None:
    with pytest.raises(PolicyError, match="extends: expected owner/repo:path@ref"):
        load_policy(f"version: 1\nextends: {spec!r}\n")


def test_a_file_with_extends_validates_on_its_own_and_in_the_schema() -> None:
    policy = load_policy(LOCAL)  # references to the shared file (approvers, rules) are not resolved here
    assert policy.extends == "acme/.github:policies/base.yml@v2"
    validator = jsonschema.Draft202012Validator(policy_json_schema())
    assert not list(validator.iter_errors(yaml.safe_load(LOCAL)))
    assert list(validator.iter_errors({"version": 1, "extends": "nope"}))
    for data in ({"version": 1, "disapproval": {"from": {"users": ["a"]}}},
                 {"version": 1, "rules": [{"name": "r", "require": {"approvals": {
                     "count": 2, "from": {"teams": ["a/b", "a/c"]}, "distinct_teams": 2,
                     "invalidate_on_push": {"except_same_diff": True}}}}]},
                 {"version": 1, "rules": [{"name": "r", "require": {"approvals": {"from": {"codeowners": True}}}}]}):
        assert not list(validator.iter_errors(data)), data
    assert list(validator.iter_errors({"version": 1, "rules": [{"name": "r", "require": {"approvals": {
        "invalidate_on_push": {"except_same_dif": True}}}}]}))
