"""Fixtures the store tests share: a local DynamoDB-compatible server and an AWS environment that points nowhere
real (tests/dynamo_server.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.dynamo_server import local_server


@pytest.fixture(scope="module")
def dynamo_url() -> Iterator[str]:
    """``$LOOPFORGE_TEST_DYNAMODB_URL`` (set by .ci/run), else a moto_server started for this module."""
    with local_server() as url:
        yield url
