"""Policy attacks: a pull request that tries to change the rules it is judged by gains nothing.

``entrypoint.py`` runs as the Actions runner runs it (``run_step``) against the fake GitHub on 127.0.0.1, with a
strict policy (docs/policy.md) on the base branch ``master``. The PR's own branch and its checkout (the job's
workspace, where a ``pull_request`` job has the PR's code) carry the attacker's files: a permissive policy, guard
modules, gate scripts and modules shadowing LoopForge's own imports, each of which writes a marker file if it is
ever imported or executed. The markers must never appear, and the verdict must be the strict policy's.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loopforge.github.render import md_escape
from tests.action_harness import StepResult, run_step
from tests.fakegithub import CheckRun, FakeGitHub
from tests.fakegithub.fixtures import assert_clean

LIFECYCLE = Path(__file__).parent / "fixtures" / "lifecycle"
REPO = "Codertocat/Hello-World"
PR = 2
BASE = "master"
HEAD_REF = "changes"
CODE_DIR = ".github/loopforge"
HEAD = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"

STRICT = """\
version: 1
risk:
  high: {files: ["infra/**", ".github/**"]}
approvers:
  security: [alice, bob]
rules:
  - name: no blockers
    require:
      no_labels: [do-not-merge]
  - name: high-risk governance
    if: {risk: high}
    require:
      approvals: {count: 2, from: {approvers: security}}
      label: {name: governance-approved, added_by: {approvers: security, permission: admin}}
"""
PERMISSIVE = "version: 1\nrules:\n  - name: anything goes\n    require: {no_labels: [never-used]}\n"


def fixture(stem: str) -> dict[str, Any]:
    return json.loads(next(LIFECYCLE.glob(f"*-{stem}.json")).read_text())  # type: ignore[no-any-return]


def marker_module(marker: Path, *functions: str) -> str:
    """Python that leaves ``marker`` behind if it is ever imported (and allows everything if called)."""
    body = f"from pathlib import Path\nPath({str(marker)!r}).write_text('imported: attacker code ran')\n"
    for name in functions:
        body += f"\n\ndef {name}(*args, **kwargs):\n    return True\n"
    return body


def marker_script(marker: Path) -> str:
    return (f"import json\nfrom pathlib import Path\nPath({str(marker)!r}).write_text('executed')\n"
            'print(json.dumps({"verdict": "allow", "reason": "the PR approves itself"}))\n')


class Repo:
    """The fake GitHub of one test (base branch ``master`` with the strict policy) and the steps run against it."""

    def __init__(self, fake: FakeGitHub, url: str, tmp: Path) -> None:
        self.fake, self.url, self.tmp = fake, url, tmp
        self.run_id = 5000
        self.marker = tmp / "ATTACKER-CODE-RAN"

    def pull(self, head: str = HEAD, *, files: list[tuple[str, int, int]] | None = None, base: str = BASE,
             **kw: Any) -> None:
        self.fake.add_pull(PR, head, base=base, title="Update the README with new information.",
                           body="Fixes #1", user="Codertocat", head_ref=HEAD_REF,
                           files=files if files is not None else [("infra/vpc.tf", 10, 0)], **kw)

    def step(self, event: tuple[str, dict[str, Any]], *, workspace: dict[str, str] | None = None) -> StepResult:
        self.run_id += 1
        tmp = self.tmp / f"run{self.run_id}"
        for path, text in (workspace or {}).items():  # the PR's checkout: where a pull_request job runs
            target = tmp / "github" / "workspace" / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        result = run_step(tmp, event[0], event[1], api_url=self.url, repo=REPO, run_id=self.run_id)
        assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr
        assert not self.marker.exists(), "code from the PR was imported or executed"
        return result

    def check(self, sha: str = HEAD) -> CheckRun:
        runs = [r for r in self.fake.check_runs(sha) if r.name == "loopforge"]
        assert len(runs) == 1, runs
        return runs[0]

    def evaluations(self) -> list[dict[str, Any]]:
        files = self.fake.branch_files("loopforge-state")
        entries = [json.loads(text) for path, text in sorted(files.items()) if "/entries/" in path]
        return [e["evidence"]["policy"] for e in entries if e["trigger"] == "policy.evaluated"]

    def policy_reads(self) -> list[str]:
        """``ref=<branch>`` of every read of the policy: a REST Contents GET, or the Action's one GraphQL read,
        which takes the policy at the tip of the PR's base (``pr.baseRef``) and answers which branch that was."""
        reads = []
        for entry in self.fake.log:
            if entry["method"] == "GET" and entry["path"].endswith("/contents/.github/loopforge.yml"):
                reads.append(entry["query"])
            elif entry["path"].startswith("/graphql/query") and isinstance(entry["response"], dict):
                body = json.loads(entry["body"])
                pr = ((entry["response"].get("data") or {}).get("repository") or {}).get("pr") or {}
                if "policyPath" in body["variables"] and "baseRef { target" in body["query"] and pr:
                    reads.append(f"ref={pr['baseRefName']}")
        return reads


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Repo]:
    fake = FakeGitHub(owner="Codertocat", repo="Hello-World", default_branch=BASE)
    fake.set_file(BASE, ".github/loopforge.yml", STRICT)
    with fake.serve() as url:
        yield Repo(fake, url, tmp_path)
    assert_clean(fake)


