"""Every driver error leaves a store as the ``loopforge.errors`` class it means (the driver's exception kept as
``__cause__``): sqlite3 by SQLite result code, botocore by error code or exception class."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError, ReadTimeoutError
from botocore.stub import Stubber

from loopforge.errors import (
    ConcurrencyError,
    StoreCorrupt,
    StoreError,
    StoreMisconfigured,
    StorePermissionError,
    StoreUnavailable,
)
from loopforge.records import apply_entry, creation_entry
from loopforge.repository.dynamodb import DynamoDBRepository
from loopforge.repository.sqlite import SQLiteRepository

AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}


# ---------------------------------------------------------------------------------------------- SQLite
def test_a_file_that_is_not_sqlite_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n" * 50)
    with pytest.raises(StoreCorrupt, match="not a database") as info:
        SQLiteRepository(path)
    assert isinstance(info.value.__cause__, sqlite3.DatabaseError)
    assert path.read_text().startswith("these are my notes")  # untouched


def test_a_directory_is_misconfigured(tmp_path: Path) -> None:
    with pytest.raises(StoreMisconfigured, match="unable to open"):
        SQLiteRepository(tmp_path)


def test_a_database_of_another_application_is_not_written_into(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE users (name TEXT)")
    with pytest.raises(StoreMisconfigured, match="another application"):
        SQLiteRepository(path)
    with sqlite3.connect(path) as conn:
        assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")] == ["users"]


def test_a_locked_database_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "loopforge.db"
    repo = SQLiteRepository(path, timeout=0.05)
    entry = creation_entry("o/r#1", "o/r#1", repo="o/r")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process in the middle of a write
    try:
        with pytest.raises(StoreUnavailable, match="locked") as info:
            repo.append(apply_entry(None, entry), [entry])
        assert isinstance(info.value.__cause__, sqlite3.OperationalError)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert repo.head("o/r#1") is None  # nothing half-written
    repo.append(apply_entry(None, entry), [entry])  # and the store works once the lock is gone
    assert repo.head("o/r#1") is not None


def test_an_unparseable_head_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "loopforge.db"
    SQLiteRepository(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO records VALUES ('o/r#1', 'o/r', 'merged', 't', 0, 1, '{\"not\": \"a head\"}')")
    with pytest.raises(StoreCorrupt, match="does not parse"):
        SQLiteRepository(path).head("o/r#1")


# ---------------------------------------------------------------------------------------------- DynamoDB
@pytest.fixture
def dynamo(monkeypatch: pytest.MonkeyPatch) -> DynamoDBRepository:
    for name, value in AWS.items():
        monkeypatch.setenv(name, value)
    return DynamoDBRepository("t", endpoint_url="http://127.0.0.1:1")


@pytest.mark.parametrize(("code", "status", "raised"), [
    ("ProvisionedThroughputExceededException", 400, StoreUnavailable),
    ("ThrottlingException", 400, StoreUnavailable),
    ("InternalServerError", 500, StoreUnavailable),
    ("SomethingNew", 503, StoreUnavailable),
    ("AccessDeniedException", 400, StorePermissionError),
    ("UnrecognizedClientException", 400, StorePermissionError),
    ("ResourceNotFoundException", 400, StoreMisconfigured),
    ("ValidationException", 400, StoreError),
    ("ConditionalCheckFailedException", 400, ConcurrencyError),
])
def test_client_errors_by_code(dynamo: DynamoDBRepository, code: str, status: int, raised: type[Exception]) -> None:
    with Stubber(dynamo.client) as stub:
        stub.add_client_error("get_item", code, "it failed", http_status_code=status)
        with pytest.raises(raised) as info:
            dynamo.head("o/r#1")
    assert type(info.value) is raised  # exactly this class, not a broader one
    assert isinstance(info.value.__cause__, ClientError)


@pytest.mark.parametrize(("error", "raised"), [
    (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), StoreUnavailable),
    (ReadTimeoutError(endpoint_url="http://127.0.0.1:1"), StoreUnavailable),
    (NoCredentialsError(), StoreMisconfigured),
])
def test_botocore_errors_by_class(dynamo: DynamoDBRepository, monkeypatch: pytest.MonkeyPatch,
                                  error: Exception, raised: type[Exception]) -> None:
    def fail(**_kw: Any) -> Any:
        raise error

    monkeypatch.setattr(dynamo.client, "get_item", fail)
    with pytest.raises(raised) as info:
        dynamo.head("o/r#1")
    assert info.value.__cause__ is error and "\n" not in str(info.value)


def test_an_unparseable_item_is_corrupt(dynamo: DynamoDBRepository) -> None:
    with Stubber(dynamo.client) as stub:
        stub.add_response("get_item", {"Item": {"body": {"S": "{\"not\": \"a head\"}"}}})
        with pytest.raises(StoreCorrupt, match="does not parse"):
            dynamo.head("o/r#1")


def test_no_region_is_misconfigured(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    with pytest.raises(StoreMisconfigured, match="AWS_REGION"):
        DynamoDBRepository("t")
