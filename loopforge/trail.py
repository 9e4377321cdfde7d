"""The audit trail: one immutable entry per thing that happened, hash-chained.

Each entry stores the hash of the previous entry of the same record and its own hash over a canonical JSON
form of every other field, so an edited, removed or reordered entry breaks the chain and ``verify`` names it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from loopforge.states import LoopState

GENESIS_HASH = "0" * 64


class Outcome(StrEnum):
    """What an entry means for the record's state."""

    APPLIED = "applied"  # the move happened and is allowed
    REJECTED = "rejected"  # the move was refused (invalid, guard veto, event that cannot apply); state unchanged
    VETOED = "vetoed"  # a hook vetoed an applied move; this entry moves the record back
    HOOK_FAILED = "hook_failed"  # a hook raised; nothing rolled back
    VIOLATION = "violation"  # an observed fact the lifecycle or a rule forbids; state follows reality
    NOTED = "noted"  # evidence or metadata recorded without a state change (e.g. a policy evaluation)


#: Outcomes after which the record is in ``to_state``; for the others it stays in ``from_state``.
STATE_CHANGING = frozenset({Outcome.APPLIED, Outcome.VETOED, Outcome.VIOLATION})


def utcnow() -> datetime:
    return datetime.now(UTC)


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class LoopTransition(BaseModel):
    """One audit-trail entry. Immutable once written."""

    model_config = ConfigDict(frozen=True)

    record_id: str
    sequence: int = Field(ge=1)
    from_state: LoopState | None
    to_state: LoopState
    trigger: str
    outcome: Outcome = Outcome.APPLIED
    reason: str | None = None
    rule: str | None = None
    actor: str | None = None
    occurred_at: datetime = Field(default_factory=utcnow)
    recorded_at: datetime = Field(default_factory=utcnow)
    evidence: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)
    metadata_removed: list[str] = Field(default_factory=list)
    idempotency_key: str | None = None
    prev_hash: str = GENESIS_HASH
    hash: str = ""

    @field_validator("occurred_at", "recorded_at")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return _utc(value)

    @property
    def timestamp(self) -> datetime:
        """When it happened (the event time). Kept for the 0.1.0 API."""
        return self.occurred_at

    @property
    def state_after(self) -> LoopState:
        """The record's state after this entry."""
        if self.outcome in STATE_CHANGING or self.from_state is None:
            return self.to_state
        return self.from_state

    def compute_hash(self) -> str:
        return entry_hash(self.model_dump(mode="json", exclude={"hash"}))

    def sealed(self) -> LoopTransition:
        """A copy carrying its own hash (built directly: every other field is validated already)."""
        fields = dict(self.__dict__)
        fields["hash"] = self.compute_hash()
        copied = LoopTransition.__new__(LoopTransition)
        object.__setattr__(copied, "__dict__", fields)
        object.__setattr__(copied, "__pydantic_fields_set__", {*self.__pydantic_fields_set__, "hash"})
        object.__setattr__(copied, "__pydantic_extra__", None)
        object.__setattr__(copied, "__pydantic_private__", None)
        return copied

    def to_json_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def entry_hash(fields: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of an entry's fields (without ``hash``)."""
    body = {k: v for k, v in fields.items() if k != "hash"} if "hash" in fields else fields
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


class VerifyProblem(BaseModel):
    sequence: int | None
    problem: str

    def __str__(self) -> str:
        where = f"entry {self.sequence}" if self.sequence is not None else "record"
        return f"{where}: {self.problem}"


class VerifyReport(BaseModel):
    record_id: str
    entries: int
    problems: list[VerifyProblem] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def __bool__(self) -> bool:
        return self.ok


def verify_entries(
    record_id: str,
    entries: Iterable[LoopTransition],
    *,
    last_sequence: int | None = None,
    last_hash: str | None = None,
    state: LoopState | None = None,
) -> VerifyReport:
    """Check the chain of one record's entries (in stored order) and, if given, the head that summarises it.

    Detects: an edited entry (its hash no longer matches its content), a removed entry (a gap in the sequence,
    or a head that names a later entry), a reordered entry (sequence out of order or a broken ``prev_hash`` link).
    """
    problems: list[VerifyProblem] = []
    expected_seq = 1
    prev_hash = GENESIS_HASH
    count = 0
    current: LoopState | None = None
    previous: tuple[int, bool] | None = None  # (sequence, hash intact) of the entry before
    seen: set[int] = set()
    gaps: list[tuple[int, int, int]] = []  # (where in problems, first skipped sequence, the entry found instead)
    for entry in entries:
        count += 1
        if entry.record_id != record_id:
            problems.append(VerifyProblem(sequence=entry.sequence,
                                          problem=f"belongs to record {entry.record_id!r}, not {record_id!r}"))
        intact = entry.hash == entry.compute_hash()
        if not intact:
            problems.append(VerifyProblem(sequence=entry.sequence,
                                          problem="content does not match its hash (entry edited)"))
        seen.add(entry.sequence)
        if entry.sequence != expected_seq:
            if entry.sequence > expected_seq:  # missing, unless they turn up later (reordered): decided at the end
                gaps.append((len(problems), expected_seq, entry.sequence))
            else:
                problems.append(VerifyProblem(sequence=entry.sequence,
                                              problem=f"out of order: found after entry {expected_seq - 1}"))
        if entry.prev_hash != prev_hash:
            if previous is not None and previous[1] and intact and entry.sequence == previous[0] + 1:
                # both hashes are right for their contents, in order: one of them was edited and re-hashed
                problems.append(VerifyProblem(
                    sequence=previous[0],
                    problem=f"its hash is not the one entry {entry.sequence} links to (entry edited and re-hashed)"))
            problems.append(VerifyProblem(
                sequence=entry.sequence,
                problem="previous-hash link broken (an entry before it was edited, removed or reordered)"))
        if current is not None and entry.from_state is not None and entry.from_state != current:
            problems.append(VerifyProblem(
                sequence=entry.sequence,
                problem=f"starts from {entry.from_state.value} but the record was in {current.value}"))
        current = entry.state_after
        previous = (entry.sequence, intact)
        prev_hash = entry.hash
        expected_seq = max(expected_seq, entry.sequence + 1)  # an entry found late does not move the count on
    for where, first, found in reversed(gaps):
        runs: list[tuple[int, int]] = []  # the skipped sequences never found anywhere (an edited sequence can be huge)
        start = first
        for seq in [*sorted(n for n in seen if first <= n < found), found]:
            if seq > start:
                runs.append((start, seq - 1))
            start = max(start, seq + 1)
        problems[where:where] = [VerifyProblem(
            sequence=low, problem=f"missing: {f'entry {low}' if low == high else f'entries {low}-{high}'} removed "
                                  f"before entry {found}") for low, high in runs]
    if last_sequence is not None and last_sequence != expected_seq - 1:
        if last_sequence > expected_seq - 1:
            problems.append(VerifyProblem(
                sequence=expected_seq,
                problem=f"missing: the record's head names entry {last_sequence} but the trail ends at "
                        f"{expected_seq - 1} (entry removed)"))
        else:
            problems.append(VerifyProblem(
                sequence=last_sequence,
                problem=f"the record's head ends at entry {last_sequence} but the trail has {expected_seq - 1}"))
    elif last_hash is not None and count and last_hash != prev_hash:
        problems.append(VerifyProblem(sequence=expected_seq - 1,
                                      problem="last entry's hash differs from the one the head recorded"))
    if state is not None and current is not None and state != current:
        problems.append(VerifyProblem(sequence=None,
                                      problem=f"head says {state.value} but the trail ends in {current.value}"))
    return VerifyReport(record_id=record_id, entries=count, problems=problems)
