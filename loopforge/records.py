"""Records: the head (current state and summary) of one work item, and its id scheme.

A store keeps two things per record: the append-only trail (``LoopTransition`` entries) and a small head
(``RecordHead``) that summarises it, so reading the current state never reads the history. The head is a
pure function of the trail (``apply_entry``), which ``verify`` uses to check one against the other.

Heads are values: ``apply_entry`` returns a new head that may share unchanged nested metadata with the head and
the entry it was given, and never changes either. Everything that hands a head to code outside the service (a
store's ``head``, the records ``LoopService`` returns) hands out its own copy (``RecordHead.clone``).
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from loopforge.states import LoopState
from loopforge.trail import GENESIS_HASH, STATE_CHANGING, LoopTransition, Outcome, _utc, utcnow

_GITHUB_URL = re.compile(r"^https?://[^/]+/(?P<owner>[\w.-]+)/(?P<repo>[\w.-]+)/(?:issues|pull|pulls)/(?P<n>\d+)/?$")
_SHORT = re.compile(r"^(?P<owner>[\w.-]+)/(?P<repo>[\w.-]+)#(?P<n>\d+)$")
#: A record id made only of characters that are safe in paths, URLs, keys and markdown code (see ``is_safe_id``).
SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/#:-]{0,199}$")
TERMINAL_CLOSED = (LoopState.CLOSED, LoopState.NOT_PLANNED)


def is_safe_id(text: str) -> bool:
    """Whether ``text`` can be used as a record id as it is: ``SAFE_ID`` characters and no ``..``."""
    return bool(SAFE_ID.match(text)) and ".." not in text


def record_id_for(ref: str, repo: str | None = None) -> str:
    """The deterministic, human-readable record id of a ref.

    ``https://github.com/org/repo/issues/42``, ``.../pull/42``, ``org/repo#42`` and (with ``repo="org/repo"``)
    ``#42`` or ``42`` all give ``org/repo#42`` (issues and PRs share one number space on GitHub). Any other ref
    made of safe characters is its own id; anything else becomes ``ref-<sha256 prefix>``.
    """
    ref = ref.strip()
    m = _GITHUB_URL.match(ref) or _SHORT.match(ref)
    if m:
        return f"{m['owner']}/{m['repo']}#{int(m['n'])}"
    if repo and re.fullmatch(r"#?\d+", ref):
        return f"{repo}#{int(ref.lstrip('#'))}"
    if is_safe_id(ref):
        return ref
    return "ref-" + hashlib.sha256(ref.encode("utf-8")).hexdigest()[:16]


def ref_number_of(ref: str) -> int | None:
    m = _GITHUB_URL.match(ref.strip()) or _SHORT.match(ref.strip())
    return int(m["n"]) if m else None


#: ``RecordHead.path``: ``"<from_state or ''>><to_state>"`` -> ``{"taken": n, "violations": k}``.
Path = dict[str, dict[str, int]]


def path_key(from_state: LoopState | None, to_state: LoopState) -> str:
    """The ``RecordHead.path`` key of a move: ``"ci_pending>ci_passed"``; the creation is ``">issue_created"``."""
    return f"{from_state.value if from_state is not None else ''}>{to_state.value}"


def json_copy(value: Any) -> Any:
    """A deep copy of JSON-shaped data (dicts, lists, scalars), far cheaper than ``copy.deepcopy``."""
    kind = type(value)
    if kind is dict:
        return {k: json_copy(v) for k, v in value.items()}
    if kind is list:
        return [json_copy(v) for v in value]
    if kind in (str, int, float, bool) or value is None:
        return value
    return copy.deepcopy(value)


_H = TypeVar("_H", bound="RecordHead")
_PRIVATE_DEFAULTS: dict[type[Any], dict[str, Any]] = {}  # per model class: its private attributes' defaults


class RecordHead(BaseModel):
    """The current state of one record: what a store keeps beside the trail for fast reads and queries.

    ``path`` is the path the record took, folded over its whole trail: for every move the record made
    (``path_key``: ``"ci_pending>ci_failed"``, the creation ``">issue_created"``), how many state-changing
    entries (applied, violation, and a veto's move back) took it, and how many of those were violations. A renderer
    draws the states actually visited from it without reading the trail. ``None`` means unknown: a head written
    before the field existed. ``LoopService`` recomputes it from the trail on the record's next write, and
    ``verify`` checks it against the trail only when it is known.
    """

    record_id: str
    ref: str
    repo: str | None = None
    ref_number: int | None = None
    state: LoopState
    metadata: dict[str, Any] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    auto_merge: bool = False
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    closed_at: datetime | None = None
    last_sequence: int = Field(0, ge=0)
    last_hash: str = GENESIS_HASH
    violations: int = Field(0, ge=0)
    path: Path | None = None

    @field_validator("created_at", "updated_at", "closed_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else _utc(value)

    # 0.1.0 compatibility: these were fields; they now live in metadata.
    @property
    def pr_number(self) -> int | None:
        value = self.metadata.get("pr_number")
        return int(value) if value is not None else None

    @property
    def pr_url(self) -> str | None:
        value = self.metadata.get("pr_url")
        return str(value) if value is not None else None

    def head(self) -> RecordHead:
        """A plain ``RecordHead`` copy (drops any loaded trail)."""
        return RecordHead.clone(self)

    @classmethod
    def clone(cls: type[_H], head: RecordHead, private: dict[str, Any] | None = None) -> _H:
        """An independent copy of ``head``'s fields as a ``cls`` (no validation: a head is valid already).

        The copy shares nothing mutable with ``head`` (metadata, labels and path are copied), and costs a fraction
        of ``model_copy(deep=True)`` or ``model_validate``: it is on every read and write of a record. ``private``
        sets private attributes of ``cls`` (the others get their defaults).
        """
        source = head.__dict__
        fields = {name: source[name] for name in _HEAD_FIELDS}
        fields["metadata"] = json_copy(fields["metadata"])
        fields["labels"] = dict(fields["labels"])
        if fields["path"] is not None:
            fields["path"] = {key: dict(counts) for key, counts in fields["path"].items()}
        # what BaseModel.model_construct does, without re-checking every field for a default
        copied = cls.__new__(cls)
        object.__setattr__(copied, "__dict__", fields)
        object.__setattr__(copied, "__pydantic_fields_set__", set(head.__pydantic_fields_set__))
        object.__setattr__(copied, "__pydantic_extra__", None)
        defaults = _PRIVATE_DEFAULTS.get(cls)
        if defaults is None:
            defaults = _PRIVATE_DEFAULTS[cls] = {name: attr.get_default()
                                                 for name, attr in cls.__private_attributes__.items()}
        object.__setattr__(copied, "__pydantic_private__", {**defaults, **(private or {})} if defaults else None)
        return copied


_HEAD_FIELDS = tuple(RecordHead.model_fields)

EntryLoader = Callable[[str, int], Iterable[LoopTransition]]


class LoopRecord(RecordHead):
    """A record as users see it: the head plus ``transitions``, the trail, loaded on first use.

    ``LoopService`` keeps the records it hands out up to date: a record returned by ``create`` or ``get`` sees
    the transitions made later through the same service.
    """

    _transitions: list[LoopTransition] | None = PrivateAttr(default=None)
    _loader: EntryLoader | None = PrivateAttr(default=None)

    @classmethod
    def from_head(cls, head: RecordHead, loader: EntryLoader | None = None,
                  transitions: Sequence[LoopTransition] | None = None) -> LoopRecord:
        return cls.clone(head, {"_loader": loader,
                                "_transitions": list(transitions) if transitions is not None else None})

    @property
    def transitions(self) -> list[LoopTransition]:
        """The whole trail, oldest first (loads what it has not seen yet from the store)."""
        if self._transitions is None:
            self._transitions = []
        have = self._transitions[-1].sequence if self._transitions else 0
        if have < self.last_sequence and self._loader is not None:
            self._transitions.extend(self._loader(self.record_id, have))
        return self._transitions

    def can_transition_to(self, new_state: LoopState) -> bool:
        from loopforge.states import is_allowed

        return is_allowed(self.state, new_state)

    def _refresh(self, head: RecordHead, new_entries: Sequence[LoopTransition]) -> None:
        """Bring this object up to ``head`` (used by the service on the objects it handed out)."""
        fresh_head = RecordHead.clone(head)
        for name in _HEAD_FIELDS:
            object.__setattr__(self, name, fresh_head.__dict__[name])
        if self._transitions is not None:
            have = self._transitions[-1].sequence if self._transitions else 0
            fresh = [e for e in new_entries if e.sequence > have]
            if fresh and fresh[0].sequence == have + 1:
                self._transitions.extend(fresh)
            # otherwise the next read of ``transitions`` loads the gap from the store

    def to_dict(self, include_transitions: bool = True) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        if include_transitions:
            data["transitions"] = [t.to_json_dict() for t in self.transitions]
        return data


def fold_path(path: Path | None, entry: LoopTransition) -> Path | None:
    """``path`` after ``entry`` (a new dict; ``None`` stays unknown unless ``entry`` creates the record)."""
    if entry.from_state is None:
        path = {}
    elif path is None:
        return None
    elif entry.outcome not in STATE_CHANGING:
        return path
    key = path_key(entry.from_state, entry.to_state)
    counts = path.get(key)
    violation = 1 if entry.outcome is Outcome.VIOLATION else 0
    return {**path, key: {"taken": (counts["taken"] if counts else 0) + 1,
                          "violations": (counts["violations"] if counts else 0) + violation}}


def path_of(entries: Iterable[LoopTransition]) -> Path | None:
    """The ``RecordHead.path`` of a whole trail."""
    path: Path | None = None
    for entry in entries:
        path = fold_path(path, entry)
    return path


def apply_entry(head: RecordHead | None, entry: LoopTransition) -> RecordHead:
    """The head after ``entry`` (pure: returns a new head; may share unchanged nested values with its inputs)."""
    if head is None:
        ev = entry.evidence
        head = RecordHead(
            record_id=entry.record_id,
            ref=str(ev.get("ref", entry.record_id)),
            repo=ev.get("repo"),
            ref_number=ev.get("ref_number"),
            labels=dict(ev.get("labels") or {}),
            auto_merge=bool(ev.get("auto_merge", False)),
            state=entry.to_state,
            created_at=entry.recorded_at,
            updated_at=entry.recorded_at,
        )
    metadata = head.metadata
    if entry.metadata or entry.metadata_removed:
        metadata = {**metadata, **entry.metadata}
        for key in entry.metadata_removed:
            metadata.pop(key, None)
    state = entry.state_after
    closed_at = head.closed_at
    if state in TERMINAL_CLOSED and head.state not in TERMINAL_CLOSED:
        closed_at = entry.recorded_at
    elif state not in TERMINAL_CLOSED:
        closed_at = None
    return head.model_copy(update={
        "state": state,
        "metadata": metadata,
        "updated_at": entry.recorded_at,
        "closed_at": closed_at,
        "last_sequence": entry.sequence,
        "last_hash": entry.hash,
        "violations": head.violations + (1 if entry.outcome is Outcome.VIOLATION else 0),
        "path": fold_path(head.path, entry),
    })


def replay(entries: Iterable[LoopTransition]) -> RecordHead | None:
    head: RecordHead | None = None
    for entry in entries:
        head = apply_entry(head, entry)
    return head


class RecordSpec(BaseModel):
    """Everything a new record is made of: what ``LoopService.create``, ``get_or_create`` and ``creation_entry``
    take (``RecordSpec.of`` also accepts the 0.1.0 arguments ``ref, ref_number, repo, auto_merge, labels``).

    ``record_id`` defaults to ``record_id_for(ref, repo)``; ``ref_number`` to the number in ``ref``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    ref: str
    ref_number: int | None = None
    repo: str | None = None
    auto_merge: bool = False
    labels: dict[str, str] = Field(default_factory=dict)
    state: LoopState = LoopState.ISSUE_CREATED
    metadata: dict[str, Any] = Field(default_factory=dict)
    trigger: str = "record.created"
    actor: str | None = None
    occurred_at: datetime | None = None
    evidence: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str | None = None
    record_id: str | None = None

    @classmethod
    def of(cls, ref: str | RecordSpec, ref_number: int | None = None, repo: str | None = None,
           auto_merge: bool = False, labels: dict[str, str] | None = None, **fields: Any) -> RecordSpec:
        """A spec from a spec, or from the 0.1.0 positional arguments plus any other field by keyword.

        A field given as ``None`` takes its default. Unknown keywords raise ``TypeError``, as a signature would.
        """
        if isinstance(ref, RecordSpec):
            if ref_number is not None or repo is not None or auto_merge or labels is not None or fields:
                raise TypeError("pass either a RecordSpec or the record's fields, not both")
            return ref
        unknown = sorted(set(fields) - set(cls.model_fields))
        if unknown:
            raise TypeError(f"unexpected keyword argument{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}")
        given = {"ref_number": ref_number, "repo": repo, "auto_merge": auto_merge, "labels": labels, **fields}
        return cls(ref=ref, **{k: v for k, v in given.items() if v is not None})

    @property
    def id(self) -> str:
        """The record id: ``record_id``, or the one ``ref`` (with ``repo``) gives."""
        return self.record_id or record_id_for(self.ref, self.repo)


def creation_entry(spec: RecordSpec | str, ref: str | None = None, **fields: Any) -> LoopTransition:
    """The first entry of a new record (sequence 1, sealed), from ``spec``.

    Also callable as ``creation_entry(record_id, ref, repo=..., state=..., ...)`` (the fields of ``RecordSpec``).
    """
    if not isinstance(spec, RecordSpec):
        if ref is None:
            raise TypeError("creation_entry(record_id, ref, ...) needs the ref")
        spec = RecordSpec.of(ref, **{**fields, "record_id": spec})
    elif ref is not None or fields:
        raise TypeError("pass either a RecordSpec or the record's fields, not both")
    ev: dict[str, Any] = json_copy(spec.evidence)
    ev.update({"ref": spec.ref, "repo": spec.repo})
    number = spec.ref_number if spec.ref_number is not None else ref_number_of(spec.ref)
    if number is not None:
        ev["ref_number"] = number
    if spec.labels:
        ev["labels"] = dict(spec.labels)
    if spec.auto_merge:
        ev["auto_merge"] = True
    now = utcnow()
    return LoopTransition(
        record_id=spec.id, sequence=1, from_state=None, to_state=spec.state, trigger=spec.trigger,
        actor=spec.actor, occurred_at=spec.occurred_at or now, recorded_at=now, evidence=ev,
        metadata=json_copy(spec.metadata), idempotency_key=spec.idempotency_key,
    ).sealed()


def create_record(
    ref: str,
    ref_number: int | None = None,
    repo: str | None = None,
    auto_merge: bool = False,
    labels: dict[str, str] | None = None,
    *,
    state: LoopState = LoopState.ISSUE_CREATED,
    metadata: dict[str, Any] | None = None,
) -> LoopRecord:
    """A new, unsaved record with its creation entry (0.1.0 API; ``LoopService.create`` also stores it)."""
    entry = creation_entry(RecordSpec.of(ref, ref_number, repo, auto_merge, labels, state=state, metadata=metadata))
    head = apply_entry(None, entry)
    return LoopRecord.from_head(head, transitions=[entry])

