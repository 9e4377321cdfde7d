"""One policy for an organisation: ``extends: <owner>/<repo>:<path>@<ref>`` merges the local file over a shared one.

Merge rules (docs/policy.md, "Shared policies"), applied to the parsed files before validation:

* ``version``: both files say 1. The shared file may not itself use ``extends`` (one level, as policy-bot's
  ``remote``) nor name ``guards`` (guard modules are imported from *this* repository's base branch).
* ``rules``: by name. A local rule with the name of a shared rule replaces it where it stands; other local rules
  are appended after the shared ones.
* ``approvers``: by list name. Lists with the same name are merged (shared logins first, then the local ones not
  already there); other lists are added.
* ``risk``: by tier (``high``, ``medium``): a tier given locally replaces the shared tier.
* ``policy``: the local node if given; else the shared node, and local rules that the shared file does not
  name are added beside it (``{all: [shared node, new rule, ...]}``); else none (every rule must pass).
* ``options``: key by key, the local value wins. ``disapproval``: the local one replaces the shared one.
* ``guards``: the local list.

The merged policy's ``digest`` is the sha256 of ``"<shared sha256>\\n<local sha256>"`` and ``parts`` lists each
file's own sha256: the trail's ``policy.evaluated`` evidence and the check-run summary name both.

Reading the shared file is the caller's job (``fetch``): with ``GITHUB_TOKEN`` a read of another repository
fails (404), so the Action reads it with the governance token; a read that fails raises
``SharedPolicyUnreadable`` naming the permission, and the Action blocks with an ``::error``.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from loopforge.policy.model import (
    DEFAULT_POLICY_PATH,
    EXTENDS_PATTERN,
    Policy,
    PolicyError,
    build_policy,
    parse_policy_yaml,
)


@dataclass(frozen=True)
class SharedRef:
    """``owner/repo:path@ref``."""

    repo: str
    path: str
    ref: str

    @classmethod
    def parse(cls, spec: str) -> SharedRef:
        if not re.match(EXTENDS_PATTERN, spec):
            raise ValueError(f"expected owner/repo:path@ref, got {spec[:100]!r}")
        repo, _, rest = spec.partition(":")
        path, _, ref = rest.rpartition("@")
        return cls(repo, path.strip("/"), ref)

    def display(self) -> str:
        return f"{self.repo}:{self.path}@{self.ref}"


class SharedPolicyUnreadable(PolicyError):
    """The shared policy cannot be read; ``permission`` names what the token lacks."""

    def __init__(self, ref: SharedRef, source: str, detail: str, permission: str) -> None:
        self.ref = ref
        self.permission = permission
        super().__init__(source, "extends", f"cannot read the shared policy {ref.display()}: {detail} (needs "
                                            f"{permission})")


#: ``fetch(ref) -> text`` reads a shared policy; it raises ``SharedPolicyUnreadable`` when it cannot.
Fetch = Callable[[SharedRef], str]


def _names(rules: Any) -> list[str]:
    return [str(r.get("name")) for r in rules if isinstance(r, dict)] if isinstance(rules, list) else []


def _merge_keys(out: dict[str, Any], key: str, shared: dict[str, Any], local: dict[str, Any]) -> None:
    """``out[key]``: both mappings merged key by key (the local one wins), else the local value, else the
    shared one; nothing when neither is set."""
    theirs, ours = shared.get(key), local.get(key)
    if isinstance(theirs, dict) and isinstance(ours, dict):
        out[key] = {**theirs, **ours}
    elif ours is not None or theirs is not None:
        out[key] = ours if ours is not None else theirs


def merge(shared: dict[str, Any], local: dict[str, Any]) -> dict[str, Any]:
    """The local file merged over the shared one (see the module docstring). Inputs are not modified."""
    shared = copy.deepcopy(shared)
    local = copy.deepcopy(local)
    out: dict[str, Any] = {"version": local.get("version", shared.get("version"))}
    # approvers: merged by list name
    approvers = dict(shared.get("approvers") or {}) if isinstance(shared.get("approvers"), dict) else {}
    local_approvers = local.get("approvers")
    if isinstance(local_approvers, dict):
        for name, logins in local_approvers.items():
            have = approvers.get(name)
            if isinstance(have, list) and isinstance(logins, list):
                seen = {str(x).lower() for x in have}
                approvers[name] = have + [x for x in logins if str(x).lower() not in seen]
            else:
                approvers[name] = logins
    elif local_approvers is not None:
        approvers = local_approvers  # the wrong shape: validation names it
    if approvers:
        out["approvers"] = approvers
    # risk: by tier
    _merge_keys(out, "risk", shared, local)
    # rules: by name
    shared_rules: list[Any] = shared["rules"] if isinstance(shared.get("rules"), list) else []
    local_rules: list[Any] = local["rules"] if isinstance(local.get("rules"), list) else []
    by_name = {str(r.get("name")): r for r in local_rules if isinstance(r, dict)}
    merged_rules = [by_name.pop(str(r.get("name")), r) if isinstance(r, dict) else r for r in shared_rules]
    merged_rules += [r for r in local_rules if not isinstance(r, dict) or str(r.get("name")) in by_name]
    if merged_rules or "rules" in local or "rules" in shared:
        out["rules"] = merged_rules if isinstance(local.get("rules", []), list) else local["rules"]
    # policy: local node, else the shared node plus the new local rules
    if local.get("policy") is not None:
        out["policy"] = local["policy"]
    elif shared.get("policy") is not None:
        added = [n for n in _names(local_rules) if n not in _names(shared_rules)]
        out["policy"] = {"all": [shared["policy"], *added]} if added else shared["policy"]
    # options: key by key
    _merge_keys(out, "options", shared, local)
    for key in ("disapproval",):
        value = local.get(key, shared.get(key))
        if value is not None:
            out[key] = value
    if "guards" in local:
        out["guards"] = local["guards"]
    for key, value in local.items():  # anything else (an unknown key) goes to validation, which names it
        if key not in out and key not in ("extends", "approvers", "risk", "rules", "policy", "options"):
            out[key] = value
    return out


def load_extended(text: str, source: str = DEFAULT_POLICY_PATH, *, fetch: Fetch) -> Policy:
    """Load a policy; when it has ``extends``, read the shared file with ``fetch`` and merge over it.

    Raises ``PolicyError`` (``SharedPolicyUnreadable`` when the shared file cannot be read).
    """
    local = parse_policy_yaml(text, source)
    local_digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    spec = local.get("extends")
    if spec is None:
        return build_policy(local, source, local_digest)
    build_policy(local, source, local_digest, cross_check=False)  # the local file's own shape first
    ref = SharedRef.parse(str(spec))
    shared_text = fetch(ref)
    shared_source = ref.display()
    shared = parse_policy_yaml(shared_text, shared_source)
    for key, problem in (("extends", "a shared policy cannot extend another (one level only)"),
                         ("guards", "a shared policy cannot name guards (they are imported from this "
                                    "repository's base branch)")):
        if key in shared:
            raise PolicyError(shared_source, key, problem)
    shared_digest = hashlib.sha256(shared_text.encode("utf-8")).hexdigest()
    build_policy(shared, shared_source, shared_digest, cross_check=False)
    merged = merge(shared, local)
    digest = hashlib.sha256(f"{shared_digest}\n{local_digest}".encode("ascii")).hexdigest()
    policy = build_policy(merged, f"{source} (extends {shared_source})", digest)
    policy._source = source
    policy._parts = [{"source": shared_source, "sha256": shared_digest}, {"source": source, "sha256": local_digest}]
    return policy
