"""A small client for GitHub's GraphQL API: one POST per query or mutation, typed errors, the REST retry policy.

* URL: ``GITHUB_GRAPHQL_URL`` when given (every Actions runner sets it), else derived from the REST base
  (``GITHUB_API_URL``): ``https://api.github.com`` → ``https://api.github.com/graphql``, GitHub Enterprise Server
  ``https://HOST/api/v3`` → ``https://HOST/api/graphql`` (``graphql_url_for``).
* Retries: ``loopforge.github.client.make_retry`` (4 tries, exponential backoff with jitter, ``retry-after``
  honoured, rate-limit refusals retried for every request). A **query** is a POST that reads, so it is repeated
  after a 5xx or a lost answer; a **mutation** is not (it may have been applied; the caller reconciles, as
  ``BranchRepository`` does by reading the branch back).
* Errors (GitHub answers most of them with HTTP 200 and an ``errors`` list whose entries carry a ``type``):
  ``STALE_DATA`` → ``RefMoved``; ``FORBIDDEN``, "Resource not accessible by integration", 401/403 →
  ``GitHubPermissionError``; ``NOT_FOUND`` → ``GitHubNotFound``; 5xx, ``RATE_LIMITED``, a time-out, no answer, an
  answer that is not JSON (a proxy's HTML page) → ``GitHubUnavailable``; anything else → ``GitHubError``. A
  ``NOT_FOUND`` on a path the caller marks ``optional`` is not raised: that field is simply null.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from loopforge.errors import (
    GitHubError,
    GitHubNotFound,
    GitHubPermissionError,
    GitHubUnavailable,
    ReadOnlyToken,
    RefMoved,
)
from loopforge.github.client import LoopforgeRetry, describe_transport_error, make_retry
from loopforge.text import clean_text

DEFAULT_API_URL = "https://api.github.com"


def graphql_url_for(api_url: str, graphql_url: str | None = None) -> str:
    """The GraphQL endpoint: ``graphql_url`` if given, else derived from the REST base URL (see module doc)."""
    if graphql_url:
        return graphql_url.rstrip("/")
    base = (api_url or DEFAULT_API_URL).rstrip("/")
    if base.endswith("/api/v3"):
        return base[: -len("/v3")] + "/graphql"
    return base + "/graphql"


@dataclass(frozen=True)
class GraphQLProblem:
    """One entry of an answer's ``errors``."""

    type: str
    message: str
    path: tuple[str | int, ...] = ()


@dataclass
class Answer:
    data: dict[str, Any]
    problems: list[GraphQLProblem] = field(default_factory=list)


def error_for(problem: GraphQLProblem, what: str) -> GitHubError:
    """The typed error of one GraphQL ``errors`` entry (``what``: the operation, for the message)."""
    text = f"{what}: {clean_text(problem.message, 300)}"
    kind = problem.type.upper()
    if kind == "STALE_DATA":
        return RefMoved(text)
    if "not accessible by integration" in problem.message.lower():
        return ReadOnlyToken(f"{text} — the token is read-only (a pull request from a fork gets one)")
    if kind == "FORBIDDEN":
        return GitHubPermissionError(text)
    if kind == "NOT_FOUND":
        return GitHubNotFound(text)
    if kind in ("RATE_LIMITED", "SERVICE_UNAVAILABLE", "TIMEOUT", "INTERNAL"):
        return GitHubUnavailable(text)
    return GitHubError(f"{text} ({kind or 'error'})")


