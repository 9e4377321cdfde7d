"""A stateful fake of GitHub's REST API for one repository, validated against GitHub's OpenAPI description.

    fake = FakeGitHub("octo-org", "octo-repo")          # base_url="https://api.github.com:443"
    fake.add_pull(7, head_sha="a" * 40, labels=["loop"], files=[("src/x.py", 10, 2)])
    with responses.RequestsMock() as rsps:               # in-process
        fake.install(rsps)
        ...
    with fake.serve() as base_url:                       # real HTTP on 127.0.0.1 (for subprocesses)
        ...
    assert fake.violations == []

Pytest fixtures: ``tests/fakegithub/fixtures.py`` (``fake_github``, ``fake_github_server``).
"""

from .core import (
    RESET,
    RESET_AFTER,
    TIMEOUT,
    Call,
    CheckRun,
    ConnectionDropped,
    ConnectionHung,
    FakeGitHub,
    Fault,
    HTTPError,
    Issue,
    Pull,
    on,
)
from .spec import OpenAPIViolation, Spec, load_spec

__all__ = [
    "RESET",
    "RESET_AFTER",
    "TIMEOUT",
    "Call",
    "CheckRun",
    "ConnectionDropped",
    "ConnectionHung",
    "FakeGitHub",
    "Fault",
    "HTTPError",
    "Issue",
    "OpenAPIViolation",
    "Pull",
    "Spec",
    "load_spec",
    "on",
]
