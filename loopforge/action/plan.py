"""Step 4 — plan: which of the later steps this run takes, decided once from the settings, the route and the
facts (so each step reads a flag instead of re-deriving it)."""

from __future__ import annotations

from dataclasses import dataclass

from loopforge.action.config import Config
from loopforge.action.facts import Facts
from loopforge.github.recorder import Route


@dataclass(frozen=True)
class Plan:
    write: bool  # not a dry run: entries are stored and the check run is posted
    judge_gate: bool  # a pull-request event: evaluate whether the PR may merge now
    post_check: bool  # a pull-request event that writes: create or update the check run on the PR head
    record_policy: bool  # a policy was evaluated and the run writes: keep the evaluation in the trail
    fail_on_block: bool  # fail-on-block, unless the policy's options.fail_job_when_blocked turns it off
    on_pr_commit: bool  # the job runs for the PR's own commit (the exit-code contract)


def plan_run(cfg: Config, routed: Route, facts: Facts) -> Plan:
    governance = facts.governance
    is_pr = routed.pr is not None
    return Plan(
        write=not cfg.dry_run,
        judge_gate=is_pr,
        post_check=is_pr and not cfg.dry_run,
        record_policy=governance is not None and not cfg.dry_run,
        fail_on_block=cfg.fail_on_block and (governance is None or governance.fail_job_when_blocked),
        on_pr_commit=cfg.on_pr_commit,
    )
