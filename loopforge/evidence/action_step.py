"""The Action's evidence step: after a merge is recorded, sign and store its evidence (inputs ``attest`` and
``signing-key``). Call ``attest_step`` once per ``pull_request.closed`` event with ``merged: true`` (also when the
run is a re-run that recorded nothing: evidence is write-once, so a re-run completes what a cut-off run missed).

It never raises for a merge it cannot attest: the outcome carries a ``notice`` (nothing to sign with, no merge
commit recorded) or an ``error`` (an ``attest``/``signing-key`` input that cannot work, a store or signer failure)
for the Action to print, and ``summary`` (one plain sentence, no untrusted text) for the step summary and the check
run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from loopforge.evidence.attest import AttestationResult, attest_merge
from loopforge.evidence.facts import DEFAULT_POLICY_PATH, MergeFactsError, merge_facts_from_record
from loopforge.evidence.signing import SignerChoice, SigningError, choose
from loopforge.evidence.statement import VERIFIER_ID
from loopforge.evidence.store import attestation_store_for
from loopforge.github.workflow_commands import action_input
from loopforge.repository.base import Repository
from loopforge.states import LoopState
from loopforge.trail import LoopTransition

#: entries read back when the caller cannot pass the ones it wrote (a re-run): the merge event writes a few
#: entries and the policy note; a longer window is read only if the merge is not in it
WINDOW = 16


#: What ``attest_step`` reads from the environment besides the two inputs (keep these when the Action copies
#: its environment into its configuration: ``evidence_env(env)``).
EVIDENCE_ENV_KEYS = ("INPUT_ATTEST", "INPUT_SIGNING-KEY", "INPUT_SIGNING_KEY", "ACTIONS_ID_TOKEN_REQUEST_URL",
                     "ACTIONS_ID_TOKEN_REQUEST_TOKEN", "GITHUB_ACTION_REPOSITORY", "GITHUB_ACTION_REF",
                     "GITHUB_SERVER_URL")


def evidence_env(env: Mapping[str, str]) -> dict[str, str]:
    """The part of the environment ``attest_step`` needs (the signing key stays out of logs: never print it)."""
    return {k: env[k] for k in EVIDENCE_ENV_KEYS if k in env}


@dataclass(frozen=True)
class AttestStepOutcome:
    result: AttestationResult | None = None
    notice: str | None = None
    error: str | None = None

    @property
    def summary(self) -> str:
        if self.result is not None and self.result.outcome != "skipped":
            return self.result.summary_text()
        return ""


def verifier_id(env: Mapping[str, str]) -> str:
    """The action and its version as the VSA's ``verifier.id``: ``<server>/<owner>/<action repo>@<ref>`` when the
    runner says which action runs (``GITHUB_ACTION_REPOSITORY``/``GITHUB_ACTION_REF``), else LoopForge's id."""
    repo, ref = env.get("GITHUB_ACTION_REPOSITORY", ""), env.get("GITHUB_ACTION_REF", "")
    if repo and ref and "/" in repo and all(c.isalnum() or c in "-_./" for c in repo + ref):
        return f"{env.get('GITHUB_SERVER_URL', 'https://github.com').rstrip('/')}/{repo}@{ref}"
    return VERIFIER_ID


def _entries(store: Repository, record_id: str, last: int,
             written: Sequence[LoopTransition] | None) -> list[LoopTransition]:
    if written:
        merge_at = [i for i, e in enumerate(written) if e.to_state is LoopState.MERGED]
        if merge_at and any(e.trigger == "policy.evaluated" for e in written[merge_at[-1]:]):
            return list(written)
    window = list(store.entries(record_id, after=max(0, last - WINDOW)))
    if any(e.to_state is LoopState.MERGED for e in window):
        return window
    return list(store.entries(record_id))


def attest_step(env: Mapping[str, str], store: Repository, record_id: str, *,
                written: Sequence[LoopTransition] | None = None, server_url: str = "https://github.com",
                policy_path: str = DEFAULT_POLICY_PATH,
                choose_signer: Callable[[str, Mapping[str, str], str | None], SignerChoice] = choose,
                ) -> AttestStepOutcome:
    """Sign and store the evidence of the merge just recorded in ``record_id``.

    ``written``: the entries this run wrote, merge entry and ``policy.evaluated`` note both (then no request reads
    them back; otherwise the newest entries are read from the store);
    ``choose_signer`` is replaceable for tests (a fake Sigstore signer)."""
    mode = action_input(env, "attest", "auto") or "auto"
    if mode.lower() == "off":
        return AttestStepOutcome()
    try:
        choice = choose_signer(mode, env, action_input(env, "signing-key") or None)
    except SigningError as exc:
        return AttestStepOutcome(error=f"evidence not signed: {exc}")
    try:
        head = store.head(record_id)
        if head is None:
            return AttestStepOutcome(notice=f"evidence not written: record {record_id} not found")
        entries = _entries(store, record_id, head.last_sequence, written)
        facts = merge_facts_from_record(head, entries, server_url=server_url, policy_path=policy_path)
        result = attest_merge(facts, attestation_store_for(store), choice.signer, verifier_id=verifier_id(env))
    except MergeFactsError as exc:
        return AttestStepOutcome(notice=f"evidence not written: {exc}")
    except Exception as exc:  # the store or the signer (Sigstore: OIDC, Fulcio, Rekor) failing must not hide
        # the merge: one error line; a re-run of the job writes the evidence (it is write-once, never twice)
        kind = choice.signer.kind if choice.signer else "none"
        return AttestStepOutcome(error=f"evidence not written ({kind}): {type(exc).__name__}: {str(exc)[:300]}")
    return AttestStepOutcome(result=result, notice=choice.notice)
