"""What every step of one run shares: the settings, the log, the GitHub clients, the store and the PR lookup.

``open_session`` makes no request (the repository handle is lazy); the store comes from the one store factory,
``loopforge.repository.factory.open_store`` (boto3 is imported only for ``store: dynamodb``). ``graphql`` is the
GraphQL client (``GITHUB_GRAPHQL_URL``, or derived from ``GITHUB_API_URL``: GHES works) through which the run
reads everything it needs in one query (step ``facts``) and looks up the pull request of a CI event.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from github import Github

from loopforge.action.config import Config
from loopforge.action.errors import github_call
from loopforge.errors import InputError
from loopforge.github.client import make_github
from loopforge.github.events import Event
from loopforge.github.graphql import GraphQLClient
from loopforge.github.lookup import GraphQLLookup, PullLookup
from loopforge.github.snapshot import Extra
from loopforge.github.workflow_commands import Log
from loopforge.repository.base import Repository
from loopforge.repository.branch import BranchRepository
from loopforge.repository.factory import open_store
from loopforge.repository.overlay import OverlayRepository


@dataclass
class Session:
    cfg: Config
    log: Log
    repo_name: str
    gh: Github
    gh_repo: Any
    store: Repository
    lookup: PullLookup
    #: the step outputs (``record-id``, ``state``, ``previous-state``, ``outcome``, ``verdict``)
    outputs: dict[str, str] = field(default_factory=dict)
    graphql: GraphQLClient | None = None

    @property
    def branch(self) -> BranchRepository | None:
        """The branch store behind ``store`` (also under a dry run's overlay), or None."""
        store = self.store.base if isinstance(self.store, OverlayRepository) else self.store
        return store if isinstance(store, BranchRepository) else None

    @contextlib.contextmanager
    def one_write(self) -> Iterator[None]:
        """Everything the block appends is one commit on the branch store (``BranchRepository.deferred``), made
        when the block ends; other stores write as they go."""
        branch = self.branch
        if branch is None or isinstance(self.store, OverlayRepository):
            yield
            return
        with branch.deferred():
            yield

    def facts_query(self, extras: Sequence[Extra]) -> Mapping[str, Any]:
        """The fields of ``extras`` in one GraphQL query of their own (stores other than the branch store)."""
        assert self.graphql is not None
        types: dict[str, str] = {"owner": "String!", "name": "String!"}
        owner, name = self.repo_name.split("/", 1)
        variables: dict[str, Any] = {"owner": owner, "name": name}
        for extra in extras:
            for var, (gtype, value) in extra.variables.items():
                types[var] = gtype
                variables[var] = value
        declared = ", ".join(f"${k}: {v}" for k, v in types.items())
        selection = "\n    ".join(e.selection for e in extras)
        document = (f"query LoopforgeFacts({declared}) {{\n  repository(owner: $owner, name: $name) {{\n"
                    f"    {selection}\n  }}\n}}\n")
        answer = self.graphql.execute(document, variables, what="reading the pull request",
                                      optional=[a for e in extras for a in e.optional])
        repository: Mapping[str, Any] = answer.data.get("repository") or {}
        return repository


def open_session(cfg: Config, event: Event, log: Log, outputs: dict[str, str]) -> Session:
    if not cfg.token:
        raise InputError("the github-token input is empty; pass ${{ github.token }} or a token with "
                         "contents: write and checks: write")
    repo_name = event.repo or cfg.repository
    gh = make_github(cfg.token, cfg.api_url, for_tests=cfg.test_fast_retry is not None,
                     timeout=cfg.test_fast_retry)
    with warnings.catch_warnings(), github_call("opening the repository"):
        warnings.simplefilter("ignore", DeprecationWarning)  # PyGithub 2.x prefers Github(lazy=); same request
        gh_repo = gh.get_repo(repo_name, lazy=True)  # no GET /repos/{o}/{r}: one request fewer per event
    store = (open_store("dynamodb", table=cfg.dynamodb_table) if cfg.store == "dynamodb"
             else open_store("branch", github_repo=gh_repo, branch=cfg.state_branch,
                             graphql_url=cfg.graphql_url or None))
    if cfg.dry_run:
        store = OverlayRepository(store)
    graphql = GraphQLClient.from_github(gh, cfg.graphql_url or None)
    return Session(cfg, log, repo_name, gh, gh_repo, store, GraphQLLookup(graphql, repo_name, cfg.run.server_url),
                   outputs, graphql)
