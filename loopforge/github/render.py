"""Markdown for the check run's ``output.summary`` and the job's step summary.

Everything that may come from a user (titles, logins, branch names, labels, reasons quoting them) goes through
``md_escape``: one cleaned line, HTML special characters as entities, markdown punctuation backslash-escaped,
``@`` followed by a zero-width space so nobody is notified, and URL schemes / ``www.`` broken so nothing becomes
a link. Links are only made to https GitHub URLs that pass a strict pattern.

``render_summary`` builds the document section by section and row by row, measuring UTF-8 bytes, so it never
exceeds ``max_bytes`` (the check run API's 65,535-byte limit by default) and never cuts a row, a table or a
fenced block in half. When the history does not fit, the oldest rows go first; then the diagram; then the gate
table is reduced to its verdict.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field

from loopforge.github.workflow_commands import clean_text
from loopforge.states import DESCRIPTIONS, LoopState, mermaid
from loopforge.trail import LoopTransition, Outcome

__all__ = [
    "CheckRunOutput",
    "GateRow",
    "GateView",
    "SummaryView",
    "check_run_output",
    "md_escape",
    "render_summary",
    "safe_github_url",
]

ZWSP = "\u200b"
CHECK_SUMMARY_MAX_BYTES = 65535

_MD_TABLE: dict[int, str] = {ord(c): "\\" + c for c in "\\`*_{}[]()#+-.!|~$="}
_MD_TABLE.update({ord("&"): "&amp;", ord("<"): "&lt;", ord(">"): "&gt;"})
_SCHEME_COLON = re.compile(r"(?<=[A-Za-z]):")
_WWW = re.compile(r"(?i)(?<![A-Za-z0-9])(www)\.")
_GITHUB_URL = re.compile(
    r"^https://(?:github\.com|[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.ghe\.com)"
    r"(?:/[A-Za-z0-9._~%-]+)*/?(?:\?[A-Za-z0-9._~%=&-]*)?$"
)
_RUN_ID = re.compile(r"/actions/runs/(\d+)")
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/#:-]{0,199}$")

STATUS_ICONS: dict[str, str] = {"passed": "✅", "pending": "⏳", "failed": "❌", "skipped": "➖"}
VERDICT_TEXT: dict[str, str] = {"pass": "✅ pass — may merge", "block": "❌ blocked", "pending": "⏳ pending"}


def md_escape(text: object, limit: int = 200) -> str:
    """Untrusted text as safe inline markdown (also inside a table cell), at most ``limit`` visible characters.

    ``clean_text`` first (one line, no control characters, bounded), then: ``@`` is followed by U+200B (no
    mention, no e-mail link), a zero-width space goes before every ``scheme:`` colon and after ``www`` (no
    autolink, no ``javascript:``), ``& < >`` become entities and markdown punctuation is backslash-escaped
    (so ``|`` is always ``\\|`` and cannot end a table cell).
    """
    cleaned = clean_text(text, limit)
    if not cleaned:
        return ""
    cleaned = cleaned.replace("@", "@" + ZWSP)
    cleaned = _SCHEME_COLON.sub(ZWSP + ":", cleaned)
    cleaned = _WWW.sub(r"\1" + ZWSP + ".", cleaned)
    return cleaned.translate(_MD_TABLE)


def safe_github_url(url: object) -> str | None:
    """``url`` if it is a plain https URL on github.com (or a ``*.ghe.com`` tenant) that is safe to put in a
    markdown link as is (no credentials, port, fragment, spaces, quotes, brackets or parentheses), else None."""
    if not isinstance(url, str) or len(url) > 500:
        return None
    return url if _GITHUB_URL.match(url) else None


def _link_or_text(label: str, url: object, limit: int = 100) -> str:
    """``[label](url)`` for a safe GitHub URL; otherwise the URL as inert escaped text (``label`` is markdown)."""
    safe = safe_github_url(url)
    if safe is not None:
        return f"[{label}]({safe})"
    return md_escape(url, limit) if url else ""


class GateRow(BaseModel):
    """One rule of the merge gate as shown in the table."""

    model_config = ConfigDict(frozen=True)

    rule: str
    status: Literal["passed", "pending", "failed", "skipped"]
    reason: str = ""


class GateView(BaseModel):
    """The merge gate's verdict for the PR head, with one row per rule."""

    model_config = ConfigDict(frozen=True)

    verdict: Literal["pass", "block", "pending"]
    rows: list[GateRow] = Field(default_factory=list)
    note: str | None = None  # e.g. "this PR edits .github/loopforge.yml; it was evaluated under the base policy"


