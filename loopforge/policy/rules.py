"""Requirements and rule evaluation.

Each requirement gives a ``Check``: ``passed``, ``pending`` (waiting for something that normally comes: CI
running, reviews not given yet, a label not added yet, a fact not known offline) or ``failed`` (something is
wrong: CI failed, changes requested, a forged label, a permission missing, a gate blocked). Several keys in one
requirement, or an ``all:`` list, combine with *and*; ``any:`` with *or*. A rule whose ``if`` does not match is
``skipped``; a rule that cannot tell whether it applies is never skipped.

"Could not check" is never "approved": a lookup that raises ``PermissionMissing`` fails the requirement with
the permission named in its reason and in ``missing_permissions`` (the Action prints an ``::error`` for it).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopforge.errors import TransitionError
from loopforge.policy.codeowners import CodeownersError, parse_codeowners
from loopforge.policy.context import FactUnavailable, PermissionMissing, Review
from loopforge.policy.fingerprint import Fingerprint, Ledger, head_fingerprint
from loopforge.policy.gates import GateVerdict, gate_key, run_gate, truncate_utf8
from loopforge.policy.guards import GuardLoadError, load_guard
from loopforge.policy.model import (
    Actors,
    ApprovalRequirement,
    ChangesRequestedRequirement,
    CIRequirement,
    Disapproval,
    Gate,
    LabelRequirement,
    LinkedIssueRequirement,
    Requirement,
    Rule,
)
from loopforge.policy.predicates import (
    Env,
    check_actor,
    describe_actors,
    match_condition,
    missing_text,
    safe,
    short_sha,
)
from loopforge.states import LoopState

if TYPE_CHECKING:
    from loopforge.records import LoopRecord

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DECISIVE = ("APPROVED", "CHANGES_REQUESTED", "DISMISSED")


class Status(StrEnum):
    PASSED = "passed"
    PENDING = "pending"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass
class Check:
    """The outcome of one requirement (or a combination of them)."""

    status: Status
    reason: str
    details: dict[str, Any] = field(default_factory=dict)
    missing_permissions: list[str] = field(default_factory=list)


@dataclass
class RuleResult:
    name: str
    status: Status
    reason: str
    details: dict[str, Any] = field(default_factory=dict)
    missing_permissions: list[str] = field(default_factory=list)
    applies: str | None = None  # why the rule applies (or, when skipped, why not: see ``reason``)

    @property
    def blocking(self) -> bool:
        return self.status in (Status.FAILED, Status.PENDING)

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "status": self.status.value, "reason": self.reason}
        if self.applies is not None:
            data["applies"] = self.applies
        if self.missing_permissions:
            data["missing_permissions"] = list(self.missing_permissions)
        if self.details:
            data["details"] = self.details
        return data


@dataclass
class RuleEnv(Env):
    """``Env`` plus what requirements need beyond the facts: the record and transition (for guards), the
    base-branch checkout (guards, gate commands), and the gates' verdicts."""

    record: LoopRecord | None = None
    base_dir: Path | None = None
    code_dir: str = "."
    previous_state: LoopState | None = None
    new_state: LoopState = LoopState.MERGED
    trigger: str = "policy.evaluate"
    run_gates: bool = True
    gate_cache: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    gate_env: Mapping[str, str] | None = None
    gates: dict[str, GateVerdict] = field(default_factory=dict)
    rule_name: str = ""
    ledger: Ledger = field(default_factory=lambda: Ledger({}, {}))
    stale: list[dict[str, Any]] = field(default_factory=list)  # approvals a push made stale (all rules)
    carried: list[dict[str, Any]] = field(default_factory=list)  # approvals carried over a same-diff push
    _fingerprint: Fingerprint | None = None

    def head_fingerprint(self) -> Fingerprint:
        """The current head's diff fingerprint: the one the record keeps for this head, else read (once per
        evaluation; a commit's diff does not change when its base branch moves on)."""
        if self._fingerprint is None:
            known = self.ledger.fingerprint_of(self.ctx.head_sha)
            self._fingerprint = Fingerprint(known, source="record") if known else head_fingerprint(self.ctx)
        return self._fingerprint


