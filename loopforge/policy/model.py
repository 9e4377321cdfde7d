"""The policy file (``.github/loopforge.yml``): pydantic models, loading, and one-line errors.

Every mapping is strict: an unknown key is an error naming the key (with a "did you mean"), never silently
ignored. Conditions (``if:``) and requirements (``require:``) are each one object with optional keys; several
keys in one object must *all* hold, ``any:``/``all:`` combine lists. Shorthands (``label: name``,
``title: regex``, ``base: main``, ``risk: high``, ``linked_issue: true``) are normalised on load.

``load_policy(text, source)`` raises ``PolicyError`` whose ``str`` is one line:
``.github/loopforge.yml: rules[2].if.files: expected a list of globs, got a string``.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

import pathspec
import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from loopforge.errors import PolicyError as PolicyError  # re-exported from its home, loopforge.errors

DEFAULT_POLICY_PATH = ".github/loopforge.yml"
RISK_TIERS: tuple[str, ...] = ("low", "medium", "high")  # weakest first; "low" is the tier when none matches
PERMISSIONS = ("read", "triage", "write", "maintain", "admin")
ASSOCIATIONS = ("OWNER", "MEMBER", "COLLABORATOR", "CONTRIBUTOR", "FIRST_TIME_CONTRIBUTOR", "FIRST_TIMER",
                "MANNEQUIN", "NONE")
CONCLUSIONS = ("success", "failure", "neutral", "cancelled", "skipped", "timed_out", "action_required", "stale")

_LOGIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(?:\[bot\])?$")
_TEAM = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")
_GUARD = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")


# ---------------------------------------------------------------------------------------------- helpers
def _also(*alternatives: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    """``json_schema_extra`` that documents a shorthand accepted by a ``BeforeValidator``."""

    def extra(schema: dict[str, Any]) -> None:
        options = schema.pop("anyOf", None)
        rest = {k: schema.pop(k) for k in list(schema) if k in ("$ref", "type", "items", "properties", "required")}
        schema["anyOf"] = [*alternatives, *(options or [rest])]

    return extra


def _err(message: str) -> PydanticCustomError:
    """A validation error whose message is used verbatim (no template formatting of user input)."""
    return PydanticCustomError("policy", "{message}", {"message": message})


def _kind(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _list_of_str(what: str, *, allow_single: bool = False) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if allow_single and isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            got = _kind(value) if not isinstance(value, list) else "a list with an empty or non-string item"
            raise _err(f"expected a list of {what}, got {got}")
        return value

    return check


def _check_globs(value: list[str]) -> list[str]:
    try:
        pathspec.GitIgnoreSpec.from_lines(value)
    except Exception as exc:
        raise ValueError(f"invalid glob: {exc}") from None
    return value


def _check_logins(value: list[str]) -> list[str]:
    for login in value:
        if not _LOGIN.match(login):
            raise ValueError(f"{login!r} is not a GitHub login")
    return value


def _check_teams(value: list[str]) -> list[str]:
    for team in value:
        if not _TEAM.match(team):
            raise ValueError(f"{team!r} is not a team: use org/team-slug")
    return value


def _true_or_mapping(key: str) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if value is True:
            return {}
        if value is False:
            raise _err(f"false is not allowed here: remove the {key} key instead")
        return value

    return check


Globs = Annotated[list[str], BeforeValidator(_list_of_str("globs"))]
Names = Annotated[list[str], BeforeValidator(_list_of_str("names"))]


class _Strict(BaseModel):
    """Unknown keys are errors that name the key and suggest the closest known one."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            known = [f.alias or n for n, f in cls.model_fields.items()]
            for key in data:
                if key not in known:
                    close = difflib.get_close_matches(str(key), known, n=1)
                    hint = f"did you mean {close[0]!r}?" if close else "allowed: " + ", ".join(known)
                    raise PydanticCustomError("unknown_key", "unknown key ({hint})", {"key": str(key), "hint": hint})
        elif data is not None and not isinstance(data, BaseModel):
            raise _err(f"expected a mapping, got {_kind(data)}")
        return data

    def set_keys(self) -> list[str]:
        """The keys given in the file (by their YAML names), in declaration order."""
        return [f.alias or n for n, f in type(self).model_fields.items()
                if n in self.model_fields_set and getattr(self, n) is not None]


