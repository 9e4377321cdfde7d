"""The reaction to a trail changed outside LoopForge (``loopforge.github.integrity``), called by load facts when
the one read says the newest commit that touched the event's record was not LoopForge's (free in the normal
case: the read returns that commit with its author and signature).

From that commit it walks back to LoopForge's newest commit, verifies every record the foreign commits changed
and flags each one (a ``violation`` entry that never launders the edit, ``metadata.integrity``), before anything
is appended.
"""

from __future__ import annotations

from loopforge.action.errors import github_call
from loopforge.action.session import Session
from loopforge.errors import StoreError
from loopforge.github import integrity
from loopforge.github.events import Event
from loopforge.text import clean_text


def flag_foreign(session: Session, event: Event, record_id: str, oid: str) -> tuple[list[str], str | None]:
    """(one line per record found changed outside LoopForge, the first problem of ``record_id`` or None)."""
    cfg = session.cfg
    reader = integrity.RestDataBranch(session.gh.requester, session.repo_name, cfg.state_branch)
    with github_call("reading the data branch's history"):
        found = integrity.investigate(reader, reader.commit(oid), session.store, record_id=record_id)
    unrecorded = ""
    try:
        integrity.flag(session.store, found, key=f"gh:{cfg.run.run_id}:integrity:{oid[:12]}", actor=event.actor,
                       run_url=cfg.run.run_url(session.repo_name))
    except StoreError as exc:  # e.g. a read-only token: the finding is still said, loudly
        unrecorded = f"; not recorded ({clean_text(str(exc), limit=200)})"
    lines = [clean_text(f"{f.record_id}: the audit trail was changed outside LoopForge by {found.commits_text()}: "
                        f"{f.summary()} (run `loopforge verify`){unrecorded}", limit=800) for f in found.findings]
    mine = next((f for f in found.findings if f.record_id == record_id), None)
    return lines, mine.summary() if mine is not None else None
