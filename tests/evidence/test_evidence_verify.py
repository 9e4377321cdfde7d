"""attest_merge then verify: what passes, and each tampering named (one changed byte, the wrong commit, an edited
trail entry, a policy file that is not the one attested); the ``attest`` CLI commands."""

from __future__ import annotations

import base64
import dataclasses
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from loopforge.evidence.attest import attest_merge
from loopforge.evidence.cli import main
from loopforge.evidence.signing import KeySigner, load_public_key
from loopforge.evidence.store import AttestationSet, MemoryAttestationStore, attestation_store_for
from loopforge.evidence.verify import Trust, verify_merge
from loopforge.repository.sqlite import SQLiteRepository
from tests.evidence.helpers import MERGE_SHA, RECORD, Trail, ecdsa_pem

WHEN = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def attested(tmp_path: Path, pem: tuple[str, str], **merged: bool) -> tuple[SQLiteRepository, Trust]:
    repo = SQLiteRepository(tmp_path / "lf.db")
    trail = Trail(repo).merged(**merged)
    result = attest_merge(trail.facts(), attestation_store_for(repo), KeySigner(pem[0]), now=lambda: WHEN)
    assert result.outcome == "written"
    assert result.documents == ["ci.dsse.json", "reviews.dsse.json", "trail.dsse.json", "vsa.dsse.json"]
    return repo, Trust(public_key=load_public_key(pem[1]))


def failed(outcome: object) -> dict[str, str]:
    return {c.name: c.detail for c in outcome.failures}  # type: ignore[attr-defined]


def test_a_governed_merge_verifies(tmp_path: Path, key_pair: tuple[str, str]) -> None:
    repo, trust = attested(tmp_path, key_pair)
    outcome = verify_merge(MERGE_SHA, attestation_store_for(repo), repo, trust)
    assert outcome.ok, failed(outcome)
    assert [c.name for c in outcome.checks] == [
        "present", "signature vsa.dsse.json", "statement vsa.dsse.json", "signature reviews.dsse.json",
        "statement reviews.dsse.json", "signature ci.dsse.json", "statement ci.dsse.json",
        "signature trail.dsse.json", "statement trail.dsse.json", "subject", "inputs", "trail", "facts"]
    assert outcome.statements["vsa"]["predicate"]["verificationResult"] == "PASSED"


def test_a_rerun_keeps_the_first_evidence(tmp_path: Path) -> None:
    pem = ecdsa_pem()
    repo, _ = attested(tmp_path, pem)
    before = attestation_store_for(repo).get(MERGE_SHA)
    again = attest_merge(Trail(repo).facts(), attestation_store_for(repo), KeySigner(pem[0]), now=lambda: WHEN)
    assert again.outcome == "exists" and attestation_store_for(repo).get(MERGE_SHA) == before


def test_no_signer_writes_nothing(tmp_path: Path) -> None:
    repo = SQLiteRepository(tmp_path / "lf.db")
    result = attest_merge(Trail(repo).merged().facts(), attestation_store_for(repo), None)
    assert (result.outcome, result.verification_result) == ("skipped", "PASSED")
    assert attestation_store_for(repo).get(MERGE_SHA) is None


def test_a_bypass_merge_is_attested_failed_and_still_verifies(tmp_path: Path) -> None:
    repo, trust = attested(tmp_path, ecdsa_pem(), bypass=True)
    outcome = verify_merge(MERGE_SHA, attestation_store_for(repo), repo, trust)
    assert outcome.ok, failed(outcome)
    assert outcome.statements["vsa"]["predicate"]["verificationResult"] == "FAILED"


def _tamper(repo: SQLiteRepository, name: str, edit: object) -> None:
    store = attestation_store_for(repo)
    att = store.get(MERGE_SHA)
    assert att is not None
    docs = dict(att.documents)
    docs[name] = edit(docs[name])  # type: ignore[operator]
    with sqlite3.connect(repo.path) as conn:
        conn.execute("UPDATE attestations SET body = ? WHERE merge_sha = ? AND name = ?", (docs[name], MERGE_SHA, name))


def test_one_changed_byte_is_named(tmp_path: Path, key_pair: tuple[str, str]) -> None:
    repo, trust = attested(tmp_path, key_pair)

    def flip(text: str) -> str:
        envelope = json.loads(text)
        payload = base64.b64decode(envelope["payload"]).replace(b'"PASSED"', b'"PASSEd"')
        envelope["payload"] = base64.b64encode(payload).decode()
        return json.dumps(envelope)

    _tamper(repo, "vsa.dsse.json", flip)
    outcome = verify_merge(MERGE_SHA, attestation_store_for(repo), repo, trust)
    assert not outcome.ok
    assert list(failed(outcome)) == ["signature vsa.dsse.json"]
    assert "no signature verifies" in failed(outcome)["signature vsa.dsse.json"]