# ---------------------------------------------------------------------------------------------- people
class Actors(_Strict):
    """Who counts: anyone listed in ``users``, in a named ``approvers`` list, in one of ``teams``, or with at
    least ``permission`` on the repository (any of them; ``not_users`` always excluded). Bot accounts
    (``name[bot]``) only count when listed by name in ``users``."""

    users: Annotated[list[str], BeforeValidator(_list_of_str("logins"))] = Field(
        default_factory=list, description="GitHub logins (case-insensitive).")
    teams: Annotated[list[str], BeforeValidator(_list_of_str("teams"))] = Field(
        default_factory=list, description="Teams as org/team-slug. Reading membership needs a governance token "
                                          "with Members: read; without it the requirement fails and says so.")
    approvers: Annotated[list[str], BeforeValidator(_list_of_str("approver list names", allow_single=True))] = Field(
        default_factory=list, json_schema_extra=_also({"type": "string"}),
        description="Names of lists under the top-level approvers key (no team read needed).")
    permission: Literal["read", "triage", "write", "maintain", "admin"] | None = Field(
        None, description="Minimum repository role (maintain counts as write, admin as both).")
    not_users: Annotated[list[str], BeforeValidator(_list_of_str("logins"))] = Field(
        default_factory=list, description="Logins that never count, even if matched otherwise.")

    _v_users = field_validator("users", "not_users")(_check_logins)
    _v_teams = field_validator("teams")(_check_teams)

    def is_anyone(self) -> bool:
        return not (self.users or self.teams or self.approvers or self.permission)


class AuthorCondition(Actors):
    """The PR author matches when it is any of the listed people (everyone if none are listed), is not excluded
    by ``not_users``/``not_teams``, and, if ``bot`` is given, is (``true``) or is not (``false``) a bot."""

    not_teams: Annotated[list[str], BeforeValidator(_list_of_str("teams"))] = Field(default_factory=list)
    associations: Annotated[list[str], BeforeValidator(_list_of_str("associations"))] = Field(
        default_factory=list, description="author_association values: " + ", ".join(ASSOCIATIONS) + ".")
    bot: StrictBool | None = Field(None, description="true: the author is a bot account (login ends in [bot]).")

    _v_not_teams = field_validator("not_teams")(_check_teams)

    @field_validator("associations")
    @classmethod
    def _v_assoc(cls, value: list[str]) -> list[str]:
        upper = [v.upper() for v in value]
        for v in upper:
            if v not in ASSOCIATIONS:
                raise ValueError(f"{v!r} is not an author association (use {', '.join(ASSOCIATIONS)})")
        return upper

    def is_anyone(self) -> bool:
        return super().is_anyone() and not self.associations


# ---------------------------------------------------------------------------------------------- conditions
class LabelMatch(_Strict):
    any: Names | None = Field(None, description="At least one of these labels is present.")
    all: Names | None = Field(None, description="Every one of these labels is present.")
    none: Names | None = Field(None, description="None of these labels is present.")

    @model_validator(mode="after")
    def _something(self) -> LabelMatch:
        if not (self.any or self.all or self.none):
            raise ValueError("give any, all or none")
        return self


class TitleMatch(_Strict):
    matches: str | None = Field(None, description="Python regular expression searched in the title.")
    not_matches: str | None = None

    @field_validator("matches", "not_matches")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _something(self) -> TitleMatch:
        if self.matches is None and self.not_matches is None:
            raise ValueError("give matches or not_matches")
        return self


class LinesChanged(_Strict):
    over: int | None = Field(None, ge=0, description="Additions + deletions strictly greater than this.")
    under: int | None = Field(None, ge=0, description="Additions + deletions strictly less than this.")

    @model_validator(mode="after")
    def _something(self) -> LinesChanged:
        if self.over is None and self.under is None:
            raise ValueError("give over or under")
        return self


