"""``RecordSpec``: the one description of a new record (``create``, ``get_or_create``, ``creation_entry``)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from loopforge import LoopService, LoopState, RecordExists, RecordSpec
from loopforge.records import creation_entry

S = LoopState


def test_create_takes_a_spec_or_its_fields_by_keyword_or_0_1_0_position() -> None:
    service = LoopService()
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    by_spec = service.create(RecordSpec(ref="org/repo#1", repo="org/repo", state=S.PR_CREATED, actor="octo",
                                        metadata={"risk_tier": "high"}, occurred_at=when, labels={"team": "a"}))
    by_keyword = service.create(ref="org/repo#2", repo="org/repo", state=S.PR_CREATED, actor="octo",
                                metadata={"risk_tier": "high"}, occurred_at=when, labels={"team": "a"})
    by_position = service.create("https://github.com/org/repo/issues/3", None, "org/repo", True, {"team": "a"})
    assert (by_spec.record_id, by_keyword.record_id, by_position.record_id) == (
        "org/repo#1", "org/repo#2", "org/repo#3")
    for record in (by_spec, by_keyword):
        assert record.state is S.PR_CREATED and record.metadata == {"risk_tier": "high"}
        assert record.transitions[0].actor == "octo" and record.transitions[0].occurred_at == when
    assert by_position.auto_merge and by_position.ref_number == 3 and by_position.labels == {"team": "a"}


def test_get_or_create_with_a_spec_and_an_explicit_record_id() -> None:
    service = LoopService()
    spec = RecordSpec(ref="anything", record_id="custom-id", idempotency_key="k1")
    record, created = service.get_or_create(spec)
    again, created_again = service.get_or_create(spec)
    assert (record.record_id, created, again.record_id, created_again) == ("custom-id", True, "custom-id", False)
    assert record.transitions[0].idempotency_key == "k1"
    with pytest.raises(RecordExists):
        service.create(spec)


def test_wrong_arguments_fail_like_a_signature() -> None:
    service = LoopService()
    with pytest.raises(TypeError, match="unexpected keyword argument: colour"):
        service.create(ref="org/repo#4", colour="red")
    with pytest.raises(TypeError, match="not both"):
        service.create(RecordSpec(ref="org/repo#4"), repo="org/repo")
    with pytest.raises(ValueError, match="Invalid initial state"):
        service.create(ref="org/repo#4", state=S.MERGED)
    assert service.get("org/repo#4") is None


def test_none_means_the_default() -> None:
    spec = RecordSpec.of("org/repo#5", metadata=None, evidence=None, actor=None, labels=None)
    assert spec == RecordSpec(ref="org/repo#5") and spec.id == "org/repo#5"


def test_creation_entry_from_a_spec_or_the_old_arguments() -> None:
    new = creation_entry(RecordSpec(ref="org/repo#6", repo="org/repo", evidence={"e": 1}, auto_merge=True))
    old = creation_entry("org/repo#6", "org/repo#6", repo="org/repo", evidence={"e": 1}, auto_merge=True)
    keep = {"record_id", "sequence", "from_state", "to_state", "trigger", "evidence", "metadata"}
    assert new.model_dump(include=keep) == old.model_dump(include=keep)
    assert new.evidence == {"e": 1, "ref": "org/repo#6", "repo": "org/repo", "ref_number": 6, "auto_merge": True}
    with pytest.raises(TypeError):
        creation_entry("org/repo#6")
