"""Diff fingerprints, the approvals ledger, and ``invalidate_on_push: {except_same_diff: true}`` on FakeContext."""

from __future__ import annotations

from typing import Any

import pytest

from loopforge.policy import ChangedFile, FakeContext, Review, evaluate, load_policy
from loopforge.policy.fingerprint import MAX_HEADS, NULL_OID, Ledger, fingerprint_files, head_fingerprint
from loopforge.policy.rules import Status

OLD, NEW = "a" * 40, "b" * 40
HEAD_BLOB, BASE_BLOB = "1" * 40, "2" * 40
FILES = [ChangedFile("src/app.py", "modified", 3, 1)]
BLOBS = {"src/app.py": (HEAD_BLOB, BASE_BLOB)}
POLICY = """\
version: 1
rules:
  - name: review
    require:
      approvals: {count: 1, invalidate_on_push: INVALIDATE}
"""


def same_diff_policy(invalidate: str = "{except_same_diff: true}") -> Any:
    return load_policy(POLICY.replace("INVALIDATE", invalidate))


def ctx(head: str = NEW, files: list[ChangedFile] | None = None, blobs: Any = BLOBS, **kw: Any) -> FakeContext:
    return FakeContext(head_sha=head, files=list(FILES if files is None else files), blobs=blobs,
                       review_list=[Review("alice", "APPROVED", OLD, user_id=7)], **kw)


# ---------------------------------------------------------------------------------------------- the fingerprint
def test_fingerprint_is_order_independent_and_sensitive_to_every_field() -> None:
    two = [ChangedFile("a.py", "modified", 1, 1), ChangedFile("b.py", "added", 2, 0)]
    blobs = {"a.py": ("1" * 40, "2" * 40), "b.py": ("3" * 40, NULL_OID)}
    base = fingerprint_files(two, blobs).value
    assert base is not None and len(base) == 64
    assert fingerprint_files(list(reversed(two)), blobs).value == base
    variants = [
        ([ChangedFile("a.py", "modified", 2, 1), two[1]], blobs),           # additions
        ([ChangedFile("a.py", "modified", 1, 0), two[1]], blobs),           # deletions
        ([ChangedFile("a.py", "renamed", 1, 1, "z.py"), two[1]], blobs),    # change type and old name
        (two, {**blobs, "a.py": ("9" * 40, "2" * 40)}),                      # head blob
        (two, {**blobs, "a.py": ("1" * 40, "9" * 40)}),                      # base blob
        (two[:1], blobs),                                                    # a file fewer
    ]
    assert len({fingerprint_files(f, b).value for f, b in variants} | {base}) == len(variants) + 1


@pytest.mark.parametrize("files, blobs, truncated, why", [
    (FILES, {}, False, "the blob ids of src/app.py are not known"),
    (FILES, {"src/app.py": ("", BASE_BLOB)}, False, "the blob ids of src/app.py are not known"),
    ([ChangedFile("new.py", "renamed", 0, 0)], {"new.py": (HEAD_BLOB, BASE_BLOB)}, False,
     "the old name of renamed file new.py is not known"),
    (FILES, BLOBS, True, "the changed-file list is truncated"),
])
def test_no_fingerprint_when_anything_is_unknown(files: list[ChangedFile], blobs: Any, truncated: bool,
                                                 why: str) -> None:
    result = fingerprint_files(files, blobs, truncated=truncated)
    assert result.value is None and result.why == why


def test_head_fingerprint_reads_the_facts_interface() -> None:
    assert head_fingerprint(ctx(blobs=None)).value is None
    assert head_fingerprint(ctx(blobs=None)).why == "blob ids of the changed files not known here"
    assert head_fingerprint(ctx(truncated=True)).value is None
    assert head_fingerprint(ctx()).value == fingerprint_files(FILES, BLOBS).value


