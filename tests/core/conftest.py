"""Fixtures the core tests share: the in-process stores every core behaviour is checked on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from loopforge.repository import MemoryRepository, SQLiteRepository


@pytest.fixture(params=["memory", "sqlite"])
def repository(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """Each in-process store, empty (SQLite in a file of the test's own folder)."""
    if request.param == "memory":
        return MemoryRepository()
    return SQLiteRepository(tmp_path / "loopforge.db")
