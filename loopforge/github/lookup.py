"""Finding the pull request an event concerns, through the REST API (or offline, for ``loopforge replay``)."""

from __future__ import annotations

from typing import Any, Protocol

from loopforge.github.events import PullRequest


class PullLookup(Protocol):
    def get_pull(self, number: int) -> PullRequest | None: ...

    def pulls_for_sha(self, sha: str) -> list[PullRequest]: ...


class GitHubLookup:
    """``GET /repos/{o}/{r}/pulls/{n}`` and ``GET /repos/{o}/{r}/commits/{sha}/pulls`` (fork PRs: a
    ``workflow_run`` carries no ``pull_requests``, so its PR is found by head SHA)."""

    def __init__(self, gh_repo: Any) -> None:
        self._repo = gh_repo

    def get_pull(self, number: int) -> PullRequest | None:
        from github import GithubException

        try:
            return PullRequest.model_validate(self._repo.get_pull(number).raw_data)
        except GithubException as exc:
            if exc.status == 404:
                return None
            raise

    def pulls_for_sha(self, sha: str) -> list[PullRequest]:
        _headers, data = self._repo._requester.requestJsonAndCheck("GET", f"{self._repo.url}/commits/{sha}/pulls")
        return [PullRequest.model_validate(item) for item in (data or [])]


class OfflineLookup:
    """Remembers the PRs seen in earlier payloads (``loopforge replay`` runs without the API)."""

    def __init__(self) -> None:
        self._pulls: dict[int, PullRequest] = {}

    def remember(self, pr: PullRequest | None) -> None:
        if pr is not None:
            self._pulls[pr.number] = pr

    def get_pull(self, number: int) -> PullRequest | None:
        return self._pulls.get(number)

    def pulls_for_sha(self, sha: str) -> list[PullRequest]:
        return [pr for pr in self._pulls.values() if pr.head.sha == sha]