def _labels_shorthand(value: Any) -> Any:
    if isinstance(value, list):
        return {"any": value}
    if isinstance(value, str):
        raise _err("expected a list of labels or a mapping {any, all, none}, got a string")
    return value


def _title_shorthand(value: Any) -> Any:
    return {"matches": value} if isinstance(value, str) else value


def _risk_list(value: Any) -> Any:
    value = [value] if isinstance(value, str) else value
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _err(f"expected a risk tier ({', '.join(RISK_TIERS)}) or a list of them, got {_kind(value)}")
    for v in value:
        if v not in RISK_TIERS:
            raise _err(f"unknown risk tier {v!r} (use {', '.join(RISK_TIERS)})")
    return value


class Condition(_Strict):
    """When a rule applies. Every key given must match (and); ``any``/``all``/``not`` compose conditions.

    In a ``risk`` tier the keys are signals instead: the tier applies when *any* of them matches.
    """

    files: Globs | None = Field(None, description="Gitignore-style globs; matches when any changed file (or the "
                                                  "old name of a renamed file) matches. '!' negates.")
    only_files: Globs | None = Field(None, description="Matches when every changed file matches these globs.")
    labels: Annotated[LabelMatch | None, BeforeValidator(_labels_shorthand)] = Field(
        None, json_schema_extra=_also({"type": "array", "items": {"type": "string"}}),
        description="A list (any of these labels) or {any, all, none}.")
    author: AuthorCondition | None = None
    base: Annotated[list[str] | None, BeforeValidator(_list_of_str("branch globs", allow_single=True))] = Field(
        None, json_schema_extra=_also({"type": "string"}),
        description="Target branch name or fnmatch glob (release/*), or a list of them.")
    draft: StrictBool | None = Field(None, description="true: only draft PRs; false: only ready PRs.")
    title: Annotated[TitleMatch | None, BeforeValidator(_title_shorthand)] = Field(
        None, json_schema_extra=_also({"type": "string"}),
        description="A regular expression the title must contain, or {matches, not_matches}.")
    lines_changed: LinesChanged | None = None
    risk: Annotated[list[str] | None, BeforeValidator(_risk_list)] = Field(
        None, json_schema_extra=_also({"type": "string", "enum": list(RISK_TIERS)}),
        description="The PR's risk tier is one of these (high, medium, low).")
    any: list[Condition] | None = Field(None, description="At least one of these conditions matches.")
    all: list[Condition] | None = Field(None, description="Every one of these conditions matches.")
    not_: Condition | None = Field(None, alias="not", description="This condition does not match.")

    _v_files = field_validator("files", "only_files")(_check_globs)

    def is_empty(self) -> bool:
        return not self.set_keys()


class RiskTiers(_Strict):
    """Signals that put a PR in a tier (any signal suffices). The highest matching tier wins; else ``low``."""

    high: Condition | None = None
    medium: Condition | None = None


# ---------------------------------------------------------------------------------------------- requirements
class CIRequirement(_Strict):
    workflows: Names = Field(default_factory=list, description="GitHub Actions workflow names (the name: key).")
    checks: Names = Field(default_factory=list, description="Check-run names or commit-status contexts.")
    conclusions: Annotated[list[str], BeforeValidator(_list_of_str("conclusions"))] = Field(
        default_factory=lambda: ["success", "neutral", "skipped"],
        description="Conclusions that count as passing (GitHub's required checks accept these three).")

    @field_validator("conclusions")
    @classmethod
    def _v_conclusions(cls, value: list[str]) -> list[str]:
        for v in value:
            if v not in CONCLUSIONS:
                raise ValueError(f"{v!r} is not a conclusion (use {', '.join(CONCLUSIONS)})")
        return value

    @model_validator(mode="after")
    def _something(self) -> CIRequirement:
        if not (self.workflows or self.checks):
            raise ValueError("give workflows or checks")
        return self


