"""Tampering with a stored trail, on every store: ``loopforge verify`` finds it and names the entry.

Each store holds two records written through ``LoopService``: ``org/repo#1`` (six entries) is tampered with
directly in the store's own storage, the way someone with write access to it would, and ``org/repo#2`` is left
alone. The storage is changed with the store's native means: the in-memory lists (Memory), raw SQL (SQLite), a
commit on the state branch of the fake GitHub (branch store: files edited, deleted, renamed) and ``PutItem`` /
``DeleteItem`` against the local DynamoDB server. Then ``loopforge verify`` (the CLI: ``--db``, ``--branch``,
``--dynamodb-table``; the service for Memory) must exit 1 and name the entry; the untouched record verifies.

The tampering cases: an entry edited (hash left as it was), an entry edited and re-hashed (the attacker knows
the algorithm), an entry deleted, two entries swapped (reordered), the last entry deleted, an entry replaced by
something that is not an entry at all. A chain with no outside anchor cannot detect everything: deleting the
last entries *and* rewriting the head to match is invisible to ``verify`` (on the branch store the git history
still shows it) — ``test_truncation_with_a_rewritten_head_is_the_known_limit`` pins that down.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from loopforge import LoopService, LoopState
from loopforge.cli import main as cli_main
from loopforge.github.client import make_github
from loopforge.records import RecordHead, path_of
from loopforge.repository import MemoryRepository, SQLiteRepository
from loopforge.repository.branch import BranchRepository, record_dir
from loopforge.trail import LoopTransition
from tests.fakegithub import FakeGitHub
from tests.fakegithub.fixtures import assert_clean
from tests.fakegithub.gitstore import Person

S = LoopState
TAMPERED = "org/repo#1"
UNTOUCHED = "org/repo#2"
STEPS = [S.TASK_QUEUED, S.PR_CREATED, S.CI_PENDING, S.CI_PASSED, S.MERGED]  # + the creation: six entries
LAST = len(STEPS) + 1


def build(service: LoopService) -> None:
    for n in (1, 2):
        record = service.create(ref=f"org/repo#{n}", repo="org/repo")
        for state in STEPS:
            assert service.transition(record.record_id, state, f"step.{state.value}", actor="alice").success
    assert service.verify(TAMPERED).ok and service.verify(UNTOUCHED).ok


def forged(text: str) -> str:
    """An entry's JSON with its trigger changed, hash left alone."""
    body = json.loads(text)
    body["trigger"] = "forged.by.mallory"
    return json.dumps(body)


def resealed(text: str) -> str:
    """An entry's JSON with its reason changed and its hash recomputed."""
    entry = LoopTransition.model_validate_json(text)
    changed = entry.model_copy(update={"reason": "approved by the CTO (forged)"})
    return changed.model_copy(update={"hash": changed.compute_hash()}).model_dump_json()


# ---------------------------------------------------------------------------------------------- the stores
class Store:
    """The raw storage of one store: read, overwrite or delete the stored text of entry ``seq`` of a record."""

    name = ""
    service: LoopService
    cli_args: tuple[str, ...] = ()  # how `loopforge` reaches this store (none: no CLI for it)

    def text(self, seq: int) -> str:
        raise NotImplementedError

    def put(self, edits: dict[int, str | None]) -> None:
        """Overwrite (text) or delete (None) the stored entries, in one go where the store allows."""
        raise NotImplementedError


class Memory(Store):
    name = "memory"

    def __init__(self) -> None:
        self.repo = MemoryRepository()
        self.service = LoopService(repository=self.repo)

    def _stored(self) -> list[LoopTransition]:
        return self.repo._entries[TAMPERED]

    def text(self, seq: int) -> str:
        return self._stored()[seq - 1].model_dump_json()

    def put(self, edits: dict[int, str | None]) -> None:
        stored = self._stored()
        new = {seq: LoopTransition.model_validate_json(text) if text is not None else None
               for seq, text in edits.items()}
        for seq, entry in new.items():
            if entry is not None:
                stored[seq - 1] = entry
        for seq in sorted((s for s, e in new.items() if e is None), reverse=True):
            del stored[seq - 1]


