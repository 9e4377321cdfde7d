"""Conditions: does a rule apply to this pull request? And who is a given person (for conditions and
requirements alike)?

Every function reads facts through ``PullRequestContext`` and returns a ``Match`` with a human-readable reason.
``PermissionMissing`` and ``FactUnavailable`` propagate: the caller decides (a rule that cannot tell whether it
applies fails or is pending; it is never silently skipped). Cheap facts are checked before expensive ones and
evaluation stops as soon as the answer is known, so API lookups happen only when they matter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from functools import lru_cache
from typing import Any

import pathspec

from loopforge.policy.context import (
    FactUnavailable,
    PermissionMissing,
    PullRequestContext,
    is_bot,
    permission_at_least,
)
from loopforge.policy.model import RISK_TIERS, Actors, AuthorCondition, Condition, RiskTiers
from loopforge.text import clean_text

_TITLE_LIMIT = 1024  # regexes from the policy run on at most this much PR-controlled text


def safe(text: str, limit: int = 200) -> str:
    """PR-controlled text (file names, logins) made safe for a one-line reason (``clean_text``: also C1
    controls, ANSI sequences and bidi overrides, which the old C0-only filter let through)."""
    return clean_text(text, limit)


def short_sha(sha: str | None) -> str:
    return (sha or "?")[:7]


@dataclass
class Match:
    matched: bool
    reason: str


@dataclass
class Env:
    """What conditions and requirements read: the facts, the policy's approver lists, the risk tier."""

    ctx: PullRequestContext
    approvers: Mapping[str, Sequence[str]] = field(default_factory=dict)
    risk_tier: str | None = None
    _team_cache: dict[tuple[str, str], bool] = field(default_factory=dict)
    _perm_cache: dict[str, str] = field(default_factory=dict)

    def team_member(self, team: str, user: str) -> bool:
        key = (team.lower(), user.lower())
        if key not in self._team_cache:
            self._team_cache[key] = self.ctx.is_team_member(team, user)
        return self._team_cache[key]

    def permission(self, user: str) -> str:
        key = user.lower()
        if key not in self._perm_cache:
            self._perm_cache[key] = self.ctx.user_permission(user)
        return self._perm_cache[key]


# ---------------------------------------------------------------------------------------------- people
@dataclass
class ActorCheck:
    """Whether one login is among ``Actors``: ``ok``, why, and lookups that could not be made."""

    ok: bool
    why: str
    missing: list[PermissionMissing] = field(default_factory=list)


def describe_actors(actors: Actors | None, *, anyone: str = "anyone") -> str:
    if actors is None or actors.is_anyone():
        return anyone
    parts: list[str] = []
    if actors.users:
        parts.append("users " + ", ".join(actors.users))
    parts += [f"approver list {a}" for a in actors.approvers]
    parts += [f"team {t}" for t in actors.teams]
    if actors.permission:
        parts.append(actors.permission if not parts else f"{actors.permission} permission")
    return " or ".join(parts)


def check_actor(login: str, actors: Actors | None, env: Env, *, bots_need_listing: bool = True) -> ActorCheck:
    """Is ``login`` one of ``actors``? Cheap checks first; team and permission lookups only if still needed.

    A lookup that raises ``PermissionMissing`` is recorded in ``missing`` and never counts as a match.
    """
    low = login.lower()
    if actors is not None and low in {u.lower() for u in actors.not_users}:
        return ActorCheck(False, f"{safe(login)} is excluded (not_users)")
    if actors is not None and low in {u.lower() for u in actors.users}:
        return ActorCheck(True, f"{safe(login)} is listed in users")
    if bots_need_listing and is_bot(login):
        return ActorCheck(False, f"{safe(login)} is a bot (bots count only when listed in users)")
    if actors is None or actors.is_anyone():
        return ActorCheck(True, f"{safe(login)} (anyone counts)")
    for name in actors.approvers:
        if low in {u.lower() for u in env.approvers.get(name, ())}:
            return ActorCheck(True, f"{safe(login)} is in approver list {name}")
    missing: list[PermissionMissing] = []
    for team in actors.teams:
        try:
            if env.team_member(team, login):
                return ActorCheck(True, f"{safe(login)} is in team {team}")
        except PermissionMissing as exc:
            missing.append(exc)
    if actors.permission:
        try:
            have = env.permission(login)
            if permission_at_least(have, actors.permission):
                return ActorCheck(True, f"{safe(login)} has {have} permission")
        except PermissionMissing as exc:
            missing.append(exc)
    return ActorCheck(False, f"{safe(login)} is not {describe_actors(actors)}", missing)