def test_the_wrong_commit_is_named(tmp_path: Path) -> None:
    """Evidence of one merge presented as the evidence of another commit."""
    repo, trust = attested(tmp_path, ecdsa_pem())
    att = attestation_store_for(repo).get(MERGE_SHA)
    assert att is not None
    other = "b" * 40
    moved = MemoryAttestationStore()
    moved.put(dataclasses.replace(att, merge_sha=other))
    outcome = verify_merge(other, moved, repo, trust)
    assert "subject" in failed(outcome)
    assert f"vsa is about {MERGE_SHA}, not {other}" in failed(outcome)["subject"]
    nothing = verify_merge(other, attestation_store_for(repo), repo, trust)
    assert failed(nothing) == {"present": f"no evidence is stored for {other}"}


def test_an_edited_trail_entry_is_named(tmp_path: Path) -> None:
    repo, trust = attested(tmp_path, ecdsa_pem())
    with sqlite3.connect(repo.path) as conn:
        body = conn.execute("SELECT body FROM entries WHERE record_id = ? AND sequence = 6", (RECORD,)).fetchone()[0]
        conn.execute("UPDATE entries SET body = ? WHERE record_id = ? AND sequence = 6",
                     (body.replace('"pull_request_review.submitted"', '"pull_request_review.edited"'), RECORD))
    outcome = verify_merge(MERGE_SHA, attestation_store_for(repo), repo, trust)
    assert list(failed(outcome)) == ["trail"]
    assert "entry 6: content does not match its hash (entry edited)" in failed(outcome)["trail"]


def test_a_swapped_companion_is_named(tmp_path: Path) -> None:
    """A validly signed statement of another merge swapped in: the VSA's input digest no longer matches."""
    pem = ecdsa_pem()
    repo, trust = attested(tmp_path, pem)
    other_repo = SQLiteRepository(tmp_path / "other.db")
    facts = dataclasses.replace(Trail(other_repo).merged(bypass=True).facts())
    other = attest_merge(facts, MemoryAttestationStore(), KeySigner(pem[0]), now=lambda: WHEN)
    assert other.statements is not None
    _tamper(repo, "ci.dsse.json", lambda _text: KeySigner(pem[0]).sign(other.statements.payloads["ci"]).text)
    outcome = verify_merge(MERGE_SHA, attestation_store_for(repo), repo, trust)
    assert failed(outcome) == {"inputs": "digest mismatch for ci"}


def test_an_unreadable_trail_entry_is_a_failed_check(tmp_path: Path) -> None:
    repo, trust = attested(tmp_path, ecdsa_pem())
    with sqlite3.connect(repo.path) as conn:
        conn.execute("UPDATE entries SET body = '{' WHERE record_id = ? AND sequence = 2", (RECORD,))
    outcome = verify_merge(MERGE_SHA, attestation_store_for(repo), repo, trust)
    assert list(failed(outcome)) == ["trail"] and "cannot be read" in failed(outcome)["trail"]


def test_policy_file_digest(tmp_path: Path) -> None:
    repo, trust = attested(tmp_path, ecdsa_pem())
    store = attestation_store_for(repo)
    # conftest.POLICY_SHA is "5" * 64, no real file has it: the check must fail and say so
    outcome = verify_merge(MERGE_SHA, store, repo, trust, policy_bytes=b"rules: []\n")
    assert list(failed(outcome)) == ["policy file"]


def test_missing_trust_material_is_named(tmp_path: Path) -> None:
    repo, _ = attested(tmp_path, ecdsa_pem())
    outcome = verify_merge(MERGE_SHA, attestation_store_for(repo), repo, Trust(identity="i", issuer="u"))
    assert "pass --key" in failed(outcome)["signature vsa.dsse.json"]


# ---------------------------------------------------------------------------------------------- CLI
def cli(argv: list[str]) -> int:
    return main(argv)


