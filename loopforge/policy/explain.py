"""``loopforge policy explain --pr owner/repo#N``: the verdict the Action would give on this PR now, rule by rule,
with every fact it read.

No second implementation: the PR is routed to its record with the Action's ``route``, the policy is loaded by
the Action's ``governance.load`` (base branch, ``extends``, guards, gates), the record is read from the same
store, and the verdict is the Action's ``evaluate_gate`` (lifecycle gate + policy) run against a read-only
overlay of that store: nothing is written, no check run is posted. Facts are read through a recording proxy of
the policy's facts interface, and every read is printed.

Exit codes: 0 the verdict is pass, 1 block, 2 bad input (a malformed reference, no token, no such PR, an API
error).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO, cast

from loopforge.errors import InputError
from loopforge.policy.context import ChangedFile, CheckState, PullRequestContext, Review
from loopforge.policy.model import DEFAULT_POLICY_PATH
from loopforge.policy.predicates import safe

if TYPE_CHECKING:
    from loopforge.policy.evaluate import Evaluation

_REF = re.compile(r"^(?P<repo>[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100})#(?P<n>[1-9]\d{0,9})$")
_URL = re.compile(r"^https://[^/\s]+/(?P<repo>[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100})"
                  r"/pull/(?P<n>[1-9]\d{0,9})/?$")
MAX_SHOWN = 50  # items listed per fact; the rest is counted


def parse_pr_ref(text: str) -> tuple[str, int]:
    """``owner/repo#N`` (or a pull request URL) as ``(repo, number)``; ``InputError`` with the accepted forms."""
    m = _REF.match(text.strip()) or _URL.match(text.strip())
    if m is None:
        raise InputError(f"--pr {safe(text, 100)!r}: expected owner/repo#N (e.g. octo/app#12) or a pull request "
                         f"URL (https://github.com/octo/app/pull/12)")
    return m["repo"], int(m["n"])


def _show(value: Any) -> str:
    """A fact, briefly and safely (PR-controlled text is cleaned by ``safe``)."""
    if isinstance(value, ChangedFile):
        extra = f" from {value.previous_filename}" if value.previous_filename else ""
        return safe(f"{value.filename} ({value.status}{extra}, +{value.additions}/-{value.deletions})", 300)
    if isinstance(value, Review):
        when = value.submitted_at.isoformat() if value.submitted_at else "?"
        return safe(f"{value.user} {value.state} on {(value.commit_id or '?')[:7]} at {when}", 300)
    if isinstance(value, CheckState):
        return safe(f"{value.kind} {value.name}: {value.status}/{value.conclusion}", 300)
    if isinstance(value, Mapping):
        items = list(value.items())
        shown = [f"{safe(str(k), 200)}: {_show(v)}" for k, v in items[:MAX_SHOWN]]
        more = [f"… {len(items) - MAX_SHOWN} more"] if len(items) > MAX_SHOWN else []
        return "{" + "; ".join(shown + more) + "}"
    if isinstance(value, list | tuple):
        shown = [_show(v) for v in value[:MAX_SHOWN]]
        more = [f"… {len(value) - MAX_SHOWN} more"] if len(value) > MAX_SHOWN else []
        return "[" + "; ".join(shown + more) + "]"
    if isinstance(value, str):
        return safe(value if "\n" not in value else f"{len(value.splitlines())} lines", 200)
    return safe(repr(value), 200)


@dataclass
class FactLog:
    """Every fact read through ``Recording``, in order, once per distinct read."""

    reads: list[tuple[str, str]] = field(default_factory=list)
    _seen: set[str] = field(default_factory=set)

    def add(self, name: str, value: str) -> None:
        if name not in self._seen:
            self._seen.add(name)
            self.reads.append((name, value))


class Recording:
    """A ``PullRequestContext`` proxy that logs every property read and method call with its answer (or the
    reason it could not be read). It changes nothing: the same object answers."""

    def __init__(self, inner: PullRequestContext, log: FactLog) -> None:
        self._inner = inner
        self._log = log

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)
        if not callable(value):
            self._log.add(name, _show(value))
            return value
        method = cast(Callable[..., Any], value)

        def call(*args: Any) -> Any:
            label = f"{name}({', '.join(safe(str(a), 80) for a in args)})" if args else name
            try:
                result = method(*args)
            except Exception as exc:
                self._log.add(label, f"not read: {safe(str(exc), 300)}")
                raise
            self._log.add(label, _show(result))
            return result

        return call


@dataclass
class Explanation:
    verdict: str  # pass / block
    lines: list[str]

    @property
    def exit_code(self) -> int:
        return 0 if self.verdict == "pass" else 1


