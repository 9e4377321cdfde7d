"""The report as one self-contained HTML file, and a short markdown digest for a job's step summary.

Self-contained: styles inline, charts and path diagrams inline SVG, no script, no font, image or stylesheet to
fetch, so the file works from disk (``file://``), as a downloaded workflow artifact and on GitHub Pages alike. A
``Content-Security-Policy`` meta tag forbids any request the page might make anyway.

Everything that comes from a store is untrusted (record ids, refs, triggers, actors, rules, reasons): it is
cleaned (``clean_text``: one line, no control characters, bounded) and HTML-escaped; links are made only to
https GitHub URLs that pass ``safe_github_url``, and to anchors within the page.

Accessibility: a skip link, landmarks, one ``h1`` and a heading per section, tables with ``caption`` and ``th``
scopes, wide tables in focusable scroll regions, visible focus, charts as ``role="img"`` with a description,
``prefers-color-scheme`` for dark mode and a layout that reflows at phone width.
"""

from __future__ import annotations

import hashlib
import statistics
from datetime import datetime
from html import escape
from typing import TYPE_CHECKING

from loopforge.github.render import md_escape, safe_github_url
from loopforge.paths import edges
from loopforge.report.data import RecordFacts, ReportData
from loopforge.report.pathsvg import MARKERS, path_svg
from loopforge.text import clean_text
from loopforge.trail import LoopTransition, Outcome

if TYPE_CHECKING:
    from loopforge.report.charts import Chart

CSS = """
:root { color-scheme: light dark; --bg: #ffffff; --fg: #1f2328; --muted: #59636e; --line: #d1d9e0;
  --card: #f6f8fa; --accent: #0969da; --bad: #cf222e; --cur: #f9d71c; --cur-fg: #1f2328; --focus: #0969da; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #0d1117; --fg: #e6edf3; --muted: #9198a1; --line: #3d444d; --card: #151b23; --accent: #4493f8;
    --bad: #ff7b72; --cur: #d4a72c; --cur-fg: #0d1117; --focus: #4493f8; }
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; background: var(--bg); color: var(--fg); line-height: 1.5;
  font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
a { color: var(--accent); }
a:focus-visible, [tabindex]:focus-visible, summary:focus-visible { outline: 3px solid var(--focus);
  outline-offset: 2px; border-radius: 2px; }
.skip { position: absolute; left: -9999px; top: 0; background: var(--bg); padding: .5rem 1rem; z-index: 10; }
.skip:focus { left: .5rem; top: .5rem; }
header, main, footer { max-width: 1180px; margin: 0 auto; padding: 0 1rem; }
header { padding-top: 1.25rem; }
h1 { font-size: 1.6rem; margin: 0 0 .25rem; }
h2 { font-size: 1.25rem; margin: 0 0 .25rem; }
h3 { font-size: 1.05rem; margin: 0 0 .5rem; overflow-wrap: anywhere; }
.meta, .desc, .muted { color: var(--muted); }
.desc { margin: 0 0 .5rem; font-size: .95rem; }
nav ul { list-style: none; padding: 0; margin: .75rem 0; display: flex; flex-wrap: wrap; gap: .25rem 1rem; }
.stats { display: grid; grid-template-columns: repeat(auto-fit, minmax(9rem, 1fr)); gap: .5rem; margin: 1rem 0;
  padding: 0; list-style: none; }
.stats li { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: .5rem .75rem; }
.stats b { display: block; font-size: 1.4rem; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 540px), 1fr)); gap: 1rem; }
figure { margin: 0; background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: .75rem;
  min-width: 0; }
figure svg { display: block; width: 100%; max-width: 500px; height: auto; margin: 0 auto; }
figure.path svg { max-width: 100%; width: auto; margin: 0; }
.empty { padding: 2rem 0; text-align: center; }
.scroll { overflow-x: auto; border: 1px solid var(--line); border-radius: 8px; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; }
caption { text-align: left; padding: .5rem .75rem; font-weight: 600; }
th, td { text-align: left; padding: .35rem .6rem; border-top: 1px solid var(--line); vertical-align: top; }
thead th { background: var(--card); position: sticky; top: 0; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
th.id { overflow-wrap: anywhere; min-width: 10rem; font-weight: normal; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .9em; }
.bad { color: var(--bad); font-weight: 600; }
section { margin: 2rem 0; }
.record { border-top: 2px solid var(--line); padding-top: 1rem; scroll-margin-top: 1rem; }
.record-body { display: grid; grid-template-columns: minmax(0, 1fr); gap: 1rem; }
figure.path { max-width: 440px; }
td.nowrap { white-space: nowrap; }
td.reason { min-width: 13rem; }
@media (max-width: 760px) { body { font-size: 15px; } }
.pd-defs { position: absolute; width: 0; height: 0; overflow: hidden; }
.pathdiagram { font: 12px system-ui, sans-serif; }
.pd-node rect { fill: var(--bg); stroke: var(--fg); stroke-width: 1.2; }
.pd-node text { fill: var(--fg); }
.pd-current rect { fill: var(--cur); stroke-width: 2.5; }
.pd-current text { fill: var(--cur-fg); font-weight: 700; }
.pd-violated rect { stroke: var(--bad); stroke-width: 2.5; }
.pd-start { fill: var(--fg); }
.pd-edge { fill: none; stroke: var(--muted); stroke-width: 1.5; }
.pd-edge.pd-bad { stroke: var(--bad); stroke-width: 2.5; }
.pd-arrow path { fill: var(--muted); }
.pd-arrow.pd-bad path { fill: var(--bad); }
.pd-label { fill: var(--muted); font-size: 11px; }
.pd-label.pd-bad { fill: var(--bad); font-weight: 700; }
footer { padding-bottom: 2rem; font-size: .9rem; }
"""


