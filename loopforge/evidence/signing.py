"""Signing statements as DSSE envelopes: with a PEM key (ECDSA P-256 or Ed25519) or keyless with Sigstore.

DSSE (https://github.com/secure-systems-lab/dsse, protocol v1): the signature is over
``PAE(payloadType, payload) = "DSSEv1" SP len(type) SP type SP len(body) SP body`` and the envelope is
``{"payloadType", "payload": base64, "signatures": [{"keyid", "sig": base64}]}``. The key path uses
``cryptography`` (ECDSA P-256 with SHA-256, DER signatures; Ed25519) and produces envelopes that
``securesystemslib``'s DSSE implementation verifies (tested). The keyless path is one thin call into the
``sigstore`` package (a Fulcio certificate for the workflow's OIDC identity, a Rekor entry, a Sigstore bundle);
it needs ``permissions: id-token: write`` in the workflow.

``choose_signer(mode, env, signing_key_pem)`` implements the Action input ``attest``:
``auto`` (keyless when an OIDC token can be requested, a key when ``signing-key`` is set, else skip with a
notice), ``key``, ``sigstore``, ``off``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from loopforge.errors import InputError
from loopforge.evidence.statement import PAYLOAD_TYPE

SignerKind = Literal["key", "sigstore"]
MODES = ("auto", "key", "sigstore", "off")

#: The file suffix of each kind of signed document in the attestation store.
SUFFIX: dict[str, str] = {"key": ".dsse.json", "sigstore": ".sigstore.json"}

NOTICE_SKIPPED = ("attest=auto: no OIDC token (add `permissions: id-token: write` to the job for keyless Sigstore "
                  "signing) and no signing-key input, so no signed evidence was written for this merge")


class SigningError(InputError):
    """A signing key or mode that cannot be used (bad PEM, unsupported key type, no OIDC token for sigstore)."""


class VerificationFailed(Exception):
    """A signature, envelope or bundle that does not verify."""


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding."""
    type_bytes = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(type_bytes), type_bytes, len(payload), payload)


@dataclass(frozen=True)
class SignedDocument:
    kind: SignerKind
    text: str  # the DSSE envelope JSON (key) or the Sigstore bundle JSON (sigstore)


class Signer(Protocol):
    kind: SignerKind

    def sign(self, payload: bytes) -> SignedDocument:
        """Sign one in-toto statement (its exact bytes)."""
        ...


# ---------------------------------------------------------------------------------------------- keys
PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey


