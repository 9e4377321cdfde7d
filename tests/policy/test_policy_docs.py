"""The cookbook policies in docs/policy.md load, and behave as the text says."""

from __future__ import annotations

import re
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
import yaml

from loopforge.policy import (
    ChangedFile,
    CheckState,
    FakeContext,
    LabelEvent,
    Policy,
    Review,
    Status,
    evaluate,
    load_policy,
    policy_json_schema,
)
from tests.paths import ROOT

DOC = ROOT / "docs" / "policy.md"
HEAD = "f" * 40


def cookbook() -> dict[str, str]:
    blocks = re.findall(r"```yaml\n(# cookbook: (\S+)\n.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    return {name: text for text, name in blocks}


@pytest.fixture(scope="module")
def policies() -> dict[str, Policy]:
    return {name: load_policy(text, f"docs/policy.md#{name}") for name, text in cookbook().items()}


def test_the_three_cookbook_policies_are_there_and_valid(policies: dict[str, Policy]) -> None:
    assert set(policies) == {"small-team", "regulated-monorepo", "ai-agent-prs"}
    validator = jsonschema.Draft202012Validator(policy_json_schema())
    for name, text in cookbook().items():
        assert not list(validator.iter_errors(yaml.safe_load(text))), name


def green(**kw: Any) -> FakeContext:
    base: dict[str, Any] = dict(head_sha=HEAD, author="dev", files=[ChangedFile("src/app.py", additions=5)],
                workflows={"CI": CheckState("CI", conclusion="success", kind="workflow"),
                           "Lint": CheckState("Lint", conclusion="success", kind="workflow")},
                checks={"sonar": CheckState("sonar", conclusion="success")}, body="Fixes #1", issues={"#1": "open"},
                review_list=[Review("alice", "APPROVED", HEAD)], permissions={}, teams={"acme/security": []})
    base.update(kw)
    return FakeContext(**base)


def test_small_team(policies: dict[str, Policy]) -> None:
    policy = policies["small-team"]
    assert evaluate(policy, green(review_list=[Review("carol", "APPROVED", HEAD)])).verdict == "pass"
    infra = green(files=[ChangedFile("infra/main.tf")], review_list=[Review("carol", "APPROVED", HEAD)])
    evaluation = evaluate(policy, infra)
    assert evaluation.risk_tier == "high" and evaluation.blocking == ["infrastructure needs a maintainer"]
    assert evaluate(policy, green(files=[ChangedFile("infra/main.tf")])).verdict == "pass"  # alice maintains
    assert evaluate(policy, green(labels=["do-not-merge"])).verdict == "block"


def test_regulated_monorepo(policies: dict[str, Policy]) -> None:
    policy = policies["regulated-monorepo"]
    assert evaluate(policy, green()).verdict == "pass"
    assert evaluate(policy, green(body="no ticket")).blocking == ["traceability"]
    payments = green(files=[ChangedFile("services/payments/api.py")],
                     review_list=[Review("alice", "APPROVED", HEAD), Review("bob", "APPROVED", HEAD)],
                     labels=["governance-approved"],
                     label_event_list=[LabelEvent("governance-approved", "mallory")])
    evaluation = evaluate(policy, payments)  # no base checkout: the gate cannot run
    result = evaluation.result("high-risk governance")
    assert result.status is Status.FAILED
    assert "label governance-approved was added by mallory who is not allowed" in result.reason
    assert "gate security-review not run: needs the base-branch checkout" in result.reason
    release = evaluate(policy, green(base_ref="release/2.0"))
    assert release.result("release branches").status is Status.PENDING  # guard needs the checkout and record


def test_ai_agent_prs(policies: dict[str, Policy]) -> None:
    policy = policies["ai-agent-prs"]
    assert evaluate(policy, green()).verdict == "pass"  # a human's PR: one approval
    agent = green(author="acme-agent", review_list=[Review("acme-agent", "APPROVED", HEAD),
                                                    Review("copilot[bot]", "APPROVED", HEAD)],
                  permissions={"acme-agent": "write", "copilot[bot]": "write"})
    evaluation = evaluate(policy, agent, run_gates=False)
    assert evaluation.result("human PRs").status is Status.SKIPPED
    result = evaluation.result("agent PRs need a human")
    assert result.status is Status.PENDING and "0 of 1 approval" in result.reason
    labelled = green(labels=["ai-generated"], review_list=[Review("alice", "APPROVED", HEAD)])
    result = evaluate(policy, labelled, run_gates=False).result("agent PRs need a human")
    assert result.status is Status.PENDING and result.reason == "gate agent-review not run (offline)"
