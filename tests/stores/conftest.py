"""Fixtures the store tests share: a local DynamoDB-compatible server and an AWS environment that points nowhere
real (tests/dynamo_server.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.dynamo_server import CLEARED_AWS_ENV, DUMMY_AWS_ENV, local_server


@pytest.fixture(scope="module")
def dynamo_url() -> Iterator[str]:
    """``$LOOPFORGE_TEST_DYNAMODB_URL`` (set by .ci/run), else a moto_server started for this module."""
    with local_server() as url:
        yield url


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials and region; no profile or endpoint from the machine."""
    for name in CLEARED_AWS_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in DUMMY_AWS_ENV.items():
        monkeypatch.setenv(name, value)