def test_cli_verify_and_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pem = ecdsa_pem()
    repo, _ = attested(tmp_path, pem)
    (tmp_path / "pub.pem").write_text(pem[1])
    db = str(repo.path)
    assert cli(["attest", "verify", MERGE_SHA, "--key", str(tmp_path / "pub.pem"), "--db", db]) == 0
    out = capsys.readouterr().out
    assert out.count("[ok] ") == 13 and "verified:" in out
    assert cli(["attest", "show", MERGE_SHA, "--db", db, "--format", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["statements"]["vsa.dsse.json"]["predicate"]["verificationResult"] == "PASSED"
    (tmp_path / "other.pem").write_text(ecdsa_pem()[1])
    assert cli(["attest", "verify", MERGE_SHA, "--key", str(tmp_path / "other.pem"), "--db", db]) == 1
    err = capsys.readouterr().err
    assert err.startswith("loopforge: error: the evidence of") and "signature vsa.dsse.json" in err


@pytest.mark.parametrize(("argv", "message"), [
    (["attest", "verify", "abc123", "--key", "k.pem"], "expected a full commit SHA"),
    (["attest", "verify", MERGE_SHA], "pass --key PUB.PEM"),
    (["attest", "verify", MERGE_SHA, "--key", "missing.pem"], "--key: cannot read"),
    (["attest", "verify", MERGE_SHA, "--key", "pub.pem", "--policy-file", "missing.yml"],
     "--policy-file: cannot read missing.yml"),
    (["attest", "verify", MERGE_SHA, "--certificate-identity", "x"], "go together"),
    (["attest", "show", MERGE_SHA, "--db", "nowhere.db"], "nowhere.db: no such store file"),
    (["evidence", "--sample", "3"], "--sample needs --seed"),
    (["evidence", "--since", "last tuesday"], "is not a date"),
    (["evidence", "--repo", "o/r/x"], "expected OWNER/REPO"),
])
def test_cli_bad_input_is_one_line_exit_2(argv: list[str], message: str, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pub.pem").write_text(ecdsa_pem()[1])
    assert cli(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("loopforge: error: ") and message in err


def test_cli_show_of_a_commit_without_evidence(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = SQLiteRepository(tmp_path / "lf.db")
    Trail(repo).merged()
    assert cli(["attest", "show", MERGE_SHA, "--db", str(repo.path)]) == 2
    assert "no evidence is stored" in capsys.readouterr().err


def test_stored_sets_are_immutable_objects() -> None:
    with pytest.raises(ValueError, match="not a document name"):
        AttestationSet(MERGE_SHA, "o/r", RECORD, "t", "key", {"../x": "y"})


def test_keyless_evidence_verifies_through_the_sigstore_boundary(tmp_path: Path) -> None:
    """attest with a fake of the two sigstore calls (token, sign_dsse) and verify with a fake of
    ``Verifier.verify_dsse``: the bundle files, the identity check and every other check run as for real."""
    from loopforge.evidence.signing import SigstoreSigner, verify_envelope

    workflow = "https://github.com/Codertocat/Hello-World/.github/workflows/loopforge.yml@refs/heads/master"
    issuer = "https://token.actions.githubusercontent.com"
    inner = ecdsa_pem()

    def sign_dsse(payload: bytes, token: str) -> str:
        envelope = json.loads(KeySigner(inner[0]).sign(payload).text)
        return json.dumps({"dsseEnvelope": envelope, "cert_identity": workflow, "cert_issuer": issuer})

    def verify(bundle: str, identity: str, expected_issuer: str) -> tuple[str, bytes]:
        data = json.loads(bundle)
        if (data["cert_identity"], data["cert_issuer"]) != (identity, expected_issuer):
            raise RuntimeError("certificate identity mismatch")
        return "application/vnd.in-toto+json", verify_envelope(json.dumps(data["dsseEnvelope"]),
                                                               load_public_key(inner[1]))

    repo = SQLiteRepository(tmp_path / "lf.db")
    result = attest_merge(Trail(repo).merged().facts(), attestation_store_for(repo),
                          SigstoreSigner(lambda: "token", lambda token: lambda payload: sign_dsse(payload, token)),
                          now=lambda: WHEN)
    assert result.documents == ["ci.sigstore.json", "reviews.sigstore.json", "trail.sigstore.json",
                                "vsa.sigstore.json"]
    store = attestation_store_for(repo)
    ok = verify_merge(MERGE_SHA, store, repo, Trust(identity=workflow, issuer=issuer, sigstore_verify=verify))
    assert ok.ok, failed(ok)
    wrong = verify_merge(MERGE_SHA, store, repo, Trust(identity=workflow.replace("master", "evil"), issuer=issuer,
                                                       sigstore_verify=verify))
    assert "certificate identity mismatch" in failed(wrong)["signature vsa.sigstore.json"]