class Approvers(Actors):
    """``Actors`` plus ``codeowners``: every changed file needs an approval from one of its owners."""

    codeowners: StrictBool = Field(False, description="true: for every changed file, an approval from one of its "
                                                      "owners per the base branch's CODEOWNERS (.github/, root or "
                                                      "docs/, first found). Team owners need the governance token. "
                                                      "Not combinable with users, teams, approvers or permission.")

    @model_validator(mode="after")
    def _alone(self) -> Approvers:
        if self.codeowners and not super().is_anyone():
            raise ValueError("codeowners: true cannot be combined with users, teams, approvers or permission "
                             "(add a second approvals requirement under all: instead)")
        return self

    def is_anyone(self) -> bool:
        return super().is_anyone() and not self.codeowners


class InvalidateOnPush(_Strict):
    """``invalidate_on_push`` as a mapping: approvals of an older head count again when its diff is the same."""

    except_same_diff: StrictBool = Field(False, description="An approval of an older head still counts when the "
                                                            "PR's diff is the same as when it was given (same "
                                                            "files, same contents on both sides: docs/policy.md).")


def _bool_or_mapping(value: Any) -> Any:
    if isinstance(value, bool | dict):
        return value
    raise _err(f"expected true, false or {{except_same_diff: true}}, got {_kind(value)}")


class ApprovalRequirement(_Strict):
    count: int = Field(1, ge=1, description="How many distinct reviewers must approve.")
    from_: Approvers | None = Field(None, alias="from", description="Who counts (default: any reviewer but the "
                                                                    "author; bots only when listed by name).")
    invalidate_on_push: Annotated[StrictBool | InvalidateOnPush, BeforeValidator(_bool_or_mapping)] = Field(
        False, description="true: only approvals of the current head commit count; {except_same_diff: true}: also "
                           "approvals of an older head whose diff is the same as the current one.")
    allow_author: StrictBool = Field(False, description="Whether the PR author's own approval counts.")
    distinct_teams: int | None = Field(None, ge=1, description="The counted approvals must come from at least this "
                                                               "many different teams of from.teams (each approver "
                                                               "counts for one team).")

    @model_validator(mode="after")
    def _teams(self) -> ApprovalRequirement:
        if self.distinct_teams is not None:
            teams = self.from_.teams if self.from_ is not None else []
            if len(teams) < self.distinct_teams:
                raise ValueError(f"distinct_teams: {self.distinct_teams} needs at least that many teams in from.teams")
            if self.distinct_teams > self.count:
                raise ValueError(f"distinct_teams ({self.distinct_teams}) cannot exceed count ({self.count})")
        return self

    @property
    def invalidates(self) -> bool:
        return self.invalidate_on_push is True or isinstance(self.invalidate_on_push, InvalidateOnPush)

    @property
    def except_same_diff(self) -> bool:
        return isinstance(self.invalidate_on_push, InvalidateOnPush) and self.invalidate_on_push.except_same_diff


class LabelRequirement(_Strict):
    name: str = Field(min_length=1)
    added_by: Actors | None = Field(None, description="Who may add it. A label added by anyone else (or whose "
                                                      "adder cannot be determined) fails the requirement.")


def _label_shorthand(value: Any) -> Any:
    return {"name": value} if isinstance(value, str) else value


class ChangesRequestedRequirement(_Strict):
    from_: Actors | None = Field(None, alias="from", description="Only change requests from these people count.")


class LinkedIssueRequirement(_Strict):
    verify: StrictBool = Field(True, description="Check that the referenced issue exists (and is not a PR).")


