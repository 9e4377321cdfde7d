"""The edges of real GitHub use, end to end: ``entrypoint.py`` run as the Actions runner runs the container,
against the fake GitHub on 127.0.0.1 (every request and answer validated against GitHub's OpenAPI description).

1. Merge queue: ``merge_group.checks_requested`` gets the check named ``check-name`` on the group's head SHA, with
   the verdict re-evaluated for the queued PR (policy at the group's base, approvals and labels as of now); the
   record keeps the group and the verdict; ``destroyed`` is noted with its reason; the merge through the queue
   (the base fast-forwarded to the group's head) is judged against the verdict the queue saw.
2. A PR that edits the policy: the merge is judged against the verdict the check last showed for the merged head
   and the policy at the base before the merge, never the base's tip after it (which holds the PR's own policy).
3. Tampering: an entry of the data branch edited by someone else is found by the next event, which says so
   (``::error`` naming the record and the entry, the check run), records a violation and never launders the edit
   (``verify`` still names the entry).

Payloads are the real ones (tests/fixtures/lifecycle, tests/fixtures/webhooks from @octokit/webhooks-examples),
changed only where a scenario needs it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loopforge.github.client import make_github
from loopforge.github.render import md_escape
from loopforge.repository.branch import BranchRepository
from loopforge.service import LoopService
from loopforge.trail import LoopTransition
from tests import governance
from tests.action_harness import StepResult
from tests.fakegithub import FakeGitHub
from tests.fakegithub.fixtures import assert_clean
from tests.fakegithub.gitstore import Person
from tests.governance import (
    BASE,
    HEAD,
    HEAD_JSON,
    PR,
    RECORD,
    REPO,
    ci_completed,
    governance_policy,
    merged,
    pr_event,
)
from tests.paths import lifecycle_event, webhook_examples

STATE = "loopforge-state"
POLICY_PATH = ".github/loopforge.yml"

STRICT = governance_policy(label_gate=False)  # approvals only: no governance-approved label
EMPTY = "version: 1\nrules: []\n"


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# ---------------------------------------------------------------------------------------------- payloads
READ = "POST /graphql/query/repository"
WRITE = "POST /graphql/mutation/createCommitOnBranch"


def queue_ref(number: int = PR, sha: str = HEAD, base: str = BASE) -> str:
    return f"refs/heads/gh-readonly-queue/{base}/pr-{number}-{sha}"


def merge_group(action: str, head_sha: str, base_sha: str, *, head_ref: str | None = None,
                reason: str | None = None) -> tuple[str, dict[str, Any]]:
    """The real ``merge_group.checks_requested`` example moved to this repository; ``destroyed`` is the same
    payload with ``action`` and ``reason`` (the examples have none)."""
    payload = next(ex for e in webhook_examples() if e["name"] == "merge_group" for ex in e["examples"])
    opened = lifecycle_event("pull_request-opened")
    payload["repository"], payload["sender"] = opened["repository"], opened["sender"]
    payload.pop("organization", None)
    payload["action"] = action
    group = payload["merge_group"]
    group.update({"head_sha": head_sha, "head_ref": head_ref or queue_ref(), "base_sha": base_sha,
                  "base_ref": f"refs/heads/{BASE}"})
    group["head_commit"]["id"] = head_sha
    if reason is not None:
        payload["reason"] = reason
    return "merge_group", payload


# ---------------------------------------------------------------------------------------------- the repository
class Repo(governance.Repo):
    """``tests.governance.Repo`` plus what these edges need: the requests of a step, the merge queue's commit,
    policy reads named by commit, and edits of the data branch by someone else."""

    def calls(self, event: tuple[str, dict[str, Any]]) -> tuple[StepResult, list[str]]:
        """``step`` and the requests it made (``METHOD /path`` below the repository)."""
        before = len(self.fake.requests)
        result = self.step(event)
        prefix = f"/repos/{REPO}"
        return result, [f"{c.method} {c.path.removeprefix(prefix)}" for c in self.fake.requests[before:]]

    def queue(self, base_sha: str, head: str = HEAD) -> str:
        """The commit GitHub's merge queue builds for PR #2: the base plus the PR, on its read-only branch."""
        return self.fake.set_file(queue_ref(sha=head).removeprefix("refs/heads/"), "infra/vpc.tf", "vpc {}\n",
                                  message=f"Merge pull request #{PR} into the queue")

    def policy_reads(self) -> list[str]:
        """Where the policy was read, as ``ref=<branch or commit>``: REST contents reads, then the one GraphQL
        read's (a commit, named by its SHA)."""
        rest = [e["query"] for e in self.fake.log
                if e["method"] == "GET" and e["path"].endswith("/contents/" + POLICY_PATH)]
        return rest + [f"ref={sha}" for sha, path in self.fake.file_reads if path == POLICY_PATH]

    def tamper(self, files: dict[str, str]) -> str:
        """A commit on the data branch by someone else (a push or an API edit with another token)."""
        fake = self.fake
        with fake._lock:
            parent = fake.branch_sha(STATE)
            assert parent is not None
            tree = fake.git.edit(fake.git.commits[parent].tree,
                                 {p: fake._blob_entry(t.encode()) for p, t in files.items()})
            mallory = Person("mallory", "mallory@example.com", "2030-01-01T00:00:00Z")
            sha = fake.git.put_commit(tree, [parent], "tidy up", mallory, mallory)
            fake.refs[f"refs/heads/{STATE}"] = sha
            return sha

    def verify(self) -> list[str]:
        store = BranchRepository((make_github("t", self.url, for_tests=True), REPO), branch=STATE)
        return [str(p) for p in LoopService(repository=store).verify(RECORD).problems]


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Repo]:
    fake = FakeGitHub(owner="Codertocat", repo="Hello-World", default_branch=BASE)
    with fake.serve() as url:
        yield Repo(fake, url, tmp_path)
    assert_clean(fake)


