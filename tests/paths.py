"""What every test folder shares about the tree: the repository root, the fixtures and their one loader.

Tests import these (``from tests.paths import ROOT, lifecycle_event``) instead of counting ``parent.parent``
from their own file, so a test can move between folders without its paths changing.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
LIFECYCLE_DIR = FIXTURES / "lifecycle"
WEBHOOK_EXAMPLES_FILE = FIXTURES / "webhooks" / "webhooks-examples.json"

# GitHub's example lifecycle (issue → PR → CI → review → merge), in the order it happens: 01-issues-opened.json …
LIFECYCLE_FILES = sorted(LIFECYCLE_DIR.glob("*.json"))


def lifecycle_path(key: str | int) -> Path:
    """The lifecycle fixture ``key``: its index in :data:`LIFECYCLE_FILES` (``2``), its order prefix (``"03"``)
    or its name (``"pull_request-opened"``)."""
    if isinstance(key, int):
        return LIFECYCLE_FILES[key]
    for path in LIFECYCLE_FILES:
        prefix, name = path.stem.split("-", 1)
        if key in (prefix, name):
            return path
    raise KeyError(f"no lifecycle fixture {key!r} in {LIFECYCLE_DIR}")


def lifecycle_event(key: str | int) -> dict[str, Any]:
    """A fresh copy (callers may change it) of the payload of :func:`lifecycle_path`."""
    return json.loads(lifecycle_path(key).read_text())  # type: ignore[no-any-return]


def lifecycle_delivery(key: str | int) -> tuple[str, dict[str, Any]]:
    """``(event name, payload)`` of :func:`lifecycle_path`: what GitHub would deliver (``"pull_request"``, …)."""
    path = lifecycle_path(key)
    return path.stem.split("-")[1], lifecycle_event(key)


@cache
def _examples_text() -> str:
    return WEBHOOK_EXAMPLES_FILE.read_text()


def webhook_examples() -> list[dict[str, Any]]:
    """A fresh copy of @octokit/webhooks-examples (all event types with their example payloads)."""
    return json.loads(_examples_text())  # type: ignore[no-any-return]