def _missing(exc: PermissionMissing) -> list[str]:
    return [exc.permission]


# ---------------------------------------------------------------------------------------------- reviews
def latest_reviews(reviews: Sequence[Review]) -> dict[str, Review]:
    """The latest decisive review (approved, changes requested, dismissed) per reviewer, by lower-case login.

    Comments do not change a reviewer's standing; a dismissed review cancels it, as on GitHub.
    """
    latest: dict[str, Review] = {}
    for review in sorted(reviews, key=lambda r: r.submitted_at or _EPOCH):  # stable: API order breaks ties
        if review.state.upper() in _DECISIVE:
            latest[review.user.lower()] = review
    return latest


def _ci(req: CIRequirement, env: RuleEnv) -> Check:
    sha = short_sha(env.ctx.head_sha)
    wanted = [("workflow", n) for n in req.workflows] + [("check", n) for n in req.checks]
    ok: list[str] = []
    waiting: list[str] = []
    bad: list[str] = []
    states: dict[str, Any] = {}
    for kind, name in wanted:
        runs = env.ctx.workflow_runs() if kind == "workflow" else env.ctx.check_runs()
        state = runs.get(name) or next((v for k, v in runs.items() if k.lower() == name.lower()), None)
        label = f"{kind} {name}"
        if state is None:
            waiting.append(f"{label} has not reported")
            states[label] = None
        elif state.status != "completed":
            waiting.append(f"{label} is {state.status}")
            states[label] = state.status
        elif (state.conclusion or "") in req.conclusions:
            ok.append(f"{label} ({state.conclusion})")
            states[label] = state.conclusion
        else:
            bad.append(f"{label} concluded {state.conclusion or 'without a conclusion'}")
            states[label] = state.conclusion
    details = {"head_sha": env.ctx.head_sha, "runs": states}
    if bad:
        return Check(Status.FAILED, f"CI failed on {sha}: " + "; ".join(bad + waiting), details)
    if waiting:
        return Check(Status.PENDING, f"waiting for CI on {sha}: " + "; ".join(waiting), details)
    return Check(Status.PASSED, f"CI passed on {sha}: " + ", ".join(ok), details)


def _carry(review: Review, env: RuleEnv) -> str | None:
    """None when the approval of an older head carries over (same diff); else why it does not."""
    entry = env.ledger.approvals.get(review.user.lower()) or {}
    then = entry.get("fingerprint") if entry.get("commit") == review.commit_id else None
    then = then if isinstance(then, str) else env.ledger.fingerprint_of(review.commit_id)
    now = env.head_fingerprint()
    if then is None:
        return f"no diff fingerprint was recorded for {short_sha(review.commit_id)}"
    if now.value is None:
        return f"the current diff has no fingerprint: {safe(now.why, 300)}"  # it may name a changed file
    if then != now.value:
        return "the diff changed"
    return None


def _note_stale(env: RuleEnv, review: Review, why: str) -> None:
    item = {"login": review.user, "commit": review.commit_id or "", "why": why}
    if item not in env.stale:
        env.stale.append(item)


def _note_carried(env: RuleEnv, review: Review) -> None:
    item = {"login": review.user, "user_id": review.user_id, "from": review.commit_id or "",
            "to": env.ctx.head_sha}
    if item not in env.carried:
        env.carried.append(item)


def _match_teams(approvers: Mapping[str, set[str]]) -> dict[str, str]:
    """A largest assignment of approvers to distinct teams (``{team: approver}``; augmenting paths)."""
    owner: dict[str, str] = {}

    def assign(user: str, seen: set[str]) -> bool:
        for team in sorted(approvers[user]):
            if team in seen:
                continue
            seen.add(team)
            if team not in owner or assign(owner[team], seen):
                owner[team] = user
                return True
        return False

    for user in approvers:
        assign(user, set())
    return owner


