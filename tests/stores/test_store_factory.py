"""``loopforge.repository.factory.open_store``: the one store factory of the Action and the command line."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from loopforge import LoopService, LoopState
from loopforge.errors import StoreCorrupt, StoreError, StoreMisconfigured
from loopforge.repository import MemoryRepository, SQLiteRepository
from loopforge.repository.factory import open_store
from tests.dynamo_server import local_server, use_local_aws


def test_memory() -> None:
    assert isinstance(open_store("memory"), MemoryRepository)


def test_sqlite_read_never_creates(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "trail.db"
    with pytest.raises(StoreMisconfigured, match="no such store file"):
        open_store("sqlite", path=path, create=False)
    assert not path.exists() and not path.parent.exists()
    store = open_store("sqlite", path=path)  # a writer creates it
    assert isinstance(store, SQLiteRepository) and path.is_file()
    LoopService(repository=store).create(ref="o/r#1", repo="o/r")
    again = LoopService(repository=open_store("sqlite", path=path, create=False))
    record = again.get("o/r#1")
    assert record is not None and record.state is LoopState.ISSUE_CREATED


def test_an_empty_loopforge_db_is_the_default_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``LOOPFORGE_DB=""`` (an unset workflow variable) means ``loopforge.db``, as in ``open_store``, not SQLite's
    private temporary database (which would lose every record)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LOOPFORGE_DB", "")
    assert SQLiteRepository().path == "loopforge.db" and (tmp_path / "loopforge.db").is_file()


def test_sqlite_default_path_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOPFORGE_DB", str(tmp_path / "env.db"))
    with pytest.raises(StoreMisconfigured, match=r"env\.db: no such store file"):
        open_store("sqlite", create=False)


@pytest.mark.parametrize("create", [False, True])
def test_sqlite_refuses_what_is_not_a_loopforge_store(tmp_path: Path, create: bool) -> None:
    with pytest.raises(StoreMisconfigured, match="is a directory"):
        open_store("sqlite", path=tmp_path, create=create)
    text = tmp_path / "a.txt"
    text.write_bytes(b"hello\x00" * 20)
    with pytest.raises(StoreCorrupt, match="not a SQLite database"):
        open_store("sqlite", path=text, create=create)
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE t (x)")
    conn.close()
    with pytest.raises(StoreMisconfigured, match="not a LoopForge store"):
        open_store("sqlite", path=other, create=create)
    assert {r[0] for r in sqlite3.connect(other).execute("SELECT name FROM sqlite_master")} == {"t"}


def test_an_empty_file_becomes_a_store_only_for_a_writer(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    with pytest.raises(StoreMisconfigured, match="not a LoopForge store"):
        open_store("sqlite", path=empty, create=False)
    open_store("sqlite", path=empty, create=True)
    assert isinstance(open_store("sqlite", path=empty, create=False), SQLiteRepository)


def test_unknown_kinds_and_missing_settings() -> None:
    with pytest.raises(StoreMisconfigured, match="unknown store kind 'postgres'"):
        open_store("postgres")
    with pytest.raises(StoreMisconfigured, match="needs a GitHub repository"):
        open_store("branch")


def test_boto3_is_imported_only_for_dynamodb() -> None:
    code = """
import sys
sys.modules["boto3"] = None
from loopforge.repository.factory import open_store
from loopforge.errors import StoreMisconfigured
open_store("memory")
try:
    open_store("dynamodb", table="t")
except StoreMisconfigured as exc:
    print(exc)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "the DynamoDB store needs boto3: pip install 'loopforge[dynamodb]'"


@pytest.fixture
def dynamo(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with local_server() as url:
        use_local_aws(monkeypatch, url)
        yield url


def test_dynamodb_fail_fast_checks_the_table(dynamo: str) -> None:
    from loopforge.repository.dynamodb import create_table

    with pytest.raises(StoreMisconfigured, match="no DynamoDB table 'factory-t'"):
        open_store("dynamodb", table="factory-t", fail_fast=True)
    create_table("factory-t")
    store = open_store("dynamodb", table="factory-t", fail_fast=True, create=False)
    LoopService(repository=store).create(ref="o/r#2", repo="o/r")
    assert open_store("dynamodb", table="factory-t").head("o/r#2") is not None
    with pytest.raises(StoreError):
        open_store("dynamodb", table="factory-t", endpoint_url="http://127.0.0.1:1", fail_fast=True)
