"""Evidence end to end through ``entrypoint.py`` (the runner's contract, tests/action_harness.py) against the fake
GitHub: a governed PR merged → signed statements on the data branch for the merge commit → ``loopforge attest
verify`` passes with the public key; one changed byte, the wrong commit, an edited trail entry → it fails naming
why; a bypass merge → a statement with FAILED.


The Action calls ``loopforge.evidence.action_step.attest_step`` in its attest step (loopforge/action/attest.py).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from loopforge.evidence.cli import main as evidence_cli
from tests.action_harness import StepResult, run_step
from tests.fakegithub import FakeGitHub
from tests.fakegithub.fixtures import assert_clean
from tests.paths import lifecycle_event as fixture

REPO = "Codertocat/Hello-World"
RECORD_DIR = "records/Codertocat/Hello-World/1"
PR = 2
BASE = "master"
POLICY = """\
version: 1
rules:
  - name: reviewed
    require:
      approvals: {count: 1}
  - name: no blockers
    require:
      no_labels: [do-not-merge]
"""


CLOSED = fixture("pull_request-closed")
MERGE_SHA = CLOSED["pull_request"]["merge_commit_sha"]
HEAD = CLOSED["pull_request"]["head"]["sha"]
EVIDENCE = f"attestations/{MERGE_SHA}"


class Scenario:
    def __init__(self, fake: FakeGitHub, url: str, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.fake, self.url, self.tmp = fake, url, tmp
        self.run_id = 3000
        key = ec.generate_private_key(ec.SECP256R1())
        self.private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()).decode()
        self.public = tmp / "pub.pem"
        self.public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                              serialization.PublicFormat.SubjectPublicKeyInfo))
        # `loopforge attest verify --branch` reads the data branch through the API, like an auditor would
        monkeypatch.setenv("GITHUB_TOKEN", "ghs_test_token")
        monkeypatch.setenv("GITHUB_API_URL", url)

    def step(self, name: str, payload: dict[str, Any], *, rerun: bool = False, **inputs: str) -> StepResult:
        """One container step; ``rerun``: the previous workflow run again (attempt 2)."""
        self.run_id += 0 if rerun else 1
        attempt = 2 if rerun else 1
        result = run_step(self.tmp / f"run{self.run_id}-{attempt}", name, payload, api_url=self.url, repo=REPO,
                          run_id=self.run_id, attempt=attempt,
                          inputs={"attest": "key", "signing-key": self.private, **inputs})
        assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr
        return result

    def pull(self, **kw: Any) -> None:
        opened = fixture("pull_request-opened")["pull_request"]
        self.fake.add_pull(PR, HEAD, base=BASE, body=opened["body"], title=opened["title"], user="Codertocat",
                           head_ref="changes", files=[("docs/guide.md", 4, 1)], **kw)

    def files(self) -> dict[str, str]:
        return self.fake.branch_files("loopforge-state")

    def verify(self, sha: str = MERGE_SHA) -> int:
        return evidence_cli(["attest", "verify", sha, "--key", str(self.public), "--branch", REPO])

    def vsa(self) -> dict[str, Any]:
        envelope = json.loads(self.files()[f"{EVIDENCE}/vsa.dsse.json"])
        return json.loads(base64.b64decode(envelope["payload"]))  # type: ignore[no-any-return]


@pytest.fixture
def scenario(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Scenario]:
    fake = FakeGitHub(owner="Codertocat", repo="Hello-World", default_branch=BASE)
    with fake.serve() as url:
        yield Scenario(fake, url, tmp_path, monkeypatch)
    assert_clean(fake)


def governed_merge(s: Scenario) -> StepResult:
    s.fake.set_file(BASE, ".github/loopforge.yml", POLICY)
    s.pull()
    s.fake.add_review(PR, "alice", "APPROVED", HEAD)
    ci = fixture("workflow_run-completed")
    assert s.step("workflow_run", ci).code == 0
    review = fixture("pull_request_review-submitted")
    review["review"]["user"] = dict(review["review"]["user"], login="alice", id=424242)
    assert s.step("pull_request_review", review).code == 0
    s.pull(state="closed", merged=True, merged_by="alice")
    return s.step("pull_request", CLOSED)


def test_a_governed_merge_is_signed_stored_and_verifies(scenario: Scenario,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    merged = governed_merge(scenario)
    assert merged.code == 0, merged.stdout
    assert (merged.outputs["state"], merged.outputs["verdict"]) == ("merged", "pass")
    files = scenario.files()
    assert sorted(p.removeprefix(EVIDENCE + "/") for p in files if p.startswith(EVIDENCE)) == [
        "ci.dsse.json", "index.json", "reviews.dsse.json", "trail.dsse.json", "vsa.dsse.json"]
    assert f"loopforge attest verify {MERGE_SHA}" in merged.summary
    vsa = scenario.vsa()
    assert vsa["subject"] == [{"uri": f"git+https://github.com/{REPO}@refs/heads/{BASE}",
                               "digest": {"gitCommit": MERGE_SHA}}]
    assert vsa["predicate"]["verificationResult"] == "PASSED"
    assert "ORG_SOURCE_REVIEWED_BY_NON_AUTHOR" in vsa["predicate"]["verifiedLevels"]
    capsys.readouterr()
    assert scenario.verify() == 0, capsys.readouterr()
    # a re-run of the merge's workflow run writes nothing twice: the same evidence, the same trail
    again = scenario.step("pull_request", CLOSED, rerun=True)
    assert again.code == 0 and again.outputs["outcome"] == "duplicate", again.stdout
    assert scenario.files() == files


def test_tampering_fails_naming_why(scenario: Scenario, capsys: pytest.CaptureFixture[str]) -> None:
    assert governed_merge(scenario).code == 0
    files = scenario.files()
    capsys.readouterr()

    # one changed byte in the signed statement
    envelope = json.loads(files[f"{EVIDENCE}/vsa.dsse.json"])
    payload = base64.b64decode(envelope["payload"]).replace(b"PASSED", b"PASSEd")
    scenario.fake.set_file("loopforge-state", f"{EVIDENCE}/vsa.dsse.json",
                           json.dumps(dict(envelope, payload=base64.b64encode(payload).decode())))
    assert scenario.verify() == 1
    out = capsys.readouterr()
    assert "[FAILED] signature vsa.dsse.json" in out.out and "signature vsa.dsse.json" in out.err
    scenario.fake.set_file("loopforge-state", f"{EVIDENCE}/vsa.dsse.json", files[f"{EVIDENCE}/vsa.dsse.json"])
    assert scenario.verify() == 0

    # the wrong commit: this merge's evidence filed under another commit
    other = "d" * 40
    for path, text in files.items():
        if path.startswith(EVIDENCE + "/"):
            scenario.fake.set_file("loopforge-state", path.replace(MERGE_SHA, other),
                                   text.replace(MERGE_SHA, other) if path.endswith("index.json") else text)
    capsys.readouterr()
    assert scenario.verify(other) == 1
    assert f"vsa is about {MERGE_SHA}, not {other}" in capsys.readouterr().out

    # an edited trail entry
    first = f"{RECORD_DIR}/entries/000002.json"
    scenario.fake.set_file("loopforge-state", first, files[first].replace('"actor": "Codertocat"',
                                                                          '"actor": "mallory"'))
    assert scenario.verify() == 1
    assert "entry 2: content does not match its hash (entry edited)" in capsys.readouterr().out


def test_a_bypass_merge_is_attested_failed(scenario: Scenario, capsys: pytest.CaptureFixture[str]) -> None:
    scenario.fake.set_file(BASE, ".github/loopforge.yml", POLICY)
    scenario.pull(labels=("do-not-merge",))
    scenario.pull(labels=("do-not-merge",), state="closed", merged=True, merged_by="mallory")
    merged = scenario.step("pull_request", CLOSED)
    assert merged.code == 1 and len(merged.commands("error")) == 1  # the violation, not the evidence
    vsa = scenario.vsa()
    assert vsa["predicate"]["verificationResult"] == "FAILED"
    assert "ORG_SOURCE_LOOPFORGE_POLICY_PASSED" not in vsa["predicate"]["verifiedLevels"]
    capsys.readouterr()
    assert scenario.verify() == 0  # authentic evidence of a bad merge verifies: it says FAILED
