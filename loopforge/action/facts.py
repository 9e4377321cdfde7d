"""Step 3 — load facts: what the run needs to know before it writes, read in one place.

``Facts`` is the typed result: the record's head (as stored before this event) and, for a pull-request event,
the governance policy read from the PR's base branch with the PR facts behind it. An issue event reads nothing
here. This is the step that a single GraphQL read can replace (issue 9): everything later takes ``Facts``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from loopforge.action.errors import github_call
from loopforge.action.session import Session
from loopforge.github.recorder import Route
from loopforge.records import RecordHead

if TYPE_CHECKING:  # the policy machinery is imported only for pull-request events (see load_facts)
    from loopforge.action.governance import Governance


@dataclass(frozen=True)
class Facts:
    #: the record's head before this event; None for a new record or when not read (events without a policy)
    head: RecordHead | None = None
    #: the PR's governance (its policy, guards and gate rows); None for issue events and without a policy
    governance: Governance | None = None


def load_facts(session: Session, routed: Route) -> Facts:
    cfg = session.cfg
    if routed.pr is None or not cfg.policy:
        return Facts()
    # lazy: pydantic models of the policy, YAML and the rule engine cost import time an issue event never needs
    from loopforge.action import governance

    head = session.store.head(routed.record_id)
    with github_call("reading the policy from the base branch"):
        loaded = governance.load(session.gh_repo, routed.pr.base.ref, routed.pr.number, cfg.policy, head=head,
                                 governance_token=cfg.governance_token, api_url=cfg.api_url)
    return Facts(head=head, governance=loaded)