# ---------------------------------------------------------------------------------------------- the ledger
def test_ledger_keeps_the_first_fingerprint_per_head_and_a_bounded_window() -> None:
    ledger = Ledger.from_metadata({"diff_fingerprints": {OLD: "f1", "junk": 3}, "approvals": "not a mapping"})
    assert ledger.fingerprints == {OLD: "f1", "junk": None} and ledger.approvals == {}
    ledger.remember_head(OLD, "f2")
    ledger.remember_head(OLD, None)
    assert ledger.fingerprint_of(OLD) == "f1"
    for i in range(MAX_HEADS + 5):
        ledger.remember_head(f"{i:040d}", f"fp{i}")
    assert len(ledger.fingerprints) == MAX_HEADS and OLD not in ledger.fingerprints


def test_ledger_records_each_approval_with_the_fingerprint_of_its_commit() -> None:
    ledger = Ledger({OLD: "f-old", NEW: "f-new"}, {})
    ledger.update_approvals({"alice": Review("alice", "APPROVED", OLD, user_id=7),
                             "bob": Review("bob", "CHANGES_REQUESTED", NEW, user_id=8),
                             "carol": Review("Carol", "APPROVED", "c" * 40, user_id=9)})
    assert ledger.approvals == {
        "alice": {"login": "alice", "user_id": 7, "commit": OLD, "fingerprint": "f-old"},
        "carol": {"login": "Carol", "user_id": 9, "commit": "c" * 40, "fingerprint": None}}
    ledger.fingerprints[OLD] = "changed later"
    ledger.update_approvals({"alice": Review("alice", "APPROVED", OLD, user_id=7)})
    assert ledger.approvals["alice"]["fingerprint"] == "f-old"  # as first recorded


# ---------------------------------------------------------------------------------------------- the rule
def history(fingerprint: str | None) -> dict[str, Any]:
    return {"diff_fingerprints": {OLD: fingerprint}}


def test_an_approval_of_an_older_head_with_the_same_diff_carries_over() -> None:
    same = fingerprint_files(FILES, BLOBS).value
    evaluation = evaluate(same_diff_policy(), ctx(), history=history(same))
    result = evaluation.result("review")
    assert result.status is Status.PASSED
    carried = f"approval by alice carried from {OLD[:7]}: same diff"
    assert carried in result.reason and carried in evaluation.notes
    assert evaluation.carried_approvals == [{"login": "alice", "user_id": 7, "from": OLD, "to": NEW}]
    assert evaluation.stale_approvals == []
    meta = evaluation.record_metadata()["policy"]
    assert meta["diff_fingerprints"] == {OLD: same, NEW: same}
    assert meta["approvals"]["alice"] == {"login": "alice", "user_id": 7, "commit": OLD, "fingerprint": same}
    assert "diff_paths" not in meta


@pytest.mark.parametrize("kw, recorded, why", [
    ({}, "another fingerprint", "the diff changed"),
    ({}, None, f"no diff fingerprint was recorded for {OLD[:7]}"),
    ({"blobs": None}, "x", "the current diff has no fingerprint: blob ids of the changed files not known here"),
])
def test_an_approval_goes_stale_when_the_diff_may_have_changed(kw: dict[str, Any], recorded: str | None,
                                                               why: str) -> None:
    evaluation = evaluate(same_diff_policy(), ctx(**kw), history=history(recorded))
    result = evaluation.result("review")
    assert result.status is Status.PENDING
    assert f"alice approved {OLD[:7]}, before the latest push ({why})" in result.reason
    assert evaluation.stale_approvals == [{"login": "alice", "commit": OLD, "why": why}]
    assert "Stale approvals" in evaluation.markdown() and f"stale approval: alice approved {OLD[:7]}" in \
        evaluation.text()