def _distinct_teams(req: ApprovalRequirement, counted: Sequence[Review], env: RuleEnv
                    ) -> tuple[dict[str, str], list[PermissionMissing]]:
    teams = req.from_.teams if req.from_ is not None else []
    member_of: dict[str, set[str]] = {}
    missing: list[PermissionMissing] = []
    for review in counted:
        found: set[str] = set()
        for team in teams:
            try:
                if env.team_member(team, review.user):
                    found.add(team)
            except PermissionMissing as exc:
                missing.append(exc)
        member_of[review.user] = found
    return _match_teams(member_of), missing


def _codeowners_check(approvers: Sequence[Review], env: RuleEnv) -> tuple[list[str], list[str],
                                                                              list[PermissionMissing], dict[str, Any]]:
    """``(satisfied, waiting, missing, details)`` for every changed file against the base CODEOWNERS."""
    found = env.ctx.codeowners()
    if found is None:
        raise CodeownersError("CODEOWNERS", 0, "no CODEOWNERS file on the base branch (.github/, root or docs/)")
    path, text = found
    owners_file = parse_codeowners(text, path)
    logins = {r.user.lower() for r in approvers}
    satisfied: list[str] = []
    waiting: list[str] = []
    missing: list[PermissionMissing] = []
    per_file: dict[str, Any] = {}
    for f in env.ctx.changed_files():
        for name in f.paths:
            entry, owners = owners_file.owners_of(name)
            if entry is None or not owners:
                per_file[name] = {"owners": [], "approved_by": None}
                continue
            by: str | None = None
            for owner in owners:
                if owner.kind == "user" and owner.name.lower() in logins:
                    by = owner.name
                elif owner.kind == "team":
                    for review in approvers:
                        try:
                            if env.team_member(owner.name, review.user):
                                by = f"{review.user} (@{owner.name})"
                                break
                        except PermissionMissing as exc:
                            missing.append(exc)
                            break
                if by:
                    break
            shown = ", ".join(o.display() for o in owners)
            per_file[name] = {"owners": [o.display() for o in owners], "line": entry.line, "approved_by": by}
            (satisfied if by else waiting).append(f"{safe(name)} ({'approved by ' + safe(by) if by else shown})")
    return satisfied, waiting, missing, {"codeowners": path, "files": per_file}


