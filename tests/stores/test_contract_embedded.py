from pathlib import Path

import pytest

from loopforge.repository import MemoryRepository, SQLiteRepository
from loopforge.testing import RepositoryContract


class TestMemoryRepository(RepositoryContract):
    @pytest.fixture
    def repository(self) -> MemoryRepository:
        return MemoryRepository()


class TestSQLiteRepository(RepositoryContract):
    @pytest.fixture
    def repository(self, tmp_path: Path) -> SQLiteRepository:
        return SQLiteRepository(tmp_path / "loopforge.db")


class TestSQLiteInMemory(RepositoryContract):
    @pytest.fixture
    def repository(self) -> SQLiteRepository:
        return SQLiteRepository(":memory:")