def test_invalidate_true_and_false_keep_their_meaning() -> None:
    same = fingerprint_files(FILES, BLOBS).value
    strict = evaluate(same_diff_policy("true"), ctx(), history=history(same))
    assert strict.result("review").status is Status.PENDING
    assert strict.stale_approvals == [{"login": "alice", "commit": OLD, "why": "a push made it stale"}]
    assert strict.ledger is None and "policy" in strict.record_metadata()
    assert "diff_fingerprints" not in strict.record_metadata()["policy"]
    lenient = evaluate(same_diff_policy("false"), ctx(), history=history(None))
    assert lenient.result("review").status is Status.PASSED and lenient.stale_approvals == []
    off = evaluate(same_diff_policy("{except_same_diff: false}"), ctx(), history=history(same))
    assert off.result("review").status is Status.PENDING  # a mapping without except_same_diff: like true


def test_blob_ids_are_read_only_when_the_policy_uses_fingerprints() -> None:
    c = ctx()
    evaluate(same_diff_policy("true"), c)
    assert "diff_blobs" not in c.calls
    c = ctx()
    evaluate(same_diff_policy(), c)
    assert c.calls.count("diff_blobs") == 1


def test_a_head_fingerprint_the_record_keeps_is_not_read_again() -> None:
    same = fingerprint_files(FILES, BLOBS).value
    assert same is not None
    c = ctx()
    evaluation = evaluate(same_diff_policy(), c, history={"diff_fingerprints": {OLD: same, NEW: same}})
    assert "diff_blobs" not in c.calls
    assert evaluation.result("review").status is Status.PASSED  # carried, from the two recorded fingerprints
    assert evaluation.diff_fingerprint == {"value": same, "why": "", "files": 0, "source": "record"}


def test_a_head_is_fingerprinted_on_its_first_evaluation_before_any_approval() -> None:
    """A fork's PR: CI (a ``workflow_run``, which can write) evaluates head OLD before anyone approves; alice's
    approval of OLD arrives through a review event that cannot write; the author rebases to NEW with the same
    diff. The approval carries, because OLD was fingerprinted when it was first evaluated."""
    first = FakeContext(head_sha=OLD, files=list(FILES), blobs=BLOBS)
    ledger = evaluate(same_diff_policy(), first).record_metadata()["policy"]
    assert first.calls.count("diff_blobs") == 1 and ledger["diff_fingerprints"][OLD] is not None
    again = FakeContext(head_sha=OLD, files=list(FILES), blobs=BLOBS)
    evaluate(same_diff_policy(), again, history=ledger)
    assert "diff_blobs" not in again.calls  # the record has it
    rebased = ctx()  # head NEW, same files and blobs, alice approved OLD
    evaluation = evaluate(same_diff_policy(), rebased, history=ledger)
    assert evaluation.result("review").status is Status.PASSED
    assert evaluation.carried_approvals == [{"login": "alice", "user_id": 7, "from": OLD, "to": NEW}]


def test_an_api_error_reading_the_reviews_is_reported_by_the_rule_not_raised() -> None:
    class Failing(FakeContext):
        def reviews(self) -> Any:
            raise RuntimeError("502 Bad Gateway")

    c = Failing(head_sha=NEW, files=list(FILES), blobs=BLOBS)
    evaluation = evaluate(same_diff_policy(), c)
    assert evaluation.verdict == "block"
    assert "502 Bad Gateway" in evaluation.result("review").reason
    assert c.calls.count("diff_blobs") == 1  # the head is fingerprinted on its first evaluation all the same


def test_a_file_name_in_why_there_is_no_fingerprint_reaches_the_reason_cleaned() -> None:
    name = "a\x1b[31m\u202eb\nc.py"
    c = ctx(files=[ChangedFile(name, "renamed", 1, 1)], blobs={name: (HEAD_BLOB, BASE_BLOB)})
    evaluation = evaluate(same_diff_policy(), c, history={"diff_fingerprints": {OLD: "f" * 64}})
    reason = evaluation.result("review").reason
    assert "the current diff has no fingerprint: the old name of renamed file" in reason
    assert not any(ch in reason for ch in "\x1b\u202e\n"), reason
    assert not any(ch in evaluation.text() for ch in "\x1b\u202e"), evaluation.text()
