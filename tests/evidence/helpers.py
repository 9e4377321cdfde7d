"""Shared helpers of the evidence tests (their fixtures are in conftest.py): real trails from real webhook
payloads, keys, statement validation against the in-toto attestation package, and the contract every attestation
store must meet."""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from google.protobuf import json_format
from in_toto_attestation.predicates.test_result.v0 import test_result_pb2
from in_toto_attestation.predicates.vsa.v1 import vsa_pb2
from in_toto_attestation.v1 import statement_pb2
from in_toto_attestation.v1.statement import Statement

from loopforge.errors import TransitionError
from loopforge.evidence.facts import MergeFacts, merge_facts_from_record
from loopforge.evidence.statement import PREDICATE_TEST_RESULT, PREDICATE_VSA
from loopforge.evidence.store import AttestationSet, AttestationStore
from loopforge.github.events import parse_event
from loopforge.github.lookup import OfflineLookup
from loopforge.github.recorder import RunInfo, record_event, route
from loopforge.repository.base import Repository
from loopforge.repository.memory import MemoryRepository
from loopforge.service import LoopService
from loopforge.states import LoopState
from tests.paths import lifecycle_delivery

RECORD = "Codertocat/Hello-World#1"
MERGE_SHA = "c4295bd74fb0f4fda03689c3df3f2803b658fd85"
HEAD_SHA = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
REVIEWER = {"login": "octo-reviewer", "id": 583231}
POLICY_SHA = "5" * 64


def payload(stem: str) -> tuple[str, dict[str, Any]]:
    return lifecycle_delivery(stem)


def policy_evidence(verdict: str = "pass", digest: str = POLICY_SHA) -> dict[str, Any]:
    """The shape ``Evaluation.as_dict()`` writes into a ``policy.evaluated`` note."""
    blocking = ["two-approvals"] if verdict == "block" else []
    return {"verdict": verdict, "reason": "all applicable rules passed" if verdict == "pass" else "blocked",
            "risk_tier": "high", "risk_reason": "infra/ changed", "head_sha": HEAD_SHA,
            "policy": {"source": ".github/loopforge.yml", "sha256": digest},
            "blocking": blocking,
            "results": [{"name": "ci-green", "status": "passed", "reason": "CI passed"},
                        {"name": "two-approvals", "status": "failed" if blocking else "passed",
                         "reason": "1 of 2 approvals" if blocking else "2 approvals"}],
            "notes": [], "missing_permissions": [], "gates": {}}


class Trail:
    """The real lifecycle (tests/fixtures/lifecycle: issue → PR → CI → review → merge) recorded through the
    Action's recorder into ``repository``; the review is by another user than the author unless told."""

    def __init__(self, repository: Repository | None = None) -> None:
        self.repository = repository if repository is not None else MemoryRepository()
        self.lookup = OfflineLookup()
        self.guards: list[Any] = []
        self.runs = 0

    def send(self, stem: str, edit: Any = None) -> None:
        name, body = payload(stem)
        body = copy.deepcopy(body)
        if edit is not None:
            edit(body)
        event = parse_event(name, body)
        self.lookup.remember(event.pull_request)
        routed = route(event, self.lookup)
        assert routed is not None
        self.runs += 1
        service = LoopService(repository=self.repository, guards=self.guards)
        record_event(service, event, routed, RunInfo(run_id=str(5000 + self.runs)))

    def policy_note(self, verdict: str = "pass", digest: str = POLICY_SHA) -> None:
        """What the Action's governance step records right after the merge (same run, key ``…#policy``)."""
        LoopService(repository=self.repository).note(
            RECORD, "policy.evaluated", reason=verdict, evidence={"policy": policy_evidence(verdict, digest)},
            idempotency_key=f"gh:{5000 + self.runs}:pull_request.closed#policy")

    def merged(self, *, reviewer: dict[str, Any] | None = REVIEWER, policy: str | None = "pass",
               bypass: bool = False, blocked_by_policy: bool = False) -> Trail:
        self.send("01")
        self.send("02")
        self.send("03")
        if not bypass:
            self.send("04")
            self.send("05")

            def review(body: dict[str, Any]) -> None:
                if reviewer is not None:
                    body["review"]["user"] = dict(body["review"]["user"], **reviewer)

            self.send("06", review)
        if blocked_by_policy:
            def block(record: Any, previous: LoopState, new: LoopState, trigger: str) -> None:
                if new is LoopState.MERGED:
                    raise TransitionError("policy blocks merged: two-approvals is failed", rule="policy:two-approvals")
            self.guards = [block]
        self.send("07")
        self.guards = []
        if policy is not None:
            self.policy_note("block" if blocked_by_policy else policy)
        return self

    def facts(self) -> MergeFacts:
        head = self.repository.head(RECORD)
        assert head is not None
        return merge_facts_from_record(head, self.repository.entries(RECORD))


# ---------------------------------------------------------------------------------------------- keys
def ecdsa_pem() -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    return _pems(key)


