"""The attestation stores: one contract for memory, SQLite, DynamoDB (moto) and the branch store (fake GitHub)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto import mock_aws

from loopforge.evidence.store import (
    BranchAttestationStore,
    DynamoDBAttestationStore,
    MemoryAttestationStore,
    SQLiteAttestationStore,
    attestation_store_for,
)
from loopforge.github.client import make_github
from loopforge.repository.base import RecordQuery
from loopforge.repository.branch import BranchRepository
from loopforge.repository.dynamodb import DynamoDBRepository, make_client
from loopforge.repository.sqlite import SQLiteRepository
from tests.dynamo_server import Serialized
from tests.evidence.helpers import MERGE_SHA, AttestationContract, attestation
from tests.fakegithub import FakeGitHub


class TestMemory(AttestationContract):
    @pytest.fixture
    def store(self) -> Iterator[MemoryAttestationStore]:
        yield MemoryAttestationStore()


class TestSQLite(AttestationContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[SQLiteAttestationStore]:
        yield SQLiteAttestationStore(SQLiteRepository(tmp_path / "lf.db"))


class TestDynamoDB(AttestationContract):
    @pytest.fixture
    def store(self, aws_env: None) -> Iterator[DynamoDBAttestationStore]:
        with mock_aws():
            repo = DynamoDBRepository("loopforge-evidence", shards=1, client=Serialized(make_client()))
            repo.create_table()
            yield DynamoDBAttestationStore(repo)


class TestBranch(AttestationContract):
    @pytest.fixture
    def store(self, fake_github: FakeGitHub) -> Iterator[BranchAttestationStore]:
        gh = make_github("t", fake_github.base_url, for_tests=True)
        yield BranchAttestationStore(BranchRepository((gh, "octo-org/octo-repo")))


def test_sqlite_table_is_added_to_an_existing_database(tmp_path: Path) -> None:
    """A database made before the table existed gains it on open, and its records are untouched."""
    db = tmp_path / "old.db"
    SQLiteRepository(db).close()
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE attestations")
    assert "attestations" not in {r[0] for r in sqlite3.connect(db).execute("SELECT name FROM sqlite_master")}
    repo = SQLiteRepository(db)
    store = attestation_store_for(repo)
    assert isinstance(store, SQLiteAttestationStore)
    assert store.put(attestation()) and store.get(MERGE_SHA) == attestation()


def test_dynamodb_items_are_invisible_to_record_queries(aws_env: None) -> None:
    with mock_aws():
        repo = DynamoDBRepository("loopforge-evidence", shards=1, client=make_client())
        repo.create_table()
        store = attestation_store_for(repo)
        assert store.put(attestation())
        items = repo.client.scan(TableName="loopforge-evidence")["Items"]
        assert sorted(i["sk"]["S"] for i in items) == ["DOC#ci.dsse.json", "DOC#vsa.dsse.json", "META"]
        assert {i["pk"]["S"] for i in items} == {f"ATT#{MERGE_SHA}"}
        assert repo.query(RecordQuery()).items == []


def test_branch_layout(fake_github: FakeGitHub) -> None:
    gh = make_github("t", fake_github.base_url, for_tests=True)
    repo = BranchRepository((gh, "octo-org/octo-repo"))
    assert attestation_store_for(repo).put(attestation())
    listing = {p for p in (repo.read_path(f"attestations/{MERGE_SHA}/{n}")
                           for n in ("index.json", "vsa.dsse.json", "ci.dsse.json")) if p is not None}
    assert len(listing) == 3
    with pytest.raises(ValueError):
        repo.commit_files({"records/x/head.json": "{}"}, "no", unless_exists="records/x/head.json")


def test_a_line_break_after_a_sha_or_a_document_name_is_refused() -> None:
    with pytest.raises(ValueError, match="not a document name"):
        attestation(**{"vsa.dsse.json\n": "{}"})
    with pytest.raises(ValueError, match="not a commit SHA"):
        attestation(MERGE_SHA + "\n")
