"""The Action's one failure path: any exception → one ``::error`` line and a markdown explanation in the step
summary, exit 1 (like pypa/gh-action-pypi-publish). Never a traceback.

``FAILURES`` is the whole mapping, by class (the first row whose class matches wins, so subclasses come first):
the title of the ``::error``, and the hint appended to the exception's own one-line message. Driver exceptions
(PyGithub, ``requests``) are translated where the Action calls GitHub (``github_call``); the stores translate
theirs (``loopforge.errors``). No message text and no module name is inspected here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import requests
from github import GithubException

from loopforge.errors import (
    ConcurrencyError,
    GitHubError,
    GitHubNotFound,
    GitHubPermissionError,
    GitHubUnavailable,
    InputError,
    LoopForgeError,
    MalformedEvent,
    PolicyError,
    StoreCorrupt,
    StoreError,
    StoreMisconfigured,
    StorePermissionError,
    StoreUnavailable,
)
from loopforge.github.client import github_error
from loopforge.github.render import md_escape
from loopforge.github.workflow_commands import Log, append_summary
from loopforge.text import clean_text

#: Every recorded entry carries an idempotency key derived from the workflow run, so re-running is always safe.
RERUN_HINT = "re-run the job: a re-run completes what was cut off and records nothing twice"


@dataclass(frozen=True)
class Failure:
    title: str  # after "LoopForge: " in the ::error title and in bold in the summary
    hint: str = ""  # appended to the exception's message after " — "
    code: int = 1


FAILURES: tuple[tuple[type[BaseException], Failure], ...] = (
    (InputError, Failure("Invalid input")),
    (MalformedEvent, Failure("Malformed event payload")),
    (GitHubUnavailable, Failure("GitHub unreachable", RERUN_HINT)),
    (GitHubPermissionError, Failure("GitHub API error")),
    (GitHubNotFound, Failure("GitHub API error")),
    (GitHubError, Failure("GitHub API error", RERUN_HINT)),
    (StoreUnavailable, Failure("Store unavailable", RERUN_HINT)),
    (StorePermissionError, Failure("Store permission error")),
    (StoreMisconfigured, Failure("Store misconfigured")),
    (StoreCorrupt, Failure("Store corrupt", "run `loopforge verify` on the record to see the first bad entry")),
    (StoreError, Failure("Store error", RERUN_HINT)),
    (ConcurrencyError, Failure("Store busy", f"other runs kept writing this record; {RERUN_HINT}")),
    (PolicyError, Failure("Policy error")),
    (LoopForgeError, Failure("Error", RERUN_HINT)),
    (Exception, Failure("Internal error", f"this is a LoopForge bug (please report it); {RERUN_HINT}")),
)


def classify(exc: BaseException) -> Failure:
    return next(failure for cls, failure in FAILURES if isinstance(exc, cls))


@contextmanager
def github_call(what: str) -> Iterator[None]:
    """PyGithub's and ``requests``' exceptions inside the block as ``loopforge.errors.GitHubError``."""
    try:
        yield
    except (GithubException, requests.RequestException) as exc:
        raise github_error(exc, what) from exc


def report_failure(exc: BaseException, log: Log, summary_path: str | None) -> int:
    """The one exit path of a failed run: one ``::error`` and the same words in the step summary."""
    if isinstance(exc, GithubException | requests.RequestException):  # escaped a step unwrapped
        exc = github_error(exc, "a GitHub API request")
    failure = classify(exc)
    detail = str(exc) if isinstance(exc, LoopForgeError) else f"{type(exc).__name__}: {exc}"
    message = clean_text(detail, limit=600) + (f" — {failure.hint}" if failure.hint else "")
    log.error(message, title=f"LoopForge: {failure.title}")
    append_summary(f"## LoopForge failed\n\n**{failure.title}**: {md_escape(message, limit=2000)}\n",
                   path=summary_path)
    return failure.code
