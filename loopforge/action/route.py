"""Step 2 — route: the record the event belongs to (``loopforge.github.recorder.route``), or None.

An issue's own record; for a PR, the record of the first issue its body closes, else the PR's own record. CI
events find their PR from ``pull_requests`` or by head SHA (one ``GET`` through the session's lookup).
"""

from __future__ import annotations

from loopforge.action.errors import github_call
from loopforge.action.session import Session
from loopforge.github.events import Event
from loopforge.github.recorder import Route, route


def route_event(session: Session, event: Event) -> Route | None:
    with github_call("looking up the pull request"):
        return route(event, session.lookup, session.cfg.run.server_url)


def ignored(session: Session, event: Event) -> int:
    """The event concerns no open pull request: say so, record nothing, exit 0."""
    session.log.notice(f"{event.kind} concerns no open pull request of {session.repo_name}; nothing recorded "
                       f"(outcome=ignored).", title="LoopForge: event ignored")
    return 0
