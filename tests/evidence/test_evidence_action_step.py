"""The Action's evidence step (``attest_step``): inputs ``attest`` and ``signing-key``, what it reads, and that it
never raises for a merge it cannot attest."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from loopforge.evidence.action_step import attest_step, verifier_id
from loopforge.evidence.signing import NOTICE_SKIPPED, SignedDocument, SignerChoice
from loopforge.evidence.store import attestation_store_for
from loopforge.repository.memory import MemoryRepository
from loopforge.trail import LoopTransition
from tests.evidence.helpers import MERGE_SHA, RECORD, Trail, ecdsa_pem


class CountingRepository(MemoryRepository):
    def __init__(self) -> None:
        super().__init__()
        self.entry_reads = 0

    def entries(self, record_id: str, after: int = 0, limit: int | None = None) -> Iterable[LoopTransition]:
        self.entry_reads += 1
        return super().entries(record_id, after, limit)


def merged_store(**kw: Any) -> CountingRepository:
    repo = CountingRepository()
    Trail(repo).merged(**kw)
    repo.entry_reads = 0
    return repo


def test_key_mode_signs_and_stores() -> None:
    repo = merged_store()
    outcome = attest_step({"INPUT_ATTEST": "key", "INPUT_SIGNING-KEY": ecdsa_pem()[0]}, repo, RECORD)
    assert outcome.error is None and outcome.notice is None and outcome.result is not None
    assert outcome.result.outcome == "written" and attestation_store_for(repo).get(MERGE_SHA) is not None
    assert outcome.summary.startswith("Evidence: a SLSA verification summary (PASSED)")
    assert f"loopforge attest verify {MERGE_SHA}" in outcome.summary
    again = attest_step({"INPUT_ATTEST": "key", "INPUT_SIGNING-KEY": ecdsa_pem()[0]}, repo, RECORD)
    assert again.result is not None and again.result.outcome == "exists"


def test_the_entries_this_run_wrote_need_no_read() -> None:
    repo = merged_store()
    written = list(repo.entries(RECORD))[-3:]  # the merge event's entries and the policy note
    repo.entry_reads = 0
    outcome = attest_step({"INPUT_ATTEST": "key", "INPUT_SIGNING-KEY": ecdsa_pem()[0]}, repo, RECORD,
                          written=written)
    assert outcome.result is not None and outcome.result.outcome == "written" and repo.entry_reads == 0
    # without the policy note among them, the newest entries are read once (the window holds the merge)
    other = merged_store()
    attest_step({"INPUT_ATTEST": "key", "INPUT_SIGNING-KEY": ecdsa_pem()[0]}, other, RECORD, written=written[:-1])
    assert other.entry_reads == 1


def test_auto_without_a_signer_is_a_notice_and_off_is_silent() -> None:
    repo = merged_store()
    auto = attest_step({}, repo, RECORD)
    assert (auto.notice, auto.error, auto.summary) == (NOTICE_SKIPPED, None, "")
    assert attestation_store_for(repo).get(MERGE_SHA) is None
    off = attest_step({"INPUT_ATTEST": "off", "INPUT_SIGNING-KEY": ecdsa_pem()[0]}, repo, RECORD)
    assert (off.result, off.notice, off.error) == (None, None, None)


@pytest.mark.parametrize(("env", "message"), [
    ({"INPUT_ATTEST": "key"}, "attest=key needs the signing-key input"),
    ({"INPUT_ATTEST": "sigstore"}, "id-token: write"),
    ({"INPUT_ATTEST": "yes"}, "must be one of"),
])
def test_inputs_that_cannot_work_are_one_error(env: dict[str, str], message: str) -> None:
    outcome = attest_step(env, merged_store(), RECORD)
    assert outcome.result is None and outcome.error is not None and message in outcome.error


def test_a_failing_signer_is_an_error_not_an_exception() -> None:
    class Broken:
        kind = "sigstore"

        def sign(self, payload: bytes) -> SignedDocument:
            raise ConnectionError("fulcio.sigstore.dev unreachable")

    outcome = attest_step({"INPUT_ATTEST": "sigstore"}, merged_store(), RECORD,
                          choose_signer=lambda mode, env, key: SignerChoice(Broken()))  # type: ignore[arg-type]
    assert outcome.error == "evidence not written (sigstore): ConnectionError: fulcio.sigstore.dev unreachable"


def test_no_merge_recorded_is_a_notice() -> None:
    repo = CountingRepository()
    Trail(repo).send("01")
    outcome = attest_step({"INPUT_ATTEST": "key", "INPUT_SIGNING-KEY": ecdsa_pem()[0]}, repo, RECORD)
    assert outcome.notice is not None and "holds no merge" in outcome.notice and outcome.error is None


def test_verifier_id_names_the_running_action() -> None:
    env = {"GITHUB_ACTION_REPOSITORY": "acme/loopforge", "GITHUB_ACTION_REF": "v1.4.0",
           "GITHUB_SERVER_URL": "https://ghe.example.com"}
    assert verifier_id(env) == "https://ghe.example.com/acme/loopforge@v1.4.0"
    assert verifier_id({}).endswith("/action@v0.2.0")
    assert verifier_id({**env, "GITHUB_ACTION_REF": "v1\n::error::x"}).endswith("/action@v0.2.0")