def _approvals(req: ApprovalRequirement, env: RuleEnv) -> Check:
    ctx = env.ctx
    by_owners = req.from_ is not None and req.from_.codeowners
    source = "code owners" if by_owners else describe_actors(req.from_, anyone="any reviewer")
    latest = latest_reviews(ctx.reviews())
    counted: list[str] = []
    valid: list[Review] = []
    not_counted: list[str] = []
    missing: list[PermissionMissing] = []
    stale: list[str] = []
    carried: list[str] = []
    gather_all = by_owners or req.distinct_teams is not None
    for review in latest.values():
        if review.state.upper() != "APPROVED":
            continue
        who = safe(review.user)
        if len(counted) >= req.count and not gather_all:
            break
        if review.user.lower() == ctx.author.lower() and not req.allow_author:
            not_counted.append(f"{who} (the author)")
            continue
        if req.invalidates and review.commit_id != ctx.head_sha:
            why = _carry(review, env) if req.except_same_diff else "a push made it stale"
            if why is not None:
                stale.append(f"{who} approved {short_sha(review.commit_id)}, before the latest push"
                             + (f" ({why})" if req.except_same_diff else ""))
                _note_stale(env, review, why)
                continue
            carried.append(f"approval by {who} carried from {short_sha(review.commit_id)}: same diff")
            _note_carried(env, review)
        people = Actors(not_users=req.from_.not_users) if by_owners and req.from_ is not None else req.from_
        check = check_actor(review.user, people, env)
        if check.ok:
            counted.append(who)
            valid.append(review)
        elif check.missing:
            missing += check.missing
            not_counted.append(f"{who} (could not check: {missing_text(check.missing)})")
        else:
            not_counted.append(f"{who} (not {source})")
    details: dict[str, Any] = {"required": req.count, "counted": counted, "not_counted": not_counted,
                               "stale": stale}
    if carried:
        details["carried"] = carried

    def headline() -> str:
        text = f"{len(counted)} of {req.count} approval{'s' if req.count != 1 else ''} from {source}"
        return text + (f": {', '.join(counted)}" if counted else "")

    owned = ""
    owners_waiting: list[str] = []
    if by_owners:
        try:
            if ctx.files_truncated():
                return Check(Status.FAILED, "; ".join([headline(), "the changed-file list is truncated: cannot "
                                                                   "check that every file's owners approved"]),
                             details)
            satisfied, unowned, owner_missing, owner_details = _codeowners_check(valid, env)
        except CodeownersError as exc:
            return Check(Status.FAILED, f"{headline()}; {exc}", details)
        details.update(owner_details)
        owning = {str(v["approved_by"]).split(" ", 1)[0].lower() for v in owner_details["files"].values()
                  if v.get("approved_by")}
        not_counted += [f"{safe(r.user)} (owns none of the changed files)" for r in valid
                        if r.user.lower() not in owning]
        counted = [safe(r.user) for r in valid if r.user.lower() in owning]
        details.update({"counted": counted, "not_counted": not_counted})
        owned = f"; {len(satisfied)} of {len(satisfied) + len(unowned)} owned file(s) approved by an owner"
        if unowned:
            owners_waiting.append(f"waiting for code owners of {', '.join(unowned)}")
            missing += owner_missing
    head = headline() + owned
    extra = [f"not counted: {', '.join(not_counted)}"] if not_counted else []
    extra += [f"dismissed by push: {', '.join(stale)}"] if stale else []
    extra += carried
    waiting = [f"waiting for {req.count - len(counted)} more"] if len(counted) < req.count else []
    waiting += owners_waiting
    if req.distinct_teams is not None:
        matched, team_missing = _distinct_teams(req, valid, env)
        details["teams"] = {team: safe(user) for team, user in sorted(matched.items())}
        shown = ", ".join(f"{t}: {safe(u)}" for t, u in sorted(matched.items())) or "none"
        head += f"; {len(matched)} of {req.distinct_teams} distinct teams ({shown})"
        if len(matched) < req.distinct_teams:
            waiting.append(f"waiting for approvals from {req.distinct_teams - len(matched)} more team(s)")
            missing += team_missing
    if not waiting:
        return Check(Status.PASSED, "; ".join([head, *carried]), details)
    if missing:
        perms = list(dict.fromkeys(m.permission for m in missing))
        return Check(Status.FAILED, "; ".join([head, *extra, f"cannot read who counts ({', '.join(perms)} "
                                                             "missing): never treated as approved"]),
                     details, perms)
    return Check(Status.PENDING, "; ".join([head, *waiting, *extra]), details)


def evaluate_disapproval(spec: Disapproval, env: RuleEnv) -> RuleResult:
    """The top-level ``disapproval`` rule: failed while one of ``spec.from`` has a standing change request."""
    blocking: list[dict[str, Any]] = []
    shown: list[str] = []
    missing: list[PermissionMissing] = []
    try:
        reviews = latest_reviews(env.ctx.reviews())
        for review in reviews.values():
            if review.state.upper() != "CHANGES_REQUESTED":
                continue
            check = check_actor(review.user, spec.from_, env, bots_need_listing=False)
            if not check.ok and not check.missing:
                continue
            missing += check.missing  # cannot tell whether they may disapprove: the request keeps blocking
            when = review.submitted_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if review.submitted_at else "?"
            blocking.append({"login": review.user, "user_id": review.user_id, "at": when,
                             "commit": review.commit_id})
            shown.append(f"{safe(review.user)} at {when} on {short_sha(review.commit_id)}")
    except PermissionMissing as exc:
        return RuleResult("disapproval", Status.FAILED, f"could not check: {exc}", missing_permissions=_missing(exc))
    except FactUnavailable as exc:
        return RuleResult("disapproval", Status.PENDING, str(exc) if exc.custom else f"disapproval: {exc}")
    who = describe_actors(spec.from_)
    if blocking:
        reason = (f"disapproved by {', '.join(shown)}: blocks until they approve or the review is dismissed")
        perms = list(dict.fromkeys(m.permission for m in missing))
        return RuleResult("disapproval", Status.FAILED, reason, {"disapprovals": blocking}, perms,
                          applies=f"disapproval from {who}")
    return RuleResult("disapproval", Status.PASSED, f"no standing disapproval from {who}", {"disapprovals": []},
                      applies=f"disapproval from {who}")


