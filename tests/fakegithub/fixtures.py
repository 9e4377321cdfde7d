"""Pytest fixtures for FakeGitHub. Enable them in ``tests/conftest.py`` with::

    pytest_plugins = ["tests.fakegithub.fixtures"]

``fake_github``: served in-process through ``responses`` at ``https://api.github.com:443`` (any other HTTP call
made through ``requests`` fails, as ``responses`` does by default). ``fake_github_server``: served over real HTTP
on 127.0.0.1 (its ``base_url`` is the server's URL, e.g. for ``GITHUB_API_URL`` of a subprocess). Both fail the
test at teardown if any request or response body broke GitHub's OpenAPI description, an endpoint the fake does
not implement was called, or the fake crashed.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import responses

from .core import FakeGitHub


def assert_clean(fake: FakeGitHub) -> None:
    problems = fake.violations + fake.errors
    assert not problems, "FakeGitHub saw problems:\n" + "\n".join(problems)


@pytest.fixture
def fake_github() -> Iterator[FakeGitHub]:
    fake = FakeGitHub()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        fake.install(rsps)
        yield fake
    assert_clean(fake)


@pytest.fixture
def fake_github_server() -> Iterator[FakeGitHub]:
    fake = FakeGitHub()
    with fake.serve():
        yield fake
    assert_clean(fake)