class SummaryView(BaseModel):
    """What the check run / step summary shows about one record. Strings may be untrusted: they are escaped."""

    model_config = ConfigDict(frozen=True)

    record_id: str
    title: str | None = None
    url: str | None = None
    state: LoopState
    previous_state: LoopState | None = None
    outcome: str = ""
    entries: list[LoopTransition] = Field(default_factory=list)  # oldest first
    gate: GateView | None = None
    messages: list[str] = Field(default_factory=list)
    run_url: str | None = None


class CheckRunOutput(TypedDict):
    """Fields for ``POST/PATCH /repos/{o}/{r}/check-runs``: omit ``conclusion`` from the request when it is None."""

    title: str
    summary: str
    status: Literal["completed", "in_progress"]
    conclusion: Literal["success", "failure", "neutral"] | None


def _nbytes(text: str) -> int:
    return len(text.encode("utf-8"))


def _code(state: LoopState | None) -> str:
    return f"`{LoopState(state).value}`" if state is not None else "—"


def _when(entry: LoopTransition) -> str:
    return entry.occurred_at.strftime("%Y-%m-%d %H:%M:%S")


def _history_command(record_id: str) -> str:
    if _SAFE_ID.match(record_id) and ".." not in record_id and "`" not in record_id:
        return f"`loopforge history {record_id}`"
    return "`loopforge history` with this record's id"


# ---------------------------------------------------------------------------------------------------- sections


def _header(view: SummaryView) -> str:
    lines = [f"### LoopForge: {md_escape(view.record_id, 200)} — {_code(view.state)}", ""]
    title = md_escape(view.title, 200) if view.title else ""
    url = safe_github_url(view.url)
    if url is not None:
        lines.append(f"- **Item:** [{title or 'link'}]({url})")
    elif title or view.url:
        shown_url = md_escape(view.url, 100) if view.url else ""
        item = f"{title} ({shown_url})" if title and shown_url else title or shown_url
        lines.append(f"- **Item:** {item}")
    state_line = f"- **State:** {_code(view.state)} — {md_escape(DESCRIPTIONS.get(view.state, ''), 200)}"
    if view.previous_state is not None and view.previous_state != view.state:
        state_line += f" (was {_code(view.previous_state)})"
    lines.append(state_line)
    run = ""
    if view.outcome:
        run = md_escape(view.outcome, 200)
    if view.run_url:
        link = _link_or_text("workflow run", view.run_url)
        run = f"{run} — {link}" if run else link
    if run:
        lines.append(f"- **This run:** {run}")
    return "\n".join(lines)


def _messages(messages: Sequence[str], budget: int) -> str:
    """A bullet per message while they fit in ``budget`` bytes, then a note of how many were left out."""
    if not messages:
        return ""
    lines = ["#### Messages", ""]
    used = _nbytes("\n".join(lines))
    total = len(messages)
    note_cost = _nbytes(f"- … {total} more messages omitted") + 1
    for i, message in enumerate(messages):
        item = f"- {md_escape(message, 300) or '—'}"
        cost = _nbytes(item) + 1
        if used + cost + (note_cost if i + 1 < total else 0) > budget:
            lines.append(f"- … {total - i} more {'message' if total - i == 1 else 'messages'} omitted")
            break
        lines.append(item)
        used += cost
    return "\n".join(lines)


def _violation_block(entry: LoopTransition) -> str:
    rule = md_escape(entry.rule, 120) if entry.rule else "(no rule named)"
    reason = md_escape(entry.reason, 400) if entry.reason else "(no reason given)"
    return (f"> [!WARNING]\n"
            f"> **Violation** (entry {entry.sequence}, {_when(entry)} UTC, "
            f"{_code(entry.from_state)} → {_code(entry.to_state)}): rule **{rule}** — {reason}")


def _violations(entries: Sequence[LoopTransition], budget: int) -> str:
    """One alert per VIOLATION entry, oldest first; when they do not all fit, the newest that fit and a note."""
    found = [e for e in entries if e.outcome == Outcome.VIOLATION]
    if not found:
        return ""
    blocks: list[str] = []
    used = 0
    note_cost = 100
    for entry in reversed(found):
        block = _violation_block(entry)
        cost = _nbytes(block) + 2
        if used + cost + (note_cost if len(blocks) + 1 < len(found) else 0) > budget:
            break
        blocks.append(block)
        used += cost
    blocks.reverse()
    omitted = len(found) - len(blocks)
    if omitted == len(found):
        blocks = [f"> [!WARNING]\n> {omitted} {'violation' if omitted == 1 else 'violations'} recorded: "
                  f"see the history."]
    elif omitted:
        blocks.insert(0, f"> [!WARNING]\n> {omitted} earlier {'violation' if omitted == 1 else 'violations'} "
                         f"omitted.")
    return "\n\n".join(blocks)


