"""Tamper detection without HTTP: who made a tip, what a foreign commit changed, how the finding is recorded."""

from __future__ import annotations

import hashlib
import json

import pytest

from loopforge import LoopService, LoopState
from loopforge.github.integrity import (
    MAX_WALK,
    BranchCommit,
    flag,
    integrity_of,
    investigate,
    made_by_loopforge,
)
from loopforge.repository.memory import MemoryRepository

BOT = "github-actions[bot]"
BOT_EMAIL = "41898282+github-actions[bot]@users.noreply.github.com"


@pytest.mark.parametrize(("commit", "signed", "trusted"), [
    (BranchCommit("a", message="loopforge: o/r#1 entry 2 (x)", author_name=BOT, author_email=BOT_EMAIL), False,
     True),
    (BranchCommit("a", message="loopforge: o/r#1 entry 2 (x)", author_login=BOT, signature_valid=True), True,
     True),
    (BranchCommit("a", message="loopforge: o/r#1 entry 2 (x)", author_login=BOT, signature_valid=False), True,
     False),  # a store whose commits GitHub signs: an unsigned tip is foreign
    (BranchCommit("a", message="loopforge: o/r#1 entry 2 (x)", author_name=BOT), True, False),  # unknown signature
    (BranchCommit("a", message="tidy up", author_name=BOT, author_email=BOT_EMAIL), False, False),
    (BranchCommit("a", message="loopforge: forged", author_name="mallory", author_email="m@example.com"), False,
     False),
])
def test_who_made_a_tip(commit: BranchCommit, signed: bool, trusted: bool) -> None:
    assert made_by_loopforge(commit, require_signature=signed) is trusted


class Branch:
    """An in-memory data branch: commits with a file map each (``DataBranchReader``)."""

    def __init__(self) -> None:
        self.commits: dict[str, tuple[BranchCommit, dict[str, str]]] = {}
        self.blobs: dict[str, bytes] = {}
        self.reads = 0

    def add(self, oid: str, parent: str | None, files: dict[str, str], *, mine: bool) -> BranchCommit:
        shas = {}
        for path, text in files.items():
            sha = "blob-" + hashlib.sha1(text.encode()).hexdigest()  # content-addressed, as git
            self.blobs[sha] = text.encode()
            shas[path] = sha
        commit = BranchCommit(oid, parents=(parent,) if parent else (), tree=f"tree-{oid}",
                              message="loopforge: x" if mine else "edit",
                              author_name=BOT if mine else "mallory")
        self.commits[oid] = (commit, shas)
        return commit

    def tip(self) -> BranchCommit | None:
        return None

    def commit(self, oid: str) -> BranchCommit:
        self.reads += 1
        return self.commits[oid][0]

    def files(self, commit: BranchCommit) -> dict[str, str]:
        return dict(self.commits[commit.oid][1])

    def blob(self, sha: str) -> bytes:
        return self.blobs[sha]


def _store() -> tuple[MemoryRepository, LoopService]:
    store = MemoryRepository()
    service = LoopService(repository=store)
    for n in (1, 2):
        rid = service.create(ref=f"o/r#{n}", repo="o/r").record_id
        service.transition(rid, LoopState.TASK_QUEUED, "t")
    return store, service


def test_only_the_records_a_foreign_commit_changed_are_checked_and_flagged() -> None:
    store, service = _store()
    branch = Branch()
    files = {"README.md": "x", "records/o/r/1/head.json": "h1", "records/o/r/2/head.json": "h2",
             "records/o/r/1/entries/000001.json": "e1"}
    branch.add("c1", None, files, mine=True)
    tip = branch.add("c2", "c1", {**files, "records/o/r/1/entries/000001.json": "edited"}, mine=False)
    found = investigate(branch, tip, store)
    assert found.base is not None and found.base.oid == "c1" and [c.oid for c in found.foreign] == ["c2"]
    (finding,) = found.findings
    assert finding.record_id == "o/r#1" and finding.paths == ["records/o/r/1/entries/000001.json"]
    assert finding.problems == [] and finding.first_bad == 1  # the memory store itself was not edited
    assert [f.record_id for f in flag(store, found, key="gh:1:integrity:c2", actor="bot", run_url=None)] == ["o/r#1"]
    head = store.head("o/r#1")
    assert head is not None and head.violations == 1
    broken = integrity_of(head.metadata)
    assert broken is not None and broken["first_bad"] == 1 and broken["commits"] == ["c2"]
    other = store.head("o/r#2")
    assert other is not None and integrity_of(other.metadata) is None and other.violations == 0
    assert flag(store, found, key="gh:1:integrity:c2", actor="bot", run_url=None) == []  # a re-run: once
    assert service.verify("o/r#1").ok  # the violation entry chains like any other


def test_without_a_loopforge_commit_in_reach_only_the_events_record_is_checked() -> None:
    store, _service = _store()
    branch = Branch()
    files = {"records/o/r/1/head.json": "h1", "records/o/r/2/head.json": "h2"}
    parent = None
    for i in range(MAX_WALK + 3):
        parent = branch.add(f"c{i}", parent, {**files, "n": str(i)}, mine=False).oid
    tip = branch.commits[str(parent)][0]
    found = investigate(branch, tip, store, record_id="o/r#2")
    assert found.base is None and branch.reads == MAX_WALK
    assert [f.record_id for f in found.findings] == ["o/r#2"]
    assert json.dumps([f.paths for f in found.findings]) == json.dumps([["records/o/r/2/head.json"]])
