"""Fixtures of the evidence tests (plain helpers: tests/evidence/helpers.py)."""

from __future__ import annotations

import pytest

from tests.evidence.helpers import ecdsa_pem, ed25519_pem


@pytest.fixture(params=["ecdsa-p256", "ed25519"])
def key_pair(request: pytest.FixtureRequest) -> tuple[str, str]:
    return ecdsa_pem() if request.param == "ecdsa-p256" else ed25519_pem()
