"""Exceptions of the library."""

from __future__ import annotations

from typing import Any


class LoopForgeError(Exception):
    """Base class of every error this package raises on purpose."""


class TransitionError(LoopForgeError):
    """Raised by a guard or hook to say "this transition must not succeed".

    ``rule`` names the rule that refused (shown in the trail); ``details`` is JSON evidence for the trail.
    """

    def __init__(self, message: str, *, rule: str | None = None, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.reason = message
        self.rule = rule
        self.details = dict(details or {})


class ConcurrencyError(LoopForgeError):
    """A conditional write lost: another writer appended first (or the record already exists)."""


class RecordNotFound(LoopForgeError, KeyError):
    """No record with that id."""

    def __str__(self) -> str:
        return f"Record not found: {self.args[0]}" if self.args else "Record not found"


class RecordExists(LoopForgeError):
    """``create`` for a record id that already exists."""


class StoreError(LoopForgeError):
    """The store failed in a way that retrying the same call will not fix (permissions, bad config)."""


class StoreUnavailable(StoreError):
    """Outage, 5xx, throttling, time-out, connection refused: a re-run may help."""


class StorePermissionError(StoreError):
    """403 / AccessDenied / a read-only token."""


class StoreMisconfigured(StoreError):
    """A missing table, branch or file, a wrong region, or something that is not a LoopForge store."""


class StoreCorrupt(StoreError):
    """An unparseable head or entry, a file that is not a SQLite database, a broken chain."""


class InputError(LoopForgeError):
    """A bad command-line argument, Action input, or a ref of the wrong shape."""


class GitHubError(LoopForgeError):
    """A GitHub API request failed (``loopforge.github``); the subclasses say how."""


class GitHubUnavailable(GitHubError):
    """5xx, a rate limit, a time-out, no answer at all: a re-run may help."""


class GitHubPermissionError(GitHubError):
    """401/403, "Resource not accessible by integration": the token lacks a permission (a fork's read-only token)."""


class GitHubNotFound(GitHubError):
    """The repository, branch, pull request or object does not exist (or the token cannot see it)."""


class RefMoved(GitHubError):
    """A compare-and-swap lost: the branch no longer points where the write expected (GraphQL ``STALE_DATA``)."""
