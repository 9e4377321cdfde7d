"""Offline verification of a merge's evidence (``loopforge attest verify <merge sha>``).

Checks, each reported by name:

* ``present`` — evidence is stored for that commit, with the four statements;
* ``signature <doc>`` — each DSSE envelope verifies with ``--key`` (or each Sigstore bundle names the expected
  certificate identity and OIDC issuer);
* ``statement <doc>`` — the payload is an in-toto Statement v1 of the expected predicate type;
* ``subject`` — every statement's subject is that commit;
* ``inputs`` — the VSA's ``inputAttestations`` digests are those of the companion statements;
* ``trail`` — the record named by the trail binding exists, its chain verifies from entry 1 up to the entries
  the binding names, and those entries have the hashes the binding states;
* ``facts`` — the facts re-read from that trail match the statement: the merge commit, the head commit, the
  verdict (PASSED/FAILED) and the policy digest;
* ``policy file`` — with ``--policy-file``, the file's SHA-256 is the digest the VSA names.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from loopforge.errors import StoreError
from loopforge.evidence.facts import MergeFactsError, merge_facts_from_record
from loopforge.evidence.signing import PublicKey, VerificationFailed, verify_bundle, verify_envelope
from loopforge.evidence.statement import (
    COMPANIONS,
    NAMES,
    PREDICATE_REVIEWS,
    PREDICATE_TEST_RESULT,
    PREDICATE_TRAIL,
    PREDICATE_VSA,
    STATEMENT_TYPE,
    sha256_hex,
)
from loopforge.evidence.store import AttestationSet, AttestationStore
from loopforge.repository.base import Repository
from loopforge.trail import verify_entries

PREDICATES = {"vsa": PREDICATE_VSA, "reviews": PREDICATE_REVIEWS, "ci": PREDICATE_TEST_RESULT,
              "trail": PREDICATE_TRAIL}


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"[{'ok' if self.ok else 'FAILED'}] {self.name}: {self.detail}"


@dataclass
class VerifyOutcome:
    merge_sha: str
    checks: list[Check] = field(default_factory=list)
    statements: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def add(self, name: str, ok: bool, detail: str) -> bool:
        self.checks.append(Check(name, ok, detail))
        return ok


@dataclass(frozen=True)
class Trust:
    """What signatures must verify against: a public key, or a Sigstore certificate identity and issuer."""

    public_key: PublicKey | None = None
    identity: str | None = None
    issuer: str | None = None
    sigstore_verify: Callable[[str, str, str], tuple[str, bytes]] | None = None  # tests pass a fake


def _payload(name: str, text: str, trust: Trust) -> bytes:
    if name.endswith(".dsse.json"):
        if trust.public_key is None:
            raise VerificationFailed("a key-signed envelope: pass --key with the public key")
        return verify_envelope(text, trust.public_key)
    if name.endswith(".sigstore.json"):
        if not (trust.identity and trust.issuer):
            raise VerificationFailed("a Sigstore bundle: pass --certificate-identity and --certificate-oidc-issuer")
        if trust.sigstore_verify is not None:
            return verify_bundle(text, trust.identity, trust.issuer, trust.sigstore_verify)
        return verify_bundle(text, trust.identity, trust.issuer)
    raise VerificationFailed("unknown document kind")


def _documents(attestation: AttestationSet) -> dict[str, tuple[str, str]]:
    """statement name -> (file name, text)."""
    out: dict[str, tuple[str, str]] = {}
    for file, text in attestation.documents.items():
        out[file.split(".", 1)[0]] = (file, text)
    return out


def verify_merge(merge_sha: str, attestations: AttestationStore, records: Repository | None, trust: Trust, *,
                 policy_bytes: bytes | None = None) -> VerifyOutcome:
    """Every check of the module docstring, in order, on the evidence stored for ``merge_sha``."""
    return verify_attestation(merge_sha, attestations.get(merge_sha), records, trust, policy_bytes=policy_bytes)


def verify_attestation(merge_sha: str, attestation: AttestationSet | None, records: Repository | None,
                       trust: Trust, *, policy_bytes: bytes | None = None) -> VerifyOutcome:
    """``verify_merge`` on a set already read (the export reads each once); later checks are skipped when an
    earlier one leaves nothing trustworthy to check (no evidence, or a statement whose signature fails)."""
    out = VerifyOutcome(merge_sha)
    if attestation is None:
        out.add("present", False, f"no evidence is stored for {merge_sha}")
        return out
    docs = _documents(attestation)
    missing = [n for n in NAMES if n not in docs]
    if not out.add("present", not missing, f"missing {', '.join(missing)}" if missing
                   else f"{len(docs)} signed statements ({attestation.signer})"):
        return out
    payloads: dict[str, bytes] = {}
    for name in NAMES:
        file, text = docs[name]
        try:
            payloads[name] = _payload(file, text, trust)
        except VerificationFailed as exc:
            out.add(f"signature {file}", False, str(exc))
            continue
        out.add(f"signature {file}", True, "verifies")
        try:
            statement = json.loads(payloads[name])
        except ValueError:
            out.add(f"statement {file}", False, "the signed payload is not JSON")
            continue
        ok = (isinstance(statement, dict) and statement.get("_type") == STATEMENT_TYPE
              and statement.get("predicateType") == PREDICATES[name])
        if out.add(f"statement {file}", ok, f"in-toto Statement v1, {PREDICATES[name]}" if ok else
                   f"expected an in-toto Statement v1 of {PREDICATES[name]}"):
            out.statements[name] = statement
    if len(out.statements) != len(NAMES):
        return out

    subjects = {name: s.get("subject") for name, s in out.statements.items()}
    wrong = {}
    for name, subject in subjects.items():
        commits = [str((d.get("digest") or {}).get("gitCommit")) for d in subject or [] if isinstance(d, dict)]
        if commits != [merge_sha]:
            wrong[name] = ", ".join(commits) or "none"
    out.add("subject", not wrong, f"every statement is about commit {merge_sha}" if not wrong else
            "; ".join(f"{n} is about {c}, not {merge_sha}" for n, c in wrong.items()))

    vsa = out.statements["vsa"]["predicate"]
    named = {str(i.get("uri")).rpartition("/")[2]: str((i.get("digest") or {}).get("sha256"))
             for i in vsa.get("inputAttestations") or [] if isinstance(i, dict)}
    bad = [n for n in COMPANIONS if named.get(n) != sha256_hex(payloads[n])]
    out.add("inputs", not bad, "the VSA names each companion statement by its digest" if not bad
            else f"digest mismatch for {', '.join(bad)}")

    if policy_bytes is not None:
        digest = hashlib.sha256(policy_bytes).hexdigest()
        stated = str(((vsa.get("policy") or {}).get("digest") or {}).get("sha256"))
        out.add("policy file", digest == stated, f"sha256 {digest[:16]}… is the digest the VSA names"
                if digest == stated else f"the file's sha256 {digest[:16]}… is not the VSA's {stated[:16]}…")

    _check_trail(out, merge_sha, records)
    return out


def _check_trail(out: VerifyOutcome, merge_sha: str, records: Repository | None) -> None:
    binding = out.statements["trail"]["predicate"]
    record_id = str(binding.get("recordId"))
    merge_entry = binding.get("mergeEntry") or {}
    policy_entry = binding.get("policyEntry") or {}
    if records is None:
        out.add("trail", False, "no record store given: the trail cannot be checked")
        return
    head = records.head(record_id)
    if head is None:
        out.add("trail", False, f"record {record_id} is not in the store")
        return
    named = {int(e["sequence"]): str(e.get("hash")) for e in (merge_entry, policy_entry)
             if isinstance(e.get("sequence"), int)}
    if not named:
        out.add("trail", False, "the trail binding names no entry")
        return
    upto = max(named)
    try:
        entries = list(records.entries(record_id, limit=upto))
    except (ValueError, StoreError) as exc:  # an entry that does not parse (edited by hand) or an unreadable store
        out.add("trail", False, f"record {record_id}: the trail cannot be read ({type(exc).__name__}: "
                                f"{str(exc).splitlines()[0][:200]})")
        return
    report = verify_entries(record_id, entries)
    problems = [str(p) for p in report.problems]
    by_seq = {e.sequence: e for e in entries}
    for seq, digest in sorted(named.items()):
        entry = by_seq.get(seq)
        if entry is None:
            problems.append(f"entry {seq}: not in the trail")
        elif entry.hash != digest:
            problems.append(f"entry {seq}: its hash is not the one the statement names")
    if not out.add("trail", not problems, f"record {record_id}: entries 1-{upto} verify and entries "
                   f"{', '.join(map(str, sorted(named)))} are the ones the statement names" if not problems
                   else f"record {record_id}: " + "; ".join(problems[:5])):
        return
    try:
        facts = merge_facts_from_record(head, entries, merge_sha=merge_sha)
    except MergeFactsError as exc:
        out.add("facts", False, str(exc))
        return
    vsa = out.statements["vsa"]["predicate"]
    stated_digest = ((vsa.get("policy") or {}).get("digest") or {}).get("sha256")
    verdict = "PASSED" if facts.passed else "FAILED"
    mismatches = []
    if facts.merge_sequence != int(merge_entry.get("sequence", -1)):
        mismatches.append(f"the trail's merge of {merge_sha[:12]} is entry {facts.merge_sequence}")
    if facts.head_sha != binding.get("headCommit"):
        mismatches.append("head commit differs")
    if vsa.get("verificationResult") != verdict:
        mismatches.append(f"the trail says {verdict}, the VSA {vsa.get('verificationResult')}")
    if stated_digest != facts.policy.sha256:
        mismatches.append(f"policy digest: the trail recorded {str(facts.policy.sha256)[:16]}, the VSA names "
                          f"{str(stated_digest)[:16]}")
    out.add("facts", not mismatches, f"merge {merge_sha[:12]}, verdict {verdict}, policy digest "
            f"{str(facts.policy.sha256 or 'none')[:16]} match the trail" if not mismatches
            else "; ".join(mismatches))