class SQLite(Store):
    name = "sqlite"

    def __init__(self, tmp: Path) -> None:
        self.path = str(tmp / "trail.db")
        self.repo = SQLiteRepository(self.path)
        self.service = LoopService(repository=self.repo)
        self.cli_args = ("--db", self.path)

    def text(self, seq: int) -> str:
        with self.repo.transaction() as conn:
            row = conn.execute("SELECT body FROM entries WHERE record_id = ? AND sequence = ?",
                               (TAMPERED, seq)).fetchone()
        return str(row[0])

    def put(self, edits: dict[int, str | None]) -> None:
        with self.repo.transaction(immediate=True) as conn:  # raw SQL, as anyone with the file could
            for seq, text in edits.items():
                if text is None:
                    conn.execute("DELETE FROM entries WHERE record_id = ? AND sequence = ?", (TAMPERED, seq))
                else:
                    conn.execute("UPDATE entries SET body = ? WHERE record_id = ? AND sequence = ?",
                                 (text, TAMPERED, seq))


class Branch(Store):
    name = "branch"
    BRANCH = "loopforge-state"

    def __init__(self, fake: FakeGitHub, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
        self.fake = fake
        self.repo = BranchRepository((make_github("t", url, for_tests=True), "octo-org/octo-repo"),
                                     branch=self.BRANCH)
        self.service = LoopService(repository=self.repo)
        self.cli_args = ("--branch", f"octo-org/octo-repo@{self.BRANCH}")
        monkeypatch.setenv("GITHUB_TOKEN", "ghs_test_token")
        monkeypatch.setenv("GITHUB_API_URL", url)

    def path(self, seq: int) -> str:
        return f"{record_dir(TAMPERED)}/entries/{seq:06d}.json"

    def text(self, seq: int) -> str:
        return self.fake.branch_files(self.BRANCH)[self.path(seq)]

    def put(self, edits: dict[int, str | None]) -> None:
        """One commit on the state branch (a push by someone with contents: write), as files edited or deleted."""
        fake = self.fake
        with fake._lock:
            parent = fake.branch_sha(self.BRANCH)
            assert parent is not None
            changes = {self.path(seq): (fake._blob_entry(text.encode()) if text is not None else None)
                       for seq, text in edits.items()}
            tree = fake.git.edit(fake.git.commits[parent].tree, changes)
            mallory = Person("mallory", "mallory@example.com", "2030-01-01T00:00:00Z")
            fake.refs[f"refs/heads/{self.BRANCH}"] = fake.git.put_commit(tree, [parent], "tidy up", mallory, mallory)

    def rename(self, old: int, new: int) -> None:
        """``git mv`` of an entry file (the content keeps its own sequence inside)."""
        text = self.text(old)
        self.put({old: None})
        self.put({new: text})


class Dynamo(Store):
    name = "dynamodb"

    def __init__(self, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
        from loopforge.repository.dynamodb import DynamoDBRepository

        monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", url)
        self.table = f"tamper-{uuid.uuid4().hex[:10]}"
        self.repo = DynamoDBRepository(self.table)
        assert self.repo.create_table()
        self.service = LoopService(repository=self.repo)
        self.cli_args = ("--dynamodb-table", self.table)

    def key(self, seq: int) -> dict[str, Any]:
        return {"pk": {"S": f"REC#{TAMPERED}"}, "sk": {"S": f"SEQ#{seq:012d}"}}

    def text(self, seq: int) -> str:
        item = self.repo.client.get_item(TableName=self.table, Key=self.key(seq), ConsistentRead=True)["Item"]
        return str(item["body"]["S"])

    def put(self, edits: dict[int, str | None]) -> None:
        client = self.repo.client
        for seq, text in edits.items():
            if text is None:
                client.delete_item(TableName=self.table, Key=self.key(seq))
            else:
                client.put_item(TableName=self.table, Item={**self.key(seq), "body": {"S": text}})


def _store(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    for name in ("LOOPFORGE_DB", "LOOPFORGE_DYNAMODB_TABLE", "LOOPFORGE_BRANCH", "GH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    kind = request.param
    if kind == "memory":
        yield Memory()
    elif kind == "sqlite":
        yield SQLite(tmp_path)
    elif kind == "branch":
        fake = FakeGitHub()
        with fake.serve() as url:
            yield Branch(fake, url, monkeypatch)
        assert_clean(fake)
    else:
        request.getfixturevalue("aws_env")  # tests/stores/conftest.py: dummy credentials, nothing from the machine
        yield Dynamo(request.getfixturevalue("dynamo_url"), monkeypatch)


def verify(store: Store, capsys: pytest.CaptureFixture[str], *ref: str) -> tuple[int, str]:
    """``loopforge verify [REF]`` on the store (the service's report, formatted the same, for Memory)."""
    if not store.cli_args:
        bad = 0
        lines = []
        for rid in ref or (TAMPERED, UNTOUCHED):
            report = store.service.verify(rid)
            if report.ok:
                lines.append(f"ok      {rid} ({report.entries} entries)")
            else:
                bad += 1
                lines += [f"TAMPERED {rid}: {p}" for p in report.problems]
        return (1 if bad else 0), "\n".join(lines)
    capsys.readouterr()
    code = cli_main([*store.cli_args, "verify", *ref])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    if code:
        assert err.strip() == "loopforge: error: 1 record(s) failed verification", err
    return code, out


# ---------------------------------------------------------------------------------------------- the cases
Tamper = Callable[[Store], None]
CASES: dict[str, tuple[Tamper, list[str]]] = {
    "edit": (lambda s: s.put({3: forged(s.text(3))}),
             ["entry 3: content does not match its hash (entry edited)"]),
    "edit and re-hash": (lambda s: s.put({3: resealed(s.text(3))}),
                         ["entry 3: its hash is not the one entry 4 links to (entry edited and re-hashed)",
                          "entry 4: previous-hash link broken"]),
    "edit and re-hash the last": (lambda s: s.put({LAST: resealed(s.text(LAST))}),
                                  [f"entry {LAST}: last entry's hash differs from the one the head recorded"]),
    "delete": (lambda s: s.put({3: None}), ["entry 3: missing: entry 3 removed before entry 4"]),
    "reorder (swap two)": (lambda s: s.put({2: s.text(3), 3: s.text(2)}),
                           ["entry 2: out of order: found after entry 3", "entry 3: previous-hash link broken"]),
    "delete the last": (lambda s: s.put({LAST: None}),
                        [f"entry {LAST}: missing: the record's head names entry {LAST} but the trail ends at "
                         f"{LAST - 1} (entry removed)"]),
}
UNREADABLE: dict[str, str] = {"not JSON": "{ this is not json", "not an entry": '{"sequence": 3, "to_state": "hacked"}'}


@pytest.fixture(params=["memory", "sqlite", "branch", "dynamodb"])
def store(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    yield from _store(request, tmp_path, monkeypatch)


@pytest.fixture(params=["sqlite", "branch", "dynamodb"])
def text_store(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    """The stores that keep entries as text (the memory store holds objects: nothing can be unreadable)."""
    yield from _store(request, tmp_path, monkeypatch)


@pytest.mark.parametrize("case", list(CASES))
def test_tampering_is_detected_and_named(store: Store, capsys: pytest.CaptureFixture[str], case: str) -> None:
    build(store.service)
    code, out = verify(store, capsys)
    assert code == 0 and "TAMPERED" not in out, out
    tamper, expected = CASES[case]
    tamper(store)
    code, out = verify(store, capsys, TAMPERED)
    assert code == 1, out
    for fragment in expected:
        assert f"TAMPERED {TAMPERED}: {fragment}" in out, f"{fragment!r} not in:\n{out}"
    code, out = verify(store, capsys, UNTOUCHED)
    assert code == 0 and out.startswith(f"ok      {UNTOUCHED} ({LAST} entries)"), out
    code, out = verify(store, capsys)  # every record: one fails, the other verifies
    assert code == 1 and f"ok      {UNTOUCHED}" in out and f"TAMPERED {TAMPERED}" in out
    if store.cli_args:
        assert "1 of 2 records verify" in out


@pytest.mark.parametrize("what", list(UNREADABLE))
def test_an_entry_that_is_not_an_entry_any_more(text_store: Store, capsys: pytest.CaptureFixture[str],
                                                what: str) -> None:
    store = text_store
    build(store.service)
    store.put({3: UNREADABLE[what]})
    code, out = verify(store, capsys, TAMPERED)
    assert code == 1, out
    assert f"TAMPERED {TAMPERED}: entry 3: unreadable, not an entry (edited)" in out, out
    assert f"TAMPERED {TAMPERED}: entry 3: missing: entry 3 removed before entry 4" in out  # the rest still checked
    assert verify(store, capsys, UNTOUCHED)[0] == 0


@pytest.mark.parametrize("what", list(UNREADABLE))
def test_history_of_an_unreadable_entry_is_one_error_line(text_store: Store, capsys: pytest.CaptureFixture[str],
                                                          what: str) -> None:
    """Every store reports an entry that does not parse as ``StoreCorrupt``: one line, no traceback."""
    store = text_store
    build(store.service)
    store.put({3: UNREADABLE[what]})
    capsys.readouterr()
    code = cli_main([*store.cli_args, "history", TAMPERED])
    out, err = capsys.readouterr()
    assert code != 0 and "Traceback" not in out + err
    assert err.startswith("loopforge: error: ") and err.count("\n") == 1, err
    assert "does not parse" in err and "run loopforge verify" in err, err


def test_renamed_entry_files_on_the_branch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """``git mv`` of entry files on the state branch: moved to a later number, or two swapped by name."""
    fake = FakeGitHub()
    with fake.serve() as url:
        store = Branch(fake, url, monkeypatch)
        build(store.service)
        store.rename(3, 9)
        code, out = verify(store, capsys, TAMPERED)
        assert code == 1 and f"TAMPERED {TAMPERED}: entry 3: out of order: found after entry {LAST}" in out, out
        assert f"TAMPERED {TAMPERED}: entry 4: previous-hash link broken" in out and "missing" not in out, out
        store.rename(9, 3)
        assert verify(store, capsys, TAMPERED)[0] == 0  # put back: the chain is whole again
        two, five = store.text(2), store.text(5)
        store.put({2: five, 5: two})  # swap the names of two files
        code, out = verify(store, capsys, TAMPERED)
        assert code == 1 and f"TAMPERED {TAMPERED}: entry 2: out of order: found after entry 5" in out, out
        assert f"TAMPERED {TAMPERED}: entry 5: previous-hash link broken" in out and "missing" not in out, out
    assert_clean(fake)


def test_truncation_with_a_rewritten_head_is_the_known_limit(tmp_path: Path) -> None:
    """Deleting the newest entry AND rewriting the head to the one before is consistent: no chain can see it
    without an outside anchor (the check run on the PR, the branch's git history)."""
    store = SQLite(tmp_path)
    build(store.service)
    head = store.repo.head(TAMPERED)
    assert head is not None
    entries = list(store.repo.entries(TAMPERED))
    store.put({LAST: None})
    previous = head.model_copy(update={"last_sequence": LAST - 1, "last_hash": entries[-2].hash,
                                       "state": entries[-2].state_after})

    def rewrite(new_head: RecordHead) -> None:
        with store.repo.transaction(immediate=True) as conn:
            conn.execute("UPDATE records SET head = ?, last_sequence = ? WHERE record_id = ?",
                         (new_head.model_dump_json(), LAST - 1, TAMPERED))

    rewrite(previous)  # the path still counts the removed entry's move
    assert [p.problem for p in store.service.verify(TAMPERED).problems] == [
        "the head's path (moves and counts) differs from the trail's (head edited)"]
    rewrite(previous.model_copy(update={"path": path_of(entries[:-1])}))
    assert store.service.verify(TAMPERED).ok  # consistent, hence undetectable by the chain alone


def test_branch_option_refuses_what_is_not_a_repository(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["--branch", "not a repo@x", "verify"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("loopforge: error:") and "OWNER/REPO[@BRANCH]" in err and "Traceback" not in err
