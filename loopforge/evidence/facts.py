"""What LoopForge knows about one merge, as a plain typed object (``MergeFacts``), and how to read it from a
record's trail (``merge_facts_from_record``).

The facts come from the trail only: ``metadata.github.pr`` (head SHA, CI per workflow for that head, the latest
review per reviewer with their account id and the commit each review was for, author, merge commit, merged by and
when), the merge entry itself (its sequence, hash and outcome: ``violation`` for a merge the lifecycle or the
policy forbade), and the ``policy.evaluated`` note recorded with the merge (rule results, the policy's SHA-256).
Nothing here talks to GitHub or signs anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from loopforge.records import RecordHead
from loopforge.states import LoopState
from loopforge.trail import LoopTransition, Outcome

DEFAULT_POLICY_PATH = ".github/loopforge.yml"


class MergeFactsError(ValueError):
    """The trail holds no merge, or not enough of one to attest (e.g. no merge commit SHA recorded)."""


@dataclass(frozen=True)
class ReviewFact:
    """A reviewer's latest review of the pull request."""

    login: str
    state: str  # approved / changes_requested / dismissed
    submitted_at: str  # ISO 8601 UTC
    user_id: int | None = None  # the immutable account id
    commit_id: str | None = None  # the commit the review was for


@dataclass(frozen=True)
class CIFact:
    """One CI result (a workflow or check suite) recorded for the merged head."""

    name: str
    status: str  # passed / failed / pending
    at: str = ""
    run_id: int | None = None
    attempt: int | None = None
    url: str | None = None


@dataclass(frozen=True)
class PolicyFacts:
    """The policy that judged the merge: where it was read, its digest, the verdict and what it blocked on."""

    path: str = DEFAULT_POLICY_PATH
    base_commit: str | None = None  # the base commit the policy was read at, when recorded
    sha256: str | None = None  # None: no policy file (only the lifecycle gate applied)
    verdict: str = "none"  # pass / block / none (no policy)
    violations: tuple[str, ...] = ()  # "rule: reason" of each rule that blocked
    rules: tuple[tuple[str, str], ...] = ()  # (rule, status) of every rule
    error: str | None = None  # the policy could not be read or loaded


@dataclass(frozen=True)
class MergeFacts:
    """Everything the evidence of one merge states. Build it from the trail (``merge_facts_from_record``) or
    directly (tests, other callers)."""

    repo: str  # owner/name
    server_url: str  # https://github.com or a GitHub Enterprise Server URL
    base_ref: str  # the branch merged into, e.g. main
    merge_sha: str
    pr_number: int
    pr_title: str
    pr_author: str | None
    merged_by: str | None
    merged_at: str  # ISO 8601 UTC
    head_sha: str
    record_id: str
    merge_sequence: int
    merge_hash: str
    merge_outcome: str = "applied"  # applied / violation (the trail entry's outcome)
    merge_violation: str | None = None  # "rule: reason" of a violation entry
    pr_author_id: int | None = None
    merged_by_id: int | None = None
    pr_url: str | None = None
    linked_issue: str | None = None  # the record id when the record is the issue the PR closed
    reviews: tuple[ReviewFact, ...] = ()
    ci: tuple[CIFact, ...] = ()
    ci_sha: str | None = None  # the commit the CI results are for (the merged head when recorded)
    policy: PolicyFacts = field(default_factory=PolicyFacts)
    policy_sequence: int | None = None  # the policy.evaluated entry recorded with the merge
    policy_hash: str | None = None

    @property
    def passed(self) -> bool:
        """The gate passed at merge: the lifecycle allowed the merge and the policy (if any) said pass."""
        return (self.merge_outcome == Outcome.APPLIED.value and self.policy.verdict != "block"
                and self.policy.error is None)

    @property
    def approvals(self) -> list[ReviewFact]:
        return [r for r in self.reviews if r.state == "approved"]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _is_merge(entry: LoopTransition) -> bool:
    return entry.to_state is LoopState.MERGED and entry.outcome in (Outcome.APPLIED, Outcome.VIOLATION)