# ---------------------------------------------------------------------------------------------- 1. merge queue
def test_merge_queue_round_trip_check_on_the_group_then_the_merge(repo: Repo) -> None:
    repo.fake.set_file(BASE, POLICY_PATH, STRICT)
    repo.pull()
    repo.fake.add_review(PR, "alice", "APPROVED", HEAD)
    repo.fake.add_review(PR, "bob", "APPROVED", HEAD)
    ready = repo.step(ci_completed())
    assert ready.code == 0 and ready.outputs["verdict"] == "pass", ready.stdout

    base_sha = repo.fake.branch_sha(BASE)
    assert base_sha is not None
    group = repo.queue(base_sha)
    queued, calls = repo.calls(merge_group("checks_requested", group, base_sha))
    assert queued.code == 0 and queued.outputs["verdict"] == "pass", queued.stdout
    # the PR the queue branch names, then the one read (the policy at base_sha, the group's check run), one write
    assert calls == [READ, READ, WRITE, "POST /check-runs"], calls
    assert queued.outputs["record-id"] == RECORD
    check = repo.check(group)  # the merge queue waits for exactly this
    assert (check.status, check.conclusion) == ("completed", "success"), check.output["summary"]
    assert group[:12] in check.output["summary"] and "Merge queue" in check.output["summary"]
    assert repo.policy_reads()[-1] == f"ref={base_sha}"  # the policy at the group's base
    head = repo.head()
    kept = head["metadata"]["github"]["pr"]["queue"]["groups"][group]
    assert kept["base_sha"] == base_sha and kept["status"] == "checks_requested" and kept["pr_head_sha"] == HEAD
    verdict = head["metadata"]["gate"]["verdicts"][group]
    assert verdict["verdict"] == "pass" and verdict["kind"] == "merge_group"
    assert verdict["policy_sha256"] == digest(STRICT) and verdict["policy_commit"] == base_sha
    notes = [e for e in repo.entries() if e["trigger"] == "merge_group.checks_requested"]
    assert len(notes) == 1 and group[:12] in notes[0]["reason"]
    assert notes[0]["evidence"]["merge_group"]["head_sha"] == group

    # the queue merges: the base is fast-forwarded to the group's head, which is the PR's merge commit
    repo.fake.refs[f"refs/heads/{BASE}"] = group
    repo.pull(state="closed", merged=True, merged_by="web-flow")
    done, calls = repo.calls(merged(group))
    assert done.code == 0, done.stdout
    # the group's commit is the merge commit: its first parent is base_sha, the read has the policy there
    assert calls == [READ, WRITE, f"PATCH /check-runs/{repo.check(HEAD).id}"], calls
    assert done.outputs["state"] == "merged" and done.commands("error") == []
    assert [e for e in repo.entries() if e["outcome"] == "violation"] == []
    assert repo.policy_reads()[-1] == f"ref={base_sha}"  # judged at the group's base, not the new tip
    assert repo.head()["violations"] == 0


