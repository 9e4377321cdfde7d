"""``LoopService``: validates, records and reports every move of a record.

Every write is ``Repository.append`` with the sequence the service expects; a concurrent writer that got there
first makes it raise ``ConcurrencyError`` and the service reloads the head, re-checks the idempotency key,
re-validates, re-runs the guards and tries again. Nothing is lost and nothing is written twice.
"""

from __future__ import annotations

import copy
import logging
import random
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

from loopforge.errors import ConcurrencyError, RecordExists, RecordNotFound, StoreCorrupt, TransitionError
from loopforge.records import (
    LoopRecord,
    Path,
    RecordHead,
    RecordSpec,
    apply_entry,
    creation_entry,
    fold_path,
    json_copy,
    path_of,
    record_id_for,
)
from loopforge.repository.base import Page, RecordQuery, Repository, all_pages
from loopforge.states import INITIAL_STATES, LoopState, invalid_transition_message, is_allowed
from loopforge.trail import LoopTransition, Outcome, VerifyProblem, VerifyReport, utcnow, verify_entries

logger = logging.getLogger("loopforge")
_T = TypeVar("_T")
#: The first wait after a lost write is at most this many seconds; each further one may double (up to 0.5 s).
_BACKOFF = 0.002

#: ``(record, previous_state, new_state, trigger)``: the published hook and guard signature.
TransitionHook = Callable[[LoopRecord, LoopState, LoopState, str], Any]
Guard = TransitionHook


@dataclass
class TransitionResult:
    """What a call did. ``success`` is True when the record is now in ``new_state`` (or, for a duplicate,
    when the first delivery succeeded)."""

    success: bool
    record: LoopRecord | None
    error: str | None = None
    previous_state: LoopState | None = None
    new_state: LoopState | None = None
    outcome: Outcome | None = None
    entries: list[LoopTransition] = field(default_factory=list)
    duplicate: bool = False

    @property
    def entry(self) -> LoopTransition | None:
        """The first entry this call wrote (or, for a duplicate, the entry recorded the first time)."""
        return self.entries[0] if self.entries else None


@dataclass
class Veto:
    """Why a move is refused. ``source`` is the kind of rule: ``"lifecycle"`` (the transition table),
    ``"policy"`` (the governance policy, see ``loopforge.policy``) or ``"guard"`` (any other guard or hook; a
    guard may name another source through ``TransitionError(source=...)`` or a ``veto_source`` attribute)."""

    rule: str
    reason: str
    details: dict[str, Any] = field(default_factory=dict)
    source: str = "guard"


@dataclass
class CheckResult:
    """The dry run of a prospective transition: would ``transition`` apply it right now?"""

    record_id: str
    current_state: LoopState
    new_state: LoopState
    allowed: bool
    vetoes: list[Veto] = field(default_factory=list)

    @property
    def reasons(self) -> list[str]:
        return [v.reason for v in self.vetoes]

    def __bool__(self) -> bool:
        return self.allowed


def _first_line(exc: Exception) -> str:
    return " ".join(str(exc).split("\n")[:2])[:200]


def _veto_key(key: str) -> str:
    """The idempotency key of the entry that records a hook's veto of the move carrying ``key``."""
    return f"{key}#vetoed"


def _name(fn: Callable[..., Any]) -> str:
    return str(getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn))


@dataclass
class _Draft:
    """An entry before the service gives it a sequence and a hash."""

    from_state: LoopState | None
    to_state: LoopState
    trigger: str
    outcome: Outcome
    reason: str | None = None
    rule: str | None = None
    actor: str | None = None
    occurred_at: datetime | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    metadata_removed: list[str] = field(default_factory=list)
    idempotency_key: str | None = None


