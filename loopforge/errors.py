"""Every error LoopForge raises on purpose, as one tree (catch a branch, not a message text).

```
LoopForgeError
├── TransitionError            a guard/hook veto (rule, details)
├── ConcurrencyError           a conditional write lost
├── RecordNotFound / RecordExists
├── StoreError                 the store failed
│   ├── StoreUnavailable       outage, 5xx, throttling, time-out, connection: a re-run may help
│   ├── StorePermissionError   403 / AccessDenied / read-only token
│   ├── StoreMisconfigured     missing table/branch/file, wrong region, not a LoopForge store
│   └── StoreCorrupt           unparseable head or entry, not a SQLite file, broken chain
├── InputError                 bad CLI argument / action input / ref of the wrong shape
├── EventError                 the event payload
│   ├── MalformedEvent         not the shape GitHub documents for its event
│   └── UnsupportedEvent       an event or action LoopForge does not track
├── PolicyError                an invalid policy file, a policy fact that cannot be read
│   ├── PermissionMissing      the token cannot read a fact the policy needs
│   └── FactUnavailable        a fact not known in this context (offline evaluation)
└── GitHubError                GitHub's API failed
    ├── GitHubUnavailable      5xx, rate limit, time-out, connection (after retries)
    ├── GitHubPermissionError  401/403
    │   └── ReadOnlyToken      the token may not write (a fork PR's read-only token)
    ├── GitHubNotFound         404
    └── RefMoved               a compare-and-swap lost: the branch moved
```

Each driver's errors are translated where the driver is called (``repository/sqlite.py`` for ``sqlite3``,
``repository/dynamodb.py`` for botocore, the GitHub modules for HTTP), keeping the driver's exception as
``__cause__``; nothing above a store or client reads a driver's exception or matches message text. Old import
paths keep working: ``loopforge.github.events.MalformedEvent``, ``loopforge.policy.PermissionMissing``,
``loopforge.github.checks.ReadOnlyToken`` and ``loopforge.policy.PolicyError`` are these classes.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ConcurrencyError", "EventError", "FactUnavailable", "GitHubError", "GitHubNotFound", "GitHubPermissionError",
    "GitHubUnavailable", "InputError", "LoopForgeError", "MalformedEvent", "PermissionMissing", "PolicyError",
    "ReadOnlyToken", "RecordExists", "RecordNotFound", "RefMoved", "StoreCorrupt", "StoreError",
    "StoreMisconfigured", "StorePermissionError", "StoreUnavailable", "TransitionError", "UnsupportedEvent",
]


class LoopForgeError(Exception):
    """Base class of every error this package raises on purpose."""


class TransitionError(LoopForgeError):
    """Raised by a guard or hook to say "this transition must not succeed".

    ``rule`` names the rule that refused (shown in the trail); ``details`` is JSON evidence for the trail;
    ``source`` says what kind of rule it is (``service.Veto.source``: ``"policy"``, ``"guard"``, …).
    """

    def __init__(self, message: str, *, rule: str | None = None, details: dict[str, Any] | None = None,
                 source: str | None = None) -> None:
        super().__init__(message)
        self.reason = message
        self.rule = rule
        self.details = dict(details or {})
        self.source = source


class ConcurrencyError(LoopForgeError):
    """A conditional write lost: another writer appended first (or the record already exists)."""


class RecordNotFound(LoopForgeError, KeyError):
    """No record with that id."""

    def __str__(self) -> str:
        return f"Record not found: {self.args[0]}" if self.args else "Record not found"


class RecordExists(LoopForgeError):
    """``create`` for a record id that already exists."""


# ---------------------------------------------------------------------------------------------- stores
class StoreError(LoopForgeError):
    """The store failed (the subclass says how; a plain ``StoreError`` is a failure not classified further)."""


class StoreUnavailable(StoreError):
    """An outage, a 5xx, throttling, a time-out, a lost connection, a locked database: a re-run may help."""


class StorePermissionError(StoreError):
    """The credentials may not read or write the store (403, AccessDenied, a read-only token or file)."""


class StoreMisconfigured(StoreError):
    """The store is not where the settings say or is not a LoopForge store (missing table/branch/file, region)."""


class StoreCorrupt(StoreError):
    """The store holds something unreadable: an unparseable head or entry, not a SQLite file, a broken chain."""


# ---------------------------------------------------------------------------------------------- inputs
class InputError(LoopForgeError):
    """A bad command-line argument, Action input or setting, or a ref of the wrong shape."""


class EventError(LoopForgeError):
    """The workflow event cannot be used."""


class MalformedEvent(EventError):
    """A payload that does not have the shape GitHub documents for its event."""


class UnsupportedEvent(EventError):
    """An event or action LoopForge does not track."""


class PolicyError(LoopForgeError):
    """A policy that cannot be used, or a fact it needs that cannot be read. ``str()`` is one line:
    ``source: key.path: problem`` (``PolicyError(message)`` alone is the message)."""

    def __init__(self, source: str, path: str = "", problem: str = "") -> None:
        self.source = source
        self.path = path
        self.problem = " ".join(problem.split())  # one line, whatever the input held
        where = f"{source}: {path}" if path else source
        super().__init__(f"{where}: {self.problem}" if self.problem else where)


class PermissionMissing(PolicyError):
    """The token cannot read a fact the policy needs (e.g. ``permission="members: read"`` for team membership)."""

    def __init__(self, permission: str, detail: str = "") -> None:
        super().__init__(f"needs {permission}" + (f" ({detail})" if detail else ""))
        self.permission = permission
        self.detail = detail


class FactUnavailable(PolicyError):
    """A fact that is not known in this context (offline evaluation). Never read as a pass."""

    def __init__(self, fact: str, message: str | None = None) -> None:
        super().__init__(message or f"{fact} not known here")
        self.fact = fact
        self.custom = message is not None


# ---------------------------------------------------------------------------------------------- GitHub
class GitHubError(LoopForgeError):
    """GitHub's API failed. ``status`` is the HTTP status when there was an answer."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class GitHubUnavailable(GitHubError):
    """No usable answer after the client's retries: 5xx, rate limit, time-out, connection."""


class GitHubPermissionError(GitHubError):
    """401/403: the token is missing, invalid or lacks a permission."""


class ReadOnlyToken(GitHubPermissionError):
    """The token may not write (a fork PR's read-only token: "Resource not accessible by integration")."""


class GitHubNotFound(GitHubError):
    """404: the repository, branch, file or pull request does not exist, or the token cannot see it."""


class RefMoved(GitHubError):
    """A compare-and-swap lost: the branch no longer points where the write expected."""