def missing_text(missing: Sequence[PermissionMissing]) -> str:
    return "; ".join(dict.fromkeys(str(m) for m in missing))


# ---------------------------------------------------------------------------------------------- conditions
@lru_cache(maxsize=256)
def _spec(globs: tuple[str, ...]) -> pathspec.GitIgnoreSpec:
    return pathspec.GitIgnoreSpec.from_lines(globs)


def _first_match(globs: Sequence[str], path: str) -> str | None:
    result = _spec(tuple(globs)).check_file(path)
    if result.include and result.index is not None:
        return str(globs[result.index])
    return None


def _files(globs: Sequence[str], env: Env) -> Match:
    for f in env.ctx.changed_files():
        for path in f.paths:
            hit = _first_match(globs, path)
            if hit is not None:
                return Match(True, f"{safe(path)} matches {hit}")
    if env.ctx.files_truncated():
        return Match(True, "the changed-file list is truncated (GitHub lists at most 3,000 files): "
                           f"assuming a file matches {', '.join(globs)}")
    return Match(False, f"no changed file matches {', '.join(globs)}")


def _only_files(globs: Sequence[str], env: Env) -> Match:
    files = env.ctx.changed_files()
    if env.ctx.files_truncated():
        return Match(False, "the changed-file list is truncated: cannot tell that every file matches")
    if not files:
        return Match(False, "no files changed")
    for f in files:
        for path in f.paths:
            if _first_match(globs, path) is None:
                return Match(False, f"{safe(path)} does not match {', '.join(globs)}")
    return Match(True, f"all {len(files)} changed file(s) match {', '.join(globs)}")


def _labels(cond: Condition, env: Env) -> Match:
    assert cond.labels is not None
    have = {label.casefold() for label in env.ctx.labels}
    m = cond.labels
    if m.any is not None:
        hits = [label for label in m.any if label.casefold() in have]
        if not hits:
            return Match(False, f"none of the labels {', '.join(m.any)} is present")
    if m.all is not None:
        absent = [label for label in m.all if label.casefold() not in have]
        if absent:
            return Match(False, f"label {', '.join(absent)} is not present")
    if m.none is not None:
        present = [label for label in m.none if label.casefold() in have]
        if present:
            return Match(False, f"label {', '.join(present)} is present")
    shown = [label for label in (m.any or []) + (m.all or []) if label.casefold() in have]
    return Match(True, f"label {', '.join(dict.fromkeys(shown))} present" if shown else "no excluded label present")


def _author(cond: AuthorCondition, env: Env) -> Match:
    author = env.ctx.author
    who = f"author {safe(author)}"
    if cond.bot is not None and is_bot(author) != cond.bot:
        return Match(False, f"{who} is {'not ' if cond.bot else ''}a bot")
    if author.lower() in {u.lower() for u in cond.not_users}:
        return Match(False, f"{who} is excluded (not_users)")
    reason = f"{who} is a bot" if cond.bot else who
    if not cond.is_anyone():
        if cond.associations and env.ctx.author_association.upper() in cond.associations:
            reason = f"{who} is {env.ctx.author_association.upper()}"
        else:
            check = check_actor(author, cond, env, bots_need_listing=False)
            if check.missing and not check.ok:
                raise check.missing[0]
            if not check.ok:
                wanted = [describe_actors(cond)] if (cond.users or cond.teams or cond.approvers or
                                                    cond.permission) else []
                wanted += ["/".join(cond.associations)] if cond.associations else []
                return Match(False, f"{who} is not {' or '.join(wanted)}")
            reason = f"author {check.why}"
    for team in cond.not_teams:
        if env.team_member(team, author):
            return Match(False, f"{who} is in team {team} (not_teams)")
    return Match(True, reason)


def _title(cond: Condition, env: Env) -> Match:
    assert cond.title is not None
    title = env.ctx.title[:_TITLE_LIMIT]
    if cond.title.matches is not None and not re.search(cond.title.matches, title):
        return Match(False, f"title does not match /{cond.title.matches}/")
    if cond.title.not_matches is not None and re.search(cond.title.not_matches, title):
        return Match(False, f"title matches /{cond.title.not_matches}/")
    shown = cond.title.matches if cond.title.matches is not None else f"not /{cond.title.not_matches}/"
    return Match(True, f"title matches /{shown}/" if cond.title.matches is not None else f"title {shown}")


