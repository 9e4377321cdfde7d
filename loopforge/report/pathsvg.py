"""One record's path as a small static SVG (the HTML report has no Mermaid: it must work offline, without script).

A diagram, not a chart: the states the record visited stand in a column in the order first reached; an edge to
the next state is a straight arrow, a jump forward an arc on the right, a step back an arc on the left, a repeat
of the same state a loop; every edge is labelled with how often it was taken. The current state is highlighted
and edges taken as a violation are red. Colours come from the page's CSS classes (``pd-*``), so light and dark
schemes both work. Only lifecycle state names (an enum) and numbers reach the SVG; they are escaped anyway.
"""

from __future__ import annotations

from html import escape

from loopforge.paths import Edge, visited
from loopforge.states import LoopState

ROW = 46
NODE_W = 170
NODE_H = 28
LEFT = 110  # room for arcs that go back
RIGHT = 150  # room for arcs that jump forward and for labels
TOP = 34


#: The arrowheads, defined once per page (an inline SVG can use another inline SVG's markers by id).
MARKERS = ('<svg class="pd-defs" width="0" height="0" aria-hidden="true" focusable="false"><defs>'
           '<marker id="pd-a" class="pd-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" '
           'markerHeight="8" markerUnits="userSpaceOnUse" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z"/>'
           '</marker><marker id="pd-b" class="pd-arrow pd-bad" viewBox="0 0 10 10" refX="9" refY="5" '
           'markerWidth="9" markerHeight="9" markerUnits="userSpaceOnUse" orient="auto-start-reverse">'
           '<path d="M0,0L10,5L0,10z"/></marker></defs></svg>')


def _label(edge: Edge) -> str:
    text = f"{edge.taken}×"
    if edge.violations:
        text += f" · {edge.violations} violation{'s' if edge.violations != 1 else ''}"
    return text


def path_svg(path_edges: list[Edge], current: LoopState | None, *, title: str) -> str:
    states = visited(path_edges)
    if current is not None and current not in states:
        states.append(current)
    index = {s: i for i, s in enumerate(states)}
    width = LEFT + NODE_W + RIGHT
    height = TOP + len(states) * ROW + 8
    x0, x1 = LEFT, LEFT + NODE_W
    cx = LEFT + NODE_W // 2

    def top(i: int) -> int:
        return TOP + i * ROW

    def mid(i: int) -> int:
        return top(i) + NODE_H // 2

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="pathdiagram" role="img" '
             f'aria-label="{escape(title)}" viewBox="0 0 {width} {height}" width="{width}" height="{height}">',
             f'<circle class="pd-start" cx="{cx}" cy="8" r="6"><title>start</title></circle>']
    lanes_right = 0
    lanes_left = 0
    for edge in path_edges:
        bad = edge.violations > 0
        cls = "pd-edge pd-bad" if bad else "pd-edge"
        marker = "url(#pd-b)" if bad else "url(#pd-a)"
        j = index[edge.target]
        label = escape(_label(edge))
        tcls = "pd-label pd-bad" if bad else "pd-label"
        if edge.source is None:
            d = f"M{cx},14 L{cx},{top(j) - 2}" if j == 0 else \
                f"M{cx + 6},10 C{x1 + 60},10 {x1 + 60},{mid(j)} {x1 + 2},{mid(j)}"
            lx, ly, anchor = cx + 8, 26, "start"
        else:
            i = index[edge.source]
            if j == i:  # the same state again (a new push while CI runs)
                d = (f"M{x1},{mid(i) - 7} C{x1 + 34},{mid(i) - 22} {x1 + 34},{mid(i) + 22} "
                     f"{x1 + 2},{mid(i) + 7}")
                lx, ly, anchor = x1 + 36, mid(i) + 4, "start"
            elif j == i + 1:
                d = f"M{cx},{top(i) + NODE_H} L{cx},{top(j) - 2}"
                lx, ly, anchor = cx + 8, top(i) + NODE_H + 13, "start"
            elif j > i:
                lanes_right += 1
                out = min(RIGHT - 60, 18 + 12 * (j - i) + 4 * (lanes_right % 3))
                d = f"M{x1},{mid(i)} C{x1 + out},{mid(i)} {x1 + out},{mid(j)} {x1 + 2},{mid(j)}"
                lx, ly, anchor = x1 + out * 3 // 4 + 4, (mid(i) + mid(j)) // 2 + 4, "start"
            else:
                lanes_left += 1
                out = min(LEFT - 40, 16 + 10 * (i - j) + 4 * (lanes_left % 3))
                d = f"M{x0},{mid(i)} C{x0 - out},{mid(i)} {x0 - out},{mid(j)} {x0 - 2},{mid(j)}"
                lx, ly, anchor = x0 - out * 3 // 4 - 4, (mid(i) + mid(j)) // 2 + 4, "end"
        parts.append(f'<path class="{cls}" d="{d}" marker-end="{marker}"/>')
        parts.append(f'<text class="{tcls}" x="{lx}" y="{ly}" text-anchor="{anchor}">{label}</text>')
    violated = {e.target for e in path_edges if e.violations}
    for s, i in index.items():
        cls = "pd-node pd-current" if s is current else "pd-node"
        if s in violated:
            cls += " pd-violated"
        parts.append(f'<g class="{cls}"><rect x="{x0}" y="{top(i)}" width="{NODE_W}" height="{NODE_H}" rx="14"/>'
                     f'<text x="{cx}" y="{top(i) + 18}" text-anchor="middle">{escape(s.value)}</text></g>')
    parts.append("</svg>")
    return "".join(parts)