def key_id(public_key: PublicKey) -> str:
    """SHA-256 of the key's DER SubjectPublicKeyInfo (hex): the ``keyid`` in envelopes."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def _pem_bytes(pem: str | bytes) -> bytes:
    """A PEM block as the loaders want it: bytes, with surrounding white space trimmed to one final newline."""
    data = pem.encode("utf-8") if isinstance(pem, str) else pem
    return data.strip() + b"\n"


def load_private_key(pem: str | bytes) -> PrivateKey:
    data = _pem_bytes(pem)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise SigningError("signing-key is not an unencrypted PEM private key (ECDSA P-256 or Ed25519)") from exc
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    raise SigningError(f"signing-key is a {type(key).__name__.removeprefix('_')}; use ECDSA P-256 or Ed25519")


def load_public_key(pem: str | bytes) -> PublicKey:
    data = _pem_bytes(pem)
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise SigningError("not a PEM public key (ECDSA P-256 or Ed25519)") from exc
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    raise SigningError("the public key is neither ECDSA P-256 nor Ed25519")


def _raw_sign(key: PrivateKey, message: bytes) -> bytes:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(message)
    return key.sign(message, ec.ECDSA(hashes.SHA256()))


def _raw_verify(key: PublicKey, signature: bytes, message: bytes) -> bool:
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, message)
        else:
            key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


class KeySigner:
    """Signs with a PEM private key (the ``signing-key`` input): a DSSE envelope with one signature."""

    kind: SignerKind = "key"

    def __init__(self, private_key_pem: str | bytes) -> None:
        self._key = load_private_key(private_key_pem)
        self.public_key: PublicKey = self._key.public_key()
        self.keyid = key_id(self.public_key)

    def public_key_pem(self) -> str:
        return self.public_key.public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def sign(self, payload: bytes) -> SignedDocument:
        signature = _raw_sign(self._key, pae(PAYLOAD_TYPE, payload))
        envelope = {"payloadType": PAYLOAD_TYPE, "payload": base64.b64encode(payload).decode(),
                    "signatures": [{"keyid": self.keyid, "sig": base64.b64encode(signature).decode()}]}
        return SignedDocument("key", json.dumps(envelope, indent=2, sort_keys=True) + "\n")


def parse_envelope(text: str) -> tuple[str, bytes, list[dict[str, Any]]]:
    """``(payloadType, payload, signatures)`` of a DSSE envelope; ``VerificationFailed`` if it is not one."""
    try:
        data = json.loads(text)
        payload_type = data["payloadType"]
        payload = base64.b64decode(data["payload"], validate=True)
        signatures = data["signatures"]
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise VerificationFailed(f"not a DSSE envelope ({type(exc).__name__})") from None
    if not isinstance(payload_type, str) or not isinstance(signatures, list):
        raise VerificationFailed("not a DSSE envelope (payloadType or signatures of the wrong type)")
    return payload_type, payload, [s for s in signatures if isinstance(s, dict)]


def verify_envelope(text: str, public_key: PublicKey) -> bytes:
    """The payload of a DSSE envelope if one of its signatures verifies with ``public_key``."""
    payload_type, payload, signatures = parse_envelope(text)
    if payload_type != PAYLOAD_TYPE:
        raise VerificationFailed(f"payloadType is {payload_type[:80]!r}, not {PAYLOAD_TYPE}")
    if not signatures:
        raise VerificationFailed("the envelope has no signature")
    message = pae(payload_type, payload)
    for sig in signatures:
        try:
            raw = base64.b64decode(str(sig.get("sig", "")), validate=True)
        except (ValueError, binascii.Error):
            continue
        if _raw_verify(public_key, raw, message):
            return payload
    raise VerificationFailed(f"no signature verifies with the key {key_id(public_key)[:16]}…")


# ---------------------------------------------------------------------------------------------- Sigstore
def _request_oidc_token() -> str:  # pragma: no cover - needs GitHub's OIDC endpoint
    """An OIDC token for audience ``sigstore`` from the Actions runtime (``id-token: write``)."""
    from sigstore.oidc import detect_credential

    token = detect_credential()
    if not token:
        raise SigningError("no OIDC token: add `permissions: id-token: write` to the job")
    return str(token)


def _sigstore_session(token: str) -> Callable[[bytes], str]:  # pragma: no cover - needs Fulcio and Rekor
    """The whole keyless path: one Fulcio certificate for the token's identity (an ephemeral key), then for each
    statement a DSSE signature and a Rekor entry, returned as a Sigstore bundle (JSON)."""
    from sigstore.dsse import Statement
    from sigstore.models import ClientTrustConfig
    from sigstore.oidc import IdentityToken
    from sigstore.sign import SigningContext

    context = SigningContext.from_trust_config(ClientTrustConfig.production())
    signer = context.signer(IdentityToken(token), cache=True).__enter__()  # the context manager only yields

    def sign(payload: bytes) -> str:
        return str(signer.sign_dsse(Statement(payload)).to_json())

    return sign


class SigstoreSigner:
    """Keyless signing through the ``sigstore`` package. ``token`` fetches the OIDC token; ``session(token)``
    returns the function that signs one statement into a Sigstore bundle (one certificate for all statements of a
    merge). Both are replaceable: tests pass fakes, since no test can reach GitHub's OIDC, Fulcio or Rekor."""

    kind: SignerKind = "sigstore"

    def __init__(self, token: Callable[[], str] = _request_oidc_token,
                 session: Callable[[str], Callable[[bytes], str]] = _sigstore_session) -> None:
        self._token = token
        self._session = session
        self._sign: Callable[[bytes], str] | None = None

    def sign(self, payload: bytes) -> SignedDocument:
        if self._sign is None:
            self._sign = self._session(self._token())
        return SignedDocument("sigstore", self._sign(payload))