_STATUS_ORDER = {"failed": 0, "pending": 1, "passed": 2, "skipped": 3}


def _gate(gate: GateView, budget: int) -> str:
    """The gate heading, note and table within ``budget`` bytes (whole rows; failed and pending rows first
    when not all fit), else the short form, else ""."""
    lines = [f"#### Merge gate: {VERDICT_TEXT[gate.verdict]}", ""]
    if gate.note:
        lines += ["> [!NOTE]", f"> {md_escape(gate.note, 500)}", ""]
    if not gate.rows:
        text = "\n".join([*lines, "No rules apply."])
        return text if _nbytes(text) <= budget else ""
    lines += ["| | Rule | Status | Reason |", "| :-: | --- | --- | --- |"]
    total = len(gate.rows)

    def table(rows: Sequence[GateRow]) -> tuple[list[str], int]:
        out: list[str] = []
        used = _nbytes("\n".join(lines))
        for i, row in enumerate(rows):
            line = (f"| {STATUS_ICONS[row.status]} | {md_escape(row.rule, 100) or '—'} | {row.status} | "
                    f"{md_escape(row.reason, 300) or '—'} |")
            cost = _nbytes(line) + 1
            reserve = _nbytes(f"{total} more rules omitted.") + 2 if i + 1 < total else 0
            if used + cost + reserve > budget:
                break
            out.append(line)
            used += cost
        return out, total - len(out)

    shown, omitted = table(gate.rows)
    if omitted:
        shown, omitted = table(sorted(gate.rows, key=lambda r: _STATUS_ORDER[r.status]))
    if not shown:
        short = _gate_short(gate)
        return short if _nbytes(short) <= budget else ""
    text = "\n".join([*lines, *shown])
    if omitted:
        text += f"\n\n{omitted} more {'rule' if omitted == 1 else 'rules'} omitted."
    return text


def _gate_short(gate: GateView) -> str:
    failed = sum(1 for r in gate.rows if r.status == "failed")
    pending = sum(1 for r in gate.rows if r.status == "pending")
    return (f"#### Merge gate: {VERDICT_TEXT[gate.verdict]}\n\n"
            f"{len(gate.rows)} rules ({failed} failed, {pending} pending); the table did not fit.")


def _diagram(state: LoopState) -> str:
    return "#### Lifecycle\n\n```mermaid\n" + mermaid(state) + "\n```"


_HISTORY_HEAD = ("| # | Time (UTC) | Transition | Trigger | Actor | Outcome | Details | Run |\n"
                 "| ---: | --- | --- | --- | --- | --- | --- | --- |")


def _history_row(entry: LoopTransition) -> str:
    outcome = entry.outcome.value
    if entry.outcome == Outcome.VIOLATION:
        outcome = "⚠️ " + outcome
    details = " — ".join(p for p in (entry.rule, entry.reason) if p)
    run_url = entry.evidence.get("run_url") if isinstance(entry.evidence, dict) else None
    run = ""
    if run_url:
        safe = safe_github_url(run_url)
        if safe is not None:
            m = _RUN_ID.search(safe)
            run = f"[run {m.group(1)}]({safe})" if m else f"[run]({safe})"
        else:
            run = md_escape(run_url, 60)
    return (f"| {entry.sequence} | {_when(entry)} | {_code(entry.from_state)} → {_code(entry.to_state)} | "
            f"{md_escape(entry.trigger, 80) or '—'} | {md_escape(entry.actor, 60) or '—'} | {outcome} | "
            f"{md_escape(details, 120) or '—'} | {run or '—'} |")


def _history_frame(view: SummaryView) -> tuple[str, Callable[[int], str]]:
    total = len(view.entries)
    heading = f"#### History ({total} {'entry' if total == 1 else 'entries'})"
    command = _history_command(view.record_id)

    def note(omitted: int) -> str:
        return f"{omitted} older {'entry' if omitted == 1 else 'entries'} omitted — run {command} for the full trail."

    return heading, note


def _history_min_bytes(view: SummaryView) -> int:
    """Bytes of the history section with no rows (heading and the note, or "No entries yet.")."""
    heading, note = _history_frame(view)
    tail = note(len(view.entries)) if view.entries else "No entries yet."
    return _nbytes(heading) + 2 + _nbytes(tail)


