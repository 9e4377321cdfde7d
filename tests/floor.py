"""GitHub requests per event at a given history length (issue "The Action at GitHub's floor").

``Floor`` runs the fixture lifecycle (``tests/fixtures/lifecycle``: issue opened → … → issue closed, with a CI
failure / push / CI pass detour before the review) through the Action in-process (``loopforge.action.run`` with
the runner's environment) against a fake GitHub, and pads the record with ``history`` entries before the events
that are measured, written straight into the fake's git store as LoopForge would have written them (one signed
commit with LoopForge's trailer, ``head.json`` with its window). ``governed=True`` adds a policy on the base
branch (a required review, a label added by a maintainer, a CI workflow), so the policy engine reads the PR's
files, reviews, labels with who added them and the head's workflow runs.

Used by ``tests/github/test_request_floor.py`` (exact counts) and ``benchmarks/action.py`` (counts and times).
"""

from __future__ import annotations

import copy
import io
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import responses

from loopforge.action import run
from loopforge.repository.branch import dump_head, key_file, record_dir
from loopforge.repository.memory import MemoryRepository
from loopforge.service import LoopService
from loopforge.trail import LoopTransition
from tests.action_harness import run_step
from tests.fakegithub import FakeGitHub
from tests.fakegithub.gitstore import Person, TreeEntry
from tests.paths import LIFECYCLE_FILES, lifecycle_delivery, lifecycle_event

OWNER, NAME = "Codertocat", "Hello-World"
REPO = f"{OWNER}/{NAME}"
RECORD = f"{REPO}#1"
BRANCH = "loopforge-state"
BOT = Person("github-actions[bot]", "41898282+github-actions[bot]@users.noreply.github.com", "2026-01-01T00:00:00Z")

GOVERNED_POLICY = """version: 1
approvers:
  maintainers: [octocat]
rules:
  - name: CI is green
    require:
      ci: {workflows: [CI]}
  - name: one approval
    require:
      approvals: {count: 1}
      no_changes_requested: true
  - name: deploy label from a maintainer
    require:
      label: {name: deploy, added_by: {approvers: maintainers}}
"""


def events() -> list[tuple[str, str, dict[str, Any]]]:
    """(label, event name, payload) in lifecycle order, with a CI failure / push / CI pass detour."""
    loaded = [lifecycle_delivery(i) for i in range(len(LIFECYCLE_FILES))]
    out = [(f"{n}.{p['action']}", n, p) for n, p in loaded]
    _, ci_done = loaded[4]
    failed = copy.deepcopy(ci_done)
    failed["workflow_run"]["conclusion"] = "failure"
    sync = copy.deepcopy(loaded[2][1])
    sync["action"] = "synchronize"
    detour = [("workflow_run.completed (failure)", "workflow_run", failed),
              ("pull_request.synchronize", "pull_request", sync),
              ("workflow_run.completed", "workflow_run", ci_done)]
    return out[:5] + detour + out[5:]


@dataclass
class Measured:
    label: str
    requests: int
    seconds: float
    code: int
    calls: list[str] = field(default_factory=list)  # "GET /repos/…", "POST /graphql/query/repository", …
    stdout: str = ""


