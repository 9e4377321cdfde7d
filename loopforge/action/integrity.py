"""Step 2b — check the data branch: before anything is appended, a tip LoopForge did not make gets every record
it changed verified and flagged (``loopforge.github.integrity``). Branch store only; free in the normal case once
the store reads the tip with the record (``tip_commit()``), two REST requests otherwise.
"""

from __future__ import annotations

from typing import Any

from loopforge.action.errors import github_call
from loopforge.action.session import Session
from loopforge.errors import StoreError
from loopforge.github import integrity
from loopforge.github.events import Event
from loopforge.text import clean_text


def check_data_branch(session: Session, event: Event, record_id: str) -> list[str]:
    """One line per record found changed outside LoopForge (each becomes part of the run's ``::error``)."""
    from loopforge.repository.branch import BranchRepository

    store: Any = session.store
    inner = getattr(store, "base", store)  # a dry run wraps the store in an overlay
    if not isinstance(inner, BranchRepository):
        return []
    cfg = session.cfg
    reader = integrity.RestDataBranch(session.gh.requester, session.repo_name, cfg.state_branch)
    # a store that reads the tip with the record (the GraphQL snapshot) offers it as ``tip_commit()``; one that
    # writes through createCommitOnBranch sets ``signs_commits`` (GitHub signs those: an unsigned tip is foreign)
    tip = getattr(inner, "tip_commit", None)
    with github_call("reading the data branch's tip"):
        commit = tip() if callable(tip) else reader.tip()
        if commit is None or integrity.made_by_loopforge(
                commit, require_signature=bool(getattr(inner, "signs_commits", False))):
            return []
        found = integrity.investigate(reader, commit, session.store, record_id=record_id)
    unrecorded = ""
    try:
        integrity.flag(session.store, found, key=f"gh:{cfg.run.run_id}:integrity:{commit.oid[:12]}",
                       actor=event.actor, run_url=cfg.run.run_url(session.repo_name))
    except StoreError as exc:  # e.g. a read-only token: the finding is still said, loudly
        unrecorded = f"; not recorded ({clean_text(str(exc), limit=200)})"
    return [clean_text(f"{f.record_id}: the audit trail was changed outside LoopForge by {found.commits_text()}: "
                       f"{f.summary()} (run `loopforge verify`){unrecorded}", limit=800) for f in found.findings]