class Gate(_Strict):
    """An external reviewer: gets the PR, its diff and the record as JSON, answers allow or block."""

    name: str | None = Field(None, description="Shown in results and metadata (default: the command or URL).")
    command: str | None = Field(None, description="Run (no shell) in the base-branch checkout; JSON on stdin, "
                                                  "the verdict as JSON on stdout.")
    url: str | None = Field(None, description="POSTed the JSON; answers the verdict as JSON.")
    headers: dict[str, str] = Field(default_factory=dict, description="HTTP headers; ${VAR} expands from the "
                                                                      "environment.")
    timeout: float = Field(60, gt=0, le=3600, description="Seconds.")
    on_timeout: Literal["block", "allow"] = Field("block", description="Fail-closed by default.")
    max_diff_bytes: int = Field(1_000_000, ge=0, description="The diff is truncated beyond this.")

    @field_validator("url")
    @classmethod
    def _v_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("expected an http:// or https:// URL")
        return value

    @model_validator(mode="after")
    def _one(self) -> Gate:
        if (self.command is None) == (self.url is None):
            raise ValueError("give exactly one of command or url")
        return self

    @property
    def display_name(self) -> str:
        return self.name or self.command or self.url or "gate"


class Requirement(_Strict):
    """What a rule needs. Every key given must hold (and); ``any:``/``all:`` combine lists of requirements."""

    ci: CIRequirement | None = None
    approvals: ApprovalRequirement | None = None
    label: Annotated[LabelRequirement | None, BeforeValidator(_label_shorthand)] = Field(
        None, json_schema_extra=_also({"type": "string"}), description="A label name or {name, added_by}.")
    no_labels: Names | None = Field(None, description="None of these labels may be present (e.g. do-not-merge).")
    no_changes_requested: Annotated[ChangesRequestedRequirement | None,
                                    BeforeValidator(_true_or_mapping("no_changes_requested"))] = Field(
        None, json_schema_extra=_also({"const": True}),
        description="true, or {from}: no reviewer's latest review requests changes.")
    linked_issue: Annotated[LinkedIssueRequirement | None, BeforeValidator(_true_or_mapping("linked_issue"))] = Field(
        None, json_schema_extra=_also({"const": True}),
        description="The body closes an issue (Fixes #12, closes owner/repo#3).")
    gate: Gate | None = None
    guard: str | None = Field(None, description="module:function from the base-branch checkout, called with "
                                                "(record, previous_state, new_state, trigger).")
    any: list[Requirement] | None = Field(None, description="At least one of these holds.")
    all: list[Requirement] | None = Field(None, description="Every one of these holds.")

    @field_validator("guard")
    @classmethod
    def _v_guard(cls, value: str | None) -> str | None:
        if value is not None and not _GUARD.match(value):
            raise ValueError("expected module:function (dotted module name, no path)")
        return value

    @field_validator("any", "all")
    @classmethod
    def _v_nonempty(cls, value: list[Requirement] | None) -> list[Requirement] | None:
        if value is not None and not value:
            raise ValueError("must not be empty")
        return value

    @model_validator(mode="after")
    def _something(self) -> Requirement:
        if not self.set_keys():
            raise ValueError("empty requirement: give ci, approvals, label, no_labels, no_changes_requested, "
                             "linked_issue, gate, guard, any or all")
        return self


def _rule_name_node(value: Any) -> Any:
    return {"rule": value} if isinstance(value, str) else value


class PolicyNode(_Strict):
    """How rules combine: a rule name, or ``{all: [...]}`` / ``{any: [...]}`` of nodes."""

    rule: str | None = None
    all: list[Annotated[PolicyNode, BeforeValidator(_rule_name_node)]] | None = None
    any: list[Annotated[PolicyNode, BeforeValidator(_rule_name_node)]] | None = None

    @model_validator(mode="after")
    def _one(self) -> PolicyNode:
        if len(self.set_keys()) != 1:
            raise ValueError("give exactly one of: a rule name, all, any")
        if self.all == [] or self.any == []:
            raise ValueError("must not be empty")
        return self

    def names(self) -> Iterator[str]:
        if self.rule is not None:
            yield self.rule
        for child in (self.all or []) + (self.any or []):
            yield from child.names()


class Rule(_Strict):
    name: str = Field(min_length=1, max_length=200)
    description: str | None = None
    if_: Condition | None = Field(None, alias="if", description="When the rule applies (always if omitted).")
    require: Requirement