def test_queue_that_saw_a_block_fails_the_group_and_a_forced_merge_is_a_violation(repo: Repo) -> None:
    repo.fake.set_file(BASE, POLICY_PATH, STRICT)
    repo.pull()
    repo.fake.add_review(PR, "alice", "APPROVED", HEAD)
    repo.fake.add_review(PR, "bob", "APPROVED", HEAD)
    assert repo.step(ci_completed()).outputs["verdict"] == "pass"
    # an approval is dismissed after the PR was queued: approvals "as of now" no longer satisfy the rule
    repo.fake.reviews[PR] = [r for r in repo.fake.reviews[PR] if r.user != "bob"]
    base_sha = repo.fake.branch_sha(BASE)
    assert base_sha is not None
    group = repo.queue(base_sha)
    queued = repo.step(merge_group("checks_requested", group, base_sha))
    assert queued.outputs["verdict"] == "block"
    check = repo.check(group)
    # pending rules are final for a queue: nothing re-evaluates a group later, so it must not hang in_progress
    assert (check.status, check.conclusion) == ("completed", "failure"), check.output["summary"]
    assert md_escape("high-risk governance", 100) in check.output["summary"]
    assert repo.head()["metadata"]["gate"]["verdicts"][group]["pending"] == ["high-risk governance"]

    gone = repo.step(merge_group("destroyed", group, base_sha, reason="invalidated"))
    assert gone.code == 0, gone.stdout
    notes = [e for e in repo.entries() if e["trigger"] == "merge_group.destroyed"]
    assert len(notes) == 1 and "destroyed (invalidated)" in notes[0]["reason"]
    kept = repo.head()["metadata"]["github"]["pr"]["queue"]["groups"][group]
    assert (kept["status"], kept["reason"]) == ("destroyed", "invalidated")

    # an admin merges the group's commit anyway: judged against what the queue saw on it
    repo.fake.refs[f"refs/heads/{BASE}"] = group
    repo.pull(state="closed", merged=True, merged_by="mallory")
    forced = repo.step(merged(group))
    assert forced.code == 1 and forced.outputs["state"] == "merged"
    errors = forced.commands("error")
    assert len(errors) == 1 and "check:loopforge" in errors[0] and f"merge group {group[:12]}" in errors[0], errors
    (violation,) = [e for e in repo.entries() if e["outcome"] == "violation"]
    assert "check:loopforge" in violation["rule"] and "policy:high-risk governance" in violation["rule"]


@pytest.mark.parametrize("head_ref", [
    "refs/heads/gh-readonly-queue/master/pr-02-" + HEAD,  # a number with a leading zero
    "refs/heads/gh-readonly-queue/master/pr-2-" + HEAD[:12],  # a short SHA
    "refs/heads/gh-readonly-queue/../pr-2-" + HEAD,  # a base that is no branch name
    "refs/heads/gh-readonly-queue/main/pr-2-" + HEAD,  # another base than base_ref
    "refs/heads/feature/pr-2-" + HEAD,  # not a queue branch
    "refs/heads/gh-readonly-queue/master/pr-2-" + HEAD + "\n::error::spoofed",
])
def test_hostile_queue_branch_names_are_refused(repo: Repo, head_ref: str) -> None:
    base_sha = repo.fake.branch_sha(BASE)
    assert base_sha is not None
    repo.pull()
    result = repo.step(merge_group("checks_requested", HEAD, base_sha, head_ref=head_ref))
    assert result.code == 1 and result.outputs["outcome"] == "ignored"
    (error,) = result.commands("error")
    assert "merge_group.head_ref" in error
    assert not any(line.startswith("::error::spoofed") for line in result.stdout.splitlines())
    assert repo.fake.branch_sha(STATE) is None and repo.fake.check_runs(HEAD) == []