def pr_event(action: str, *, sha: str = HEAD, base: str = BASE, sender: str = "Codertocat",
             label: str | None = None, changes: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    payload = fixture("pull_request-opened")
    payload["action"] = action
    payload["pull_request"]["head"]["sha"] = sha
    payload["pull_request"]["base"]["ref"] = base
    payload["sender"]["login"] = sender
    if label is not None:
        payload["label"] = {"id": 1, "node_id": "MDU6TGFiZWwx", "name": label, "color": "ededed", "default": False,
                            "description": None, "url": f"https://api.github.com/repos/{REPO}/labels/{label}"}
        payload["pull_request"]["labels"].append(copy.deepcopy(payload["label"]))
    if changes is not None:
        payload["changes"] = changes
    return "pull_request", payload


def ci_completed(sha: str = HEAD) -> tuple[str, dict[str, Any]]:
    payload = fixture("workflow_run-completed")
    payload["workflow_run"]["head_sha"] = sha
    for pull in payload["workflow_run"]["pull_requests"]:
        pull["head"]["sha"] = sha
    return "workflow_run", payload


def statuses(evaluation: dict[str, Any]) -> dict[str, str]:
    return {r["name"]: r["status"] for r in evaluation["results"]}


# ---------------------------------------------------------------------------------------------- the policy file
@pytest.mark.parametrize("how", ["modified", "removed"])
def test_pr_editing_the_policy_is_judged_by_the_base_policy(repo: Repo, how: str) -> None:
    if how == "modified":
        head = repo.fake.set_file(HEAD_REF, ".github/loopforge.yml", PERMISSIVE)
    else:
        head = repo.fake.set_file(HEAD_REF, "README.md", "policy deleted on this branch\n")
    repo.pull(head, files=[(".github/loopforge.yml", 4, 14, how), ("infra/vpc.tf", 10, 0)])
    workspace = {".github/loopforge.yml": PERMISSIVE} if how == "modified" else {}
    result = repo.step(ci_completed(head), workspace=workspace)
    assert result.code == 0 and result.outputs["verdict"] == "block", result.stdout  # pending: waits, not passes
    check = repo.check(head)
    assert (check.status, check.conclusion) == ("in_progress", None)
    assert "anything goes" not in check.output["summary"]
    assert md_escape("This PR changes .github/loopforge.yml; it was evaluated under the base branch's version",
                     500) in check.output["summary"]
    (evaluation,) = repo.evaluations()
    assert statuses(evaluation) == {"no blockers": "passed", "high-risk governance": "pending"}
    assert evaluation["risk_tier"] == "high"
    assert repo.policy_reads() and all(q == f"ref={BASE}" for q in repo.policy_reads())  # never the head


def test_policy_path_input_cannot_point_into_the_workspace(repo: Repo) -> None:
    """The policy is always read through the API from the base branch, even if the workspace (the PR's checkout)
    has a file at that path: the permissive copy in the workspace is never read."""
    repo.pull()
    result = repo.step(ci_completed(), workspace={".github/loopforge.yml": PERMISSIVE})
    assert result.outputs["verdict"] == "block"
    assert statuses(repo.evaluations()[-1]) == {"no blockers": "passed", "high-risk governance": "pending"}


# ---------------------------------------------------------------------------------------------- attacker code
def test_guard_module_added_by_the_pr_is_never_loaded(repo: Repo) -> None:
    repo.fake.set_file(BASE, ".github/loopforge.yml", STRICT + 'guards: ["release_guards:allow"]\n')
    repo.fake.set_file(BASE, f"{CODE_DIR}/README.md", "guards live here\n")  # the code dir exists, the module not
    head = repo.fake.set_file(HEAD_REF, f"{CODE_DIR}/release_guards.py", marker_module(repo.marker, "allow"))
    repo.pull(head, files=[(f"{CODE_DIR}/release_guards.py", 7, 0), ("docs/x.md", 1, 0)])
    shadow = marker_module(repo.marker, "allow")
    result = repo.step(ci_completed(head), workspace={
        f"{CODE_DIR}/release_guards.py": shadow, "release_guards.py": shadow,
        # modules that would shadow LoopForge's own imports if the workspace were on sys.path
        "yaml.py": shadow, "github/__init__.py": shadow, "loopforge/__init__.py": shadow,
        "sitecustomize.py": shadow, "usercustomize.py": shadow})
    assert result.code == 1 and result.outputs["verdict"] == "block"
    (error,) = [e for e in result.commands("error") if "policy error" in e]
    assert "module release_guards not found under code_dir" in error
    check = repo.check(head)
    assert (check.status, check.conclusion) == ("completed", "failure")


def test_pr_replacing_a_base_guard_gets_the_base_guard(repo: Repo) -> None:
    guard = ("from loopforge import TransitionError\n\n\ndef require_ticket(record, previous_state, new_state, "
             "trigger):\n    raise TransitionError('no change ticket', rule='ticket')\n")
    repo.fake.set_file(BASE, ".github/loopforge.yml",
                       "version: 1\nrules:\n  - name: ticket\n    require:\n      guard: tickets:require_ticket\n")
    repo.fake.set_file(BASE, f"{CODE_DIR}/tickets.py", guard)
    head = repo.fake.set_file(HEAD_REF, f"{CODE_DIR}/tickets.py", marker_module(repo.marker, "require_ticket"))
    repo.pull(head, files=[(f"{CODE_DIR}/tickets.py", 3, 3)])
    result = repo.step(ci_completed(head),
                       workspace={f"{CODE_DIR}/tickets.py": marker_module(repo.marker, "require_ticket")})
    assert result.code == 0 and result.outputs["verdict"] == "block"  # workflow_run: the check run blocks
    (evaluation,) = repo.evaluations()
    assert statuses(evaluation) == {"ticket": "failed"}
    assert evaluation["results"][0]["reason"] == "guard tickets:require_ticket refused: no change ticket"


def test_gate_script_only_on_the_pr_is_never_run(repo: Repo) -> None:
    repo.fake.set_file(BASE, ".github/loopforge.yml", (
        "version: 1\nrules:\n  - name: external review\n    require:\n      gate:\n        name: review\n"
        f"        command: \"python3 {CODE_DIR}/review.py\"\n        timeout: 20\n"))
    repo.fake.set_file(BASE, f"{CODE_DIR}/README.md", "gate scripts live here\n")  # the code dir exists, no script
    head = repo.fake.set_file(HEAD_REF, f"{CODE_DIR}/review.py", marker_script(repo.marker))
    repo.pull(head, files=[(f"{CODE_DIR}/review.py", 3, 0)])
    result = repo.step(ci_completed(head), workspace={f"{CODE_DIR}/review.py": marker_script(repo.marker)})
    assert result.code == 0 and result.outputs["verdict"] == "block", result.stdout  # workflow_run: check blocks
    (evaluation,) = repo.evaluations()
    assert statuses(evaluation) == {"external review": "failed"}


# ---------------------------------------------------------------------------------------------- retargeting
def test_retargeting_the_base_branch_gains_nothing(repo: Repo) -> None:
    """The rule: the policy that governs a merge is the policy of the branch the PR merges INTO, as that branch
    has it now. Retargeting the PR to ``dev`` (whose policy is weak) makes it mergeable into ``dev`` — merges
    into ``dev`` are governed by ``dev``'s policy, by that repository's own choice — and nothing more: the verdict
    is tied to the PR's base at evaluation time (read from GitHub, not from the payload), so retargeting back to
    ``master`` is evaluated under ``master``'s policy again, the check that had passed turns ``action_required``,
    and a merge into ``master`` anyway is judged by it and recorded as a violation. Left open, as GitHub works:
    between the retarget back and the run of its ``edited`` event the head commit still shows ``dev``'s green
    check, and a required check is per commit, not per base. Protect every branch that matters with its own
    policy (or the same one) and the required check."""
    repo.fake.set_file("dev", ".github/loopforge.yml", PERMISSIVE)  # a branch with a weak policy
    repo.pull()
    first = repo.step(ci_completed())
    assert first.code == 0 and first.outputs["verdict"] == "block"  # high risk under master: pending

    repo.fake.pulls[PR].base = "dev"
    moved = repo.step(pr_event("edited", base="dev", changes={"base": {"ref": {"from": BASE},
                                                                       "sha": {"from": HEAD}}}))
    assert moved.code == 0 and moved.outputs["verdict"] == "pass", moved.stdout
    assert (repo.check().status, repo.check().conclusion) == ("completed", "success")
    assert repo.policy_reads()[-1] == "ref=dev"

    repo.fake.pulls[PR].base = BASE
    back = repo.step(pr_event("edited", base=BASE, changes={"base": {"ref": {"from": "dev"}, "sha": {"from": HEAD}}}))
    assert back.outputs["verdict"] == "block", back.stdout
    check = repo.check()
    # the required check no longer passes: GitHub keeps a completed run's conclusion if only its status is set
    # back to in_progress, so the run that passed says action_required until the gate passes again
    assert (check.status, check.conclusion) == ("completed", "action_required")
    assert statuses(repo.evaluations()[-1]) == {"no blockers": "passed", "high-risk governance": "pending"}

    # merging into master anyway (an admin bypass) is judged by master's policy: a recorded violation
    repo.fake.pulls[PR].state, repo.fake.pulls[PR].merged = "closed", True
    closed = fixture("pull_request-closed")
    merged = repo.step(("pull_request", closed))
    assert merged.code == 1 and merged.outputs["state"] == "merged"
    (error,) = merged.commands("error")
    assert "broke policy:high-risk governance" in error, error


def test_a_stale_event_from_before_a_retarget_is_judged_by_the_current_base(repo: Repo) -> None:
    """Runs of two events can finish in either order. An event delivered while the PR targeted ``dev`` whose run
    finishes after the PR went back to ``master`` must not leave a passing check for a PR that merges into
    ``master``: the policy comes from the PR's base as GitHub has it now, not as the old payload says."""
    repo.fake.set_file("dev", ".github/loopforge.yml", PERMISSIVE)
    repo.pull()
    assert repo.step(ci_completed()).outputs["verdict"] == "block"
    stale = pr_event("labeled", base="dev", label="docs")  # delivered while the PR targeted dev
    result = repo.step(stale)  # ... but run now, when it targets master again
    assert result.outputs["verdict"] == "block", result.stdout
    assert repo.check().conclusion != "success"
    assert repo.policy_reads()[-1] == f"ref={BASE}"


# ---------------------------------------------------------------------------------------------- forged labels
def _approved(repo: Repo) -> None:
    repo.pull()
    for reviewer in ("alice", "bob"):
        repo.fake.add_review(PR, reviewer, "APPROVED", HEAD)
    repo.fake.set_permission("alice", "admin")
    repo.fake.set_permission("mallory", "write")
    assert repo.step(ci_completed()).outputs["verdict"] == "block"  # waiting for the label


@pytest.mark.parametrize("history, sender", [
    ([("mallory", "labeled")], "mallory"),
    ([("alice", "labeled"), ("mallory", "unlabeled"), ("mallory", "labeled")], "mallory"),
    ([("github-actions[bot]", "labeled")], "github-actions[bot]"),
], ids=["added by a writer", "re-added over an approver's", "added by a workflow"])
def test_forged_governance_label_does_not_count(repo: Repo, history: list[tuple[str, str]], sender: str) -> None:
    _approved(repo)
    for actor, action in history:
        repo.fake.add_label_event(PR, "governance-approved", actor, event=action)
    result = repo.step(pr_event("labeled", label="governance-approved", sender=sender))
    assert result.code == 1 and result.outputs["verdict"] == "block"
    (error,) = result.commands("error")
    assert "merge blocked" in error and "high-risk governance failed" in error
    check = repo.check()
    assert (check.status, check.conclusion) == ("completed", "failure")
    reason = next(r["reason"] for r in repo.evaluations()[-1]["results"] if r["name"] == "high-risk governance")
    assert f"label governance-approved was added by {sender} who is not allowed" in reason


def test_the_same_label_added_by_an_approver_counts(repo: Repo) -> None:
    """The control: the rule does flip when the right person adds the label."""
    _approved(repo)
    repo.fake.add_label_event(PR, "governance-approved", "alice")
    result = repo.step(pr_event("labeled", label="governance-approved", sender="alice"))
    assert result.code == 0 and result.outputs["verdict"] == "pass", result.stdout
    assert (repo.check().status, repo.check().conclusion) == ("completed", "success")