class Options(_Strict):
    fail_job_when_blocked: StrictBool = Field(True, description="The Action's job fails when the verdict is block.")
    no_rule_applies: Literal["pass", "block"] = Field(
        "pass", description="The verdict when every rule is skipped (block: default-deny).")
    code_dir: str = Field(".github/loopforge", description="Directory of the base branch holding guard modules and "
                                                           "gate scripts (the Action fetches only this from the base "
                                                           "branch; guard modules are imported from it).")

    @field_validator("code_dir")
    @classmethod
    def _v_path(cls, value: str) -> str:
        if value.startswith("/") or ".." in Path(value).parts:
            raise ValueError("must be a relative path inside the repository")
        return value


class Disapproval(_Strict):
    """A change request from one of these people blocks every merge until that person approves or the review is
    dismissed (a rule named ``disapproval`` that always applies, outside ``policy``)."""

    from_: Actors = Field(alias="from", description="Who may disapprove.")


EXTENDS_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}:[^@\s:][^@\s]*@[^\s@]+$"


class Policy(_Strict):
    """The whole file."""

    version: Literal[1] = Field(description="Always 1.")
    extends: str | None = Field(None, json_schema_extra={"pattern": EXTENDS_PATTERN},
                                description="owner/repo:path@ref of a shared policy this file is merged over "
                                            "(docs/policy.md, \"Shared policies\"). Reading another repository "
                                            "needs the governance token.")
    disapproval: Disapproval | None = None
    risk: RiskTiers = Field(default_factory=RiskTiers)
    approvers: dict[str, Annotated[list[str], BeforeValidator(_list_of_str("logins"))]] = Field(
        default_factory=dict, description="Named approver lists kept in the policy (logins).")
    rules: list[Rule] = Field(default_factory=list)
    policy: Annotated[PolicyNode | None, BeforeValidator(_rule_name_node)] = Field(
        None, description="How rules combine (default: all rules must pass; skipped rules do not count).")
    guards: list[str] = Field(default_factory=list, description="module:function guards run on every transition.")
    options: Options = Field(default_factory=Options)

    _source: str = PrivateAttr(default=DEFAULT_POLICY_PATH)
    _digest: str = PrivateAttr(default="")
    _parts: list[dict[str, str]] = PrivateAttr(default_factory=list)

    @field_validator("extends")
    @classmethod
    def _v_extends(cls, value: str | None) -> str | None:
        if value is not None and not re.match(EXTENDS_PATTERN, value):
            raise ValueError(f"expected owner/repo:path@ref (e.g. acme/.github:loopforge/base.yml@main), got "
                             f"{value[:100]!r}")
        return value

    @field_validator("approvers")
    @classmethod
    def _v_approvers(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, logins in value.items():
            if not logins:
                raise ValueError(f"approver list {name!r} is empty")
            _check_logins(logins)
        return value

    @field_validator("guards")
    @classmethod
    def _v_guards(cls, value: list[str]) -> list[str]:
        for g in value:
            if not _GUARD.match(g):
                raise ValueError(f"{g!r}: expected module:function (dotted module name, no path)")
        return value

    @property
    def source(self) -> str:
        return self._source

    @property
    def digest(self) -> str:
        """sha256 of the policy text it was loaded from (names the policy version in the trail)."""
        return self._digest

    @property
    def parts(self) -> list[dict[str, str]]:
        """``[{source, sha256}]`` of every file the policy was built from (the shared one first)."""
        return list(self._parts) or [{"source": self._source, "sha256": self._digest}]

    def uses_diff_fingerprints(self) -> bool:
        """Whether any approvals requirement keeps approvals of an unchanged diff (``except_same_diff``)."""
        return any(r.approvals is not None and r.approvals.except_same_diff
                   for i, rule in enumerate(self.rules) for _, r in _walk_requirements(rule.require, str(i)))

    def rule(self, name: str) -> Rule:
        for r in self.rules:
            if r.name == name:
                return r
        raise KeyError(name)


# ---------------------------------------------------------------------------------------------- loading
class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (PyYAML silently keeps the last one)."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
        try:
            duplicate = key in seen
        except TypeError:
            raise yaml.constructor.ConstructorError(None, None, "unhashable key", key_node.start_mark) from None
        if duplicate:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)