def _run_prefix(entry: LoopTransition) -> str | None:
    """``gh:<run id>:`` of an entry the Action wrote (its idempotency key), else None."""
    key = entry.idempotency_key or ""
    if not key.startswith("gh:"):
        return None
    parts = key.split(":", 2)
    return f"gh:{parts[1]}:" if len(parts) == 3 else None


def _policy_facts(entry: LoopTransition | None, pr: Mapping[str, Any], policy_path: str) -> PolicyFacts:
    if entry is None:
        return PolicyFacts(path=policy_path, base_commit=_str(pr.get("base_sha")))
    evaluation = entry.evidence.get("policy")
    if not isinstance(evaluation, dict):
        return PolicyFacts(path=policy_path, base_commit=_str(pr.get("base_sha")))
    source = _dict(evaluation.get("policy"))
    results = [r for r in evaluation.get("results") or [] if isinstance(r, dict)]
    blocking = {str(b) for b in evaluation.get("blocking") or []}
    violations = tuple(f"{r.get('name')}: {r.get('reason') or r.get('status')}" for r in results
                       if str(r.get("name")) in blocking)
    if evaluation.get("verdict") == "block" and not violations:
        violations = (f"policy: {evaluation.get('reason') or 'block'}",)
    return PolicyFacts(
        path=_str(source.get("source")) or policy_path,
        base_commit=_str(source.get("base_commit")) or _str(pr.get("base_sha")),
        sha256=_str(source.get("sha256")),
        verdict=str(evaluation.get("verdict") or "none"),
        violations=violations,
        rules=tuple((str(r.get("name")), str(r.get("status"))) for r in results),
    )


def merge_facts_from_record(head: RecordHead, entries: Iterable[LoopTransition], *,
                            server_url: str = "https://github.com", policy_path: str = DEFAULT_POLICY_PATH,
                            merge_sha: str | None = None) -> MergeFacts:
    """The facts of the (last) merge in a record's trail.

    ``entries`` must include the merge entry and every entry after it (the whole trail is fine; the Action can
    pass the entries it just wrote). The PR facts are the newest ``metadata.github`` at or before the merge entry
    (each event writes them whole), falling back to the head's. The policy facts come from the
    ``policy.evaluated`` note the same workflow run wrote after the merge, else the last one before it.
    ``merge_sha`` picks the merge whose facts name that commit (default: the last merge).
    Raises ``MergeFactsError`` when the trail holds no merge or no merge commit SHA.
    """
    listed = list(entries)
    candidates = _merges(head, listed)
    if not candidates:
        raise MergeFactsError(f"{head.record_id}: the trail holds no merge")
    chosen: tuple[int, dict[str, Any]] | None = None
    for index, pr in reversed(candidates):
        if pr and (merge_sha is None or pr.get("merge_commit_sha") == merge_sha):
            chosen = (index, pr)
            break
    if chosen is None:
        raise MergeFactsError(f"{head.record_id}: no merge of {merge_sha} in the trail" if merge_sha
                              else f"{head.record_id}: the merge entry has no pull request facts")
    index, pr = chosen
    if _str(pr.get("merge_commit_sha")) is None:
        raise MergeFactsError(f"{head.record_id}: the trail does not record the merge commit of PR "
                              f"#{pr.get('number')} (recorded before LoopForge kept merge commits)")
    return _facts_at(head, listed, index, pr, server_url, policy_path)


def all_merge_facts(head: RecordHead, entries: Iterable[LoopTransition], *,
                    server_url: str = "https://github.com",
                    policy_path: str = DEFAULT_POLICY_PATH) -> list[MergeFacts]:
    """The facts of every merge in a whole trail, oldest first (``merge_sha`` is "" for a merge recorded
    before LoopForge kept merge commits: the auditor's export still lists it)."""
    listed = list(entries)
    return [_facts_at(head, listed, index, pr, server_url, policy_path)
            for index, pr in _merges(head, listed) if pr]


