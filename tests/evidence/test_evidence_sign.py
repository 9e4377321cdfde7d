"""DSSE signing with PEM keys (ECDSA P-256, Ed25519), the Sigstore boundary, and the ``attest`` input."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import SSlibKey

from loopforge.evidence.signing import (
    NOTICE_NO_SIGSTORE,
    NOTICE_SKIPPED,
    KeySigner,
    SignerChoice,
    SigningError,
    SigstoreSigner,
    VerificationFailed,
    choose,
    choose_signer,
    load_public_key,
    pae,
    verify_bundle,
    verify_envelope,
)
from tests.evidence.helpers import ecdsa_pem, ed25519_pem

PAYLOAD = b'{"_type":"https://in-toto.io/Statement/v1","predicate":{"title":"caf\xc3\xa9"}}'
OIDC = {"ACTIONS_ID_TOKEN_REQUEST_URL": "https://token.example/x", "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "t"}


def test_pae_is_the_dsse_v1_encoding() -> None:
    # the example of the DSSE protocol document
    assert pae("http://example.com/HelloWorld", b"hello world") == \
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"


def test_sign_and_verify_with_both_key_types(key_pair: tuple[str, str]) -> None:
    private, public = key_pair
    signed = KeySigner(private).sign(PAYLOAD)
    envelope = json.loads(signed.text)
    assert signed.kind == "key" and envelope["payloadType"] == "application/vnd.in-toto+json"
    assert base64.b64decode(envelope["payload"]) == PAYLOAD
    assert verify_envelope(signed.text, load_public_key(public)) == PAYLOAD


def test_securesystemslib_verifies_our_envelopes(key_pair: tuple[str, str]) -> None:
    """Interoperability: the in-toto project's DSSE implementation accepts the envelope."""
    private, public = key_pair
    signer = KeySigner(private)
    envelope = Envelope.from_dict(json.loads(signer.sign(PAYLOAD).text))
    key = SSlibKey.from_crypto(serialization.load_pem_public_key(public.encode()), keyid=signer.keyid)
    assert list(envelope.verify([key], 1)) == [signer.keyid]
    other = SSlibKey.from_crypto(serialization.load_pem_public_key(ed25519_pem()[1].encode()), keyid=signer.keyid)
    with pytest.raises(VerificationError):
        envelope.verify([other], 1)


def test_one_changed_byte_fails(key_pair: tuple[str, str]) -> None:
    private, public = key_pair
    envelope = json.loads(KeySigner(private).sign(PAYLOAD).text)
    payload = bytearray(base64.b64decode(envelope["payload"]))
    payload[-3] ^= 0x01
    envelope["payload"] = base64.b64encode(bytes(payload)).decode()
    with pytest.raises(VerificationFailed, match="no signature verifies"):
        verify_envelope(json.dumps(envelope), load_public_key(public))


def test_another_key_fails_and_garbage_is_named() -> None:
    private, _ = ecdsa_pem()
    text = KeySigner(private).sign(PAYLOAD).text
    with pytest.raises(VerificationFailed, match="no signature verifies"):
        verify_envelope(text, load_public_key(ecdsa_pem()[1]))
    with pytest.raises(VerificationFailed, match="not a DSSE envelope"):
        verify_envelope("{}", load_public_key(ecdsa_pem()[1]))
    retyped = dict(json.loads(text), payloadType="text/plain")
    with pytest.raises(VerificationFailed, match="payloadType"):
        verify_envelope(json.dumps(retyped), load_public_key(ecdsa_pem()[1]))


def test_unusable_keys_are_one_clear_error() -> None:
    rsa_pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    with pytest.raises(SigningError, match="use ECDSA P-256 or Ed25519"):
        KeySigner(rsa_pem)
    with pytest.raises(SigningError, match="not an unencrypted PEM private key"):
        KeySigner("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----")
    with pytest.raises(SigningError, match="not a PEM public key"):
        load_public_key(b"ssh-ed25519 AAAA")


