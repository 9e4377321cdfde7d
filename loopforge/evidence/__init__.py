"""Signed evidence of how each change merged: an in-toto Statement v1 with a SLSA Verification Summary (VSA) per
merge, its companion statements (reviews, CI results, the trail binding), DSSE signing (a PEM key or keyless
Sigstore), storage beside the trail, offline verification and the auditor's export. See docs/evidence.md.

The Action makes one call after a merge is recorded::

    facts = merge_facts_from_record(head, entries, server_url=..., policy_path=...)
    result = attest_merge(facts, attestation_store_for(store), choose_signer(mode, env, signing_key_pem))
"""

from loopforge.evidence.attest import AttestationResult, attest_merge
from loopforge.evidence.facts import (
    CIFact,
    MergeFacts,
    MergeFactsError,
    PolicyFacts,
    ReviewFact,
    all_merge_facts,
    merge_facts_from_record,
)
from loopforge.evidence.signing import (
    NOTICE_SKIPPED,
    KeySigner,
    Signer,
    SignerChoice,
    SigningError,
    SigstoreSigner,
    choose,
    choose_signer,
)
from loopforge.evidence.statement import Statements, build_statements
from loopforge.evidence.store import (
    AttestationSet,
    AttestationStore,
    BranchAttestationStore,
    DynamoDBAttestationStore,
    MemoryAttestationStore,
    SQLiteAttestationStore,
    attestation_store_for,
)
from loopforge.evidence.verify import Trust, VerifyOutcome, verify_merge

__all__ = [
    "NOTICE_SKIPPED", "AttestationResult", "AttestationSet", "AttestationStore", "BranchAttestationStore", "CIFact",
    "DynamoDBAttestationStore", "KeySigner", "MemoryAttestationStore", "MergeFacts", "MergeFactsError",
    "PolicyFacts", "ReviewFact", "SQLiteAttestationStore", "Signer", "SignerChoice", "SigningError",
    "SigstoreSigner", "Statements", "Trust", "VerifyOutcome", "all_merge_facts", "attest_merge",
    "attestation_store_for", "build_statements", "choose", "choose_signer", "merge_facts_from_record",
    "verify_merge",
]
