"""The path a record took: which lifecycle edges its trail moved along, how often, and how often as a violation.

``path_of(entries)`` folds a trail (or a window of one) with ``loopforge.records.fold_path``, the one counting
rule (what ``RecordHead.path`` keeps), into ``{"<from or ''>><to>": {"taken": n, "violations": k}}``: one key per
edge the record's state actually moved along (the creation entry is the edge ``"">to``), in the order each edge
was first taken. Entries that did not move the state (``rejected``, ``noted``, ``hook_failed``) are not edges.
``edges`` reads such a mapping back, dropping any key that does not name lifecycle states (a store is not trusted to
hold only well-formed keys). Imports only the core.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from loopforge.records import Path as PathCounts
from loopforge.records import fold_path
from loopforge.states import LoopState
from loopforge.trail import STATE_CHANGING, LoopTransition

__all__ = ["Edge", "PathCounts", "edges", "moved", "path_of", "visited"]

_STATES = {s.value: s for s in LoopState}


def moved(entry: LoopTransition) -> bool:
    """Whether the record's state moved along ``from_state → to_state`` with this entry."""
    return entry.from_state is None or entry.outcome in STATE_CHANGING


def path_of(entries: Iterable[LoopTransition]) -> PathCounts:
    """The path counted over ``entries``, which may be a window of a trail (then only its moves count; unlike
    ``records.path_of``, which is ``None`` for a trail without its creation entry). Never ``None``."""
    path: PathCounts = {}
    for entry in entries:
        path = fold_path(path, entry) or {}
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