class FakeSigstore:
    """The calls SigstoreSigner makes into ``sigstore``: the OIDC token, one signing session (Fulcio certificate)
    per signer, ``Signer.sign_dsse`` per statement."""

    def __init__(self) -> None:
        self.tokens = 0
        self.sessions = 0
        self.signed: list[tuple[bytes, str]] = []

    def token(self) -> str:
        self.tokens += 1
        return "oidc-token"

    def session(self, token: str) -> Any:
        self.sessions += 1
        return lambda payload: self.sign_dsse(payload, token)

    def sign_dsse(self, payload: bytes, token: str) -> str:
        self.signed.append((payload, token))
        return json.dumps({"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
                           "dsseEnvelope": {"payload": base64.b64encode(payload).decode(),
                                            "payloadType": "application/vnd.in-toto+json", "signatures": []}})


def test_sigstore_signer_boundary() -> None:
    fake = FakeSigstore()
    signer = SigstoreSigner(token=fake.token, session=fake.session)
    first, second = signer.sign(PAYLOAD), signer.sign(b"{}")
    assert (first.kind, second.kind) == ("sigstore", "sigstore")
    assert fake.tokens == 1 and fake.sessions == 1 and fake.signed == [(PAYLOAD, "oidc-token"), (b"{}", "oidc-token")]
    assert json.loads(first.text)["dsseEnvelope"]["payload"] == base64.b64encode(PAYLOAD).decode()


def test_sigstore_verification_boundary() -> None:
    calls: list[tuple[str, str]] = []

    def verify(bundle: str, identity: str, issuer: str) -> tuple[str, bytes]:
        calls.append((identity, issuer))
        if identity != "https://github.com/o/r/.github/workflows/ci.yml@refs/heads/main":
            raise RuntimeError("Certificate's SANs do not match")
        return "application/vnd.in-toto+json", PAYLOAD

    issuer = "https://token.actions.githubusercontent.com"
    good = "https://github.com/o/r/.github/workflows/ci.yml@refs/heads/main"
    assert verify_bundle("{}", good, issuer, verify) == PAYLOAD
    with pytest.raises(VerificationFailed, match="SANs do not match"):
        verify_bundle("{}", "https://github.com/evil/r/.github/workflows/x.yml@refs/heads/main", issuer, verify)
    assert len(calls) == 2


@pytest.mark.parametrize(("mode", "env", "key", "expected"), [
    ("auto", OIDC, None, "sigstore"),
    ("auto", OIDC, "KEY", "sigstore"),
    ("auto", {}, "KEY", "key"),
    ("auto", {"ACTIONS_ID_TOKEN_REQUEST_URL": "https://x"}, None, None),  # half the OIDC variables: no token
    ("auto", {}, None, None),
    ("", {}, "KEY", "key"),
    ("key", OIDC, "KEY", "key"),
    ("sigstore", OIDC, "KEY", "sigstore"),
    ("off", OIDC, "KEY", None),
    ("OFF", {}, None, None),
])
def test_the_attest_input(mode: str, env: dict[str, str], key: str | None, expected: str | None) -> None:
    fake = FakeSigstore()
    pem = ecdsa_pem()[0] if key else None
    choice = choose(mode, env, pem, sigstore_factory=lambda: SigstoreSigner(fake.token, fake.session))
    assert (choice.signer.kind if choice.signer else None) == expected
    assert choice.notice == (NOTICE_SKIPPED if mode == "auto" and expected is None else None)
    if expected == "key":
        assert isinstance(choose_signer(mode, env, pem), KeySigner)


def test_auto_without_the_sigstore_package_falls_back_and_sigstore_mode_says_what_to_install() -> None:
    def missing() -> bool:
        return False

    assert choose("auto", OIDC, None, has_sigstore=missing) == SignerChoice(None, NOTICE_NO_SIGSTORE)
    assert isinstance(choose("auto", OIDC, ecdsa_pem()[0], has_sigstore=missing).signer, KeySigner)
    with pytest.raises(SigningError, match=r"pip install 'loopforge\[evidence\]'"):
        choose("sigstore", OIDC, None, has_sigstore=missing)


@pytest.mark.parametrize(("mode", "env", "key", "message"), [
    ("key", {}, None, "attest=key needs the signing-key input"),
    ("sigstore", {}, None, "id-token: write"),
    ("always", {}, None, "must be one of auto, key, sigstore, off"),
    ("key", {}, "not a key", "not an unencrypted PEM private key"),
])
def test_an_attest_input_that_cannot_work_is_refused(mode: str, env: dict[str, str], key: str | None,
                                                     message: str) -> None:
    with pytest.raises(SigningError, match=message):
        choose(mode, env, key)
