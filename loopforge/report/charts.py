"""The report's charts: pygal, rendered to static SVG at build time.

Why pygal: it is a pure-Python SVG charting library (one 130 kB wheel, no dependencies, no browser or JavaScript
engine), so it can be an ordinary dependency and ``pip install . && loopforge demo`` draws charts; the
alternative considered, Vega-Altair with vl-convert-python, draws very well but brings an 84 MB JavaScript
runtime to every install (and to the Action's image, which must stay lean). pygal builds the SVG with an XML
library (text is escaped by the serializer) and styles it with CSS inside the SVG; its tooltip script is left
out (``js=[]`` and the inline configuration script removed), so the charts are plain, static SVG. Text, axes
and guides are drawn in ``currentColor`` on a transparent background, so the page's CSS sets their colour in
light and dark schemes alike.

The data behind every chart is computed in ``loopforge.report.data`` (counts, bins, medians); this module only
maps it onto pygal's chart types. Only the report command imports this module (the Action never does).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from html import escape
from typing import Any
from xml.etree import ElementTree

import pygal
from pygal.style import Style

from loopforge.report.data import ReportData
from loopforge.text import clean_text

WIDTH = 440  # scaled to the card: about 0.75 on a phone, so text stays 10 px or more
HEIGHT = 300
#: A categorical palette that stays readable on white and on near-black (Tableau 10 mid tones).
PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#eeca3b", "#9d755d")
FAILURE = "#e45756"

_SCRIPT = re.compile(r"<script\b.*?</script>", re.S | re.I)
_COMMENT = re.compile(r"<!--.*?-->", re.S)


def _style(colors: tuple[str, ...] = PALETTE) -> Style:
    return Style(background="transparent", plot_background="transparent", foreground="currentColor",
                 foreground_strong="currentColor", foreground_subtle="rgba(128,128,128,0.35)", opacity="0.9",
                 opacity_hover="0.9", colors=colors, guide_stroke_color="rgba(128,128,128,0.35)",
                 major_guide_stroke_color="rgba(128,128,128,0.5)",
                 font_family="system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", label_font_size=14,
                 major_label_font_size=14, value_font_size=13, value_label_font_size=13, legend_font_size=14,
                 title_font_size=14, tooltip_font_size=12, transition="none", value_colors=("#ffffff",),
                 stroke_width="2.5", stroke_width_hover="2.5")


def _options(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"style": _style(), "js": [], "width": WIDTH, "height": HEIGHT, "explicit_size": False,
                            "disable_xml_declaration": True, "show_legend": False, "legend_at_bottom": True,
                            "legend_at_bottom_columns": 2, "truncate_label": -1, "truncate_legend": -1,
                            "margin": 8, "margin_bottom": 22, "spacing": 10, "print_zeroes": False,
                            "stroke_style": {"width": 2.5}}
    base.update(kw)
    return base


@dataclass(frozen=True)
class Chart:
    """One rendered chart: ``svg`` is None when there was nothing to draw (``empty`` says why)."""

    key: str
    title: str
    description: str
    svg: str | None
    empty: str = ""


_INERT_FORBIDDEN = frozenset({"script", "foreignObject", "image", "use", "a", "iframe", "object", "embed"})


def _check_static(svg: str) -> None:
    """Refuse an SVG holding anything active or anything that points elsewhere (never expected from pygal once
    its script is removed; text such as a rule name is character data, escaped by pygal's serializer)."""
    root = ElementTree.fromstring(svg)
    for element in root.iter():
        tag = element.tag.rsplit("}", 1)[-1]
        if tag in _INERT_FORBIDDEN:
            raise ValueError(f"chart SVG holds a <{tag}> element")
        for name, value in element.attrib.items():
            local = name.rsplit("}", 1)[-1].lower()
            if local.startswith("on") or local == "href" or "url(" in value.replace(" ", "").lower():
                raise ValueError(f"chart SVG has a {local} attribute")


def _svg(chart: Any, label: str) -> str:
    svg = _COMMENT.sub("", _SCRIPT.sub("", chart.render(is_unicode=True)))
    _check_static(svg)
    return svg.replace("<svg ", f'<svg role="img" aria-label="{escape(clean_text(label, 200))}" ', 1)


def _drawn(key: str, title: str, desc: str, chart: Any) -> Chart:
    """The drawn chart, its SVG labelled ``title: desc`` for screen readers."""
    return Chart(key, title, desc, _svg(chart, f"{title}: {desc}"))


def _days(hours: float) -> float:
    return round(hours / 24, 2)


def _nice_bins(values: list[float], count: int = 12) -> list[tuple[float, float]]:
    """Bin edges of round width covering ``values`` (data preparation, not drawing)."""
    top = max(values)
    if top <= 0:
        return [(0.0, 1.0)]
    raw = top / count
    magnitude = 10 ** math.floor(math.log10(raw))
    width = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    n = max(1, math.ceil(top / width + 1e-9))
    return [(i * width, (i + 1) * width) for i in range(n)]


def _week(label: Any) -> str:
    return f"{label:%b %d}"


def _counts_axis(top: int) -> list[int]:
    """Whole-number y labels from 0 to at least ``top`` (counts are never fractional)."""
    step = max(1, math.ceil(max(top, 1) / 6))
    return list(range(0, max(top, 1) + step, step))


def funnel(data: ReportData) -> Chart:
    rows = data.funnel()
    title, desc = "Lifecycle funnel", "How many records reached each state (lifecycle order, first at the top)."
    if not rows:
        return Chart("funnel", title, desc, None, "No records.")
    chart = pygal.HorizontalBar(**_options(print_values=True, height=60 + 26 * len(rows)))
    chart.x_labels = [s.value for s, _ in reversed(rows)]
    chart.add("records", [n for _, n in reversed(rows)])
    return _drawn("funnel", title, desc, chart)


def lead_time_distribution(data: ReportData) -> Chart:
    times = data.lead_times()
    title = "Lead time: distribution"
    desc = "Merged records by days from issue opened (and from PR opened) to merge."
    if not times:
        return Chart("lead-distribution", title, desc, None, "No merged records.")
    bins = _nice_bins([_days(h) for _, _, h in times])
    width = bins[0][1]
    series: dict[str, list[int]] = {"issue → merge": [0] * len(bins), "PR → merge": [0] * len(bins)}
    for kind, _, hours in times:
        series[kind][min(len(bins) - 1, int(_days(hours) // width))] += 1
    chart = pygal.Bar(**_options(show_legend=True, x_title="days to merge", y_title="records",
                                 x_label_rotation=0 if len(bins) <= 7 else -35,
                                 y_labels=_counts_axis(max(max(c) for c in series.values()))))
    chart.x_labels = [f"{lo:g}–{hi:g}" for lo, hi in bins]
    for kind, counts in series.items():
        chart.add(kind, counts)
    return _drawn("lead-distribution", title, desc, chart)


def lead_time_trend(data: ReportData) -> Chart:
    rows = data.lead_time_trend()
    title = "Lead time: trend"
    desc = "Median days to merge, per week of the merge."
    if not rows:
        return Chart("lead-trend", title, desc, None, "No merged records.")
    weeks = sorted({week for _, week, _, _ in rows})
    chart = pygal.Line(**_options(show_legend=True, y_title="median days", x_label_rotation=-35, dots_size=3,
                                  allow_interruptions=True, min_scale=4, max_scale=8))
    chart.x_labels = [_week(w) for w in weeks]
    for kind in ("issue → merge", "PR → merge"):
        by_week = {week: _days(h) for k, week, h, _ in rows if k == kind}
        chart.add(kind, [by_week.get(w) for w in weeks])
    return _drawn("lead-trend", title, desc, chart)


def time_in_state(data: ReportData) -> Chart:
    rows = data.time_in_state()
    title = "Where work waits"
    desc = "Hours spent in each state per record: median and 90th percentile."
    if not rows:
        return Chart("time-in-state", title, desc, None, "No completed stays in any state.")
    chart = pygal.HorizontalBar(**_options(show_legend=True, x_title="hours", height=90 + 34 * len(rows)))
    chart.x_labels = [s.value for s, *_ in reversed(rows)]
    chart.add("median", [round(m, 1) for _, m, _, _ in reversed(rows)])
    chart.add("90th percentile", [round(p, 1) for _, _, p, _ in reversed(rows)])
    return _drawn("time-in-state", title, desc, chart)


def ci_failure_rate(data: ReportData) -> Chart:
    rows = data.ci_weekly()
    failed, total = data.ci_totals()
    title = "CI failure rate"
    desc = (f"Share of CI results that failed, per week a record started; overall {failed} of {total} "
            f"({failed / total:.0%})." if total else "Share of CI results that failed, per week.")
    if not rows:
        return Chart("ci-rate", title, desc, None, "No CI results.")
    chart = pygal.Line(**_options(style=_style((FAILURE,)), y_title="failed / all CI results", range=(0, 100),
                                  x_label_rotation=-35, dots_size=3, fill=False, allow_interruptions=True,
                                  value_formatter=lambda v: f"{v:.0f}%", y_labels=[0, 20, 40, 60, 80, 100]))
    weeks = data.weeks()
    by_week = {w: rate for w, rate, _ in rows}
    chart.x_labels = [_week(w) for w in weeks]
    chart.add("failure rate", [round(by_week[w] * 100, 1) if w in by_week else None for w in weeks])
    return _drawn("ci-rate", title, desc, chart)


def ci_retries(data: ReportData) -> Chart:
    rows = data.retries_histogram()
    title = "CI retries per PR"
    desc = "How many records saw 0, 1, 2… CI retries (ci_failed → ci_pending)."
    if not rows:
        return Chart("ci-retries", title, desc, None, "No CI results.")
    chart = pygal.Bar(**_options(style=_style((PALETTE[1],)), print_values=True, x_title="retries",
                                 y_title="records", y_labels=_counts_axis(max(c for _, c in rows))))
    chart.x_labels = [str(n) for n, _ in rows]
    chart.add("records", [count for _, count in rows])
    return _drawn("ci-retries", title, desc, chart)


def violations(data: ReportData) -> Chart:
    rows = data.violations_weekly()
    title = "Violations over time"
    desc = "Violation entries per week, by rule (the five most frequent; the rest as “other rules”)."
    if not rows:
        return Chart("violations", title, desc, None, "No violations recorded.")
    weeks = data.weeks()
    rules = list(dict.fromkeys(r for _, r, _ in rows))
    counts = {(w, r): n for w, r, n in rows}
    top = max(sum(counts.get((w, r), 0) for r in rules) for w in weeks)
    chart = pygal.StackedBar(**_options(style=_style((FAILURE, *PALETTE[1:3], *PALETTE[4:])), show_legend=True,
                                        y_title="violations", x_label_rotation=-35 if len(weeks) > 6 else 0,
                                        legend_at_bottom_columns=1, y_labels=_counts_axis(top)))
    chart.x_labels = [_week(w) for w in weeks]
    for rule in rules:
        chart.add(clean_text(rule, 80), [counts.get((w, rule), 0) for w in weeks])
    return _drawn("violations", title, desc, chart)


ALL = (funnel, lead_time_distribution, lead_time_trend, time_in_state, ci_failure_rate, ci_retries, violations)


def render_all(data: ReportData) -> list[Chart]:
    return [make(data) for make in ALL]