class LoopService:
    """Drive records through the lifecycle and keep their audit trail.

    ``guards`` run before anything is stored (a veto is recorded as a rejected attempt); ``hooks`` run in order
    after the transition is recorded (``TransitionError`` from a hook vetoes it, any other exception is recorded
    as a hook failure and rolls nothing back).
    """

    def __init__(
        self,
        repository: Repository | None = None,
        hooks: Sequence[TransitionHook] | None = None,
        guards: Sequence[Guard] | None = None,
        *,
        max_attempts: int = 60,
        max_seconds: float = 60.0,
    ) -> None:
        if repository is None:
            from loopforge.repository.memory import MemoryRepository

            repository = MemoryRepository()
        self._repository: Repository = repository
        self._hooks: list[TransitionHook] = list(hooks or [])
        self._guards: list[Guard] = list(guards or [])
        self._max_attempts = max_attempts
        self._max_seconds = max_seconds
        self._live: dict[str, list[weakref.ref[LoopRecord]]] = {}
        self._live_lock = threading.Lock()
        self.conflicts = 0  # how many conditional writes lost and were retried (for benchmarks and reports)

    # ------------------------------------------------------------------ configuration
    @property
    def repository(self) -> Repository:
        return self._repository

    def add_hook(self, hook: TransitionHook) -> None:
        self._hooks.append(hook)

    def add_guard(self, guard: Guard) -> None:
        self._guards.append(guard)

    # ------------------------------------------------------------------ reading
    def get(self, record_id: str) -> LoopRecord | None:
        head = self._repository.head(record_id)
        return self._track(head) if head else None

    def get_by_ref(self, ref: str, repo: str | None = None) -> LoopRecord | None:
        return self.get(record_id_for(ref, repo))

    def history(self, record_id: str) -> list[LoopTransition]:
        return list(self._repository.entries(record_id))

    def query(self, query: RecordQuery | None = None, **filters: Any) -> Page:
        """One page of records (``state=``, ``repo=``, ``since=``, ``until=``, ``violations_only=``, ``limit=``)."""
        return self._repository.query(query or RecordQuery(**filters))

    def find(self, **filters: Any) -> list[RecordHead]:
        """Every record matching the filters (follows pagination)."""
        return list(all_pages(self._repository, RecordQuery(**filters)))

    def verify(self, record_id: str) -> VerifyReport:
        """Check the record's hash chain and that its head matches its trail.

        An entry or head that was edited into something unreadable (not JSON, not an entry) is a problem named
        in the report, not an exception: the rest of the trail is still checked.
        """
        try:
            head = self._repository.head(record_id)
        except (ValueError, StoreCorrupt) as exc:  # a store translates pydantic's ValidationError to StoreCorrupt
            return VerifyReport(record_id=record_id, entries=0, problems=[
                VerifyProblem(sequence=None, problem=f"the record's head is unreadable ({_first_line(exc)})")])
        if head is None:
            raise RecordNotFound(record_id)
        unreadable: list[VerifyProblem] = []
        folded: list[Path | None] = [None]

        def folding(entries: Iterable[LoopTransition]) -> Iterator[LoopTransition]:
            for entry in entries:
                folded[0] = fold_path(folded[0], entry)
                yield entry

        report = verify_entries(record_id, folding(self._readable_entries(record_id, head.last_sequence,
                                                                          unreadable)),
                                last_sequence=head.last_sequence, last_hash=head.last_hash, state=head.state)
        if report.ok and not unreadable and head.path is not None and head.path != folded[0]:
            # a head written before ``path`` existed has none (unknown): nothing to check then
            return report.model_copy(update={"problems": [VerifyProblem(
                sequence=None, problem="the head's path (moves and counts) differs from the trail's (head edited)")]})
        if not unreadable:
            return report
        problems = sorted([*unreadable, *report.problems], key=lambda p: p.sequence or 0)
        return report.model_copy(update={"problems": problems})

    def _readable_entries(self, record_id: str, last: int, unreadable: list[VerifyProblem]
                          ) -> Iterator[LoopTransition]:
        """The record's entries in stored order, skipping (and reporting) any that cannot be read.

        A store may parse a page of entries at once (SQLite reads 1,000): when a read fails, the entries after
        the last good one are read one at a time until the bad one is passed, then whole pages again.
        """
        after = 0
        while after <= last:
            try:
                for entry in self._repository.entries(record_id, after=after):
                    after = entry.sequence
                    yield entry
                return
            except (ValueError, StoreCorrupt):
                pass
            while True:
                try:
                    one = list(self._repository.entries(record_id, after=after, limit=1))
                except (ValueError, StoreCorrupt) as exc:
                    after += 1  # stores read entries in sequence order: the one after the last good one is bad
                    unreadable.append(VerifyProblem(sequence=after, problem=f"unreadable, not an entry (edited): "
                                                                            f"{_first_line(exc)}"))
                    break
                if not one:
                    return
                after = one[0].sequence
                yield one[0]

    # ------------------------------------------------------------------ creating
    def create(self, ref: str | RecordSpec, ref_number: int | None = None, repo: str | None = None,
               auto_merge: bool = False, labels: dict[str, str] | None = None, **fields: Any) -> LoopRecord:
        """Create and store a record (its id is derived from ``ref``, e.g. ``org/repo#42``).

        Takes a ``RecordSpec``, or its fields: ``create(ref="org/repo#42", repo="org/repo", metadata={...})``
        (any field of ``RecordSpec`` by keyword: ``state``, ``metadata``, ``trigger``, ``actor``, ``occurred_at``,
        ``evidence``, ``idempotency_key``, ``record_id``). Raises ``RecordExists`` if the id is taken (use
        ``get_or_create`` when that is expected).
        """
        record, created = self.get_or_create(RecordSpec.of(ref, ref_number, repo, auto_merge, labels, **fields))
        if not created:
            raise RecordExists(f"Record already exists: {record.record_id} (use get_or_create)")
        return record

    def get_or_create(self, ref: str | RecordSpec, ref_number: int | None = None, repo: str | None = None,
                      auto_merge: bool = False, labels: dict[str, str] | None = None,
                      **fields: Any) -> tuple[LoopRecord, bool]:
        """The record for ``ref``, creating it in ``state`` if it does not exist. Returns ``(record, created)``.

        Takes what ``create`` takes.
        """
        spec = RecordSpec.of(ref, ref_number, repo, auto_merge, labels, **fields)
        if spec.state not in INITIAL_STATES:
            raise ValueError(invalid_transition_message(None, spec.state))
        rid = spec.id
        entry = creation_entry(spec)
        head = apply_entry(None, entry)

        def once() -> RecordHead | None:
            try:
                self._repository.append(head, [entry])
            except ConcurrencyError:
                existing = self._repository.head(rid)
                if existing is None:  # a transient conflict (DynamoDB's TransactionConflict): try again
                    raise
                return existing
            return None

        existing = self._retry(once)
        if existing is not None:
            return self._track(existing), False
        logger.info("%s: created in %s (%s)", rid, spec.state.value, spec.trigger)
        return self._track(head, [entry]), True

    # ------------------------------------------------------------------ moving
    def transition(
        self,
        record_id: str,
        new_state: LoopState,
        trigger: str,
        metadata: dict[str, Any] | None = None,
        *,
        actor: str | None = None,
        evidence: dict[str, Any] | None = None,
        occurred_at: datetime | None = None,
        idempotency_key: str | None = None,
    ) -> TransitionResult:
        """Move a record if the table and the guards allow it; otherwise record the rejected attempt.

        ``metadata`` is merged into the record's metadata (and shown in the entry).
        """
        return self._move(record_id, LoopState(new_state), trigger, observed=False, metadata=metadata,
                          actor=actor, evidence=evidence, occurred_at=occurred_at, key=idempotency_key)

    def observe(
        self,
        record_id: str,
        new_state: LoopState,
        trigger: str,
        metadata: dict[str, Any] | None = None,
        *,
        violations: Sequence[Veto] | None = None,
        actor: str | None = None,
        evidence: dict[str, Any] | None = None,
        occurred_at: datetime | None = None,
        idempotency_key: str | None = None,
    ) -> TransitionResult:
        """Record a move that already happened (a fact from GitHub). It is always applied; if the table, a guard
        or one of ``violations`` forbids it, the entry is a ``violation`` naming the rule it broke."""
        return self._move(record_id, LoopState(new_state), trigger, observed=True, metadata=metadata,
                          actor=actor, evidence=evidence, occurred_at=occurred_at, key=idempotency_key,
                          extra_violations=list(violations or []))

    def reject(
        self,
        record_id: str,
        new_state: LoopState,
        trigger: str,
        reason: str,
        *,
        rule: str | None = None,
        actor: str | None = None,
        evidence: dict[str, Any] | None = None,
        occurred_at: datetime | None = None,
        idempotency_key: str | None = None,
    ) -> TransitionResult:
        """Record that an event asked for ``new_state`` and could not be applied (state unchanged)."""

        def build(head: RecordHead) -> list[_Draft]:
            return [_Draft(head.state, LoopState(new_state), trigger, Outcome.REJECTED, reason=reason, rule=rule,
                           actor=actor, occurred_at=occurred_at, evidence=json_copy(evidence or {}),
                           idempotency_key=idempotency_key)]

        return self._simple(record_id, build, idempotency_key, success=False, error=reason)

    def violation(
        self,
        record_id: str,
        trigger: str,
        reason: str,
        *,
        rule: str,
        evidence: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        actor: str | None = None,
        occurred_at: datetime | None = None,
        idempotency_key: str | None = None,
    ) -> TransitionResult:
        """Record that ``rule`` was broken without a state change (e.g. the trail was edited outside LoopForge):
        a ``violation`` entry from and to the current state, counted in the head's ``violations``."""

        def build(head: RecordHead) -> list[_Draft]:
            return [_Draft(head.state, head.state, trigger, Outcome.VIOLATION, reason=reason, rule=rule,
                           actor=actor, occurred_at=occurred_at, evidence=json_copy(evidence or {}),
                           metadata=json_copy(metadata or {}), idempotency_key=idempotency_key)]

        return self._simple(record_id, build, idempotency_key, success=True, error=None)

    def note(
        self,
        record_id: str,
        trigger: str,
        *,
        reason: str | None = None,
        evidence: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        metadata_removed: Sequence[str] = (),
        actor: str | None = None,
        occurred_at: datetime | None = None,
        idempotency_key: str | None = None,
    ) -> TransitionResult:
        """Record evidence or metadata without a state change (e.g. a policy evaluation)."""

        def build(head: RecordHead) -> list[_Draft]:
            return [_Draft(head.state, head.state, trigger, Outcome.NOTED, reason=reason, actor=actor,
                           occurred_at=occurred_at, evidence=json_copy(evidence or {}),
                           metadata=json_copy(metadata or {}), metadata_removed=list(metadata_removed),
                           idempotency_key=idempotency_key)]

        return self._simple(record_id, build, idempotency_key, success=True, error=None)

    def check(self, record_id: str, new_state: LoopState, trigger: str = "check") -> CheckResult:
        """Dry run: would ``transition(record_id, new_state)`` be applied now? Writes nothing."""
        head = self._repository.head(record_id)
        if head is None:
            raise RecordNotFound(record_id)
        new_state = LoopState(new_state)
        vetoes = self._evaluate(head, new_state, trigger)
        return CheckResult(record_id=record_id, current_state=head.state, new_state=new_state,
                           allowed=not vetoes, vetoes=vetoes)

    # ------------------------------------------------------------------ internals
    def _retry(self, once: Callable[[], _T]) -> _T:
        """``once()``, tried again while it raises ``ConcurrencyError`` (a conditional write lost).

        The first try runs bare: the uncontended path pays for no retry machinery. After a lost write, tenacity
        runs the rest on the same budget: a writer that keeps losing gives up only after BOTH ``max_attempts``
        tries and ``max_seconds`` (under heavy contention a loser must not starve after a fixed count while
        winners retry at once), and never after more than 20 x ``max_attempts`` tries; between tries it waits a
        random exponential backoff (at most 2 ms after the first loss, doubling, capped at 0.5 s).
        """
        started = time.monotonic()
        try:
            return once()
        except ConcurrencyError:
            if self._max_attempts <= 1 and time.monotonic() - started >= self._max_seconds:
                raise  # the budget was one try
        self.conflicts += 1
        time.sleep(random.uniform(0, _BACKOFF))  # the wait after try 1; tenacity's try n is try n + 1
        left = max(0.0, self._max_seconds - (time.monotonic() - started))
        stop = ((stop_after_attempt(self._max_attempts - 1) & stop_after_delay(left))
                | stop_after_attempt(self._max_attempts * 20 - 1))
        retrying = Retrying(retry=retry_if_exception_type(ConcurrencyError), stop=stop,
                            wait=wait_random_exponential(multiplier=2 * _BACKOFF, max=0.5), reraise=True,
                            before_sleep=self._count_conflict)
        for attempt in retrying:
            with attempt:
                return once()
        raise AssertionError("unreachable: tenacity re-raises the last ConcurrencyError")  # pragma: no cover

    def _count_conflict(self, _state: Any) -> None:
        self.conflicts += 1

    def _evaluate(self, head: RecordHead, new_state: LoopState, trigger: str) -> list[Veto]:
        vetoes: list[Veto] = []
        if not is_allowed(head.state, new_state):
            vetoes.append(Veto(rule="lifecycle", reason=invalid_transition_message(head.state, new_state),
                               source="lifecycle"))
        if not self._guards:
            return vetoes
        record = LoopRecord.from_head(head, self._load)
        for guard in self._guards:
            try:
                verdict = guard(record, head.state, new_state, trigger)
            except TransitionError as exc:
                vetoes.append(Veto(rule=exc.rule or _name(guard), reason=exc.reason, details=exc.details,
                                   source=exc.source or "guard"))
            except Exception as exc:  # fail closed: a guard that could not decide does not approve
                vetoes.append(Veto(rule=_name(guard), reason=f"guard {_name(guard)} failed: "
                                                             f"{type(exc).__name__}: {exc}",
                                   source=str(getattr(guard, "veto_source", "guard"))))
            else:
                if verdict is False:
                    vetoes.append(Veto(rule=_name(guard), reason=f"guard {_name(guard)} refused",
                                       source=str(getattr(guard, "veto_source", "guard"))))
        return vetoes

    def _load(self, record_id: str, after: int) -> Iterable[LoopTransition]:
        return self._repository.entries(record_id, after)

    def _duplicate(self, record_id: str, key: str | None) -> TransitionResult | None:
        if not key:
            return None
        seen = self._repository.find_key(record_id, key)
        if seen is None:
            return None
        record = self.get(record_id)
        vetoed = self._repository.find_key(record_id, _veto_key(key)) if seen.outcome is Outcome.APPLIED else None
        if vetoed is not None:  # a hook vetoed the first delivery: so does the answer to this one
            return TransitionResult(success=False, record=record, previous_state=seen.from_state,
                                    outcome=Outcome.VETOED, entries=[seen, vetoed], duplicate=True,
                                    error=vetoed.reason)
        ok = seen.outcome in (Outcome.APPLIED, Outcome.VIOLATION, Outcome.NOTED)
        return TransitionResult(success=ok, record=record, previous_state=seen.from_state,
                                new_state=seen.to_state, outcome=seen.outcome, entries=[seen], duplicate=True,
                                error=None if ok else seen.reason)

    def _with_path(self, head: RecordHead) -> RecordHead:
        """``head`` with its ``path`` folded from the trail, if it was written before heads had one (once per
        record: the next write stores it). An unreadable trail leaves it unknown."""
        try:
            path = path_of(self._repository.entries(head.record_id, 0, head.last_sequence))
        except (ValueError, StoreCorrupt):
            return head
        return head.model_copy(update={"path": path})

    def _commit(self, head: RecordHead, drafts: Sequence[_Draft]) -> tuple[RecordHead, list[LoopTransition]]:
        if head.path is None and head.last_sequence:
            head = self._with_path(head)
        now = utcnow()
        entries: list[LoopTransition] = []
        new_head = head
        for d in drafts:
            entry = LoopTransition(
                record_id=head.record_id, sequence=new_head.last_sequence + 1, from_state=d.from_state,
                to_state=d.to_state, trigger=d.trigger, outcome=d.outcome, reason=d.reason, rule=d.rule,
                actor=d.actor, occurred_at=d.occurred_at or now, recorded_at=now, evidence=d.evidence,
                metadata=d.metadata, metadata_removed=d.metadata_removed, idempotency_key=d.idempotency_key,
                prev_hash=new_head.last_hash,
            ).sealed()
            new_head = apply_entry(new_head, entry)
            entries.append(entry)
        self._repository.append(new_head, entries)
        self._publish(new_head, entries)
        return new_head, entries

    def _simple(self, record_id: str, build: Callable[[RecordHead], list[_Draft]], key: str | None,
                *, success: bool, error: str | None) -> TransitionResult:
        def once() -> TransitionResult:
            dup = self._duplicate(record_id, key)
            if dup:
                return dup
            head = self._repository.head(record_id)
            if head is None:
                return TransitionResult(success=False, record=None, error=f"Record not found: {record_id}")
            new_head, entries = self._commit(head, build(head))
            return TransitionResult(success=success, record=self._track(new_head), error=error,
                                    previous_state=head.state, new_state=entries[-1].state_after,
                                    outcome=entries[0].outcome, entries=entries)

        return self._retry(once)

    def _move(self, record_id: str, new_state: LoopState, trigger: str, *, observed: bool,
              metadata: dict[str, Any] | None, actor: str | None, evidence: dict[str, Any] | None,
              occurred_at: datetime | None, key: str | None,
              extra_violations: list[Veto] | None = None) -> TransitionResult:
        base = _Draft(None, new_state, trigger, Outcome.APPLIED, actor=actor, occurred_at=occurred_at,
                      evidence=json_copy(evidence or {}), metadata=json_copy(metadata or {}), idempotency_key=key)

        def once() -> TransitionResult | tuple[RecordHead, _Draft, RecordHead, list[LoopTransition]]:
            dup = self._duplicate(record_id, key)
            if dup:
                return dup
            head = self._repository.head(record_id)
            if head is None:
                return TransitionResult(success=False, record=None, error=f"Record not found: {record_id}",
                                        new_state=new_state)
            draft = copy.copy(base)
            draft.from_state = head.state
            if observed and head.state == new_state and not is_allowed(head.state, new_state):
                # the fact is already recorded (e.g. two deliveries that both imply the merge): a note
                draft.outcome = Outcome.NOTED
                draft.reason = f"already {new_state.value}"
                new_head, entries = self._commit(head, [draft])
                return TransitionResult(success=True, record=self._track(new_head), previous_state=head.state,
                                        new_state=new_state, outcome=Outcome.NOTED, entries=entries)
            vetoes = self._evaluate(head, new_state, trigger) + list(extra_violations or [])
            if vetoes and not observed:
                draft.outcome = Outcome.REJECTED
                draft.metadata = {}
            elif vetoes:
                draft.outcome = Outcome.VIOLATION
            if vetoes:
                draft.reason = "; ".join(v.reason for v in vetoes)
                draft.rule = ", ".join(dict.fromkeys(v.rule for v in vetoes))
                draft.evidence = {**draft.evidence,
                                  "vetoes": [{"rule": v.rule, "reason": v.reason, **v.details} for v in vetoes]}
            new_head, entries = self._commit(head, [draft])
            return head, draft, new_head, entries

        done = self._retry(once)
        if isinstance(done, TransitionResult):
            return done
        head, draft, new_head, entries = done
        previous = head.state
        if draft.outcome is Outcome.REJECTED:
            logger.info("%s: rejected %s → %s (%s): %s", record_id, previous.value, new_state.value, trigger,
                        draft.reason)
            return TransitionResult(success=False, record=self._track(new_head), error=draft.reason,
                                    previous_state=previous, outcome=Outcome.REJECTED, entries=entries)
        logger.info("%s: %s → %s (%s)%s", record_id, previous.value, new_state.value, trigger,
                    " VIOLATION" if draft.outcome is Outcome.VIOLATION else "")
        return self._after_hooks(new_head, entries, previous, new_state, trigger, observed=observed, actor=actor)

    def _after_hooks(self, head: RecordHead, entries: list[LoopTransition], previous: LoopState,
                     new_state: LoopState, trigger: str, *, observed: bool, actor: str | None) -> TransitionResult:
        outcome = entries[0].outcome
        key = entries[0].idempotency_key
        if not self._hooks:
            return TransitionResult(success=True, record=self._track(head), previous_state=previous,
                                    new_state=new_state, outcome=outcome, entries=entries)
        record = LoopRecord.from_head(head, self._load, None)
        before = copy.deepcopy(record.metadata)
        failures: list[tuple[str, Exception]] = []
        veto: tuple[str, TransitionError] | None = None
        for hook in self._hooks:
            try:
                hook(record, previous, new_state, trigger)
            except TransitionError as exc:
                veto = (exc.rule or _name(hook), exc)
                break  # hooks after a veto do not run
            except Exception as exc:
                logger.warning("%s: hook %s failed: %s: %s", head.record_id, _name(hook), type(exc).__name__, exc)
                failures.append((_name(hook), exc))
        after = record.metadata
        patch = {k: v for k, v in after.items() if k not in before or before[k] != v}
        removed = [k for k in before if k not in after]
        if not (failures or veto or patch or removed):
            return TransitionResult(success=True, record=self._track(head), previous_state=previous,
                                    new_state=new_state, outcome=outcome, entries=entries)

        def build(current: RecordHead) -> list[_Draft]:
            drafts = [_Draft(current.state, current.state, f"{trigger}.hook", Outcome.HOOK_FAILED, rule=name,
                             reason=f"hook {name} failed: {type(exc).__name__}: {exc}", actor=actor)
                      for name, exc in failures]
            if veto is not None:
                name, err = veto
                if observed:  # a fact cannot be undone: the objection is recorded as a violation
                    drafts.append(_Draft(current.state, current.state, f"{trigger}.hook", Outcome.VIOLATION,
                                         rule=name, reason=err.reason, evidence=dict(err.details), actor=actor))
                elif current.state == new_state:
                    drafts.append(_Draft(current.state, previous, f"{trigger}.vetoed", Outcome.VETOED, rule=name,
                                         reason=err.reason, evidence=dict(err.details), actor=actor,
                                         idempotency_key=_veto_key(key) if key else None))
                else:
                    drafts.append(_Draft(current.state, current.state, f"{trigger}.vetoed", Outcome.NOTED,
                                         rule=name, reason=f"vetoed ({err.reason}), but the record had already "
                                                           f"moved on to {current.state.value}", actor=actor,
                                         idempotency_key=_veto_key(key) if key else None))
            if not drafts:
                drafts.append(_Draft(current.state, current.state, f"{trigger}.hook", Outcome.NOTED,
                                     reason="metadata written by hooks", actor=actor))
            drafts[-1].metadata = patch
            drafts[-1].metadata_removed = removed
            return drafts

        def once() -> tuple[RecordHead, list[LoopTransition]]:
            current = self._repository.head(head.record_id)
            assert current is not None
            return self._commit(current, build(current))

        head2, more = self._retry(once)
        all_entries = entries + more
        if veto is not None and not observed:
            return TransitionResult(success=False, record=self._track(head2), error=veto[1].reason,
                                    previous_state=previous, new_state=None, outcome=Outcome.VETOED,
                                    entries=all_entries)
        return TransitionResult(success=True, record=self._track(head2), previous_state=previous,
                                new_state=new_state, outcome=outcome, entries=all_entries)

    # ------------------------------------------------------------------ live records
    def _track(self, head: RecordHead, entries: Sequence[LoopTransition] | None = None) -> LoopRecord:
        record = LoopRecord.from_head(head, self._load, entries)
        with self._live_lock:
            refs = [r for r in self._live.get(head.record_id, []) if r() is not None]
            refs.append(weakref.ref(record))
            self._live[head.record_id] = refs
        return record

    def _publish(self, head: RecordHead, entries: Sequence[LoopTransition]) -> None:
        with self._live_lock:
            refs = list(self._live.get(head.record_id, []))
        for ref in refs:
            record = ref()
            if record is not None and record.last_sequence < head.last_sequence:
                record._refresh(head, entries)