# ---------------------------------------------------------------------------------------------- 2. policy edit
def test_pr_emptying_the_policy_merged_while_blocked_is_a_violation_under_the_base_policy(repo: Repo) -> None:
    repo.fake.set_file(BASE, POLICY_PATH, STRICT)
    head = repo.fake.set_file("changes", POLICY_PATH, EMPTY)
    repo.pull(head, files=[(POLICY_PATH, 1, 14), ("infra/vpc.tf", 10, 0)])
    blocked = repo.step(ci_completed(head))
    assert blocked.code == 0 and blocked.outputs["verdict"] == "block"  # pending approvals: the check waits
    assert repo.head()["metadata"]["gate"]["verdicts"][head]["verdict"] == "block"

    # merged anyway (an admin bypass): the base's tip now holds the PR's empty policy
    merge = repo.fake.set_file(BASE, POLICY_PATH, EMPTY, message=f"Merge pull request #{PR}")
    repo.pull(head, files=[(POLICY_PATH, 1, 14), ("infra/vpc.tf", 10, 0)], state="closed", merged=True,
              merged_by="mallory")
    result, calls = repo.calls(merged(merge, head))
    assert calls == [READ, WRITE, f"PATCH /check-runs/{repo.check(head).id}"], calls  # the base parent: in the read
    assert result.code == 1 and result.outputs["state"] == "merged" and result.outputs["verdict"] == "block"
    errors = result.commands("error")
    assert len(errors) == 1, result.stdout
    assert "policy:high-risk governance" in errors[0] and "check:loopforge" in errors[0]
    (violation,) = [e for e in repo.entries() if e["outcome"] == "violation"]
    assert violation["trigger"] == "pull_request.closed" and violation["to_state"] == "merged"
    assert violation["rule"] == "policy:high-risk governance, check:loopforge"
    parent = repo.fake.git.commits[merge].parents[0]
    assert repo.policy_reads()[-1] == f"ref={parent}"  # the base before the merge, never its new tip
    # the summary and the check run name the digest really used: the base's policy, not the PR's
    for text in (result.summary, repo.check(head).output["summary"]):
        assert digest(STRICT)[:12] in text and digest(EMPTY)[:12] not in text
        assert parent[:12] in text
    evaluated = [e for e in repo.entries() if e["trigger"] == "policy.evaluated"][-1]
    assert evaluated["evidence"]["policy"]["policy"]["sha256"] == digest(STRICT)


def test_rebase_merge_of_a_policy_edit_is_judged_at_the_base_before_its_first_commit(repo: Repo) -> None:
    """A rebase merge puts each PR commit on the base: the merge commit's first parent is the PR's own previous
    commit. The one read sees the merge commit, the head's message (the same: a rebase) and the policy at
    ``<merge>~<commits>``, the base before the PR's first commit: no walk through REST."""
    before = repo.fake.set_file(BASE, POLICY_PATH, STRICT)
    first_pr_commit = repo.fake.set_file("changes", "infra/vpc.tf", "vpc {}\n", message="add a vpc")
    head = repo.fake.set_file("changes", POLICY_PATH, EMPTY, message="relax the policy")
    repo.pull(head, files=[(POLICY_PATH, 1, 14), ("infra/vpc.tf", 1, 0)], commits=[first_pr_commit, head])
    assert repo.step(ci_completed(head)).outputs["verdict"] == "block"
    repo.fake.set_file(BASE, "infra/vpc.tf", "vpc {}\n", message="add a vpc")
    merge = repo.fake.set_file(BASE, POLICY_PATH, EMPTY, message="relax the policy")
    repo.pull(head, files=[(POLICY_PATH, 1, 14), ("infra/vpc.tf", 1, 0)], commits=[first_pr_commit, head],
              state="closed", merged=True, merged_by="mallory")
    event = merged(merge, head)
    event[1]["pull_request"]["commits"] = 2
    result, calls = repo.calls(event)
    assert result.code == 1 and result.outputs["verdict"] == "block", result.stdout
    assert calls == [READ, WRITE, f"PATCH /check-runs/{repo.check(head).id}"], calls
    assert repo.policy_reads()[-1] == f"ref={before}"  # the base before the PR's first commit, never the PR's
    assert repo.fake.git.commits[repo.fake.git.commits[merge].parents[0]].parents[0] == before
    evaluated = [e for e in repo.entries() if e["trigger"] == "policy.evaluated"][-1]
    assert evaluated["evidence"]["policy"]["policy"]["sha256"] == digest(STRICT)


def test_merge_after_the_check_passed_is_clean(repo: Repo) -> None:
    repo.fake.set_file(BASE, POLICY_PATH, STRICT)
    repo.pull(files=[("docs/guide.md", 3, 1)])
    assert repo.step(ci_completed()).outputs["verdict"] == "pass"
    merge = repo.fake.set_file(BASE, "docs/guide.md", "guide\n", message=f"Merge pull request #{PR}")
    repo.pull(files=[("docs/guide.md", 3, 1)], state="closed", merged=True)
    result = repo.step(merged(merge))
    assert result.code == 0 and result.commands("error") == [], result.stdout
    assert [e for e in repo.entries() if e["outcome"] == "violation"] == []