def _label(req: LabelRequirement, env: RuleEnv) -> Check:
    name = req.name
    present = any(label.casefold() == name.casefold() for label in env.ctx.labels)
    if not present:
        return Check(Status.PENDING, f"waiting for label {name}")
    if req.added_by is None:
        return Check(Status.PASSED, f"label {name} is present")
    events = [e for e in env.ctx.label_events()
              if e.label.casefold() == name.casefold() and e.action == "labeled"]
    events.sort(key=lambda e: e.created_at or _EPOCH)
    needs = describe_actors(req.added_by)
    if not events:
        return Check(Status.FAILED, f"label {name} is present but who added it cannot be determined "
                                    f"(needs {needs})")
    actor = events[-1].actor
    try:
        check = check_actor(actor, req.added_by, env)
    except FactUnavailable as exc:
        raise FactUnavailable(exc.fact, f"label {name} was added by {safe(actor)}; whether {safe(actor)} may "
                                        f"add it is not known here ({exc.fact})") from None
    details = {"label": name, "added_by": actor}
    if check.ok:
        return Check(Status.PASSED, f"label {name} was added by {check.why}", details)
    if check.missing:
        return Check(Status.FAILED, f"label {name} was added by {safe(actor)}; could not check whether "
                                    f"{safe(actor)} may add it: {missing_text(check.missing)}",
                     details, list(dict.fromkeys(m.permission for m in check.missing)))
    return Check(Status.FAILED, f"label {name} was added by {safe(actor)} who is not allowed (needs {needs})",
                 details)


def _no_labels(names: Sequence[str], env: RuleEnv) -> Check:
    have = {label.casefold() for label in env.ctx.labels}
    present = [n for n in names if n.casefold() in have]
    if present:
        return Check(Status.FAILED, f"label {', '.join(present)} is present")
    return Check(Status.PASSED, f"none of {', '.join(names)} present")


def _no_changes_requested(req: ChangesRequestedRequirement, env: RuleEnv) -> Check:
    blocking: list[str] = []
    missing: list[PermissionMissing] = []
    for review in latest_reviews(env.ctx.reviews()).values():
        if review.state.upper() != "CHANGES_REQUESTED":
            continue
        if req.from_ is not None:
            check = check_actor(review.user, req.from_, env, bots_need_listing=False)
            if not check.ok and not check.missing:
                continue
            missing += check.missing  # cannot tell: the request keeps blocking
        blocking.append(f"{safe(review.user)} (on {short_sha(review.commit_id)})")
    if blocking:
        reason = f"changes requested by {', '.join(blocking)}"
        perms = list(dict.fromkeys(m.permission for m in missing))
        if perms:
            reason += f"; could not check whether they count: {missing_text(missing)}"
        return Check(Status.FAILED, reason, {"requested_by": blocking}, perms)
    return Check(Status.PASSED, "no outstanding change requests")


def _linked_issue(req: LinkedIssueRequirement, env: RuleEnv) -> Check:
    refs = list(env.ctx.linked_issues())
    if not refs:
        return Check(Status.FAILED, "no linked issue: the description has no closing keyword "
                                    "(e.g. \"Fixes #123\")")
    if not req.verify:
        return Check(Status.PASSED, f"links {', '.join(r.display() for r in refs)}")
    missing: list[PermissionMissing] = []
    rejected: list[str] = []
    for ref in refs:
        try:
            state = env.ctx.issue_state(ref)
        except PermissionMissing as exc:
            missing.append(exc)
            rejected.append(f"{ref.display()} (cannot read: {exc})")
            continue
        if state is not None:
            return Check(Status.PASSED, f"{ref.keyword} {ref.display()} ({state})", {"issue": ref.display()})
        rejected.append(f"{ref.display()} is not an issue (not found, or a pull request)")
    perms = list(dict.fromkeys(m.permission for m in missing))
    return Check(Status.FAILED, "no linked issue: " + "; ".join(rejected), {"refs": [r.display() for r in refs]},
                 perms)


