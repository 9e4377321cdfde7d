"""The governance end-to-end scaffolding the action, policy and benchmark tests share: one fake repository with
the steps run against it (``Repo``), the real lifecycle payloads changed only where a scenario needs it
(``pr_event``, ``ci_completed``, ``merged``) and the readings of a check run and an evaluation.

``entrypoint.py`` runs as the Actions runner runs the container (``run_step``), against the fake GitHub on
127.0.0.1; payloads are the real ones of tests/fixtures/lifecycle (built from @octokit/webhooks-examples).
"""

from __future__ import annotations

import copy
import functools
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loopforge.github.render import md_escape
from tests.action_harness import StepResult, run_step
from tests.fakegithub import Call, CheckRun, FakeGitHub
from tests.fakegithub.fixtures import assert_clean
from tests.paths import lifecycle_event, webhook_examples

REPO = "Codertocat/Hello-World"
RECORD = "Codertocat/Hello-World#1"  # the PR body says "Fixes #1": the record is the issue's
ENTRIES = "records/Codertocat/Hello-World/1/entries/"
HEAD_JSON = "records/Codertocat/Hello-World/1/head.json"
PR = 2
BASE = "master"
HEAD_REF = "changes"
HEAD = lifecycle_event("pull_request-opened")["pull_request"]["head"]["sha"]
TABLE_HEADER = "| | Rule | Status | Reason |"
INFRA_FILES: list[tuple[Any, ...]] = [("infra/vpc.tf", 10, 0), ("README.md", 1, 1)]

Event = tuple[str, dict[str, Any]]


def governance_policy(*, risk_files: tuple[str, ...] = ("infra/**",), invalidate_on_push: str | None = None,
                      label_gate: bool = True) -> str:
    """The high-risk governance policy of docs/policy.md: no ``do-not-merge`` label, and a PR touching
    ``risk_files`` needs two approvals from the security approvers and (``label_gate``) their
    ``governance-approved`` label."""
    files = ", ".join(f'"{f}"' for f in risk_files)
    invalidate = "" if invalidate_on_push is None else f", invalidate_on_push: {invalidate_on_push}"
    label = ("      label: {name: governance-approved, added_by: {approvers: security, permission: admin}}\n"
             if label_gate else "")
    return f"""\
version: 1
risk:
  high: {{files: [{files}]}}
approvers:
  security: [alice, bob]
rules:
  - name: no blockers
    require:
      no_labels: [do-not-merge]
  - name: high-risk governance
    if: {{risk: high}}
    require:
      approvals: {{count: 2, from: {{approvers: security}}{invalidate}}}
{label}"""


# ---------------------------------------------------------------------------------------------- payloads
@functools.cache
def _real_label() -> dict[str, Any]:
    found = [ex for e in webhook_examples() if e["name"] == "pull_request" for ex in e["examples"]
             if ex.get("action") == "labeled"]
    return found[0]["label"]  # type: ignore[no-any-return]