# ---------------------------------------------------------------------------------------------- 3. tampering
def _built(repo: Repo) -> None:
    repo.pull(files=[("docs/guide.md", 3, 1)])
    assert repo.step(ci_completed()).code == 0
    assert repo.step(pr_event("labeled", label="docs")).code == 0
    assert repo.verify() == []


def test_edited_entry_is_found_by_the_next_event_and_never_laundered(repo: Repo) -> None:
    _built(repo)
    path = f"{governance.ENTRIES}000002.json"
    body = json.loads(repo.fake.branch_files(STATE)[path])
    body["actor"] = "the-cto"  # hash left as it was
    repo.tamper({path: json.dumps(body)})

    result = repo.step(pr_event("labeled", label="reviewed"))
    assert result.code == 1, result.stdout
    errors = [e for e in result.commands("error") if "audit trail" in e]
    assert len(errors) == 1, result.stdout
    assert RECORD in errors[0] and "entry 2" in errors[0] and "mallory" in errors[0]
    check = repo.check(HEAD)
    assert check.conclusion == "failure" and "audit trail" in check.output["summary"]
    (violation,) = [e for e in repo.entries() if e["outcome"] == "violation"]
    assert violation["rule"] == "audit-trail" and "entry 2" in violation["reason"]
    assert repo.head()["metadata"]["integrity"]["first_bad"] == 2
    problems = repo.verify()
    assert problems and problems[0].startswith("entry 2:"), problems  # still named after the new entries

    # the tip is LoopForge's again, but the record stays flagged: every later event says so
    again = repo.step(pr_event("labeled", label="later"))
    assert again.code == 1
    assert any("audit trail" in e and "entry 2" in e for e in again.commands("error")), again.stdout
    assert len([e for e in repo.entries() if e["outcome"] == "violation"]) == 1


def test_edited_head_metadata_is_an_audit_trail_error_not_an_internal_error(repo: Repo) -> None:
    """The policy is read before the integrity check: an edited head's ``metadata.policy`` of another shape must
    not crash it (it was an Internal error, "a LoopForge bug"), so the edit is reported as one."""
    repo.fake.set_file(BASE, POLICY_PATH, EMPTY)
    _built(repo)
    head = repo.head()
    head["metadata"]["policy"] = ["not", "a", "mapping"]
    repo.tamper({HEAD_JSON: json.dumps(head)})

    result = repo.step(pr_event("labeled", label="reviewed"))
    assert result.code == 1, result.stdout
    (error,) = result.commands("error")
    assert "LoopForge%3A audit trail broken::" in error and RECORD in error and "mallory" in error, error


def test_last_entry_rewritten_with_its_head_is_anchored_to_what_loopforge_wrote(repo: Repo) -> None:
    _built(repo)
    files = repo.fake.branch_files(STATE)
    head = json.loads(files[HEAD_JSON])
    last = head["last_sequence"]
    path = f"{governance.ENTRIES}{last:06d}.json"
    entry = LoopTransition.model_validate_json(files[path])
    forged = entry.model_copy(update={"actor": "the-cto"})
    forged = forged.model_copy(update={"hash": forged.compute_hash()})
    head["last_hash"] = forged.hash
    repo.tamper({path: forged.model_dump_json(), HEAD_JSON: json.dumps(head)})
    assert repo.verify() == []  # consistent: the chain alone cannot see it

    result = repo.step(pr_event("labeled", label="reviewed"))
    assert result.code == 1
    assert any(f"entry {last}" in e and RECORD in e for e in result.commands("error")), result.stdout
    problems = repo.verify()  # the new entry links to the hash LoopForge wrote: the edit is visible now
    assert any(p.startswith(f"entry {last}:") and "edited and re-hashed" in p for p in problems), problems


def test_foreign_commit_touching_no_record_is_not_an_alarm(repo: Repo) -> None:
    _built(repo)
    repo.tamper({"README.md": "# notes\n"})
    result = repo.step(pr_event("labeled", label="reviewed"))
    assert result.code == 0 and result.commands("error") == [], result.stdout
    assert [e for e in repo.entries() if e["outcome"] == "violation"] == []
