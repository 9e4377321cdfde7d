"""The one call the Action makes after a merge is recorded: build, sign and store the evidence of that merge.

    facts = merge_facts_from_record(head, entries, server_url=..., policy_path=...)
    result = attest_merge(facts, attestation_store_for(store), signer)

``signer`` None (``attest: off``, or ``auto`` with neither an OIDC token nor a key) writes nothing and says so.
Evidence is write-once per merge commit: a re-run finds it and writes nothing again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from loopforge.evidence.facts import MergeFacts
from loopforge.evidence.signing import SUFFIX, Signer
from loopforge.evidence.statement import NAMES, VERIFIER_ID, Statements, build_statements
from loopforge.evidence.store import AttestationSet, AttestationStore

AttestOutcome = Literal["written", "exists", "skipped"]


@dataclass(frozen=True)
class AttestationResult:
    outcome: AttestOutcome
    merge_sha: str
    verification_result: str  # PASSED / FAILED (what the VSA says, or would have said when skipped)
    signer: str | None = None  # key / sigstore
    documents: list[str] = field(default_factory=list)
    statements: Statements | None = None

    def summary_text(self) -> str:
        """One plain sentence for the step summary and the check run (no untrusted text in it)."""
        if self.outcome == "skipped":
            return (f"Evidence: not signed for merge {self.merge_sha[:12]} (no signer); the verification summary "
                    f"would say {self.verification_result}.")
        verb = "signed and stored" if self.outcome == "written" else "already stored"
        return (f"Evidence: a SLSA verification summary ({self.verification_result}) for merge "
                f"{self.merge_sha[:12]}, {verb} ({self.signer}, {len(self.documents) or len(NAMES)} statements); "
                f"verify it with: loopforge attest verify {self.merge_sha}")


def attest_merge(facts: MergeFacts, store: AttestationStore, signer: Signer | None, *,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC),
                 verifier_id: str = VERIFIER_ID) -> AttestationResult:
    """Build the statements of ``facts``, sign each with ``signer`` and store them as one set."""
    statements = build_statements(facts, time_verified=now(), verifier_id=verifier_id)
    verdict = str(statements.statement("vsa")["predicate"]["verificationResult"])
    if signer is None:
        return AttestationResult("skipped", facts.merge_sha, verdict, statements=statements)
    if store.get(facts.merge_sha) is not None:
        return AttestationResult("exists", facts.merge_sha, verdict, signer.kind, statements=statements)
    documents = {}
    for name in NAMES:
        signed = signer.sign(statements.payloads[name])
        documents[f"{name}{SUFFIX[signed.kind]}"] = signed.text
    attestation = AttestationSet(merge_sha=facts.merge_sha, repo=facts.repo, record_id=facts.record_id,
                                 created_at=now().strftime("%Y-%m-%dT%H:%M:%SZ"), signer=signer.kind,
                                 documents=documents)
    written = store.put(attestation)
    return AttestationResult("written" if written else "exists", facts.merge_sha, verdict, signer.kind,
                             sorted(documents), statements)