def gate_payload(gate: Gate, env: RuleEnv) -> dict[str, Any]:
    """The JSON a gate receives (see ``loopforge.policy.gates``)."""
    ctx = env.ctx
    files = ctx.changed_files()
    diff, truncated = truncate_utf8(ctx.diff(), gate.max_diff_bytes)
    record = env.record.to_dict(include_transitions=False) if env.record is not None else None
    return {
        "version": 1,
        "gate": gate.display_name,
        "rule": env.rule_name,
        "repository": ctx.repo,
        "risk_tier": env.risk_tier,
        "pull_request": {
            "number": ctx.number, "title": ctx.title, "body": ctx.body, "author": ctx.author,
            "author_association": ctx.author_association, "base_ref": ctx.base_ref, "head_ref": ctx.head_ref,
            "head_sha": ctx.head_sha, "draft": bool(ctx.draft), "labels": list(ctx.labels),
        },
        "changed_files": [{"filename": f.filename, "status": f.status, "additions": f.additions,
                           "deletions": f.deletions, "previous_filename": f.previous_filename} for f in files],
        "diff": diff,
        "diff_truncated": truncated,
        "record": record,
    }


def _gate(gate: Gate, env: RuleEnv) -> Check:
    name = gate.display_name
    key = gate_key(gate)
    verdict = env.gates.get(key)
    if verdict is None:
        cached = env.gate_cache.get(key)
        if (cached and cached.get("head_sha") == env.ctx.head_sha and not cached.get("timed_out")
                and not cached.get("error")):
            verdict = GateVerdict.from_dict(cached)
    if verdict is None:
        if not env.run_gates:
            raise FactUnavailable(f"gate {name}", f"gate {name} not run (offline)")
        if gate.command is not None and env.base_dir is None:
            raise FactUnavailable(f"gate {name}", f"gate {name} not run: needs the base-branch checkout")
        verdict = run_gate(gate, gate_payload(gate, env), cwd=env.base_dir, env=env.gate_env)
    env.gates[key] = verdict
    details = {"gate": verdict.as_dict()}
    if verdict.allowed:
        text = verdict.reason if verdict.timed_out else f"gate {name} allowed: {verdict.reason}"
        return Check(Status.PASSED, text, details)
    text = verdict.reason if (verdict.timed_out or verdict.error) else f"gate {name} blocked: {verdict.reason}"
    return Check(Status.FAILED, text, details)


def _guard(spec: str, env: RuleEnv) -> Check:
    if env.base_dir is None:
        raise FactUnavailable(f"guard {spec}", f"guard {spec} not run: needs the base-branch checkout")
    if env.record is None:
        raise FactUnavailable(f"guard {spec}", f"guard {spec} not run: needs the LoopForge record")
    try:
        fn = load_guard(spec, env.base_dir, code_dir=env.code_dir)
    except GuardLoadError as exc:
        return Check(Status.FAILED, str(exc))
    previous = env.previous_state if env.previous_state is not None else env.record.state
    try:
        verdict = fn(env.record, previous, env.new_state, env.trigger)
    except TransitionError as exc:
        return Check(Status.FAILED, f"guard {spec} refused: {exc.reason}", {"guard": spec, **exc.details})
    except Exception as exc:  # fail closed
        return Check(Status.FAILED, f"guard {spec} failed: {type(exc).__name__}: {exc}", {"guard": spec})
    if verdict is False:
        return Check(Status.FAILED, f"guard {spec} refused", {"guard": spec})
    return Check(Status.PASSED, f"guard {spec} allowed", {"guard": spec})


# ---------------------------------------------------------------------------------------------- combining
def _guarded(key: str, fn: Callable[[], Check]) -> Check:
    """Run one requirement; turn "could not check" into failed/pending, never passed."""
    try:
        return fn()
    except PermissionMissing as exc:
        return Check(Status.FAILED, f"{key}: could not check: {exc}", {}, _missing(exc))
    except FactUnavailable as exc:
        return Check(Status.PENDING, str(exc) if exc.custom else f"{key}: {exc}")
    except Exception as exc:  # fail closed on anything unexpected (an API error, a bug)
        return Check(Status.FAILED, f"{key}: error while checking: {type(exc).__name__}: {safe(str(exc))}")


