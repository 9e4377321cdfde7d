"""The Action imports only what an event needs: the policy machinery (and YAML) only for pull-request events,
boto3 only for the DynamoDB store (``loopforge/action/facts.py`` and ``repository/factory.py`` import lazily)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.paths import ROOT

HEAVY = ("loopforge.policy", "loopforge.action.governance", "yaml", "boto3", "botocore")


def _loaded_after(code: str) -> list[str]:
    script = f"import sys\n{code}\nimport json\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_importing_the_action_loads_no_policy_and_no_boto3() -> None:
    assert _loaded_after("import loopforge.action, loopforge.action.pipeline") == []


def test_an_issue_event_runs_without_the_policy_machinery(tmp_path: Path) -> None:
    """An issue event routed, then failing at the store (nothing listens on port 9): the policy was never loaded."""
    event = tmp_path / "event.json"
    event.write_text((ROOT / "tests/fixtures/lifecycle/01-issues-opened.json").read_text())
    code = (f"import io, loopforge.action as a\nenv = {{'GITHUB_EVENT_NAME': 'issues', 'GITHUB_EVENT_PATH': "
            f"{str(event)!r}, 'INPUT_GITHUB-TOKEN': 't', 'GITHUB_API_URL': 'http://127.0.0.1:9', "
            f"'LOOPFORGE_TEST_FAST_RETRY': '1'}}\nassert a.run(env, io.StringIO()) == 1")
    assert _loaded_after(code) == []


def test_the_light_copy_of_the_default_policy_path_equals_the_policy_packages() -> None:
    """The Action and the evidence use ``evidence.facts.DEFAULT_POLICY_PATH`` so that an event that is not a PR
    never loads the policy package (its home); the two must say the same."""
    from loopforge.evidence.facts import DEFAULT_POLICY_PATH as light
    from loopforge.policy.model import DEFAULT_POLICY_PATH

    assert light == DEFAULT_POLICY_PATH