def _merges(head: RecordHead, listed: list[LoopTransition]) -> list[tuple[int, dict[str, Any]]]:
    """(index of each merge entry, the PR facts at it)."""
    github: dict[str, Any] | None = None
    out: list[tuple[int, dict[str, Any]]] = []
    for i, entry in enumerate(listed):
        meta = entry.metadata.get("github")
        if isinstance(meta, dict):
            github = meta
        if _is_merge(entry):
            facts = github if github is not None else head.metadata.get("github")
            pr = facts.get("pr") if isinstance(facts, dict) else None
            out.append((i, pr if isinstance(pr, dict) else {}))
    return out


def _facts_at(head: RecordHead, listed: list[LoopTransition], index: int, pr: dict[str, Any], server_url: str,
              policy_path: str) -> MergeFacts:
    merge_entry = listed[index]
    sha = _str(pr.get("merge_commit_sha")) or ""
    run = _run_prefix(merge_entry)
    policy_entry: LoopTransition | None = None
    for entry in listed[index + 1:]:
        if entry.trigger == "policy.evaluated" and (run is None or _run_prefix(entry) == run):
            policy_entry = entry
            break
        if _is_merge(entry):
            break
    if policy_entry is None:
        policy_entry = next((e for e in reversed(listed[:index]) if e.trigger == "policy.evaluated"), None)

    head_sha = str(pr.get("head_sha") or merge_entry.evidence.get("head_sha") or "")
    ci = _dict(pr.get("ci"))
    runs = _dict(ci.get("runs"))
    reviews = _dict(pr.get("reviews"))
    return MergeFacts(
        repo=head.repo or str(merge_entry.record_id.partition("#")[0]),
        server_url=server_url.rstrip("/"),
        base_ref=str(pr.get("base_ref") or ""),
        merge_sha=sha,
        pr_number=int(pr.get("number") or 0),
        pr_title=str(pr.get("title") or ""),
        pr_author=_str(pr.get("author")),
        pr_author_id=_int(pr.get("author_id")),
        merged_by=_str(pr.get("merged_by")) or merge_entry.actor,
        merged_by_id=_int(pr.get("merged_by_id")),
        merged_at=_str(pr.get("merged_at")) or merge_entry.occurred_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        head_sha=head_sha,
        pr_url=_str(pr.get("url")),
        linked_issue=head.record_id if head.record_id != f"{head.repo}#{pr.get('number')}" else None,
        record_id=head.record_id,
        merge_sequence=merge_entry.sequence,
        merge_hash=merge_entry.hash,
        merge_outcome=merge_entry.outcome.value,
        merge_violation=(f"{merge_entry.rule or 'lifecycle'}: {merge_entry.reason or ''}"
                         if merge_entry.outcome is Outcome.VIOLATION else None),
        reviews=tuple(sorted(
            (ReviewFact(login=str(login), state=str(r.get("state")), submitted_at=str(r.get("at") or ""),
                        user_id=_int(r.get("id")), commit_id=_str(r.get("commit_id")))
             for login, r in reviews.items() if isinstance(r, dict)),
            key=lambda r: (r.submitted_at, r.login))),
        ci=tuple(sorted(
            (CIFact(name=str(name), status=str(r.get("status")), at=str(r.get("at") or ""),
                    run_id=_int(r.get("run_id")), attempt=_int(r.get("attempt")), url=_str(r.get("url")))
             for name, r in runs.items() if isinstance(r, dict)),
            key=lambda c: c.name)),
        ci_sha=_str(ci.get("sha")),
        policy=_policy_facts(policy_entry, pr, policy_path),
        policy_sequence=policy_entry.sequence if policy_entry is not None else None,
        policy_hash=policy_entry.hash if policy_entry is not None else None,
    )
