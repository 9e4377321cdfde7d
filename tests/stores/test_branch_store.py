"""BranchRepository against the fake GitHub: the store contract, the layout, races on the ref, faults, costs."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from loopforge.errors import ConcurrencyError, StoreError
from loopforge.github.client import make_github
from loopforge.records import RecordHead, apply_entry, creation_entry
from loopforge.repository.base import RecordQuery, Repository, all_pages
from loopforge.repository.branch import BranchRepository, key_file, record_dir
from loopforge.service import LoopService
from loopforge.states import LoopState
from loopforge.testing import RepositoryContract
from loopforge.trail import LoopTransition, verify_entries
from tests.fakegithub import RESET, RESET_AFTER, FakeGitHub, on

S = LoopState
REPO = "/repos/octo-org/octo-repo"
BRANCH = "loopforge-state"
APPEND = "/graphql/mutation/createCommitOnBranch"


def stale_answers(fake: FakeGitHub, since: int) -> list[bool]:
    """For each createCommitOnBranch answered since log position ``since``: did it answer STALE_DATA?"""
    return [any(e.get("type") == "STALE_DATA" for e in (c["response"] or {}).get("errors", []))
            for c in fake.log[since:] if c["path"] == APPEND and isinstance(c["response"], dict)]


def store(fake: FakeGitHub, **kwargs: Any) -> BranchRepository:
    return BranchRepository((make_github("t", fake.base_url, for_tests=True), "octo-org/octo-repo"), **kwargs)


def new(repo: Repository, rid: str = "org/repo#1", **evidence: Any) -> RecordHead:
    entry = creation_entry(rid, rid, repo=rid.split("#")[0] if "#" in rid else None, evidence=evidence)
    head = apply_entry(None, entry)
    repo.append(head, [entry])
    return head


def step(head: RecordHead, to: LoopState = S.TASK_QUEUED, key: str | None = None,
         **metadata: Any) -> tuple[RecordHead, LoopTransition]:
    entry = LoopTransition(record_id=head.record_id, sequence=head.last_sequence + 1, from_state=head.state,
                           to_state=to, trigger=f"test.{to.value}", prev_hash=head.last_hash, idempotency_key=key,
                           metadata=metadata).sealed()
    return apply_entry(head, entry), entry


class TestBranchRepository(RepositoryContract):
    """The full contract, in-process (responses), at the contract's default sizes: 8 threads x 12 notes race
    on one record (and so on the ref); a 300-entry trail is verified."""

    @pytest.fixture
    def repository(self, fake_github: FakeGitHub) -> Iterator[BranchRepository]:
        yield store(fake_github)


class TestBranchRepositoryOverHTTP(RepositoryContract):
    """The contract again over a real HTTP server (urllib3, sockets, PyGithub's retry object)."""

    concurrent_writers = 4
    transitions_per_writer = 6
    long_history = 60

    @pytest.fixture
    def repository(self, fake_github_server: FakeGitHub) -> Iterator[BranchRepository]:
        yield store(fake_github_server)


# ---------------------------------------------------------------------------------------------- layout
def test_layout_is_one_readable_file_per_entry_on_an_orphan_branch(fake_github: FakeGitHub) -> None:
    fake = fake_github
    repo = store(fake)
    head = new(repo, "org/repo#42")
    head, entry = step(head, key="run-1:issues.assigned", note="ñ")
    repo.append(head, [entry])
    files = fake.branch_files(BRANCH)
    folder = "records/org/repo/42"
    assert set(files) == {"README.md", f"{folder}/head.json", f"{folder}/entries/000001.json",
                          f"{folder}/entries/000002.json", f"{folder}/keys/{key_file('run-1:issues.assigned')}"}
    assert files[f"{folder}/keys/{key_file('run-1:issues.assigned')}"] == files[f"{folder}/entries/000002.json"]
    assert '"note": "ñ"' in files[f"{folder}/entries/000002.json"]  # indented, UTF-8, not escaped
    assert json.loads(files[f"{folder}/head.json"])["last_sequence"] == 2
    log = fake.branch_log(BRANCH)
    assert len(log) == 3  # the branch's root commit (README only), then one commit per append
    root = fake.git.commits[log[-1]]
    assert root.parents == []  # orphan: shares no history with main
    assert fake.git.files(root.tree).keys() == {"README.md"}
    assert fake.git.commits[log[0]].parents == [log[1]]
    message = fake.git.commits[log[0]].message
    assert message.startswith("loopforge: org/repo#42 entry 2 (test.task_queued)")
    assert "\nLoopforge-Record: org/repo#42\n" in message  # the trailer the tamper check looks for
    assert log[0] in fake.signed_commits and log[1] in fake.signed_commits  # createCommitOnBranch: signed
    assert fake.branch_files("main") == {"README.md": "# octo-repo\n"}


def test_head_json_carries_a_window_of_the_newest_entries(fake_github: FakeGitHub) -> None:
    """The newest WINDOW entries ride in head.json, so rendering and recent key checks need no more reads."""
    from loopforge.repository.branch import WINDOW

    repo = store(fake_github)
    head = new(repo, "org/repo#9")
    for i in range(WINDOW + 4):
        head, entry = step(head, key=f"k{i}")
        repo.append(head, [entry])
    stored = json.loads(fake_github.branch_files(BRANCH)["records/org/repo/9/head.json"])
    assert [e["sequence"] for e in stored["window"]] == list(range(head.last_sequence - WINDOW + 1,
                                                                   head.last_sequence + 1))
    assert RecordHead.model_validate(stored) == head
    snap = store(fake_github).snapshot("org/repo#9")
    assert snap.covers(head.last_sequence - WINDOW) and not snap.covers(head.last_sequence - WINDOW - 1)


def test_built_from_a_pygithub_repository(fake_github: FakeGitHub) -> None:
    gh = make_github("t", fake_github.base_url, for_tests=True)
    repo = BranchRepository(gh.get_repo("octo-org/octo-repo"), branch="audit/state")
    assert repo.full_name == "octo-org/octo-repo"
    new(repo, "org/repo#5")
    assert [h.record_id for h in repo.query(RecordQuery()).items] == ["org/repo#5"]  # a branch name with "/"
    assert "records/org/repo/5/head.json" in fake_github.branch_files("audit/state")
    with pytest.raises(ValueError):
        BranchRepository((gh, "not a repo"))


@pytest.mark.parametrize(("record_id", "expected"), [
    ("org/repo#42", "records/org/repo/42"),
    ("my-org/my.repo_x#1", "records/my-org/my.repo_x/1"),
    ("org/.github#3", "records/org/.github/3"),
])
def test_record_dir_structured(record_id: str, expected: str) -> None:
    assert record_dir(record_id) == expected


def test_record_dir_other_ids_are_safe_and_distinct() -> None:
    odd = ["org/repo#007", "org/..#1", "org/.git#1", "ref-abc", "a/b/c", "x:y#z", "../../etc", "org/repo#1 ",
           "ORG/REPO#1", "org/ré#1", "org/repo#0"]
    dirs = [record_dir(r) for r in odd]
    assert len(set(dirs)) == len(dirs)
    for d in dirs:
        parts = d.split("/")
        assert parts[0] == "records" and all(p not in ("", ".", "..") and p.lower() != ".git" for p in parts)
        assert all(ch.isascii() for ch in d)
    assert record_dir("ORG/REPO#1") == "records/ORG/REPO/1"
    assert record_dir("ref-abc").startswith("records/_other/ref-abc~")


def test_odd_ids_round_trip(fake_github: FakeGitHub) -> None:
    repo = store(fake_github)
    for rid in ("../../etc", "org/repo#007", "ref-0123456789abcdef"):
        new(repo, rid)
        stored = repo.head(rid)
        assert stored is not None and stored.record_id == rid
        assert [e.record_id for e in repo.entries(rid)] == [rid]
    assert set(repo.record_ids()) == {"../../etc", "org/repo#007", "ref-0123456789abcdef"}


# ---------------------------------------------------------------------------------------------- races on the ref
def test_a_race_on_another_record_is_rebased(fake_github: FakeGitHub) -> None:
    fake = fake_github
    a, b = store(fake), store(fake)
    new(a, "org/repo#1")
    new(b, "org/repo#2")
    head_a, entry_a = step(a.head("org/repo#1") or pytest.fail("missing"))
    head_b, entry_b = step(b.head("org/repo#2") or pytest.fail("missing"))
    original = a.api.commit_on_branch
    raced: list[str] = []

    def commit_after_b_moved_the_branch(expected: str, headline: str, body: str, files: dict[str, str]) -> str:
        if not raced:
            raced.append("b")
            b.append(head_b, [entry_b])  # b lands between a's read of the tip and a's commit
        return original(expected, headline, body, files)

    a.api.commit_on_branch = commit_after_b_moved_the_branch  # type: ignore[method-assign]
    n = len(fake.log)
    a.append(head_a, [entry_a])
    assert a.rebases == 1
    assert [e.sequence for e in a.entries("org/repo#1")] == [1, 2]
    assert [e.sequence for e in a.entries("org/repo#2")] == [1, 2]
    # b's commit, a's (STALE_DATA: the branch moved), a's again on the new tip
    assert stale_answers(fake, n) == [False, True, False]
    assert len(fake.branch_log(BRANCH)) == 5  # linear: root + 2 creations + b + a; nothing lost or rewritten


def test_a_race_on_the_same_record_is_a_concurrency_error(fake_github: FakeGitHub) -> None:
    fake = fake_github
    a, b = store(fake), store(fake)
    head = new(a, "org/repo#1")
    winner_head, winner = step(head, S.TASK_QUEUED)
    loser_head, loser = step(head, S.CLOSED)
    original = a.api.commit_on_branch

    def commit_after_b(expected: str, headline: str, body: str, files: dict[str, str]) -> str:
        if fake.branch_sha(BRANCH) == expected:
            b.append(winner_head, [winner])
        return original(expected, headline, body, files)

    a.api.commit_on_branch = commit_after_b  # type: ignore[method-assign]
    with pytest.raises(ConcurrencyError):
        a.append(loser_head, [loser])
    assert [e.to_state for e in a.entries("org/repo#1")] == [S.ISSUE_CREATED, S.TASK_QUEUED]


def test_two_writers_create_the_branch_at_once(fake_github: FakeGitHub) -> None:
    fake = fake_github
    a, b = store(fake), store(fake)
    original = a.api.create_ref
    entry_b = creation_entry("org/repo#2", "org/repo#2", repo="org/repo")

    def create_after_b(repository_id: str, oid: str) -> None:
        if fake.branch_sha(BRANCH) is None:
            b.append(apply_entry(None, entry_b), [entry_b])
        original(repository_id, oid)

    a.api.create_ref = create_after_b  # type: ignore[method-assign]
    new(a, "org/repo#1")
    created = [e for e in fake.log if e["path"] == "/graphql/mutation/createRef"]
    assert [bool(e["response"].get("errors")) for e in created] == [False, True]  # b's, then a's: exists
    assert {h.record_id for h in all_pages(a, RecordQuery())} == {"org/repo#1", "org/repo#2"}
    assert len(fake.branch_log(BRANCH)) == 3  # b's root, b's record, a's record on top (rebased)


def test_threads_appending_to_different_records_all_land(fake_github_server: FakeGitHub) -> None:
    """Six threads (over real HTTP, so they truly interleave) append to six records on one branch."""
    fake = fake_github_server
    repo = store(fake)
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def writer(n: int) -> None:
        try:
            service = LoopService(repository=repo)
            start.wait()
            record = service.create(ref=f"org/repo#{n}", repo="org/repo")
            for i in range(4):
                service.note(record.record_id, "tick", evidence={"i": i})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(1, 7)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for n in range(1, 7):
        rid = f"org/repo#{n}"
        entries = list(repo.entries(rid))
        head = repo.head(rid)
        assert head is not None and [e.sequence for e in entries] == [1, 2, 3, 4, 5]
        assert verify_entries(rid, entries, last_sequence=head.last_sequence, last_hash=head.last_hash).ok
    assert len(fake.branch_log(BRANCH)) == 31  # the root, one commit per append, none lost, none rewritten
    lost_creations = [e for e in fake.log
                      if e["path"] == "/graphql/mutation/createRef" and e["response"].get("errors")]
    # every lost race (a stale head, a branch another thread created first) was rebased, none became an error
    assert sum(stale_answers(fake, 0)) + len(lost_creations) == repo.rebases


# ---------------------------------------------------------------------------------------------- faults
def test_a_lost_answer_to_the_ref_update_is_reconciled(fake_github: FakeGitHub) -> None:
    fake = fake_github
    repo = store(fake)
    head = new(repo)
    head, entry = step(head)
    fake.inject(on("POST", APPEND, RESET_AFTER))  # applied, but the client sees a reset
    repo.append(head, [entry])
    assert [e.sequence for e in repo.entries("org/repo#1")] == [1, 2]
    assert len(fake.branch_log(BRANCH)) == 3
    assert fake.graphql_count("mutation", "createCommitOnBranch") == 2  # the creation, the append: not repeated


def test_failed_ref_updates_and_object_writes_are_retried(fake_github: FakeGitHub) -> None:
    fake = fake_github
    repo = store(fake)
    head = new(repo)
    head, entry = step(head)
    fake.inject(on("POST", APPEND, (502, {}, {"message": "Bad Gateway"})))
    fake.inject(on("POST", APPEND, RESET, skip=1))
    repo.append(head, [entry])
    assert [e.sequence for e in repo.entries("org/repo#1")] == [1, 2]
    assert len(fake.branch_log(BRANCH)) == 3


def test_failed_object_writes_of_a_new_branch_are_retried(fake_github: FakeGitHub) -> None:
    fake = fake_github
    repo = store(fake)
    fake.inject(on("POST", f"{REPO}/git/trees", RESET))
    fake.inject(on("POST", f"{REPO}/git/commits", (500, {}, {"message": "Internal"})))
    new(repo)
    assert [e.sequence for e in repo.entries("org/repo#1")] == [1]


def test_an_append_that_keeps_failing_is_an_outage_not_a_race(fake_github: FakeGitHub) -> None:
    from loopforge.errors import StoreUnavailable

    fake = fake_github
    repo = store(fake)
    head = new(repo)
    head, entry = step(head)
    fake.inject(on("POST", APPEND, (502, {}, {"message": "Bad Gateway"}), times=None))
    with pytest.raises(StoreUnavailable, match="502"):
        repo.append(head, [entry])
    assert fake.graphql_count("mutation", "createCommitOnBranch") == 1 + BranchRepository.REF_TRIES
    assert repo.rebases == 0


def test_a_read_only_token_names_the_missing_permission(fake_github: FakeGitHub) -> None:
    fake = fake_github
    fake.read_only_token = True
    repo = store(fake)
    with pytest.raises(StoreError, match=r"contents: write"):
        new(repo)
    fake.read_only_token = False
    fake.permissions["contents"] = "none"
    with pytest.raises(StoreError, match=r"contents: read"):
        repo.head("org/repo#1")


def test_graphql_errors_are_typed(fake_github: FakeGitHub) -> None:
    from loopforge.errors import StoreMisconfigured, StorePermissionError

    fake = fake_github
    fake.read_only_token = True
    with pytest.raises(StorePermissionError, match="Resource not accessible by integration"):
        new(store(fake))
    fake.read_only_token = False
    gone = BranchRepository((make_github("t", fake.base_url, for_tests=True), "octo-org/elsewhere"))
    with pytest.raises(StoreMisconfigured, match="does not exist or the token cannot see it"):
        gone.head("org/repo#1")


def test_a_branch_that_vanished_is_recreated_but_old_records_conflict(fake_github: FakeGitHub) -> None:
    fake = fake_github
    repo = store(fake)
    head = new(repo)
    fake.delete_branch(BRANCH)
    assert repo.head("org/repo#1") is None
    later, entry = step(head)
    with pytest.raises(ConcurrencyError):
        repo.append(later, [entry])  # the store no longer holds entry 1
    new(repo, "org/repo#2")
    assert fake.branch_files(BRANCH).keys() >= {"records/org/repo/2/head.json"}


# ---------------------------------------------------------------------------------------------- reads at scale
def test_query_walks_a_truncated_tree(fake_github: FakeGitHub) -> None:
    fake = fake_github
    repo = store(fake)
    for n in range(1, 6):
        new(repo, f"org/repo#{n}")
    new(repo, "ref-custom")
    fake.tree_entry_limit = 5
    assert {h.record_id for h in all_pages(repo, RecordQuery())} == {
        *(f"org/repo#{n}" for n in range(1, 6)), "ref-custom"}


def test_entries_beyond_the_contents_api_listing_limit(fake_github: FakeGitHub) -> None:
    """The Contents API lists 1,000 files per folder: longer trails are listed through the Git Trees API."""
    fake = fake_github
    repo = store(fake)
    head = new(repo)
    entries: list[LoopTransition] = []
    for _ in range(1004):
        head, entry = step(head)
        entries.append(entry)
    # write them straight into the fake's git store (1,004 appends through HTTP would be slow)
    from tests.fakegithub.gitstore import Person, TreeEntry

    tip = fake.branch_sha(BRANCH)
    assert tip is not None
    edits: dict[str, TreeEntry | None] = {
        f"records/org/repo/1/entries/{e.sequence:06d}.json": TreeEntry(
            "", "100644", "blob", fake.git.put_blob((e.model_dump_json(indent=2) + "\n").encode()))
        for e in entries}
    edits["records/org/repo/1/head.json"] = TreeEntry(
        "", "100644", "blob", fake.git.put_blob(head.model_dump_json(indent=2).encode()))
    me = Person("t", "t@example.com", "2024-01-01T00:00:00Z")
    fake.refs[f"refs/heads/{BRANCH}"] = fake.git.put_commit(
        fake.git.edit(fake.git.commits[tip].tree, edits), [tip], "bulk", me, me)
    assert repo.head("org/repo#1") == head  # an old head.json (no window) still reads
    assert [e.sequence for e in repo.entries("org/repo#1", after=1000)] == [1001, 1002, 1003, 1004, 1005]
    assert len(list(repo.entries("org/repo#1"))) == 1005
    assert LoopService(repository=repo).verify("org/repo#1").ok


# ---------------------------------------------------------------------------------------------- request counts
def _delta(fake: FakeGitHub, since: int) -> list[str]:
    return [f"{c.method} {c.path.split('/', 5)[-1] if c.path.count('/') >= 5 else c.path}"
            for c in fake.requests[since:]]


def test_request_counts(fake_github: FakeGitHub) -> None:
    """The figures quoted in docs/branch-store.md."""
    fake = fake_github
    repo = store(fake)
    n = len(fake.requests)
    head = new(repo)  # creates the branch
    first = _delta(fake, n)
    # snapshot query (no branch), POST tree + POST commit (the orphan root), createRef, createCommitOnBranch
    assert len(first) == 5, first

    head, entry = step(head)
    n = len(fake.requests)
    repo.append(head, [entry])  # same process, right after its own append: it knows the tip and the record
    assert _delta(fake, n) == ["POST /graphql/mutation/createCommitOnBranch"]

    cold = store(fake)  # another process (another Action run)
    head, entry = step(head)
    n = len(fake.requests)
    cold.append(head, [entry])
    assert len(_delta(fake, n)) == 2, _delta(fake, n)  # read the record at the tip, then the commit

    n = len(fake.requests)
    assert cold.head("org/repo#1") is not None
    assert _delta(fake, n) == ["POST /graphql/query/repository"]
    n = len(fake.requests)
    assert cold.find_key("org/repo#1", "nope") is None
    assert len(_delta(fake, n)) == 1

    fresh = store(fake)
    n = len(fake.requests)
    assert len(list(fresh.entries("org/repo#1"))) == 3
    assert len(_delta(fake, n)) == 1 + 3  # list the folder, one blob each (REST: the whole trail)
    n = len(fake.requests)
    assert len(list(fresh.entries("org/repo#1"))) == 3
    assert len(_delta(fake, n)) == 1  # blobs are immutable: cached by SHA

    for k in range(2, 6):
        new(fresh, f"org/repo#{k}")
    other = store(fake)
    n = len(fake.requests)
    assert len(other.query(RecordQuery()).items) == 5
    assert len(_delta(fake, n)) == 1 + 5  # recursive tree listing + one blob per head
    n = len(fake.requests)
    other.query(RecordQuery())
    assert len(_delta(fake, n)) == 1  # unchanged heads are cached

    # through the service without a snapshot: head + idempotency key + the commit
    service = LoopService(repository=store(fake))
    n = len(fake.requests)
    service.note("org/repo#1", "tick", idempotency_key="run-7:tick")
    assert len(_delta(fake, n)) == 3, _delta(fake, n)
    n = len(fake.requests)
    assert service.note("org/repo#1", "tick", idempotency_key="run-7:tick").duplicate
    assert len(_delta(fake, n)) == 2  # a redelivered event: head + key file, no write

    # what the Action does: one snapshot (naming the keys the event will write), then only the commit
    pinned = store(fake)
    service = LoopService(repository=pinned)
    n = len(fake.requests)
    pinned.snapshot("org/repo#1", keys=["run-8:tick"])
    service.note("org/repo#1", "tick", idempotency_key="run-8:tick")
    assert _delta(fake, n) == ["POST /graphql/query/repository", "POST /graphql/mutation/createCommitOnBranch"]
    n = len(fake.requests)
    assert service.note("org/repo#1", "tick", idempotency_key="run-8:tick").duplicate
    assert service.get("org/repo#1") is not None and len(service.history("org/repo#1")) == 5
    assert _delta(fake, n) == []  # served from the snapshot (the window holds the whole short trail)

    # a rebase (another record moved the branch): STALE_DATA, a re-read, the commit again
    a, b = store(fake), store(fake)
    ha, ea = step(a.head("org/repo#2") or pytest.fail("missing"))
    hb, eb = step(b.head("org/repo#3") or pytest.fail("missing"))
    original = a.api.commit_on_branch

    def racing(expected: str, headline: str, body: str, files: dict[str, str]) -> str:
        if not a.rebases and expected == fake.branch_sha(BRANCH):
            b.append(hb, [eb])
        return original(expected, headline, body, files)

    a.api.commit_on_branch = racing  # type: ignore[method-assign]
    n0 = len(fake.requests)
    a.append(ha, [ea])
    b_calls = 1
    assert len(fake.requests) - n0 - b_calls == 3, _delta(fake, n0)
    assert fake.violations == []