def pr_event(action: str, *, sha: str = HEAD, base: str | None = None, label: str | None = None,
             sender: str | None = None, before: str | None = None,
             changes: dict[str, Any] | None = None) -> Event:
    """``pull_request.<action>`` from the real ``opened`` payload."""
    payload = lifecycle_event("pull_request-opened")
    payload["action"] = action
    payload["pull_request"]["head"]["sha"] = sha
    # GitHub stamps every PR event with the PR's current updated_at (the fake's API answers use the same clock)
    payload["pull_request"]["updated_at"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if base is not None:
        payload["pull_request"]["base"]["ref"] = base
    if label is not None:
        obj = copy.deepcopy(_real_label())
        obj.update({"name": label, "url": obj["url"].rsplit("/", 1)[0] + "/" + label, "default": False})
        payload["label"] = obj
        payload["pull_request"]["labels"].append(copy.deepcopy(obj))
    if before is not None:
        payload.update({"before": before, "after": sha})
    if sender is not None:
        payload["sender"]["login"] = sender
    if changes is not None:
        payload["changes"] = changes
    return "pull_request", payload


def ci_completed(sha: str = HEAD) -> Event:
    """``workflow_run.completed`` (success) for ``sha``, from the real payload."""
    payload = lifecycle_event("workflow_run-completed")
    payload["workflow_run"]["head_sha"] = sha
    for pull in payload["workflow_run"]["pull_requests"]:
        pull["head"]["sha"] = sha
    return "workflow_run", payload


def reviewed(sha: str, login: str, state: str = "approved") -> Event:
    """``pull_request_review.submitted`` by ``login`` for commit ``sha``, from the real payload."""
    payload = lifecycle_event("pull_request_review-submitted")
    payload["review"].update({"state": state, "commit_id": sha})
    payload["review"]["user"]["login"] = login
    payload["pull_request"]["head"]["sha"] = sha
    return "pull_request_review", payload


def merged(merge_commit_sha: str, sha: str | None = None) -> Event:
    """``pull_request.closed`` (merged) from the real payload, with the commit the merge made on the base (a merge
    is judged at its first parent; the fixture's SHA is not in the fake) and, when given, the merged head ``sha``."""
    payload = lifecycle_event("pull_request-closed")
    payload["pull_request"]["merge_commit_sha"] = merge_commit_sha
    if sha is not None:
        payload["pull_request"]["head"]["sha"] = sha
    return "pull_request", payload


# ---------------------------------------------------------------------------------------------- the repository
class Repo:
    """The fake GitHub of one test and the steps run against it.

    ``files``: the PR's changed files when :meth:`pull` is given none. ``record``: when set, every step must
    record on this record. ``marker``: a file that code from the PR would leave behind; every step asserts it is
    absent.
    """

    def __init__(self, fake: FakeGitHub, url: str, tmp: Path, *, run_id: int = 1000,
                 files: list[tuple[Any, ...]] | None = None, record: str | None = None) -> None:
        self.fake, self.url, self.tmp = fake, url, tmp
        self.run_id = run_id
        self.files = INFRA_FILES if files is None else files
        self.record = record
        self.marker = tmp / "ATTACKER-CODE-RAN"

    def policy(self, text: str) -> None:
        self.fake.set_file(BASE, ".github/loopforge.yml", text)

    def pull(self, head: str = HEAD, *, files: list[tuple[Any, ...]] | None = None, base: str = BASE,
             labels: tuple[str, ...] = (), commits: list[str] | None = None, **kw: Any) -> None:
        opened = lifecycle_event("pull_request-opened")["pull_request"]
        self.fake.add_pull(PR, head, base=base, body=opened["body"], title=kw.pop("title", opened["title"]),
                           user="Codertocat", head_ref=HEAD_REF, files=self.files if files is None else files,
                           labels=list(labels), commits=commits, **kw)

    def step(self, event: Event, *, workspace: dict[str, str] | None = None, **kw: Any) -> StepResult:
        """One container step; ``workspace`` files play the PR's checkout (never to be used for governance)."""
        self.run_id += 1
        tmp = self.tmp / f"run{self.run_id}"
        for path, text in (workspace or {}).items():
            target = tmp / "github" / "workspace" / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        result = run_step(tmp, event[0], event[1], api_url=self.url, repo=REPO, run_id=self.run_id, **kw)
        assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr
        assert not self.marker.exists(), "code from the PR was imported or executed"
        if self.record is not None:
            assert result.outputs["record-id"] == self.record, result.stdout + result.stderr
        return result

    def merge_commit(self, path: str = "merged.txt", text: str = "merged\n") -> str:
        """The commit a merge makes on the base (its first parent is the base before the merge)."""
        return self.fake.set_file(BASE, path, text, message=f"Merge pull request #{PR}")

    def check(self, sha: str = HEAD) -> CheckRun:
        """The one ``loopforge`` check run on ``sha``."""
        runs = [r for r in self.fake.check_runs(sha) if r.name == "loopforge"]
        assert len(runs) == 1, f"expected exactly one loopforge check run on {sha[:7]}, got {len(runs)}"
        return runs[0]

    def entries(self) -> list[dict[str, Any]]:
        files = self.fake.branch_files("loopforge-state")
        return [json.loads(files[p]) for p in sorted(p for p in files if p.startswith(ENTRIES))]

    def evaluations(self) -> list[dict[str, Any]]:
        """Every ``policy.evaluated`` entry's evaluation, oldest first."""
        return [e["evidence"]["policy"] for e in self.entries() if e["trigger"] == "policy.evaluated"]

    def evaluation(self) -> dict[str, Any]:
        """The newest ``policy.evaluated`` entry's evaluation (the rules' results, as the trail holds them)."""
        found = [e for e in self.entries() if e["trigger"] == "policy.evaluated"]
        assert found, "no policy.evaluated entry on the state branch"
        assert found[-1]["outcome"] == "noted"
        return found[-1]["evidence"]["policy"]  # type: ignore[no-any-return]

    def head(self) -> dict[str, Any]:
        return json.loads(self.fake.branch_files("loopforge-state")[HEAD_JSON])  # type: ignore[no-any-return]

    def policy_reads(self) -> list[str]:
        """Where the policy was read, as ``ref=<branch>``: REST contents reads and the one GraphQL read (a commit
        is named by the branches whose tip it is)."""
        rest = [entry["query"] for entry in self.fake.log
                if entry["method"] == "GET" and entry["path"].endswith("/contents/.github/loopforge.yml")]
        graphql = ["ref=" + ",".join(self.fake.branches_at(sha) or [sha]) for sha, path in self.fake.file_reads
                   if path == ".github/loopforge.yml"]
        return rest + graphql


@contextmanager
def served_repo(tmp: Path, *, policy: str | None = None, **kw: Any) -> Iterator[Repo]:
    """A fresh fake GitHub (``Codertocat/Hello-World``, default branch ``master``, with ``policy`` on it if given)
    served while the block runs; on leaving, every request and response must have matched GitHub's OpenAPI
    description. ``kw`` goes to :class:`Repo`."""
    fake = FakeGitHub(owner="Codertocat", repo="Hello-World", default_branch=BASE)
    if policy is not None:
        fake.set_file(BASE, ".github/loopforge.yml", policy)
    with fake.serve() as url:
        yield Repo(fake, url, tmp, **kw)
    assert_clean(fake)


def second_ci_event(approvals: str) -> tuple[list[Call], StepResult]:
    """The requests and result of the second CI event on a governed PR (the record exists) whose one rule requires
    ``approvals`` (a YAML flow mapping): CODEOWNERS gives ``infra/`` to @alice, who approved the head."""
    policy = "version: 1\nrules:\n  - name: r\n    require:\n      approvals: " + approvals + "\n"
    with tempfile.TemporaryDirectory() as tmp, served_repo(Path(tmp), policy=policy) as repo:
        fake = repo.fake
        fake.set_file(BASE, ".github/CODEOWNERS", "/infra/ @alice\n")
        head = fake.set_file(HEAD_REF, "infra/vpc.tf", "x\n")
        repo.pull(head, files=[("infra/vpc.tf", 1, 0, "added")])
        fake.add_review(PR, "alice", "APPROVED", head)
        repo.step(ci_completed(head))
        before = len(fake.requests)
        result = repo.step(ci_completed(head))
        return fake.requests[before:], result


SAME_DIFF_POLICY = """\
version: 1
rules:
  - name: infra approval
    require:
      approvals: {count: 1, from: {users: [alice]}, invalidate_on_push: {except_same_diff: true}}
"""
VPC = 'resource "aws_vpc" "main" { cidr_block = "10.0.0.0/16" }\n'


@dataclass(frozen=True)
class Cost:
    """What one event cost: GitHub requests in all, GraphQL queries among them, REST ``compare`` reads."""

    event: str
    requests: int
    queries: int
    compares: int
    verdict: str
    approval: str = ""  # what the evaluation made of alice's approval: none, counted, carried over, stale: why


def same_diff_life() -> list[Cost]:
    """Each event of a PR's life under ``invalidate_on_push: {except_same_diff: true}``: opened, approved, CI,
    a rebase onto the base's tip with the same diff, CI, a push that changes the diff on a head the base has moved
    past, CI. The diff fingerprint of a head is read once, by the first event that sees the head with an
    approval; every later event of that head finds it in the record."""
    costs: list[Cost] = []
    with tempfile.TemporaryDirectory() as tmp, served_repo(Path(tmp), policy=SAME_DIFF_POLICY) as repo:
        fake = repo.fake
        fake.set_file(BASE, "README.md", "Hello\n")
        files = [("infra/vpc.tf", 1, 0, "added"), ("README.md", 1, 1)]

        def step(name: str, event: Event) -> None:
            before, queries, compares = len(fake.requests), fake.graphql_count("query"), fake.count("GET", "/compare/")
            result = repo.step(event)
            assert result.code == 0, result.stdout + result.stderr
            evaluation = repo.evaluation()
            approval = ("carried over" if evaluation["carried_approvals"] else
                        "stale: " + evaluation["stale_approvals"][0]["why"] if evaluation["stale_approvals"] else
                        "counted" if statuses(evaluation)["infra approval"] == "passed" else "none")
            costs.append(Cost(name, len(fake.requests) - before, fake.graphql_count("query") - queries,
                              fake.count("GET", "/compare/") - compares, result.outputs.get("verdict", ""),
                              approval))

        fake.set_file(HEAD_REF, "infra/vpc.tf", VPC)
        first = fake.set_file(HEAD_REF, "README.md", "Hello, VPC\n")
        repo.pull(first, files=files)
        step("`pull_request.opened` (no approval yet)", pr_event("opened", sha=first))
        fake.add_review(PR, "alice", "APPROVED", first)
        step("`pull_request_review.submitted` (alice approves)", reviewed(first, "alice"))
        step("`workflow_run.completed`", ci_completed(first))
        fake.set_file(BASE, "docs/release.md", "v2\n")
        fake.delete_branch(HEAD_REF)
        fake.set_file(HEAD_REF, "infra/vpc.tf", VPC)  # on the base's new tip: same diff
        rebased = fake.set_file(HEAD_REF, "README.md", "Hello, VPC\n")
        repo.pull(rebased, files=files)
        step("`pull_request.synchronize` (rebased, same diff)", pr_event("synchronize", sha=rebased, before=first))
        step("`workflow_run.completed`", ci_completed(rebased))
        fake.set_file(BASE, "docs/release.md", "v3\n")  # the base moves past the head
        changed = fake.set_file(HEAD_REF, "infra/vpc.tf", VPC + "# more\n")
        repo.pull(changed, files=[("infra/vpc.tf", 2, 0, "added"), ("README.md", 1, 1)])
        step("`pull_request.synchronize` (diff changed, head behind)", pr_event("synchronize", sha=changed,
                                                                                before=rebased))
        step("`workflow_run.completed`", ci_completed(changed))
    return costs


# ---------------------------------------------------------------------------------------------- readings
def statuses(evaluation: dict[str, Any]) -> dict[str, str]:
    return {r["name"]: r["status"] for r in evaluation["results"]}


def reason_of(evaluation: dict[str, Any], rule: str) -> str:
    return next(str(r["reason"]) for r in evaluation["results"] if r["name"] == rule)


def assert_table(summary: str, rows: dict[str, str]) -> None:
    """The check run's merge-gate table has a row with this status for every rule."""
    assert TABLE_HEADER in summary, summary
    for rule, status in rows.items():
        assert f"| {md_escape(rule, 100)} | {status} |" in summary, f"no {status} row for {rule}:\n{summary}"


def assert_checked(check: CheckRun, status: str, conclusion: str | None, rows: dict[str, str]) -> None:
    assert (check.status, check.conclusion) == (status, conclusion), check.output["summary"]
    assert_table(check.output["summary"], rows)