def combine_all(parts: Sequence[tuple[str, Check]]) -> Check:
    statuses = [c.status for _, c in parts]
    status = (Status.FAILED if Status.FAILED in statuses else Status.PENDING if Status.PENDING in statuses
              else Status.PASSED)
    shown = parts if status is Status.PASSED else [(k, c) for k, c in parts if c.status is not Status.PASSED]
    if len(parts) == 1:
        return parts[0][1]
    return Check(status, "; ".join(c.reason for _, c in shown),
                 {"all": [{"requirement": k, "status": c.status.value, "reason": c.reason, **c.details}
                          for k, c in parts]},
                 list(dict.fromkeys(p for _, c in parts for p in c.missing_permissions)))


def combine_any(parts: Sequence[tuple[str, Check]]) -> Check:
    winners = [c for _, c in parts if c.status is Status.PASSED]
    details = {"any": [{"requirement": k, "status": c.status.value, "reason": c.reason, **c.details}
                       for k, c in parts]}
    if winners:
        return Check(Status.PASSED, winners[0].reason, details)
    statuses = [c.status for _, c in parts]
    status = Status.PENDING if Status.PENDING in statuses else Status.FAILED
    return Check(status, "needs one of: " + " OR ".join(f"({c.reason})" for _, c in parts), details,
                 list(dict.fromkeys(p for _, c in parts for p in c.missing_permissions)))


# The requirement keys checked on their own, in the order they are evaluated: each is the ``Requirement``
# field of that name, given to its check with the rule's environment when it is set.
_SIMPLE_REQUIREMENTS: tuple[tuple[str, Callable[[Any, RuleEnv], Check]], ...] = (
    ("no_labels", _no_labels),
    ("label", _label),
    ("linked_issue", _linked_issue),
    ("ci", _ci),
    ("approvals", _approvals),
    ("no_changes_requested", _no_changes_requested),
    ("guard", _guard),
    ("gate", _gate),
)


def evaluate_requirement(req: Requirement, env: RuleEnv) -> Check:
    """One requirement node: its keys and its ``all`` list must all hold; its ``any`` list needs one."""
    parts: list[tuple[str, Check]] = []
    simple: list[tuple[str, Callable[[], Check]]] = [
        (key, functools.partial(check, spec, env))
        for key, check in _SIMPLE_REQUIREMENTS if (spec := getattr(req, key)) is not None]
    parts += [(key, _guarded(key, fn)) for key, fn in simple]
    for i, child in enumerate(req.all or []):
        parts.append((f"all[{i}]", evaluate_requirement(child, env)))
    if req.any:
        parts.append(("any", combine_any([(f"any[{i}]", evaluate_requirement(child, env))
                                          for i, child in enumerate(req.any)])))
    return combine_all(parts)


def evaluate_rule(rule: Rule, env: RuleEnv) -> RuleResult:
    """Whether the rule applies, and if so whether its requirements hold."""
    env.rule_name = rule.name
    applies = "always (no if)"
    if rule.if_ is not None and not rule.if_.is_empty():
        try:
            match = match_condition(rule.if_, env)
        except PermissionMissing as exc:
            return RuleResult(rule.name, Status.FAILED, f"cannot tell whether the rule applies: {exc}",
                              missing_permissions=_missing(exc))
        except FactUnavailable as exc:
            return RuleResult(rule.name, Status.PENDING, f"cannot tell whether the rule applies: {exc}")
        except Exception as exc:
            return RuleResult(rule.name, Status.FAILED, f"cannot tell whether the rule applies: error: "
                                                        f"{type(exc).__name__}: {safe(str(exc))}")
        if not match.matched:
            return RuleResult(rule.name, Status.SKIPPED, f"does not apply: {match.reason}")
        applies = match.reason
    check = evaluate_requirement(rule.require, env)
    return RuleResult(rule.name, check.status, check.reason, check.details, check.missing_permissions, applies)
