"""What every step of one run shares: the settings, the log, the GitHub client, the store and the PR lookup.

``open_session`` makes no request (the repository handle is lazy); the store comes from the one store factory,
``loopforge.repository.factory.open_store`` (boto3 is imported only for ``store: dynamodb``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

from github import Github

from loopforge.action.config import Config
from loopforge.action.errors import github_call
from loopforge.errors import InputError
from loopforge.github.client import make_github
from loopforge.github.events import Event
from loopforge.github.lookup import GitHubLookup, PullLookup
from loopforge.github.workflow_commands import Log
from loopforge.repository.base import Repository
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
             else open_store("branch", github_repo=gh_repo, branch=cfg.state_branch))
    if cfg.dry_run:
        store = OverlayRepository(store)
    return Session(cfg, log, repo_name, gh, gh_repo, store, GitHubLookup(gh_repo), outputs)