def _lines(cond: Condition, env: Env) -> Match:
    assert cond.lines_changed is not None
    adds, dels = env.ctx.line_counts()
    total = adds + dels
    lc = cond.lines_changed
    if lc.over is not None and not total > lc.over:
        return Match(False, f"{total} lines changed (not over {lc.over})")
    if lc.under is not None and not total < lc.under:
        return Match(False, f"{total} lines changed (not under {lc.under})")
    bounds = [f"over {lc.over}" if lc.over is not None else "", f"under {lc.under}" if lc.under is not None else ""]
    return Match(True, f"{total} lines changed ({' and '.join(b for b in bounds if b)})")


def _key_match(key: str, cond: Condition, env: Env) -> Match:
    ctx = env.ctx
    if key == "draft":
        is_draft = bool(ctx.draft)
        return Match(is_draft == cond.draft, "the PR is a draft" if is_draft else "the PR is not a draft")
    if key == "base":
        assert cond.base is not None
        hit = next((g for g in cond.base if fnmatchcase(ctx.base_ref, g)), None)
        return Match(hit is not None, f"base branch {safe(ctx.base_ref)} "
                                      + (f"matches {hit}" if hit else f"is not {', '.join(cond.base)}"))
    if key == "title":
        return _title(cond, env)
    if key == "labels":
        return _labels(cond, env)
    if key == "risk":
        assert cond.risk is not None
        tier = env.risk_tier or "low"
        return Match(tier in cond.risk, f"risk tier is {tier}")
    if key == "lines_changed":
        return _lines(cond, env)
    if key == "files":
        assert cond.files is not None
        return _files(cond.files, env)
    if key == "only_files":
        assert cond.only_files is not None
        return _only_files(cond.only_files, env)
    if key == "author":
        assert cond.author is not None
        return _author(cond.author, env)
    if key == "not":
        assert cond.not_ is not None
        inner = match_condition(cond.not_, env)
        return Match(not inner.matched, f"not ({inner.reason})")
    if key in ("all", "any"):
        children: list[Condition] = getattr(cond, key) or []
        return _combine([lambda c=c: match_condition(c, env) for c in children], any_mode=(key == "any"))
    raise AssertionError(f"unknown condition key {key}")  # pragma: no cover


#: Cheap facts first: the PR object, then file lists, then people (API lookups), then compositions.
_ORDER = ("draft", "base", "title", "labels", "risk", "lines_changed", "files", "only_files", "author",
          "not", "all", "any")


def _combine(thunks: Sequence[Any], *, any_mode: bool) -> Match:
    reasons: list[str] = []
    deferred: Exception | None = None
    for thunk in thunks:
        try:
            m: Match = thunk()
        except (PermissionMissing, FactUnavailable) as exc:
            if not any_mode:
                raise
            deferred = deferred or exc
            continue
        if any_mode and m.matched:
            return m
        if not any_mode and not m.matched:
            return m
        reasons.append(m.reason)
    if any_mode and deferred is not None:
        raise deferred
    if any_mode:
        return Match(False, "; ".join(reasons) or "no condition")
    return Match(True, "; ".join(reasons) or "always")


def match_condition(cond: Condition, env: Env, *, any_keys: bool = False) -> Match:
    """Whether ``cond`` matches. All keys must match, or (``any_keys``, for risk tiers) at least one."""
    keys = [k for k in _ORDER if k in cond.set_keys()]
    return _combine([lambda k=k: _key_match(k, cond, env) for k in keys], any_mode=any_keys)


@dataclass
class RiskAssessment:
    tier: str
    reason: str
    missing: list[PermissionMissing] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)


def assess_risk(risk: RiskTiers, env: Env) -> RiskAssessment:
    """The highest tier whose signals match (``low`` if none). A tier that cannot be checked is assumed."""
    for tier in reversed(RISK_TIERS):
        cond: Condition | None = getattr(risk, tier, None)
        if cond is None or cond.is_empty():
            continue
        try:
            m = match_condition(cond, env, any_keys=True)
        except PermissionMissing as exc:
            return RiskAssessment(tier, f"assumed {tier}: could not check its signals ({exc})", missing=[exc])
        except FactUnavailable as exc:
            return RiskAssessment(tier, f"assumed {tier}: {exc}", unknown=[exc.fact])
        if m.matched:
            return RiskAssessment(tier, m.reason)
    return RiskAssessment("low", "no risk signal matched")
