"""Shared pytest configuration: the fake GitHub's fixtures, and the governance ``repo`` the action and policy
end-to-end tests share (a test module tunes it with ``REPO_OPTIONS``, the keywords of
:func:`tests.governance.served_repo`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.governance import Repo

# the shared helper modules assert too: rewrite them as pytest rewrites test modules (before anything imports them)
pytest.register_assert_rewrite("tests.governance", "tests.action_harness", "tests.paths")
pytest_plugins = ["tests.fakegithub.fixtures"]


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy AWS credentials and region; no profile or endpoint from the machine (DynamoDB tests)."""
    from tests.dynamo_server import CLEARED_AWS_ENV, DUMMY_AWS_ENV

    for name in CLEARED_AWS_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in DUMMY_AWS_ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def repo(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Repo]:
    """A fake GitHub served for one test, with the steps run against it (``tests/governance.py``)."""
    from tests.governance import served_repo

    with served_repo(tmp_path, **getattr(request.module, "REPO_OPTIONS", {})) as served:
        yield served