def explain_pr(ref: str, env: Mapping[str, str], *, policy_path: str = DEFAULT_POLICY_PATH,
               state_branch: str = "loopforge-state", governance_token: str = "") -> Explanation:
    """The Action's verdict for pull request ``ref`` now (token from ``GITHUB_TOKEN``/``GH_TOKEN``,
    ``GITHUB_API_URL`` honoured). Raises ``InputError`` for bad input; API errors propagate."""
    from loopforge.action import governance as gov
    from loopforge.action.govern import evaluate_gate
    from loopforge.github.client import make_github
    from loopforge.github.events import Event
    from loopforge.github.lookup import GitHubLookup
    from loopforge.github.recorder import route
    from loopforge.repository.branch import BranchRepository
    from loopforge.repository.overlay import OverlayRepository
    from loopforge.service import LoopService

    repo, number = parse_pr_ref(ref)
    token = env.get("GITHUB_TOKEN") or env.get("GH_TOKEN") or ""
    if not token:
        raise InputError("no token: set GITHUB_TOKEN or GH_TOKEN to a token that can read the pull request")
    api_url = env.get("GITHUB_API_URL") or "https://api.github.com"
    server_url = env.get("GITHUB_SERVER_URL") or "https://github.com"
    gh = make_github(token, api_url)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        gh_repo = gh.get_repo(repo, lazy=True)
    lookup = GitHubLookup(gh_repo)
    pr = lookup.get_pull(number)
    if pr is None:
        raise InputError(f"{repo}#{number}: no such pull request (or the token cannot see it)")
    routed = route(Event(name="pull_request", action="explain", repo=repo, pull_request=pr), lookup, server_url)
    assert routed is not None  # a pull request always routes
    store = OverlayRepository(BranchRepository(gh_repo, branch=state_branch))  # reads only; writes stay local
    head = store.head(routed.record_id)
    governance = gov.load(gh_repo, pr.base.ref, number, policy_path, head=head,
                          governance_token=governance_token or env.get("LOOPFORGE_GOVERNANCE_TOKEN", ""),
                          api_url=api_url)
    facts = FactLog()
    guard = governance.policy_guard
    if guard is not None:
        guard.ctx = cast(PullRequestContext, Recording(guard.ctx, facts))
    lines = [f"pull request {repo}#{number}: head {pr.head.sha[:7]} into {safe(pr.base.ref)}; "
             f"record {safe(routed.record_id)} ({head.state.value if head else 'not recorded yet'})"]
    service = LoopService(repository=store, guards=governance.guards)
    record = service.get(routed.record_id) if head is not None else None
    rows: Sequence[Any]
    stale: Sequence[Any] = []
    note: str | None = None
    if record is not None:
        gate = evaluate_gate(service, record, governance.rows, governance.note, governance.stale)
        if gate is None:
            lines.append(f"the record is {record.state.value}: no merge gate (the PR is not open)")
            return Explanation("pass" if record.state.value == "merged" else "block", lines)
        verdict, rows, stale, note = gate.verdict, gate.view.rows, gate.view.stale, gate.view.note
    else:
        # no event recorded yet: the Action would create the record in pr_created, where merging is pending
        from loopforge.github.render import GateRow

        if guard is not None:
            guard.evaluate(None)
        lifecycle = GateRow(rule="lifecycle", status="pending", reason="no event of this PR has been recorded yet; "
                                                                     "the Action records it as pr_created")
        rows, note, stale = [lifecycle, *governance.rows()], governance.note(), governance.stale()
        verdict = "block"
    lines.append(f"policy: {governance.source or 'none'}" + (f" — {safe(note, 500)}" if note else ""))
    if governance.error:
        lines.append(f"policy error: {safe(governance.error, 500)}")
    lines.append("facts read:")
    lines += [f"  {name}: {value}" for name, value in facts.reads] or ["  (none: no policy rules)"]
    lines += _fingerprint_line(governance.evaluation)
    lines.append("rules:")
    lines += [f"  [{r.status}] {safe(r.rule, 200)}: {safe(r.reason, 1000)}" for r in rows]
    for item in stale:
        lines.append(f"  stale approval: {safe(item.login)} approved {item.commit[:7]} ({safe(item.why, 200)})")
    lines.append(f"verdict: {verdict}")
    return Explanation(verdict, lines)


_FROM = {"read": "from the blob ids read above", "record": "kept in the record for this head"}


def _fingerprint_line(evaluation: Evaluation | None) -> list[str]:
    """The diff fingerprint the evaluation used and where it came from (policies with ``except_same_diff``)."""
    fingerprint = evaluation.diff_fingerprint if evaluation is not None else None
    if not fingerprint:
        return []
    value = fingerprint.get("value")
    shown = str(value)[:12] if value else f"none ({safe(str(fingerprint.get('why') or ''), 200)})"
    return [f"  diff_fingerprint: {shown}, {_FROM.get(str(fingerprint.get('source')), 'read')}"]


def run(ref: str, env: Mapping[str, str], out: TextIO, **kw: Any) -> int:
    """The CLI body: print the explanation, return 0 (pass) or 1 (block). Bad input raises ``InputError``; a
    GitHub failure raises the ``GitHubError`` it means (the command line prints either as one line, exit 2)."""
    import requests
    from github import GithubException

    from loopforge.github.client import github_error

    try:
        explanation = explain_pr(ref, env, **kw)
    except (GithubException, requests.RequestException) as exc:
        raise github_error(exc, f"reading {safe(ref, 100)}") from None
    out.write("\n".join(explanation.lines) + "\n")
    return explanation.exit_code
