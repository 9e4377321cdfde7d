"""The GitHub Action: one workflow event in, one recorded step (or one clear error) out.

``entrypoint.py`` calls ``main()``; tests call ``run(env, stream)`` with the runner's environment. The steps,
one module each, in the order data flows::

    config   the inputs and GITHUB_* variables                        → Config
    event    the payload file                                         → Event      (ignored: exit 0)
    route    the record the event belongs to                          → Route      (none: exit 0)
    facts    the record head, the base's policy (at the base commit before a merge) and PR facts → Facts
             (a record last changed by someone else: ``integrity`` verifies and flags what they changed)
    plan     which later steps run                                    → Plan
    govern   the service with the policy's guards; the merge gate     → LoopService, Gate
    record   the event's entries, then the policy evaluation          → Recorded
    report   outputs, step summary, the check run on the PR head (a merge group's head for the queue)
    exit     the exit-code contract, one table                        → 0 or 1

``pipeline.handle`` runs them; ``errors`` turns any exception into one ``::error`` (an ``isinstance`` table).
``governance`` is the one module that knows GitHub HTTP errors, the policy and the service together.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import TextIO

from loopforge.action.config import Config
from loopforge.action.errors import report_failure
from loopforge.action.event import read_event
from loopforge.action.pipeline import handle
from loopforge.errors import UnsupportedEvent
from loopforge.github.workflow_commands import Log, set_output

__all__ = ["Config", "main", "run"]


def run(env: Mapping[str, str], stream: TextIO | None = None) -> int:
    """One Action step with the runner's environment ``env``; its exit code. Never raises."""
    log = Log(stream or sys.stdout)
    outputs = {"record-id": "", "state": "", "previous-state": "", "outcome": "ignored", "verdict": "none"}
    try:
        cfg = Config.from_env(env)
        code = _run(cfg, log, outputs)
    except Exception as exc:  # never a traceback: one ::error saying what failed and what to do
        code = report_failure(exc, log, env.get("GITHUB_STEP_SUMMARY") or None)
    for name, value in outputs.items():
        set_output(name, value, path=env.get("GITHUB_OUTPUT"))
    return code


def _run(cfg: Config, log: Log, outputs: dict[str, str]) -> int:
    try:
        event = read_event(cfg)
    except UnsupportedEvent as exc:
        log.notice(f"{exc}; nothing recorded (outcome=ignored). See the README for the events LoopForge tracks.",
                   title="LoopForge: event ignored")
        return 0
    return handle(cfg, event, log, outputs)


def main(argv: list[str] | None = None) -> int:
    return run(os.environ)