def ed25519_pem() -> tuple[str, str]:
    return _pems(ed25519.Ed25519PrivateKey.generate())


def _pems(key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey) -> tuple[str, str]:
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


# ---------------------------------------------------------------------------------------------- validation
def validate_statement(statement: dict[str, Any]) -> None:
    """Validate with the PyPI package ``in-toto-attestation`` (0.9.3), which ships protobuf bindings and no JSON
    schema files: strict parsing into the Statement message (unknown or mistyped fields raise), its own
    ``Statement.validate()``, and strict parsing of the predicate into its predicate message where the package
    defines one (VSA v1, test-result v0), plus the VSA's required fields, which protobuf cannot express."""
    pb = json_format.ParseDict(statement, statement_pb2.Statement(), ignore_unknown_fields=False)
    Statement.copy_from_pb(pb).validate()
    messages = {PREDICATE_VSA: vsa_pb2.VerificationSummary, PREDICATE_TEST_RESULT: test_result_pb2.TestResult}
    message = messages.get(statement["predicateType"])
    if message is None:
        return
    predicate = dict(statement["predicate"])
    if statement["predicateType"] == PREDICATE_VSA:
        # the package's vsa.proto types verifiedLevels as one string, the SLSA spec as an array of strings
        # (in-toto/attestation#425, fix in #429; the maintainers: the spec is authoritative): check it by the spec
        levels = predicate.pop("verifiedLevels")
        if not (isinstance(levels, list) and all(isinstance(level, str) for level in levels)):
            raise ValueError("verifiedLevels must be an array of strings")
        for field in ("verifier", "timeVerified", "resourceUri", "policy", "verificationResult"):
            if field not in predicate:  # REQUIRED in the VSA spec; protobuf has no required fields
                raise ValueError(f"VSA field {field} is required")
        if predicate["verificationResult"] not in ("PASSED", "FAILED"):
            raise ValueError("verificationResult must be PASSED or FAILED")
    json_format.ParseDict(predicate, message(), ignore_unknown_fields=False)


# ---------------------------------------------------------------------------------------------- the contract
def attestation(sha: str = MERGE_SHA, **docs: str) -> AttestationSet:
    return AttestationSet(merge_sha=sha, repo="Codertocat/Hello-World", record_id=RECORD,
                          created_at="2026-11-30T08:00:00Z", signer="key",
                          documents=docs or {"vsa.dsse.json": '{"payload": "e30="}', "ci.dsse.json": "{}\n"})


class AttestationContract:
    """What every ``AttestationStore`` must do; subclasses provide the ``store`` fixture."""

    @pytest.fixture
    def store(self) -> Iterator[AttestationStore]:  # pragma: no cover - overridden
        raise NotImplementedError
        yield

    def test_put_then_get_round_trips_exactly(self, store: AttestationStore) -> None:
        text = '{\n  "payloadType": "application/vnd.in-toto+json",\n  "title": "=cmd| \u202e ☃"\n}\n'
        att = attestation(**{"vsa.dsse.json": text, "reviews.sigstore.json": "{}"})
        assert store.put(att) is True
        assert store.get(MERGE_SHA) == att

    def test_missing_is_none(self, store: AttestationStore) -> None:
        assert store.get("0" * 40) is None

    def test_write_once_keeps_the_first_set(self, store: AttestationStore) -> None:
        first = attestation(**{"vsa.dsse.json": "first"})
        assert store.put(first) is True
        assert store.put(attestation(**{"vsa.dsse.json": "second", "ci.dsse.json": "x"})) is False
        assert store.get(MERGE_SHA) == first

    def test_sets_are_per_merge_commit(self, store: AttestationStore) -> None:
        other = "a" * 40
        assert store.put(attestation(**{"vsa.dsse.json": "one"}))
        assert store.put(attestation(other, **{"vsa.dsse.json": "two"}))
        got_one, got_two = store.get(MERGE_SHA), store.get(other)
        assert got_one is not None and got_two is not None
        assert (got_one.documents, got_two.documents) == ({"vsa.dsse.json": "one"}, {"vsa.dsse.json": "two"})

    def test_a_malformed_sha_is_refused(self, store: AttestationStore) -> None:
        with pytest.raises(ValueError, match="not a commit SHA"):
            store.get("../../etc/passwd")
        with pytest.raises(ValueError, match="not a commit SHA"):
            store.get(MERGE_SHA + "\n")

    def test_racing_writers_store_exactly_one_set(self, store: AttestationStore) -> None:
        results: list[bool] = []
        lock = threading.Lock()

        def write(i: int) -> None:
            ok = store.put(attestation(**{"vsa.dsse.json": f"writer {i}"}))
            with lock:
                results.append(ok)

        threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == [False, False, False, True]
        got = store.get(MERGE_SHA)
        assert got is not None and got.documents["vsa.dsse.json"].startswith("writer ")