class Floor:
    """One lifecycle on a fresh fake GitHub (see the module docstring)."""

    def __init__(self, tmp: Path, *, history: int = 10, governed: bool = False, served: bool = False,
                 subprocess: bool = False, ghes: bool = False) -> None:
        """``served``: the fake on 127.0.0.1 (else in-process through ``responses``); ``subprocess``: each event
        runs ``entrypoint.py`` as the runner starts it (implies ``served``); ``ghes``: the API lives under
        ``/api/v3`` and GraphQL at ``/api/graphql`` (``GITHUB_GRAPHQL_URL``), as on GitHub Enterprise Server."""
        self.ghes = ghes
        self.tmp = tmp
        self.subprocess = subprocess
        served = served or subprocess
        self.history = history
        self.governed = governed
        self.served = served
        self.fake = FakeGitHub(owner=OWNER, repo=NAME, default_branch="master",
                               base_url="https://ghe.example.com:443/api/v3" if ghes else "https://api.github.com:443")
        pr = lifecycle_event(2)["pull_request"]
        self.head_sha = pr["head"]["sha"]
        self.fake.add_pull(2, self.head_sha, base="master", body=pr["body"], title=pr["title"], user="Codertocat",
                           labels=["deploy"] if governed else [], files=[("src/app.py", 10, 2)])
        if governed:
            self.fake.set_file("master", ".github/loopforge.yml", GOVERNED_POLICY)
            self.fake.add_review(2, "octocat", "APPROVED")
            self.fake.add_label_event(2, "deploy", "octocat")
            self.fake.add_workflow_run(901, self.head_sha, name="CI", conclusion="success")
        self._run = 100

    @contextmanager
    def serving(self) -> Iterator[str]:
        if self.served:
            with self.fake.serve() as url:
                if self.ghes:
                    self.fake.base_url = url + "/api/v3"
                yield self.fake.base_url
        else:
            with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
                self.fake.install(rsps)
                yield self.fake.base_url

    def step(self, label: str, name: str, payload: dict[str, Any], url: str) -> Measured:
        self._run += 1
        if self.subprocess:
            before = len(self.fake.requests)
            start = time.perf_counter()
            result = run_step(self.tmp / f"run{self._run}", name, payload, api_url=url, repo=REPO, run_id=self._run,
                              extra_env={"LOOPFORGE_TEST_FAST_RETRY": "5"})
            seconds = time.perf_counter() - start
            calls = [f"{c.method} {c.path}" for c in self.fake.requests[before:]]
            return Measured(label, len(calls), seconds, result.code, calls, result.stdout)
        event_path = self.tmp / f"event{self._run}.json"
        event_path.write_text(json.dumps(payload))
        env = {"GITHUB_EVENT_NAME": name, "GITHUB_EVENT_PATH": str(event_path), "GITHUB_REPOSITORY": REPO,
               "GITHUB_RUN_ID": str(self._run), "GITHUB_RUN_ATTEMPT": "1", "GITHUB_API_URL": url,
               "GITHUB_SERVER_URL": "https://github.com", "INPUT_GITHUB-TOKEN": "t",
               "GITHUB_OUTPUT": str(self.tmp / "out"), "GITHUB_STEP_SUMMARY": str(self.tmp / "summary"),
               "LOOPFORGE_TEST_FAST_RETRY": "5"}
        if self.ghes:
            env["GITHUB_GRAPHQL_URL"] = self.fake.graphql_url
        before = len(self.fake.requests)
        out = io.StringIO()
        start = time.perf_counter()
        code = run(env, stream=out)
        seconds = time.perf_counter() - start
        calls = [f"{c.method} {c.path}" for c in self.fake.requests[before:]]
        return Measured(label, len(calls), seconds, code, calls, out.getvalue())

    def pad(self, until: int) -> None:
        """Append notes to the record until it holds ``until`` entries, as one LoopForge-made commit."""
        fake = self.fake
        tip = fake.branch_sha(BRANCH)
        assert tip is not None
        folder = record_dir(RECORD)
        files = fake.branch_files(BRANCH)
        stored = sorted(LoopTransition.model_validate_json(text) for path, text in files.items()
                        if path.startswith(f"{folder}/entries/"))
        memory = MemoryRepository()
        from loopforge.records import replay

        head = replay(stored)
        assert head is not None
        memory.append(head, stored)
        service = LoopService(repository=memory)
        for i in range(max(until - len(stored), 0)):
            service.note(RECORD, "padding", reason=f"history entry {i}", idempotency_key=f"pad:{i}")
        head = memory.head(RECORD)
        assert head is not None
        entries = list(memory.entries(RECORD))
        edits: dict[str, TreeEntry | None] = {}

        def put(path: str, text: str) -> None:
            edits[path] = TreeEntry("", "100644", "blob", fake.git.put_blob(text.encode("utf-8")))

        for entry in entries[len(stored):]:
            text = entry.model_dump_json(indent=2) + "\n"
            put(f"{folder}/entries/{entry.sequence:06d}.json", text)
            if entry.idempotency_key:
                put(f"{folder}/keys/{key_file(entry.idempotency_key)}", text)
        put(f"{folder}/head.json", dump_head(head, entries[-60:]))
        with fake._lock:
            commit = fake.git.put_commit(fake.git.edit(fake.git.commits[tip].tree, edits), [tip],
                                         f"loopforge: {RECORD} padding\n\nLoopforge-Record: {RECORD}\n", BOT, BOT)
            fake.signed_commits.add(commit)
            fake.refs[f"refs/heads/{BRANCH}"] = commit

    def merge(self) -> str:
        """The commit a squash merge of PR #2 makes on the base branch (its SHA is the payload's
        ``merge_commit_sha``: the fixture's own is not in the fake)."""
        return self.fake.set_file("master", "src/app.py", "print('merged')\n", message="Merge pull request #2 (#2)")

    def lifecycle(self) -> list[Measured]:
        """Every event of the lifecycle; the record is padded to ``history`` entries after it is created."""
        out: list[Measured] = []
        with self.serving() as url:
            for i, (label, name, payload) in enumerate(events()):
                if (payload.get("pull_request") or {}).get("merged"):  # GitHub makes the merge commit first
                    payload = copy.deepcopy(payload)
                    payload["pull_request"]["merge_commit_sha"] = self.merge()
                out.append(self.step(label, name, payload, url))
                if i == 0:
                    self.pad(self.history)
        return out