def _sigstore_verify(bundle_json: str, identity: str, issuer: str) -> tuple[str, bytes]:  # pragma: no cover
    from sigstore.models import Bundle
    from sigstore.verify import Verifier, policy

    bundle = Bundle.from_json(bundle_json)
    payload_type, payload = Verifier.production().verify_dsse(bundle, policy.Identity(identity=identity,
                                                                                      issuer=issuer))
    return str(payload_type), bytes(payload)


def verify_bundle(bundle_json: str, identity: str, issuer: str,
                  verify: Callable[[str, str, str], tuple[str, bytes]] = _sigstore_verify) -> bytes:
    """The payload of a Sigstore bundle whose certificate names ``identity`` from ``issuer`` (e.g.
    ``https://github.com/o/r/.github/workflows/loopforge.yml@refs/heads/main`` and
    ``https://token.actions.githubusercontent.com``)."""
    try:
        payload_type, payload = verify(bundle_json, identity, issuer)
    except VerificationFailed:
        raise
    except Exception as exc:  # sigstore raises its own VerificationError / Error types
        raise VerificationFailed(f"the Sigstore bundle does not verify: {str(exc)[:300]}") from None
    if payload_type != PAYLOAD_TYPE:
        raise VerificationFailed(f"payloadType is {payload_type[:80]!r}, not {PAYLOAD_TYPE}")
    return payload


# ---------------------------------------------------------------------------------------------- choice
def sigstore_installed() -> bool:
    """The ``sigstore`` package (extra ``loopforge[evidence]``) is importable."""
    import importlib.util

    return importlib.util.find_spec("sigstore") is not None


NOTICE_NO_SIGSTORE = ("attest=auto: the job can mint an OIDC token but the sigstore package is not installed "
                      "(pip install 'loopforge[evidence]'), so no keyless evidence was written for this merge")


def oidc_available(env: Mapping[str, str]) -> bool:
    """The Actions runtime can mint an OIDC token (the job has ``id-token: write``)."""
    return bool(env.get("ACTIONS_ID_TOKEN_REQUEST_URL") and env.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN"))


@dataclass(frozen=True)
class SignerChoice:
    signer: Signer | None
    notice: str | None = None  # say this as a ::notice (auto mode that skipped)


def choose(mode: str, env: Mapping[str, str], signing_key_pem: str | None, *,
           sigstore_factory: Callable[[], Signer] = SigstoreSigner,
           has_sigstore: Callable[[], bool] = sigstore_installed) -> SignerChoice:
    """The signer for the ``attest`` input, with the notice to print when ``auto`` skips. ``SigningError`` for
    a mode that cannot work (``key`` without a key, ``sigstore`` without an OIDC token, a bad key, a bad mode)."""
    mode = (mode or "auto").strip().lower()
    key = (signing_key_pem or "").strip()
    if mode not in MODES:
        raise SigningError(f"input attest must be one of {', '.join(MODES)}, got {mode[:40]!r}")
    if mode == "off":
        return SignerChoice(None)
    if mode == "key":
        if not key:
            raise SigningError("attest=key needs the signing-key input (a PEM private key from a secret)")
        return SignerChoice(KeySigner(key))
    if mode == "sigstore":
        if not oidc_available(env):
            raise SigningError("attest=sigstore needs an OIDC token: add `permissions: id-token: write` to the job")
        if not has_sigstore():
            raise SigningError("attest=sigstore needs the sigstore package: pip install 'loopforge[evidence]'")
        return SignerChoice(sigstore_factory())
    if oidc_available(env) and has_sigstore():
        return SignerChoice(sigstore_factory())
    if key:
        return SignerChoice(KeySigner(key))
    return SignerChoice(None, NOTICE_NO_SIGSTORE if oidc_available(env) else NOTICE_SKIPPED)


def choose_signer(mode: str, env: Mapping[str, str], signing_key_pem: str | None) -> Signer | None:
    """The brief's one-call form of ``choose`` (the notice for a skipped ``auto`` is ``NOTICE_SKIPPED``)."""
    return choose(mode, env, signing_key_pem).signer