def _history(view: SummaryView, budget: int) -> str | None:
    """The history table with the newest rows that fit in ``budget`` bytes (rows whole, oldest dropped first).

    None when not even the heading and the "omitted" note fit.
    """
    entries = view.entries
    total = len(entries)
    heading, note = _history_frame(view)
    if total == 0:
        text = heading + "\n\nNo entries yet."
        return text if _nbytes(text) <= budget else None
    fixed = _nbytes(heading) + 2 + _nbytes(note(total)) + 2 + _nbytes(_HISTORY_HEAD) + 1
    rows: list[str] = []
    used = 0
    for entry in reversed(entries):  # newest first; stop as soon as one does not fit
        row = _history_row(entry)
        cost = _nbytes(row) + 1
        if fixed + used + cost > budget:
            break
        rows.append(row)
        used += cost
    omitted = total - len(rows)
    parts = [heading]
    if omitted:
        parts.append(note(omitted))
    if rows:
        rows.reverse()
        parts.append(_HISTORY_HEAD + "\n" + "\n".join(rows))
    text = "\n\n".join(parts)
    return text if _nbytes(text) <= budget else None


def _join(parts: Sequence[str]) -> str:
    return "\n\n".join(p for p in parts if p) + "\n"


def _fit_lines(text: str, max_bytes: int) -> str:
    """Last resort: whole lines from the start while they fit, leaving no fenced block or details open."""
    out: list[str] = []
    used = 0
    fence_open = False
    for line in text.split("\n"):
        cost = _nbytes(line) + 1
        if used + cost > max_bytes:
            break
        out.append(line)
        used += cost
        if line.startswith("```"):
            fence_open = not fence_open
    while out and fence_open:
        if out.pop().startswith("```"):
            fence_open = False
    return "\n".join(out) + ("\n" if out else "")


def render_summary(view: SummaryView, *, max_bytes: int = CHECK_SUMMARY_MAX_BYTES) -> str:
    """The markdown summary of ``view``, at most ``max_bytes`` UTF-8 bytes.

    Sections: heading and item, messages, a warning for every violation, the merge gate table, the transition
    history (newest rows that fit; a note names how many older ones were left out), the lifecycle diagram.
    """
    header = _header(view)
    messages = _messages(view.messages, max(max_bytes // 8, 0))
    violations = _violations(view.entries, max(max_bytes // 4, 0))
    before = [header, messages, violations]
    gate = ""
    if view.gate is not None:
        # the gate table gives way only to the fixed sections and the smallest history section
        room = max_bytes - _nbytes(_join(before)) - 2 - _history_min_bytes(view) - 2
        gate = _gate(view.gate, room)
    for diag in (_diagram(view.state), ""):
        fixed = _nbytes(_join([*before, gate, diag]))
        history = _history(view, max_bytes - fixed - 2)
        if history is not None:
            doc = _join([*before, gate, history, diag])
            if _nbytes(doc) <= max_bytes:
                return doc
    short = _gate_short(view.gate) if view.gate is not None else ""
    return _fit_lines(_join([*before, short]), max_bytes)


def _title(view: SummaryView) -> str:
    state = LoopState(view.state).value
    gate = view.gate
    if gate is None:
        text = f"{state} — {view.outcome}" if view.outcome else state
    elif gate.verdict == "pass":
        text = f"{state} — may merge"
    elif gate.verdict == "block":
        failed = sum(1 for r in gate.rows if r.status == "failed")
        text = f"{state} — merge blocked" + (f" ({failed} rule{'s' if failed != 1 else ''} failed)" if failed else "")
    else:
        pending = sum(1 for r in gate.rows if r.status == "pending")
        text = f"{state} — waiting" + (f" for {pending} rule{'s' if pending != 1 else ''}" if pending else "")
    violations = sum(1 for e in view.entries if e.outcome == Outcome.VIOLATION)
    if violations:
        text += f" — {violations} violation{'s' if violations != 1 else ''}"
    return clean_text(text, 200)


def check_run_output(view: SummaryView) -> CheckRunOutput:
    """``title``/``summary`` for the check run's ``output`` and the ``status``/``conclusion`` the gate implies:
    pass → completed/success, block → completed/failure, pending → in_progress (no conclusion), no gate →
    completed/neutral."""
    status: Literal["completed", "in_progress"]
    conclusion: Literal["success", "failure", "neutral"] | None
    if view.gate is None:
        status, conclusion = "completed", "neutral"
    elif view.gate.verdict == "pass":
        status, conclusion = "completed", "success"
    elif view.gate.verdict == "block":
        status, conclusion = "completed", "failure"
    else:
        status, conclusion = "in_progress", None
    return CheckRunOutput(title=_title(view), summary=render_summary(view), status=status, conclusion=conclusion)
