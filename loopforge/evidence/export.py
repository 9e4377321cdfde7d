"""The auditor's export (``loopforge evidence``): one row per merged pull request, sampled reproducibly.

Rows come from the trail (``all_merge_facts`` of every record), the evidence from the attestation store. With
trust material (``--key``, or a Sigstore identity and issuer) each attestation is verified as ``attest verify``
does; without it the column says it was not checked. ``--sample N --seed S`` draws N merges with Python's
``random.Random(S).sample`` from the rows sorted by (merged at, repository, PR, merge SHA): the same store, period
and seed give the same draw on any machine. Titles and logins are untrusted text: every CSV cell goes through
``loopforge.text.csv_cell`` (a formula, also one behind leading whitespace, gets a leading ``'``; control
characters become spaces).
"""

from __future__ import annotations

import csv
import io
import json
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from loopforge.evidence.facts import MergeFacts, all_merge_facts
from loopforge.evidence.store import AttestationStore
from loopforge.evidence.verify import Trust, verify_attestation
from loopforge.repository.base import RecordQuery, Repository, all_pages
from loopforge.text import csv_cell

COLUMNS = ["repository", "pr_number", "pr_title", "linked_issue", "author", "merged_by", "merged_at", "merge_sha",
           "approvers", "ci_at_merged_head", "policy_digest", "verdict_at_merge", "violations",
           "attestation_present", "attestation_verified"]


@dataclass(frozen=True)
class EvidenceRow:
    facts: MergeFacts
    attestation_present: bool
    attestation_verified: str  # yes / no: <why> / not checked

    def as_dict(self) -> dict[str, Any]:
        f = self.facts
        violations = [v for v in (f.merge_violation, *f.policy.violations) if v]
        return {
            "repository": f.repo, "pr_number": f.pr_number, "pr_title": f.pr_title, "linked_issue": f.linked_issue,
            "author": f.pr_author, "merged_by": f.merged_by, "merged_at": f.merged_at, "merge_sha": f.merge_sha,
            "approvers": [{"login": r.login, "id": r.user_id, "approved_at": r.submitted_at, "commit": r.commit_id}
                          for r in f.approvals],
            "ci_at_merged_head": [{"name": c.name, "status": c.status} for c in f.ci]
            if f.ci_sha == f.head_sha else [],
            "policy_digest": f.policy.sha256, "verdict_at_merge": "PASSED" if f.passed else "FAILED",
            "violations": violations, "attestation_present": self.attestation_present,
            "attestation_verified": self.attestation_verified,
        }

    def csv_cells(self) -> list[str]:
        d = self.as_dict()
        d["approvers"] = "; ".join(f"{a['login']} @ {a['approved_at']}" for a in d["approvers"])
        d["ci_at_merged_head"] = "; ".join(f"{c['name']}={c['status']}" for c in d["ci_at_merged_head"])
        d["violations"] = "; ".join(d["violations"])
        d["attestation_present"] = "yes" if d["attestation_present"] else "no"
        return [csv_cell(d[c]) for c in COLUMNS]


def _merged_at(f: MergeFacts) -> datetime | None:
    try:
        return datetime.fromisoformat(f.merged_at.replace("Z", "+00:00"))
    except ValueError:
        return None


def merges(records: Repository, *, repo: str | None = None, since: datetime | None = None,
           until: datetime | None = None, server_url: str = "https://github.com") -> Iterator[MergeFacts]:
    """Every merge recorded in the store (optionally of one repository, merged in ``[since, until)``)."""
    # a record's updated_at is never before its merges, so the query bound is safe; merged_at decides
    for head in all_pages(records, RecordQuery(repo=repo, since=since, limit=1000)):
        for facts in all_merge_facts(head, records.entries(head.record_id), server_url=server_url):
            when = _merged_at(facts)
            if (since is not None and (when is None or when < since)) or (
                    until is not None and (when is None or when >= until)):
                continue
            if repo is not None and facts.repo != repo:
                continue
            yield facts


def sort_key(f: MergeFacts) -> tuple[str, str, int, str]:
    return (f.merged_at, f.repo, f.pr_number, f.merge_sha)


def sample(population: Iterable[MergeFacts], n: int | None, seed: int | None) -> list[MergeFacts]:
    """All merges sorted, or ``n`` of them drawn with ``random.Random(seed)`` (then sorted again)."""
    ordered = sorted(population, key=sort_key)
    if n is None or n >= len(ordered):
        return ordered
    drawn = random.Random(seed).sample(ordered, n)
    return sorted(drawn, key=sort_key)


def evidence_rows(records: Repository, attestations: AttestationStore, *, trust: Trust | None = None,
                  repo: str | None = None, since: datetime | None = None, until: datetime | None = None,
                  n: int | None = None, seed: int | None = None) -> list[EvidenceRow]:
    rows = []
    for facts in sample(merges(records, repo=repo, since=since, until=until), n, seed):
        attestation = attestations.get(facts.merge_sha) if facts.merge_sha else None
        if attestation is None:
            verified = "no: no evidence stored"
        elif trust is None:
            verified = "not checked (pass --key or --certificate-identity/--certificate-oidc-issuer)"
        else:
            outcome = verify_attestation(facts.merge_sha, attestation, records, trust)
            verified = "yes" if outcome.ok else "no: " + "; ".join(f"{c.name}: {c.detail}"
                                                                   for c in outcome.failures)[:500]
        rows.append(EvidenceRow(facts, attestation is not None, verified))
    return rows


def to_csv(rows: Iterable[EvidenceRow]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow(row.csv_cells())
    return buffer.getvalue()


def to_json(rows: Iterable[EvidenceRow]) -> str:
    return json.dumps([r.as_dict() for r in rows], indent=2, ensure_ascii=False) + "\n"