_MESSAGES = {
    "missing": "required",
    "list_type": "expected a list",
    "string_type": "expected a string",
    "int_type": "expected an integer",
    "int_parsing": "expected an integer",
    "int_from_float": "expected an integer",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "dict_type": "expected a mapping",
    "model_type": "expected a mapping",
    "model_attributes_type": "expected a mapping",
}


def _format_loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith("function-") or part in ("PolicyNode",):
            continue
        else:
            out += ("." if out else "") + part
    return out


def _describe_error(error: Any) -> tuple[str, str]:
    """One pydantic error as (key path, problem)."""
    loc = tuple(error.get("loc", ()))
    ctx = error.get("ctx") or {}
    kind = error["type"]
    if kind == "unknown_key":
        loc = (*loc, str(ctx.get("key")))
    problem: str
    if kind in _MESSAGES:
        problem = _MESSAGES[kind]
        if kind != "missing":
            problem += f", got {_kind(error.get('input'))}"
    elif kind == "literal_error":
        problem = f"expected one of {ctx.get('expected')}, got {error.get('input')!r}"
    elif kind == "value_error":
        problem = str(error["msg"]).removeprefix("Value error, ")
    elif kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        op = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}[kind]
        bound = next(iter(ctx.values()), "?")
        problem = f"must be {op} {bound}, got {error.get('input')!r}"
    elif kind in ("too_short", "string_too_short"):
        problem = "must not be empty"
    else:
        problem = str(error["msg"])
    return _format_loc(loc), problem


def _joined(source: str, problems: list[tuple[str, str]]) -> PolicyError:
    """Every problem on one line: ``source: path: problem; path: problem; ...`` (duplicates dropped)."""
    unique = list(dict.fromkeys(problems))
    first_path, first_problem = unique[0]
    rest = "".join(f"; {path + ': ' if path else ''}{problem}" for path, problem in unique[1:])
    return PolicyError(source, first_path, first_problem + rest)


def _from_validation_error(exc: ValidationError, source: str) -> PolicyError:
    return _joined(source, [_describe_error(error) for error in exc.errors(include_url=False)])


def _walk_requirements(req: Requirement, path: str) -> Iterator[tuple[str, Requirement]]:
    yield path, req
    for key in ("all", "any"):
        for i, child in enumerate(getattr(req, key) or []):
            yield from _walk_requirements(child, f"{path}.{key}[{i}]")


def _walk_conditions(cond: Condition, path: str) -> Iterator[tuple[str, Condition]]:
    yield path, cond
    for key in ("all", "any"):
        for i, child in enumerate(getattr(cond, key) or []):
            yield from _walk_conditions(child, f"{path}.{key}[{i}]")
    if cond.not_ is not None:
        yield from _walk_conditions(cond.not_, f"{path}.not")