def _t(text: object, limit: int = 200) -> str:
    """Untrusted text as HTML text content."""
    return escape(clean_text(text, limit))


def anchor(record_id: str) -> str:
    """A stable, safe fragment id for a record (ids hold ``/`` and ``#``)."""
    return "r-" + hashlib.sha256(record_id.encode("utf-8")).hexdigest()[:16]


def _ts(when: datetime | None) -> str:
    return when.strftime("%Y-%m-%d %H:%M") if when is not None else "—"


def _days(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    days = seconds / 86400
    return f"{days:.1f} d" if days >= 1 else f"{seconds / 3600:.1f} h"


def _external(record: RecordFacts) -> str:
    links = []
    ref_url = safe_github_url(record.head.ref)
    if ref_url:
        links.append(f'<a href="{escape(ref_url)}">{"issue" if "/issues/" in ref_url else "PR"}</a>')
    pr_url = safe_github_url(record.head.metadata.get("pr_url"))
    if pr_url and pr_url != ref_url:
        links.append(f'<a href="{escape(pr_url)}">PR</a>')
    return " ".join(links) or "—"


def _chart(chart: Chart) -> str:
    body = chart.svg if chart.svg is not None else f'<p class="empty muted">{escape(chart.empty)}</p>'
    return (f'<figure id="chart-{chart.key}" class="chart" data-chart="{chart.key}" '
            f'aria-labelledby="chart-{chart.key}-t">'
            f'<h3 id="chart-{chart.key}-t">{escape(chart.title)}</h3>'
            f'<p class="desc">{escape(chart.description)}</p>{body}</figure>')


def _record_row(record: RecordFacts, detailed: bool) -> str:
    head = record.head
    rid = _t(head.record_id, 200)
    name = f'<a href="#{anchor(head.record_id)}">{rid}</a>' if detailed else rid
    violations = f'<span class="bad">{head.violations}</span>' if head.violations else "0"
    return (f"<tr><th scope=\"row\" class=\"id\">{name}</th><td><code>{escape(head.state.value)}</code></td>"
            f"<td class=\"num\">{record.entries_count}</td><td class=\"num\">{violations}</td>"
            f"<td class=\"num\">{_days(record.pr_to_merge)}</td><td class=\"num\">{_days(record.issue_to_merge)}</td>"
            f'<td class="nowrap">{_ts(record.last_event_at)}</td><td class="nowrap">{_external(record)}</td></tr>')


def _entry_row(entry: LoopTransition) -> str:
    outcome = escape(entry.outcome.value)
    if entry.outcome is Outcome.VIOLATION:
        outcome = f'<span class="bad">⚠ {outcome}</span>'
    details = " — ".join(p for p in (entry.rule, entry.reason) if p)
    run_url = safe_github_url(entry.evidence.get("run_url")) if isinstance(entry.evidence, dict) else None
    run = f'<a href="{escape(run_url)}">run</a>' if run_url else ""
    src = escape(entry.from_state.value) if entry.from_state is not None else "∅"
    return (f'<tr><td class="num">{entry.sequence}</td><td class="nowrap">{_ts(entry.occurred_at)}</td>'
            f'<td class="nowrap"><code>{src}</code> → <code>{escape(entry.to_state.value)}</code></td>'
            f"<td>{_t(entry.trigger, 80)}</td><td>{_t(entry.actor, 60)}</td><td>{outcome}</td>"
            f'<td class="reason">{_t(details, 300)}</td><td>{run}</td></tr>')


def _record_section(record: RecordFacts) -> str:
    head = record.head
    rid = _t(head.record_id, 200)
    aid = anchor(head.record_id)
    path_edges = edges(head.path if head.path is not None else record.path)  # the stored path, else the folded one
    svg = path_svg(path_edges, head.state, title=f"Path of {clean_text(head.record_id, 120)}")
    rows = "".join(_entry_row(e) for e in (record.entries or []))
    return (f'<section class="record" id="{aid}" aria-labelledby="{aid}-t">'
            f'<h3 id="{aid}-t">{rid} — <code>{escape(head.state.value)}</code></h3>'
            f'<p class="meta">{record.entries_count} entries · {head.violations} violations · '
            f'{_external(record)} · <a href="#records">back to the table</a></p>'
            f'<div class="record-body"><figure class="path" aria-label="Path of this record">'
            f'<h4 class="desc">Path: states visited, edges with how often taken</h4>{svg}</figure>'
            f'<div class="scroll" role="region" aria-label="Trail of {rid}" tabindex="0"><table>'
            f"<caption>Trail ({record.entries_count} entries)</caption><thead><tr>"
            '<th scope="col" class="num">#</th><th scope="col">Time (UTC)</th><th scope="col">Transition</th>'
            '<th scope="col">Trigger</th><th scope="col">Actor</th><th scope="col">Outcome</th>'
            '<th scope="col">Rule — reason</th><th scope="col">Run</th></tr></thead>'
            f"<tbody>{rows}</tbody></table></div></div></section>")


def build_html(data: ReportData, charts: list[Chart]) -> str:
    records = data.records
    merged = sum(1 for r in records if r.merged_at is not None)
    failed, total_ci = data.ci_totals()
    violations = sum(len(r.violations) for r in records)
    scope = []
    if data.repo:
        scope.append(f"repository {_t(data.repo, 140)}")
    if data.since:
        scope.append(f"records updated since {data.since.strftime('%Y-%m-%d %H:%M')} UTC")
    scope_text = "; ".join(scope) or "all records"
    stats = [("records", len(records)), ("entries", data.total_entries), ("merged", merged),
             ("CI failure rate", f"{failed / total_ci:.0%}" if total_ci else "—"), ("violations", violations)]
    stat_items = "".join(f"<li><b>{escape(str(v))}</b>{escape(k)}</li>" for k, v in stats)
    nav = "".join(f'<li><a href="#chart-{c.key}">{escape(c.title)}</a></li>' for c in charts)
    table_rows = "".join(_record_row(r, i < data.details) for i, r in enumerate(records))
    sections = "".join(_record_section(r) for r in records[: data.details])
    more = ""
    if len(records) > data.details:
        more = (f'<p class="muted">The newest {data.details} records are shown in full below; for the others run '
                f"<code>loopforge history RECORD</code> (or <code>loopforge report --details N</code>).</p>")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="color-scheme" content="light dark">
<title>LoopForge report</title>
<style>{CSS}</style>
</head>
<body>
<a class="skip" href="#main">Skip to the report</a>
{MARKERS}
<header>
<h1>LoopForge report</h1>
<p class="meta">Generated {data.generated_at.strftime('%Y-%m-%d %H:%M')} UTC from {scope_text}.</p>
<nav aria-label="Sections"><ul>{nav}<li><a href="#records">Records</a></li></ul></nav>
</header>
<main id="main" tabindex="-1">
<ul class="stats" aria-label="Totals">{stat_items}</ul>
<section id="charts" aria-labelledby="charts-t"><h2 id="charts-t">Where work goes</h2>
<div class="charts">{"".join(_chart(c) for c in charts)}</div></section>
<section id="records" aria-labelledby="records-t"><h2 id="records-t">Records</h2>{more}
<div class="scroll" role="region" aria-labelledby="records-t" tabindex="0"><table>
<caption>{len(records)} records, most recently recorded first</caption>
<thead><tr><th scope="col">Record</th><th scope="col">State</th><th scope="col" class="num">Entries</th>
<th scope="col" class="num">Violations</th><th scope="col" class="num">PR → merge</th>
<th scope="col" class="num">Issue → merge</th><th scope="col">Last event (UTC)</th><th scope="col">On GitHub</th>
</tr></thead>
<tbody>{table_rows}</tbody></table></div></section>
<section id="details" aria-labelledby="details-t"><h2 id="details-t">Records in full</h2>{sections}</section>
</main>
<footer class="muted"><p>Made by <code>loopforge report</code>. Charts: pygal, rendered to static SVG.
Times are event times in UTC. Lead times run from the first entry of the issue (or the PR) to the merge.</p></footer>
</body>
</html>
"""


def build_markdown(data: ReportData, *, artifact: str | None = None) -> str:
    """A short digest for ``$GITHUB_STEP_SUMMARY`` (escaped like the check run)."""
    records = data.records
    merged = [r for r in records if r.merged_at is not None]
    failed, total_ci = data.ci_totals()
    lines = ["## LoopForge report", ""]
    lines.append(f"{len(records)} records, {data.total_entries} entries, {len(merged)} merged, "
                 f"CI failure rate {f'{failed / total_ci:.0%}' if total_ci else '—'}, "
                 f"{sum(len(r.violations) for r in records)} violations.")
    pr_times = [t for r in merged if (t := r.pr_to_merge) is not None]
    if pr_times:
        lines.append(f"Median PR → merge: {_days(statistics.median(pr_times))}.")
    lines += ["", "| state | records reached |", "| --- | ---: |"]
    lines += [f"| `{s.value}` | {n} |" for s, n in data.funnel()]
    found = data.violations()
    if found:
        lines += ["", "| violation (newest 10) | record | when (UTC) |", "| --- | --- | --- |"]
        lines += [f"| {md_escape(v.rule, 100)} | {md_escape(v.record_id, 120)} | {_ts(v.at)} |"
                  for v in reversed(found[-10:])]
    if artifact:
        lines += ["", f"The full report with charts is the workflow artifact {md_escape(artifact, 100)}."]
    return "\n".join(lines) + "\n"
