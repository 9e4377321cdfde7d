"""The report's charts: Vega-Altair specifications rendered to static SVG by ``vl-convert-python`` at build time.

Why these two: Vega-Altair is the maintained Python front end of Vega-Lite (a declarative grammar: a chart is
data plus an encoding, no drawing code of ours), and ``vl-convert`` renders Vega-Lite to SVG in-process (Deno and
the Vega JavaScript embedded in a wheel): no browser, no Node.js, no network, and the output is plain SVG that
needs no script to display. Text, axes and legends are drawn in ``currentColor`` on a transparent background, so
the page's CSS sets their colour (light and dark schemes alike).

Only the report command imports this module (the Action never does): ``altair`` and ``vl_convert`` are the
``report`` extra.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import altair as alt
import vl_convert as vlc

from loopforge.github.commands import clean_text
from loopforge.report.data import ORDER, ReportData

WIDTH = 440  # the SVG scales down on a phone: fewer, larger pixels read better there
HEIGHT = 220
FONT = "Helvetica, Arial, 'Liberation Sans', sans-serif"  # metrics close to those vl-convert lays text out with
#: A categorical palette that stays readable on white and on near-black (Tableau 10 mid tones).
PALETTE = ["#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#eeca3b", "#9d755d"]
FAILURE = "#e45756"


@dataclass(frozen=True)
class Chart:
    """One rendered chart: ``svg`` is None when there was nothing to draw (``empty`` says why)."""

    key: str
    title: str
    description: str
    svg: str | None
    empty: str = ""


def _config(chart: Any) -> Any:
    fg = "currentColor"
    return (chart.properties(background="transparent", padding={"left": 16, "right": 12, "top": 6, "bottom": 6})
            .configure(font=FONT)
            .configure_view(stroke=None)
            .configure_axis(labelColor=fg, titleColor=fg, domainColor=fg, tickColor=fg, gridColor=fg,
                            gridOpacity=0.15, labelFontSize=13, titleFontSize=13, labelLimit=180)
            .configure_header(labelColor=fg, titleColor=fg, labelFontSize=13, labelFontWeight="bold")
            .configure_legend(labelColor=fg, titleColor=fg, labelFontSize=13, titleFontSize=13, orient="bottom",
                              labelLimit=300)
            .configure_text(fontSize=12)
            .configure_range(category=PALETTE))


def _sized(chart: Any, height: int = HEIGHT) -> Any:
    return chart.properties(width=WIDTH, height=height)


def _svg(chart: Any, label: str) -> str:
    svg = vlc.vegalite_to_svg(_config(chart).to_dict())
    if re.search(r"<\s*(script|foreignObject)|\bon\w+\s*=|javascript:", svg, re.I):  # never expected: refuse
        raise ValueError("chart SVG contains active content")
    safe_label = clean_text(label, 200).replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
    return svg.replace("<svg ", f'<svg role="img" aria-label="{safe_label}" ', 1)


def _data(rows: list[dict[str, Any]]) -> Any:
    return alt.Data(values=rows)  # type: ignore[no-untyped-call]


def _days(hours: float) -> float:
    return round(hours / 24, 3)


def funnel(data: ReportData) -> Chart:
    rows = [{"state": s.value, "records": n} for s, n in data.funnel()]
    title, desc = "Lifecycle funnel", "How many records reached each state (lifecycle order)."
    if not rows:
        return Chart("funnel", title, desc, None, "No records.")
    order = [s.value for s in ORDER]
    base = alt.Chart(_data(rows)).encode(
        y=alt.Y("state:N", sort=order, title=None),
        x=alt.X("records:Q", title="records"),
    )
    chart = _sized(base.mark_bar(color=PALETTE[0]) + base.mark_text(align="left", dx=4, color="currentColor").encode(
        text="records:Q"), 260)
    return Chart("funnel", title, desc, _svg(chart, f"{title}: {desc}"))


def lead_time_distribution(data: ReportData) -> Chart:
    rows = [{"kind": kind, "days": _days(hours)} for kind, _, hours in data.lead_times()]
    title = "Lead time: distribution"
    desc = "Issue opened → merged and PR opened → merged, in days (merged records)."
    if not rows:
        return Chart("lead-distribution", title, desc, None, "No merged records.")
    kinds = ["issue → merge", "PR → merge"]
    chart = _sized(alt.Chart(_data(rows)).mark_bar(binSpacing=1).encode(
        x=alt.X("days:Q", bin=alt.Bin(maxbins=24), title="days to merge"),
        y=alt.Y("count():Q", title="records", axis=alt.Axis(tickMinStep=1)),
        color=alt.Color("kind:N", legend=None, sort=kinds),
    ), 100).facet(row=alt.Row("kind:N", title=None, sort=kinds, header=alt.Header(labelAngle=0, labelAlign="left",
                                                                                   labelAnchor="start",
                                                                                   labelOrient="top")))
    return Chart("lead-distribution", title, desc, _svg(chart, f"{title}: {desc}"))


def lead_time_trend(data: ReportData) -> Chart:
    rows = [{"kind": kind, "week": week.isoformat(), "median days": _days(hours), "merges": n}
            for kind, week, hours, n in data.lead_time_trend()]
    title = "Lead time: trend"
    desc = "Median days to merge per week of the merge, issue → merge and PR → merge."
    if not rows:
        return Chart("lead-trend", title, desc, None, "No merged records.")
    chart = _sized(alt.Chart(_data(rows)).mark_line(point=True).encode(
        x=alt.X("week:T", title="week of merge", axis=alt.Axis(format="%b %d")),
        y=alt.Y("median days:Q", title="median days"),
        color=alt.Color("kind:N", title=None, sort=["issue → merge", "PR → merge"]),
    ))
    return Chart("lead-trend", title, desc, _svg(chart, f"{title}: {desc}"))


def time_in_state(data: ReportData) -> Chart:
    rows = [{"state": s.value, "median hours": round(m, 2), "p90 hours": round(p, 2), "records": n}
            for s, m, p, n in data.time_in_state()]
    title = "Where work waits"
    desc = "Hours spent in each state per record: bar = median, tick = 90th percentile."
    if not rows:
        return Chart("time-in-state", title, desc, None, "No completed stays in any state.")
    order = [s.value for s in ORDER]
    base = alt.Chart(_data(rows)).encode(y=alt.Y("state:N", sort=order, title=None))
    chart = _sized(base.mark_bar(color=PALETTE[0]).encode(x=alt.X("median hours:Q", title="hours"))
                   + base.mark_tick(color=PALETTE[1], thickness=3, size=16).encode(x="p90 hours:Q"), 260)
    return Chart("time-in-state", title, desc, _svg(chart, f"{title}: {desc}"))


def ci_failure_rate(data: ReportData) -> Chart:
    rows = [{"week": week.isoformat(), "failure rate": round(rate, 4), "CI results": n}
            for week, rate, n in data.ci_weekly()]
    failed, total = data.ci_totals()
    title = "CI failure rate"
    desc = (f"Share of CI results that failed, per week a record started; overall {failed} of {total}"
            f" ({failed / total:.0%})." if total else "Share of CI results that failed, per week.")
    if not rows:
        return Chart("ci-rate", title, desc, None, "No CI results.")
    chart = _sized(alt.Chart(_data(rows)).mark_line(point=True, color=FAILURE).encode(
        x=alt.X("week:T", title="week the record started", axis=alt.Axis(format="%b %d")),
        y=alt.Y("failure rate:Q", title="failed / all CI results", axis=alt.Axis(format="%"),
                scale=alt.Scale(domain=[0, 1])),
    ))
    return Chart("ci-rate", title, desc, _svg(chart, f"{title}: {desc}"))


def ci_retries(data: ReportData) -> Chart:
    rows = [{"retries": str(n), "PRs": count} for n, count in data.retries_histogram()]
    title = "CI retries per PR"
    desc = "How many records saw 0, 1, 2… CI retries (ci_failed → ci_pending)."
    if not rows:
        return Chart("ci-retries", title, desc, None, "No CI results.")
    order = [str(r["retries"]) for r in rows]
    base = alt.Chart(_data(rows)).encode(x=alt.X("retries:O", sort=order, title="retries",
                                                 axis=alt.Axis(labelAngle=0)),
                                         y=alt.Y("PRs:Q", title="records"))
    chart = _sized(base.mark_bar(color=PALETTE[1]) + base.mark_text(dy=-7, color="currentColor").encode(
        text="PRs:Q"))
    return Chart("ci-retries", title, desc, _svg(chart, f"{title}: {desc}"))


def violations(data: ReportData) -> Chart:
    rows = [{"week": week.isoformat(), "rule": clean_text(rule, 60), "violations": n}
            for week, rule, n in data.violations_weekly()]
    title = "Violations over time"
    desc = "Violation entries per week, by rule (the five most frequent; the rest as “other rules”)."
    if not rows:
        return Chart("violations", title, desc, None, "No violations recorded.")
    chart = _sized(alt.Chart(_data(rows)).mark_bar(color=FAILURE).encode(
        x=alt.X("week:O", title="week", axis=alt.Axis(labelAngle=-40)),
        y=alt.Y("sum(violations):Q", title="violations", axis=alt.Axis(tickMinStep=1)),
        color=alt.Color("rule:N", title="rule", scale=alt.Scale(range=[FAILURE, *PALETTE[1:]])),
    ))
    return Chart("violations", title, desc, _svg(chart, f"{title}: {desc}"))


ALL = (funnel, lead_time_distribution, lead_time_trend, time_in_state, ci_failure_rate, ci_retries, violations)


def render_all(data: ReportData) -> list[Chart]:
    return [make(data) for make in ALL]
