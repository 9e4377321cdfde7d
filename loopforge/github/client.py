"""The one place that builds a PyGithub client for the Action and for ``BranchRepository``.

Settings, and why (PyGithub 2.x defaults in brackets):

* ``seconds_between_requests=None`` [0.25 s] and ``seconds_between_writes=None`` [1 s]: no fixed sleeps. One
  Action run makes a few dozen requests and fewer than 20 writes (an ``append`` is 3 writes), far below
  GitHub's secondary limit of 80 content-creating requests per minute; a fixed 1 s per write would make every
  append take 3 s for nothing. When GitHub does push back, it says so (403/429 with ``retry-after`` or a
  "secondary rate limit" message) and the retry policy below waits exactly as told.
* ``retry``: a ``GithubRetry`` subclass with ``total=4`` [10], exponential backoff 0.5, 1, 2, 4 s with jitter.
  It retries connection failures, 5xx and 429 for reads and idempotent writes (GET, HEAD, PUT, DELETE), and
  rate-limit 403/429 for *every* method (a rate-limited request was refused, not run), honouring
  ``retry-after`` and waiting ``secondary_rate_wait=60`` s for a secondary limit without one (GitHub's advice).
  It does not retry POST/PATCH after a 5xx or a read error [PyGithub retries POST]: such a request may have
  been applied, and blindly repeating "create check run" makes duplicates. Callers that know a POST/PATCH is
  safe to repeat (``BranchRepository``: content-addressed git objects, compare-and-swap ref updates) reconcile
  and retry themselves. ``max_rate_limit_wait=90`` s: waiting for a primary limit reset (up to an hour) would
  burn runner minutes, so that raises ``RateLimitExceededException`` instead.
* ``timeout=20`` s [15]: GitHub ends API requests that take longer than 10 s; 20 s leaves room for the network.
* ``per_page=100`` [30]: lists (PR files, reviews, check runs) need fewer pages.

``for_tests=True`` keeps the same policy but never sleeps (backoff 0, ``retry-after`` capped at 0.01 s, no
secondary-limit wait) and uses a 5 s timeout, so fault-injection tests against the fake GitHub run fast and
still exercise the retry paths. The Action selects it when ``LOOPFORGE_TEST_FAST_RETRY=<seconds>`` is set (a
test-only switch; the value is the client timeout in whole seconds), see ``loopforge.action``.

``github_error`` is the one translation of PyGithub's and ``requests``' exceptions into the ``GitHubError``
branch of ``loopforge.errors`` (by HTTP status; GitHub's own message only tells a read-only token and a rate
limit from other 403s). Callers raise it ``from`` the driver's exception.
"""

from __future__ import annotations

from typing import Any

import requests
from github import Auth, Github, GithubException, GithubRetry
from urllib3.exceptions import PoolError, ProtocolError
from urllib3.response import BaseHTTPResponse

from loopforge.errors import (
    GitHubError,
    GitHubNotFound,
    GitHubPermissionError,
    GitHubUnavailable,
    ReadOnlyToken,
)

UNSAFE_METHODS = frozenset({"POST", "PATCH"})
RATE_LIMIT_STATUSES = frozenset({403, 429})


class LoopforgeRetry(GithubRetry):
    """``GithubRetry`` that retries POST/PATCH only when GitHub refused them for a rate limit (see module doc)."""

    def __init__(self, *, max_retry_after: float | None = None, **kwargs: Any) -> None:
        self.max_retry_after = max_retry_after
        kwargs.setdefault("status_forcelist", [429, 500, 502, 503, 504])
        kwargs.setdefault("allowed_methods", frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "POST", "PATCH"}))
        super().__init__(**kwargs)

    def new(self, **kw: Any) -> LoopforgeRetry:
        kw.setdefault("max_retry_after", self.max_retry_after)
        retry: LoopforgeRetry = super().new(**kw)
        return retry

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        if method.upper() in UNSAFE_METHODS:
            # a rate-limited POST/PATCH was refused, not run (GithubRetry.increment then tells a rate-limit 403
            # from a permission 403); one answered 5xx may have been applied
            return status_code in RATE_LIMIT_STATUSES
        return bool(super().is_retry(method, status_code, has_retry_after))

    def _is_method_retryable(self, method: str) -> bool:
        # consulted for read errors (request sent, no answer): a POST/PATCH may have been applied
        if method.upper() in UNSAFE_METHODS:
            return False
        return bool(super()._is_method_retryable(method))

    def get_retry_after(self, response: BaseHTTPResponse) -> float | None:
        value: float | None = super().get_retry_after(response)
        if value is not None and self.max_retry_after is not None:
            value = min(value, self.max_retry_after)
        return value


