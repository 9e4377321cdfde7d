"""Step 4 — plan: which of the later steps this run takes, decided once from the settings, the route and the
facts (so each step reads a flag instead of re-deriving it)."""

from __future__ import annotations

from dataclasses import dataclass

from loopforge.action.config import Config
from loopforge.action.facts import Facts
from loopforge.github.events import Event
from loopforge.github.recorder import Route


@dataclass(frozen=True)
class Plan:
    write: bool  # not a dry run: entries are stored and the check run is posted
    judge_gate: bool  # a pull-request event: evaluate whether the PR may merge now
    post_check: bool  # a pull-request event that writes: create or update the check run on the PR head
    record_policy: bool  # a policy was evaluated and the run writes: keep the evaluation in the trail
    fail_on_block: bool  # fail-on-block, unless the policy's options.fail_job_when_blocked turns it off
    on_pr_commit: bool  # the job runs for the PR's own commit (the exit-code contract)
    #: ``merge_group.checks_requested``: the verdict is final and goes on the group's head, not the PR's
    queue: bool = False
    #: the commit the check run goes on: the PR's head, or the merge group's head
    check_sha: str | None = None
    #: keep the verdict shown on ``check_sha`` in the record (``metadata.gate.verdicts``): with a policy (in the
    #: ``policy.evaluated`` entry, no extra write) or for a merge group (what the queue saw)
    keep_verdict: bool = False


def plan_run(cfg: Config, routed: Route, facts: Facts, event: Event) -> Plan:
    governance = facts.governance
    is_pr = routed.pr is not None
    group = event.merge_group if event.kind == "merge_group.checks_requested" else None
    has_policy = governance is not None and governance.policy_guard is not None
    return Plan(
        write=not cfg.dry_run,
        judge_gate=is_pr,
        post_check=is_pr and not cfg.dry_run,
        record_policy=governance is not None and not cfg.dry_run,
        fail_on_block=cfg.fail_on_block and (governance is None or governance.fail_job_when_blocked),
        on_pr_commit=cfg.on_pr_commit,
        queue=group is not None,
        check_sha=group.head_sha if group is not None else (routed.pr.head.sha if routed.pr else None),
        keep_verdict=is_pr and not cfg.dry_run and (has_policy or group is not None),
    )
