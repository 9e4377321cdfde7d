"""Fixtures the Action tests share: the fake GitHub with the lifecycle's pull request, and a local
DynamoDB-compatible server (tests/dynamo_server.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.dynamo_server import local_server
from tests.fakegithub import FakeGitHub
from tests.fakegithub.fixtures import assert_clean
from tests.paths import lifecycle_event


@pytest.fixture
def github() -> Iterator[tuple[FakeGitHub, str]]:
    """The fake GitHub (``Codertocat/Hello-World``) with PR #2 of the lifecycle, served on 127.0.0.1."""
    fake = FakeGitHub(owner="Codertocat", repo="Hello-World", default_branch="master")
    pr = lifecycle_event("pull_request-opened")["pull_request"]
    fake.add_pull(2, pr["head"]["sha"], base="master", body=pr["body"], title=pr["title"], user="Codertocat")
    with fake.serve() as url:
        yield fake, url
    assert_clean(fake)


@pytest.fixture(scope="module")
def dynamo() -> Iterator[str]:
    """``$LOOPFORGE_TEST_DYNAMODB_URL`` (set by .ci/run), else a moto_server started for this module."""
    with local_server() as url:
        yield url