class GraphQLClient:
    """POSTs GraphQL documents to ``url`` with ``token`` (thread-safe: one ``requests`` session per thread)."""

    def __init__(self, token: str | None, url: str, *, timeout: float = 20, retry: LoopforgeRetry | None = None,
                 user_agent: str | None = None) -> None:
        from loopforge import __version__

        self.url = url
        self.timeout = timeout
        self._token = token
        self._retry = retry if retry is not None else make_retry()
        self._user_agent = user_agent or f"loopforge/{__version__}"
        self._local = threading.local()

    @classmethod
    def from_github(cls, gh: Any, graphql_url: str | None = None) -> GraphQLClient:
        """A client with the token, base URL (→ GraphQL URL), timeout and retry policy of a PyGithub ``Github``
        made by ``loopforge.github.client.make_github``."""
        return cls.from_requester(gh.requester, graphql_url)

    @classmethod
    def from_requester(cls, requester: Any, graphql_url: str | None = None) -> GraphQLClient:
        """The same from a PyGithub ``Requester`` (``Github.requester``, ``Repository.requester``)."""
        kwargs: dict[str, Any] = dict(requester.kwargs)
        auth = kwargs.get("auth")
        token = getattr(auth, "token", None)
        retry = kwargs.get("retry")
        return cls(token, graphql_url_for(str(kwargs.get("base_url") or DEFAULT_API_URL), graphql_url),
                   timeout=float(kwargs.get("timeout") or 20),
                   retry=retry if isinstance(retry, LoopforgeRetry) else None,
                   user_agent=kwargs.get("user_agent"))

    def _session(self, mutation: bool) -> requests.Session:
        name = "mutation" if mutation else "query"
        session: requests.Session | None = getattr(self._local, name, None)
        if session is None:
            session = requests.Session()
            retry = self._retry.new() if mutation else self._retry.new(unsafe_methods=frozenset())
            adapter = HTTPAdapter(max_retries=retry)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            session.headers.update({"Accept": "application/vnd.github+json", "User-Agent": self._user_agent,
                                    "Content-Type": "application/json"})
            if self._token:
                session.headers["Authorization"] = f"bearer {self._token}"
            setattr(self._local, name, session)
        return session

    def execute(self, document: str, variables: Mapping[str, Any] | None = None, *, mutation: bool = False,
                what: str = "GitHub GraphQL request", optional: Collection[str] = ()) -> Answer:
        """Run ``document``; raise the typed error of the first problem not on an ``optional`` path (a path
        whose first or second element, e.g. an alias under ``repository``, is in ``optional`` and whose type is
        ``NOT_FOUND``)."""
        body = json.dumps({"query": document, "variables": dict(variables or {})})
        try:
            response = self._session(mutation).post(self.url, data=body, timeout=self.timeout)
        except requests.RequestException as exc:
            raise GitHubUnavailable(f"{what}: GitHub gave no usable answer: "
                                    f"{clean_text(describe_transport_error(exc), 300)}") from exc
        status = response.status_code
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if status >= 400 or not isinstance(payload, dict):
            message = payload.get("message", "") if isinstance(payload, dict) else ""
            message = clean_text(message or response.reason or "no JSON answer", 300)
            if status in (401, 403) and "rate limit" not in message.lower():
                raise GitHubPermissionError(f"{what}: HTTP {status} {message}", status=status)
            if status >= 500 or status in (403, 429) or status < 400:
                raise GitHubUnavailable(f"{what}: HTTP {status} {message}", status=status)
            if status == 404:
                raise GitHubNotFound(f"{what}: HTTP 404 {message} ({self.url})", status=status)
            raise GitHubError(f"{what}: HTTP {status} {message}", status=status)
        problems = [GraphQLProblem(str(e.get("type") or ""), str(e.get("message") or ""),
                                   tuple(e.get("path") or ()))
                    for e in payload.get("errors") or [] if isinstance(e, dict)]
        for problem in problems:
            tolerated = problem.type.upper() == "NOT_FOUND" and any(
                str(p) in optional for p in problem.path[:2])
            if not tolerated:
                raise error_for(problem, what)
        data = payload.get("data")
        if not isinstance(data, dict):
            raise GitHubUnavailable(f"{what}: the answer carries no data")
        return Answer(data, problems)


__all__ = ["Answer", "GraphQLClient", "GraphQLProblem", "error_for", "graphql_url_for"]
