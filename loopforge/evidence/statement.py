"""The in-toto Statements (v1) of one merge: a SLSA Verification Summary (VSA) and its companion statements.

Every statement has the same subject, the merge commit on its base branch::

    {"uri": "git+https://<server>/<owner>/<repo>@refs/heads/<base>", "digest": {"gitCommit": "<merge sha>"}}

* ``vsa`` — ``https://slsa.dev/verification_summary/v1`` (SLSA v1.2 Source Track): ``verificationResult``
  ``PASSED`` when the gate passed at merge, ``FAILED`` for a violation (a bypass is attested, not hidden);
  ``verifiedLevels`` lists only ``ORG_SOURCE_…`` properties LoopForge itself checked, never an
  ``SLSA_SOURCE_LEVEL_n`` (that needs the repository's settings, which LoopForge does not check);
  ``inputAttestations`` names the companions (``attestations/<merge sha>/<name>``) by the SHA-256 of their
  statement bytes.
* ``reviews`` — ``PREDICATE_REVIEWS``: each reviewer's login and immutable account id, state, time, and the
  commit the review was for.
* ``ci`` — ``https://in-toto.io/attestation/test-result/v0.1``: the CI results recorded for the merged head.
* ``trail`` — ``PREDICATE_TRAIL``: the record id and the sequence and hash of the merge entry (and of the policy
  evaluation recorded with it), so ``loopforge attest verify`` can check the trail and the statement meet.

Statements are serialised as canonical JSON (sorted keys, no spaces, UTF-8): the bytes are what gets signed and
what ``inputAttestations`` digests.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from loopforge import __version__
from loopforge.evidence.facts import MergeFacts

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
PREDICATE_VSA = "https://slsa.dev/verification_summary/v1"
PREDICATE_TEST_RESULT = "https://in-toto.io/attestation/test-result/v0.1"
#: LoopForge's own namespace for the predicate types no standard covers (and the default verifier id).
LOOPFORGE_URI = "https://loopforge.dev"
PREDICATE_REVIEWS = f"{LOOPFORGE_URI}/attestation/code-review/v1"
PREDICATE_TRAIL = f"{LOOPFORGE_URI}/attestation/trail-binding/v1"
VERIFIER_ID = f"{LOOPFORGE_URI}/action@v{__version__}"
SLSA_VERSION = "1.2"

#: The properties LoopForge can verify (``verifiedLevels``); organisation-defined ones start with ORG_SOURCE_.
LEVEL_LIFECYCLE = "ORG_SOURCE_LOOPFORGE_LIFECYCLE_PASSED"
LEVEL_POLICY = "ORG_SOURCE_LOOPFORGE_POLICY_PASSED"
LEVEL_CI = "ORG_SOURCE_CI_PASSED"
LEVEL_REVIEWED = "ORG_SOURCE_REVIEWED_BY_NON_AUTHOR"
LEVEL_APPROVED_HEAD = "ORG_SOURCE_APPROVED_AT_MERGED_HEAD"

#: Statement names, in the order they are written; the VSA names the others.
COMPANIONS = ("reviews", "ci", "trail")
NAMES = ("vsa", *COMPANIONS)


def canonical_bytes(statement: dict[str, Any]) -> bytes:
    return json.dumps(statement, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def rfc3339(value: datetime) -> str:
    """Second precision, ``Z``: what protobuf's Timestamp JSON form (and the VSA) expects."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso_to_rfc3339(value: str) -> str:
    if not value:
        return ""
    try:
        return rfc3339(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        return value


def repo_uri(facts: MergeFacts) -> str:
    return f"git+{facts.server_url.rstrip('/')}/{facts.repo}"


def subject(facts: MergeFacts) -> list[dict[str, Any]]:
    return [{"uri": f"{repo_uri(facts)}@refs/heads/{facts.base_ref}", "digest": {"gitCommit": facts.merge_sha}}]


def policy_uri(facts: MergeFacts) -> str:
    """The policy file at the base commit that judged the merge (``…@<commit>#<path>``; the branch if the
    commit was not recorded)."""
    at = facts.policy.base_commit or f"refs/heads/{facts.base_ref}"
    return f"{repo_uri(facts)}@{at}#{facts.policy.path}"


def verified_levels(facts: MergeFacts) -> list[str]:
    """Only what LoopForge checked itself, as ORG_SOURCE_ properties, sorted."""
    levels: list[str] = []
    if facts.merge_outcome == "applied":
        levels.append(LEVEL_LIFECYCLE)
    if facts.policy.sha256 and facts.policy.verdict == "pass" and facts.policy.error is None:
        levels.append(LEVEL_POLICY)
    if facts.ci and facts.ci_sha == facts.head_sha and all(c.status == "passed" for c in facts.ci):
        levels.append(LEVEL_CI)
    non_author = [r for r in facts.approvals if not _same_user(r.login, r.user_id, facts.pr_author, facts.pr_author_id)]
    if non_author:
        levels.append(LEVEL_REVIEWED)
    if any(r.commit_id == facts.head_sha for r in non_author):
        levels.append(LEVEL_APPROVED_HEAD)
    return sorted(levels)


def _same_user(login: str, user_id: int | None, other: str | None, other_id: int | None) -> bool:
    if user_id is not None and other_id is not None:
        return user_id == other_id
    return other is not None and login.lower() == other.lower()


def reviews_statement(facts: MergeFacts) -> dict[str, Any]:
    return {
        "_type": STATEMENT_TYPE,
        "subject": subject(facts),
        "predicateType": PREDICATE_REVIEWS,
        "predicate": {
            "pullRequest": {
                "number": facts.pr_number, "title": facts.pr_title, "url": facts.pr_url,
                "author": {"login": facts.pr_author, "id": facts.pr_author_id},
                "headCommit": facts.head_sha, "mergedBy": {"login": facts.merged_by, "id": facts.merged_by_id},
                "mergedAt": _iso_to_rfc3339(facts.merged_at), "linkedIssue": facts.linked_issue,
            },
            "reviews": [{"reviewer": {"login": r.login, "id": r.user_id}, "state": r.state,
                         "submittedAt": _iso_to_rfc3339(r.submitted_at), "commitId": r.commit_id}
                        for r in facts.reviews],
        },
    }


def _run_url(facts: MergeFacts, run_id: int | None, attempt: int | None) -> str | None:
    if run_id is None:
        return None
    base = f"{facts.server_url.rstrip('/')}/{facts.repo}/actions/runs/{run_id}"
    return f"{base}/attempts/{attempt}" if attempt else base


def ci_statement(facts: MergeFacts) -> dict[str, Any]:
    """The CI results at the merged head as a test-result predicate: one "test" per workflow or check suite.
    ``result`` is SUCCESS when every one passed, FAILED when one failed, WARNED when none was recorded for the
    merged head or one is still pending."""
    at_head = facts.ci_sha == facts.head_sha
    runs = list(facts.ci) if at_head else []
    passed = [c.name for c in runs if c.status == "passed"]
    failed = [c.name for c in runs if c.status == "failed"]
    warned = [c.name for c in runs if c.status not in ("passed", "failed")]
    result = "FAILED" if failed else ("SUCCESS" if runs and not warned else "WARNED")
    configuration = []
    for c in runs:
        descriptor: dict[str, Any] = {"name": c.name, "annotations": {
            "status": c.status, "completedAt": _iso_to_rfc3339(c.at), "commit": facts.head_sha}}
        url = c.url or _run_url(facts, c.run_id, c.attempt)
        if url:
            descriptor["uri"] = url
        configuration.append(descriptor)
    return {
        "_type": STATEMENT_TYPE,
        "subject": subject(facts),
        "predicateType": PREDICATE_TEST_RESULT,
        "predicate": {"result": result, "configuration": configuration, "passedTests": passed,
                      "warnedTests": warned, "failedTests": failed},
    }


def trail_statement(facts: MergeFacts) -> dict[str, Any]:
    binding: dict[str, Any] = {
        "recordId": facts.record_id,
        "repository": facts.repo,
        "pullRequest": facts.pr_number,
        "headCommit": facts.head_sha,
        "mergeEntry": {"sequence": facts.merge_sequence, "hash": facts.merge_hash, "outcome": facts.merge_outcome},
        "hashAlgorithm": "sha256 of the canonical JSON of the entry without its hash (loopforge.trail.entry_hash)",
    }
    if facts.policy_sequence is not None:
        binding["policyEntry"] = {"sequence": facts.policy_sequence, "hash": facts.policy_hash}
    return {"_type": STATEMENT_TYPE, "subject": subject(facts), "predicateType": PREDICATE_TRAIL,
            "predicate": binding}


def input_uri(merge_sha: str, name: str) -> str:
    """How the VSA names a companion: its place in the attestation store (a relative URI reference; the
    document there is ``<name>.dsse.json`` or ``<name>.sigstore.json``)."""
    return f"attestations/{merge_sha}/{name}"


def vsa_statement(facts: MergeFacts, inputs: dict[str, bytes], *, time_verified: datetime,
                  verifier_id: str = VERIFIER_ID) -> dict[str, Any]:
    policy: dict[str, Any] = {"uri": policy_uri(facts)}
    if facts.policy.sha256:
        policy["digest"] = {"sha256": facts.policy.sha256}
    return {
        "_type": STATEMENT_TYPE,
        "subject": subject(facts),
        "predicateType": PREDICATE_VSA,
        "predicate": {
            "verifier": {"id": verifier_id},
            "timeVerified": rfc3339(time_verified),
            "resourceUri": repo_uri(facts),
            "policy": policy,
            "inputAttestations": [{"uri": input_uri(facts.merge_sha, name), "digest": {"sha256": sha256_hex(data)}}
                                  for name, data in inputs.items()],
            "verificationResult": "PASSED" if facts.passed else "FAILED",
            "verifiedLevels": verified_levels(facts),
            "slsaVersion": SLSA_VERSION,
        },
    }


@dataclass(frozen=True)
class Statements:
    """The statements of one merge as the exact bytes to sign, by name (``vsa``, ``reviews``, ``ci``, ``trail``)."""

    payloads: dict[str, bytes]

    def statement(self, name: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.payloads[name])
        return data


def build_statements(facts: MergeFacts, *, time_verified: datetime, verifier_id: str = VERIFIER_ID) -> Statements:
    companions = {"reviews": canonical_bytes(reviews_statement(facts)), "ci": canonical_bytes(ci_statement(facts)),
                  "trail": canonical_bytes(trail_statement(facts))}
    vsa = canonical_bytes(vsa_statement(facts, companions, time_verified=time_verified, verifier_id=verifier_id))
    return Statements({"vsa": vsa, **companions})
