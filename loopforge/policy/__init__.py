"""Merge policies for pull requests: ``.github/loopforge.yml`` read from the base branch.

::

    from loopforge.policy import load_policy, evaluate, PolicyGuard

    policy = load_policy(text_from_base_branch, ".github/loopforge.yml")
    evaluation = evaluate(policy, ctx)            # ctx: a PullRequestContext (GitHub or FakeContext)
    evaluation.verdict                            # "pass" or "block" (pending blocks)
    service = LoopService(repo, guards=[PolicyGuard(policy, ctx, base_dir=base_checkout)])

Modules: ``model`` (the file), ``context`` (the facts rules read), ``predicates`` (conditions), ``rules``
(requirements), ``evaluate`` (verdict, guard), ``guards`` (``module:function`` from the base checkout),
``gates`` (external reviewers), ``fingerprint`` (diff fingerprints, the approvals ledger), ``codeowners``
(CODEOWNERS parsing), ``extends`` (shared policies), ``explain`` (``policy explain --pr``: the Action's code path
on a live PR); the ``loopforge policy ...`` commands are ``loopforge.cli.policy``. Nothing here but
``explain`` speaks HTTP to GitHub; that is ``loopforge.github.pr_context`` and ``loopforge.action.governance``.
"""

from loopforge.policy.context import (
    ChangedFile,
    CheckState,
    FactUnavailable,
    FakeContext,
    IssueRef,
    LabelEvent,
    PermissionMissing,
    PullRequestContext,
    Review,
    parse_closing_references,
)
from loopforge.policy.evaluate import Evaluation, PolicyGuard, evaluate
from loopforge.policy.gates import GateVerdict, run_gate
from loopforge.policy.guards import GuardLoadError, load_guard, load_policy_guards
from loopforge.policy.model import (
    DEFAULT_POLICY_PATH,
    Policy,
    PolicyError,
    load_policy,
    load_policy_file,
    policy_json_schema,
)
from loopforge.policy.rules import RuleResult, Status

__all__ = [
    "DEFAULT_POLICY_PATH",
    "ChangedFile",
    "CheckState",
    "Evaluation",
    "FactUnavailable",
    "FakeContext",
    "GateVerdict",
    "GuardLoadError",
    "IssueRef",
    "LabelEvent",
    "PermissionMissing",
    "Policy",
    "PolicyError",
    "PolicyGuard",
    "PullRequestContext",
    "Review",
    "RuleResult",
    "Status",
    "evaluate",
    "load_guard",
    "load_policy",
    "load_policy_file",
    "load_policy_guards",
    "parse_closing_references",
    "policy_json_schema",
    "run_gate",
]
