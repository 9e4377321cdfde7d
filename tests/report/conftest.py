"""Fixtures of the report tests: the known store (in memory and in SQLite) and the demo run once
(plain helpers: tests/report/helpers.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from loopforge.repository import MemoryRepository, SQLiteRepository
from loopforge.repository.base import Repository
from tests.report.helpers import DemoRun, known_store


@pytest.fixture
def known() -> Repository:
    return known_store(MemoryRepository())


@pytest.fixture
def known_db(tmp_path: Path) -> str:
    path = str(tmp_path / "known.db")
    known_store(SQLiteRepository(path))
    return path


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRun]:
    """``loopforge demo`` run once (in-process, through the command line) in a fresh folder."""
    import contextlib
    import io
    import os

    from loopforge.cli import main

    folder = tmp_path_factory.mktemp("demo")
    out = io.StringIO()
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        with contextlib.redirect_stdout(out):
            code = main(["demo"])
    finally:
        os.chdir(cwd)
    yield DemoRun(folder, folder / "loopforge.db", folder / "loopforge-report.html",
                  folder / "loopforge-check-run.md", out.getvalue(), code)
