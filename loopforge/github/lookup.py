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


class GraphQLLookup:
    """The same through GitHub's GraphQL API, one query per call (``loopforge.github.pr_facts.route_query``):
    a pull request by number, or the pull requests containing a commit (a fork PR's ``workflow_run``)."""

    def __init__(self, graphql: Any, repo: str, server_url: str = "https://github.com") -> None:
        self._graphql = graphql
        self._repo = repo
        self._server = server_url

    def _query(self, numbers: list[int], sha: str | None) -> list[PullRequest]:
        from loopforge.github.pr_facts import route_pulls, route_query

        owner, name = self._repo.split("/", 1)
        document, variables = route_query(owner, name, numbers, sha)
        answer = self._graphql.execute(document, variables, what="looking up the pull request",
                                       optional=[f"p{i}" for i in range(len(numbers))])
        return route_pulls(answer.data, self._repo, self._server)

    def get_pull(self, number: int) -> PullRequest | None:
        found = self._query([number], None)
        return found[0] if found else None

    def pulls_for_sha(self, sha: str) -> list[PullRequest]:
        return self._query([], sha)


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