def _cross_check(policy: Policy, source: str) -> None:
    """Checks that span keys: approver references, rule names, risk tiers that would refer to themselves.
    Raises one ``PolicyError`` listing every problem found."""
    problems: list[tuple[str, str]] = []

    def approvers_exist(actors: Actors | None, path: str) -> None:
        for name in (actors.approvers if actors else []):
            if name not in policy.approvers:
                defined = ", ".join(policy.approvers) or "none"
                problems.append((f"{path}.approvers", f"unknown approver list {name!r} (defined: {defined})"))

    for tier in ("high", "medium"):
        cond = getattr(policy.risk, tier)
        if cond is None:
            continue
        for path, c in _walk_conditions(cond, f"risk.{tier}"):
            if c.risk is not None:
                problems.append((f"{path}.risk", "a risk tier cannot depend on the risk tier"))
            approvers_exist(c.author, f"{path}.author")
    names: dict[str, int] = {}
    for i, rule in enumerate(policy.rules):
        if rule.name in names:
            problems.append((f"rules[{i}].name",
                             f"duplicate rule name {rule.name!r} (also rules[{names[rule.name]}])"))
        names[rule.name] = i
        if rule.if_ is not None:
            for path, c in _walk_conditions(rule.if_, f"rules[{i}].if"):
                approvers_exist(c.author, f"{path}.author")
        for path, r in _walk_requirements(rule.require, f"rules[{i}].require"):
            if r.approvals is not None:
                approvers_exist(r.approvals.from_, f"{path}.approvals.from")
            if r.label is not None:
                approvers_exist(r.label.added_by, f"{path}.label.added_by")
            if r.no_changes_requested is not None:
                approvers_exist(r.no_changes_requested.from_, f"{path}.no_changes_requested.from")
    if policy.disapproval is not None:
        approvers_exist(policy.disapproval.from_, "disapproval.from")
        if "disapproval" in names:
            raise PolicyError(source, f"rules[{names['disapproval']}].name",
                              "the rule name 'disapproval' is taken by the top-level disapproval key")
    if policy.policy is not None:
        used = list(policy.policy.names())
        for name in used:
            if name not in names:
                close = difflib.get_close_matches(name, list(names), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                problems.append(("policy", f"unknown rule {name!r}{hint}"))
        for name, i in names.items():
            if name not in used:
                problems.append((f"rules[{i}]", f"rule {name!r} is not used in policy"))
    if problems:
        raise _joined(source, problems)


def parse_policy_yaml(text: str, source: str = DEFAULT_POLICY_PATH) -> dict[str, Any]:
    """The top-level mapping of a policy file (duplicate keys refused). Raises ``PolicyError``."""
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise PolicyError(where, "", f"invalid YAML: {exc.problem or exc.context or 'cannot parse'}") from None
    except yaml.YAMLError as exc:
        raise PolicyError(source, "", f"invalid YAML: {exc}") from None
    except RecursionError:  # PyYAML composes nested collections recursively
        raise PolicyError(source, "", "invalid YAML: collections nested too deeply") from None
    if data is None:
        raise PolicyError(source, "", "the policy is empty (start with version: 1)")
    if not isinstance(data, dict):
        raise PolicyError(source, "", f"expected a mapping at the top level, got {_kind(data)}")
    return data


def build_policy(data: dict[str, Any], source: str, digest: str, *, cross_check: bool = True) -> Policy:
    """Validate a parsed policy mapping. ``cross_check=False`` skips references that another file may satisfy
    (a file with ``extends`` checked on its own)."""
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        raise _from_validation_error(exc, source) from None
    if cross_check:
        _cross_check(policy, source)
    policy._source = source
    policy._digest = digest
    return policy


def load_policy(text: str, source: str = DEFAULT_POLICY_PATH) -> Policy:
    """Parse and validate a policy. Raises ``PolicyError`` (one line naming the key and the problem).

    A file with ``extends`` is checked on its own here (its shape; references to the shared file are not
    resolved): ``loopforge.policy.extends.load_extended`` reads the shared policy and merges.
    """
    data = parse_policy_yaml(text, source)
    return build_policy(data, source, hashlib.sha256(text.encode("utf-8")).hexdigest(),
                        cross_check="extends" not in data)


def load_policy_file(path: str | Path, source: str | None = None) -> Policy:
    """Read and load a policy file (``source`` defaults to the path as given)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(source or str(path), "", f"cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    return load_policy(text, source or str(path))


def policy_json_schema() -> dict[str, Any]:
    """The JSON Schema of the policy file, for editors (committed as ``loopforge/schemas/policy.schema.json``)."""
    schema = Policy.model_json_schema(by_alias=True, mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "LoopForge policy (.github/loopforge.yml)",
        **{k: v for k, v in schema.items() if k != "title"},
    }


def policy_json_schema_text() -> str:
    return json.dumps(policy_json_schema(), indent=2, sort_keys=True) + "\n"
