"""The path a record took: which lifecycle edges its trail moved along, how often, and how often as a violation.

``path_of(entries)`` folds a trail into ``{"<from or ''>><to>": {"taken": n, "violations": k}}``: one key per edge
the record's state actually moved along (the creation entry is the edge ``"">to``), in the order each edge was
first taken. Entries that did not move the state (``rejected``, ``noted``, ``hook_failed``) are not edges. The
same mapping is what ``RecordHead.path`` keeps (written with each append) so a renderer need not read the trail;
``edges`` reads either one back, dropping any key that does not name lifecycle states (a store is not trusted to
hold only well-formed keys). Imports only the core.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from loopforge.states import LoopState
from loopforge.trail import STATE_CHANGING, LoopTransition, Outcome

#: ``{"<from or ''>><to>": {"taken": n, "violations": k}}``
PathCounts = dict[str, dict[str, int]]

_STATES = {s.value: s for s in LoopState}


def edge_key(source: LoopState | None, target: LoopState) -> str:
    return f"{source.value if source is not None else ''}>{LoopState(target).value}"


def moved(entry: LoopTransition) -> bool:
    """Whether the record's state moved along ``from_state → to_state`` with this entry."""
    return entry.from_state is None or entry.outcome in STATE_CHANGING


def add_entry(path: PathCounts, entry: LoopTransition) -> PathCounts:
    """``path`` with ``entry`` counted (in place; returns it)."""
    if moved(entry):
        counts = path.setdefault(edge_key(entry.from_state, entry.to_state), {"taken": 0, "violations": 0})
        counts["taken"] = counts.get("taken", 0) + 1
        if entry.outcome is Outcome.VIOLATION:
            counts["violations"] = counts.get("violations", 0) + 1
    return path


def path_of(entries: Iterable[LoopTransition]) -> PathCounts:
    path: PathCounts = {}
    for entry in entries:
        add_entry(path, entry)
    return path


@dataclass(frozen=True)
class Edge:
    source: LoopState | None  # None: the record was created in ``target``
    target: LoopState
    taken: int
    violations: int


def edges(path: Mapping[str, object]) -> list[Edge]:
    """The well-formed edges of a path mapping, in its order (malformed keys or counts are skipped)."""
    out: list[Edge] = []
    for key, counts in path.items():
        if not isinstance(key, str) or key.count(">") != 1 or not isinstance(counts, Mapping):
            continue
        src, _, dst = key.partition(">")
        if dst not in _STATES or (src and src not in _STATES):
            continue
        taken, violations = counts.get("taken", 0), counts.get("violations", 0)
        if not isinstance(taken, int) or not isinstance(violations, int) or isinstance(taken, bool) or taken < 1:
            continue
        out.append(Edge(_STATES[src] if src else None, _STATES[dst], taken, max(0, min(violations, taken))))
    return out


def visited(path_edges: Iterable[Edge]) -> list[LoopState]:
    """The states a path reaches, in the order first reached."""
    seen: dict[LoopState, None] = {}
    for edge in path_edges:
        if edge.source is not None:
            seen.setdefault(edge.source, None)
        seen.setdefault(edge.target, None)
    return list(seen)