def make_retry(*, for_tests: bool = False) -> LoopforgeRetry:
    if for_tests:
        return LoopforgeRetry(total=4, backoff_factor=0, secondary_rate_wait=0, max_rate_limit_wait=1,
                              max_retry_after=0.01)
    return LoopforgeRetry(total=4, backoff_factor=0.5, backoff_jitter=0.25, secondary_rate_wait=60,
                          max_rate_limit_wait=90)


def make_github(token: str | None, base_url: str = "https://api.github.com", *, for_tests: bool = False,
                timeout: int | None = None) -> Github:
    """A ``Github`` client for the Action and ``BranchRepository`` (``base_url``: ``GITHUB_API_URL``).

    ``timeout`` (whole seconds: PyGithub asserts an int) overrides the default (20 s, 5 s with ``for_tests``)."""
    from loopforge import __version__

    return Github(
        auth=Auth.Token(token) if token else None,
        base_url=base_url.rstrip("/"),
        timeout=timeout if timeout is not None else (5 if for_tests else 20),
        user_agent=f"loopforge/{__version__}",
        per_page=100,
        retry=make_retry(for_tests=for_tests),
        seconds_between_requests=None,
        seconds_between_writes=None,
    )


def describe_transport_error(exc: BaseException) -> str:
    """What a ``requests`` transport error (no usable answer) came down to, for a one-line message: the cause
    urllib3 gave up on ("too many 502 error responses", "Connection reset by peer", "Read timed out. …") and the
    path, instead of the nested pool/URL repr."""
    inner = exc.args[0] if exc.args and isinstance(exc.args[0], BaseException) else exc
    url = getattr(inner, "url", None)
    reason: Any = getattr(inner, "reason", None) or inner  # MaxRetryError: what the retries ended on
    if isinstance(reason, ProtocolError) and len(reason.args) > 1 and isinstance(reason.args[1], OSError):
        reason = reason.args[1]
    if isinstance(reason, OSError) and reason.strerror:
        text = reason.strerror
    elif isinstance(reason, PoolError):
        text = str(reason).split(": ", 1)[-1]
    else:
        text = str(reason)
    return f"{text} ({url})" if url else text


#: What a refused request needs, by HTTP status (the hint of ``github_error``).
_HINTS = {401: "the github-token input is missing or invalid",
          403: "the token lacks a permission (the workflow needs contents: write, checks: write, pull-requests: "
               "read)",
          404: "the repository or branch was not found, or the token cannot see it",
          409: "GitHub's API failed",
          422: "GitHub refused the request as invalid"}


def github_error(exc: GithubException | requests.RequestException, what: str) -> GitHubError:
    """``exc`` (raised while ``what`` — e.g. "posting the check run") as the ``GitHubError`` it means."""
    if isinstance(exc, requests.RequestException):
        return GitHubUnavailable(f"{what}: GitHub's API gave no usable answer: {describe_transport_error(exc)}")
    status = int(exc.status or 0)
    data = exc.data if isinstance(exc.data, dict) else {}
    message = str(data.get("message") or "")[:200]
    text = f"{what} failed with HTTP {status}" + (f": {message}" if message else "")
    if status == 403 and "not accessible by integration" in message:
        return ReadOnlyToken(f"{text} — the token is read-only (a pull request from a fork gets one)", status=status)
    if status == 429 or (status == 403 and "rate limit" in message.lower()) or status >= 500:
        return GitHubUnavailable(f"{text} — GitHub is unavailable or a rate limit was hit", status=status)
    kind = {401: GitHubPermissionError, 403: GitHubPermissionError, 404: GitHubNotFound}.get(status, GitHubError)
    return kind(f"{text} — {_HINTS.get(status, 'GitHub refused the request')}", status=status)


__all__ = ["LoopforgeRetry", "describe_transport_error", "github_error", "make_github", "make_retry"]
