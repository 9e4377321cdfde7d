"""Markdown for the check run and step summary: untrusted text stays inert, and the byte limit always holds."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopforge.github.render import (
    GateRow,
    GateView,
    SummaryView,
    check_run_output,
    md_escape,
    render_summary,
    safe_github_url,
)
from loopforge.states import VALID_TRANSITIONS, LoopState
from loopforge.text import clean_text
from loopforge.trail import LoopTransition, Outcome

S = LoopState
ZWSP = "\u200b"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

INJECTIONS = [
    "::error::pwned",
    "::add-mask::hunter2\n::set-output name=x::y",
    "</details><details open><summary>fake</summary>",
    "<img src=x onerror=alert(1)>",
    "<script>alert(1)</script>",
    "<a href='javascript:alert(1)'>click</a>",
    "[click](javascript:alert(1))",
    "[x]( javascript:alert(1) )",
    "JaVaScRiPt:alert(document.cookie)",
    "javascript&#58;alert(1)",
    "![img](https://evil.example/x.png)",
    "https://evil.example/phish www.evil.example mailto:a@b.example",
    "<https://evil.example>",
    "@org/security-team @octocat please look",
    "user@example.com",
    "a | b || c |",
    "\\| escaped already \\\\|",
    "`code` ``` fence ~~~",
    "```mermaid\ngraph TD; A-->B\n```",
    "> quote\n# heading\n- [ ] task\n1. item\n---\n===",
    "**bold** _em_ ~~strike~~ $x^2$ $$\\href{javascript:x}{y}$$",
    "&lt;img src=x&gt; &amp; &#60;",
    "\x1b[31mred\x1b[0m \x1b]8;;https://evil.example\x07link\x1b]8;;\x07",
    "\u202eevil\u202c rtl",
    "\ud800 lone surrogate",
    "line1\r\nline2\rline3\u2028line4",
    "x" * 100_000,
    "é" * 50_000,
    "💥" * 30_000,
]

LIVE_MENTION = re.compile(r"(?<![\w`])@[A-Za-z0-9]")
SCHEME = re.compile(r"(?i)[a-z][a-z0-9+.-]*:")


def unescaped_pipes(text: str) -> list[int]:
    """Positions of ``|`` not preceded by an odd number of backslashes."""
    bad = []
    for m in re.finditer(r"\|", text):
        i, n = m.start() - 1, 0
        while i >= 0 and text[i] == "\\":
            n, i = n + 1, i - 1
        if n % 2 == 0:
            bad.append(m.start())
    return bad


def gfm_cells(row: str) -> list[str]:
    """Split a table row into cells as cmark-gfm does: ``\\|`` never separates cells."""
    assert row.startswith("|") and row.endswith("|"), row
    cells, current, i = [], "", 1
    while i < len(row) - 1:
        if row[i] == "\\" and row[i + 1] == "|":
            current += "\\|"
            i += 2
            continue
        if row[i] == "|":
            cells.append(current)
            current = ""
        else:
            current += row[i]
        i += 1
    cells.append(current)
    return cells


def md_unescape(text: str) -> str:
    """What a reader sees: backslash escapes and entities resolved."""
    return html.unescape(re.sub(r"\\(.)", r"\1", text))


def assert_inert(markdown: str) -> None:
    low = markdown.lower()
    assert "<" not in markdown
    assert "<img" not in low and "</details>" not in low and "<script" not in low
    assert "javascript:" not in low and "mailto:" not in low
    assert not LIVE_MENTION.search(markdown), LIVE_MENTION.search(markdown)
    assert not re.search(r"(?i)(?<![\w])www\.", markdown)
    assert "\x1b" not in markdown and "\r" not in markdown and "\u202e" not in markdown
    markdown.encode("utf-8")


# ------------------------------------------------------------------------------------------ md_escape


@pytest.mark.parametrize("text", INJECTIONS)
def test_md_escape_neutralises(text: str) -> None:
    out = md_escape(text)
    assert_inert(out)
    assert "\n" not in out
    assert not unescaped_pipes(out)
    assert "](" not in out and "![" not in out
    assert not re.search(r"(?i)https?://", out)
    assert not re.search(r"(?i)[a-z]:", out)  # every scheme-like colon is broken by a zero-width space
    assert len(clean_text(text)) <= 1000 and len(md_unescape(out).replace(ZWSP, "")) <= 200


def test_md_escape_examples() -> None:
    assert md_escape("a|b") == "a\\|b"
    assert md_escape("<b>&") == "&lt;b&gt;&amp;"
    assert md_escape("@octocat") == "@" + ZWSP + "octocat"
    assert md_escape("javascript:x") == "javascript" + ZWSP + ":x"
    assert md_escape("www.x.org") == "www" + ZWSP + "\\.x\\.org"
    assert md_escape("[a](b)") == "\\[a\\]\\(b\\)"
    assert md_escape("`x`") == "\\`x\\`"
    assert md_escape("a\nb") == "a b"
    assert md_escape(None) == ""
    assert md_escape("x" * 500, 10) == "x" * 9 + "…"
    assert md_escape("12:30") == "12:30"


@settings(max_examples=500)
@given(st.text(), st.integers(min_value=1, max_value=300))
def test_md_escape_properties(text: str, limit: int) -> None:
    out = md_escape(text, limit)
    assert "<" not in out and ">" not in out
    assert "\n" not in out and "\r" not in out
    assert not unescaped_pipes(out)
    assert not LIVE_MENTION.search(out)
    assert "javascript:" not in out.lower()
    # nothing is lost: the reader sees exactly the cleaned text (plus invisible zero-width spaces)
    assert md_unescape(out).replace(ZWSP, "") == clean_text(text, limit).replace(ZWSP, "")
    assert len(out) <= 6 * limit


@given(st.text(alphabet=st.sampled_from("\\|`*_[]()<>&@:#!.-~ jJavscript"), max_size=60))
def test_md_escape_in_a_table_cell_keeps_the_column_count(text: str) -> None:
    row = f"| {md_escape(text)} | {md_escape(text)} |"
    assert len(gfm_cells(row)) == 2


def test_safe_github_url() -> None:
    good = ["https://github.com/o/r/actions/runs/123", "https://github.com/o/r/actions/runs/1/attempts/2",
            "https://github.com/o/r/pull/5", "https://github.com/o/r/runs/9?check_suite_focus=true",
            "https://acme.ghe.com/o/r/actions/runs/7"]
    bad = ["http://github.com/o/r/actions/runs/1", "javascript:alert(1)", "https://evil.example/o/r",
           "https://github.com.evil.example/x", "https://user:pw@github.com/o/r", "https://github.com:8443/o/r",
           "https://github.com/o/r/actions/runs/1)(javascript:alert(1)", "https://github.com/o/r#frag",
           "https://github.com/o r", "https://github.com/<img>", "https://github.com/o/r\n[x](y)",
           "//github.com/o/r", "https://github.com/" + "a" * 600, None, 5, "HTTPS://GITHUB.COM/x"]
    assert all(safe_github_url(u) == u for u in good)
    assert not any(safe_github_url(u) for u in bad)


# ------------------------------------------------------------------------------------------ render_summary


def entry(seq: int, *, outcome: Outcome = Outcome.APPLIED, actor: str | None = "octocat", trigger: str = "push",
          reason: str | None = None, rule: str | None = None, run_url: object = None,
          from_state: LoopState | None = S.CI_PENDING, to_state: LoopState = S.CI_PASSED) -> LoopTransition:
    evidence = {} if run_url is None else {"run_url": run_url}
    return LoopTransition(record_id="o/r#1", sequence=seq, from_state=from_state, to_state=to_state,
                          trigger=trigger, outcome=outcome, reason=reason, rule=rule, actor=actor,
                          occurred_at=T0 + timedelta(seconds=seq), evidence=evidence)


def many(n: int, **kwargs: object) -> list[LoopTransition]:
    return [entry(i, run_url=f"https://github.com/o/r/actions/runs/{1000 + i}", **kwargs)  # type: ignore[arg-type]
            for i in range(1, n + 1)]


def view(**kwargs: object) -> SummaryView:
    base: dict[str, object] = {"record_id": "o/r#1", "state": S.CI_PASSED, "previous_state": S.CI_PENDING,
                               "outcome": "applied"}
    base.update(kwargs)
    return SummaryView.model_validate(base)


def tables(markdown: str) -> list[list[str]]:
    """The table blocks (consecutive lines starting with '|')."""
    blocks: list[list[str]] = []
    current: list[str] = []
    for line in markdown.split("\n"):
        if line.startswith("|"):
            current.append(line)
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return blocks


def assert_well_formed(markdown: str, max_bytes: int = 65535) -> None:
    assert len(markdown.encode("utf-8")) <= max_bytes
    assert_inert(markdown)
    fences = [line for line in markdown.split("\n") if line.lstrip().startswith(("```", "~~~"))]
    assert len(fences) % 2 == 0
    for block in tables(markdown):
        width = len(gfm_cells(block[0]))
        assert re.fullmatch(r"\|( ?:?-+:? ?\|)+", block[1]), block[1]  # the delimiter row
        for row in block:
            assert len(gfm_cells(row)) == width, row


def history_rows(markdown: str) -> list[int]:
    return [int(m.group(1)) for m in re.finditer(r"^\| (\d+) \| \d{4}-", markdown, re.M)]


def full_view(entries: list[LoopTransition], text: str) -> SummaryView:
    return view(title=text, url=text, outcome=text, entries=entries, messages=[text, text],
                run_url=text, record_id=text,
                gate=GateView(verdict="block", note=text,
                              rows=[GateRow(rule=text, status="failed", reason=text),
                                    GateRow(rule="ci", status="passed", reason=text)]))


@pytest.mark.parametrize("text", INJECTIONS)
def test_every_untrusted_field_is_inert_in_the_summary(text: str) -> None:
    entries = [entry(1, from_state=None, to_state=S.PR_CREATED, actor=text, trigger=text, run_url=text),
               entry(2, outcome=Outcome.VIOLATION, rule=text, reason=text, actor=text, trigger=text,
                     run_url=text, from_state=S.PR_CREATED, to_state=S.MERGED),
               entry(3, outcome=Outcome.REJECTED, rule=text, reason=text, actor=text, trigger=text)]
    out = check_run_output(full_view(entries, text))
    assert_well_formed(out["summary"])
    assert history_rows(out["summary"]) == [1, 2, 3]
    assert "](" + "https" not in out["summary"]  # no link: none of the URLs was a safe GitHub URL
    title = out["title"]
    assert len(title) <= 200 and "\n" not in title and "\x1b" not in title


def test_links_only_to_github_https_urls() -> None:
    entries = [entry(1, run_url="https://github.com/o/r/actions/runs/77"),
               entry(2, run_url="javascript:alert(1)"),
               entry(3, run_url="https://evil.example/o/r/actions/runs/1"),
               entry(4, run_url={"nested": "dict"})]
    md = render_summary(view(entries=entries, url="https://github.com/o/r/pull/1", title="Fix it",
                             run_url="https://github.com/o/r/actions/runs/99"))
    links = re.findall(r"\]\((.*?)\)", md)
    assert sorted(links) == ["https://github.com/o/r/actions/runs/77", "https://github.com/o/r/actions/runs/99",
                             "https://github.com/o/r/pull/1"]
    assert "[run 77](https://github.com/o/r/actions/runs/77)" in md
    assert "[Fix it](https://github.com/o/r/pull/1)" in md
    assert "evil" in md  # shown as inert text
    assert_well_formed(md)


def test_summary_sections() -> None:
    entries = [entry(1, from_state=None, to_state=S.PR_CREATED, trigger="pull_request.opened"),
               entry(2, from_state=S.PR_CREATED, to_state=S.CI_PENDING, trigger="check_suite.requested"),
               entry(3, outcome=Outcome.VIOLATION, rule="require-approval", reason="merged without an approval",
                     from_state=S.CI_PASSED, to_state=S.MERGED),
               entry(4, outcome=Outcome.VIOLATION, rule="require-ci", reason="CI had not passed")]
    gate = GateView(verdict="pending", note="this PR edits .github/loopforge.yml; it was evaluated under the base "
                                            "branch's policy",
                    rows=[GateRow(rule="ci", status="passed"), GateRow(rule="review", status="pending", reason="1/2"),
                          GateRow(rule="labels", status="failed", reason="missing"),
                          GateRow(rule="docs", status="skipped")])
    md = render_summary(view(entries=entries, gate=gate, title="Add thing", messages=["hello"]))
    assert md.startswith("### LoopForge: o/r\\#1 — `ci_passed`")
    assert md.count("> [!WARNING]") == 2
    assert "require\\-approval" in md and "merged without an approval" in md and "require\\-ci" in md
    assert "> [!NOTE]" in md and "loopforge\\.yml" in md
    for icon in "✅⏳❌➖":
        assert icon in md
    assert "```mermaid\nflowchart TD" in md and "class ci_passed current" in md
    assert "stateDiagram" not in md  # the record's path, not the whole lifecycle table
    assert "`pr_created` → `ci_pending`" in md and "—" in md
    assert history_rows(md) == [1, 2, 3, 4]
    assert "omitted" not in md
    assert_well_formed(md)


@pytest.mark.parametrize("n", [0, 1, 10, 1_000, 100_000])
def test_byte_limit_keeps_the_newest_whole_rows(n: int) -> None:
    text = "💥 <img src=x> @team | `x` é"
    entries = many(n, actor=text, trigger=text, reason=text, rule="r")
    md = render_summary(full_view(entries, text))
    assert_well_formed(md)
    rows = history_rows(md)
    if n:
        assert rows == list(range(n - len(rows) + 1, n + 1))  # a contiguous run ending at the newest
        assert rows[-1] == n
    omitted = n - len(rows)
    if omitted:
        assert f"{omitted} older {'entry' if omitted == 1 else 'entries'} omitted — run `loopforge history" in md
        assert n >= 1_000
    else:
        assert "older entries omitted" not in md
    assert ("```mermaid" in md) == (n > 0)  # no path to draw before the first entry
    if omitted:
        safe = render_summary(view(entries=entries))
        assert "older entries omitted — run `loopforge history o/r#1` for the full trail." in safe
    if n >= 1_000:
        assert len(md.encode("utf-8")) > 60_000  # the space is used


def test_100k_entries_render_quickly() -> None:
    import time

    entries = many(100_000)
    start = time.perf_counter()
    out = check_run_output(view(entries=entries, gate=GateView(verdict="pass")))
    assert time.perf_counter() - start < 5
    assert out["conclusion"] == "success"
    assert len(out["summary"].encode("utf-8")) <= 65535


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=2_500, max_value=70_000),
       st.sampled_from(["é", "💥", "中", "a", "\u0301e"]))
def test_multibyte_text_near_the_limit(max_bytes: int, char: str) -> None:
    entries = many(300, actor=char * 59, trigger=char * 79, reason=char * 119)
    md = render_summary(full_view(entries, char * 1000), max_bytes=max_bytes)
    assert_well_formed(md, max_bytes)
    rows = history_rows(md)
    if rows:
        assert rows[-1] == 300


def test_diagram_goes_before_the_gate_table_and_the_gate_table_last() -> None:
    rows = [GateRow(rule=f"rule-{i}", status="failed", reason="r" * 100) for i in range(20)]
    every_edge = {f"{a.value}>{b.value}": {"taken": 3, "violations": 1} for a, bs in VALID_TRANSITIONS.items()
                  for b in bs}  # the largest diagram a record can have
    v = view(entries=many(50), gate=GateView(verdict="block", rows=rows), path=every_edge)
    full = render_summary(v)
    assert "```mermaid" in full and "rule\\-19" in full and history_rows(full)[-1] == 50
    size_without_history = len(render_summary(v.model_copy(update={"entries": []})).encode())
    # room for the gate table but not for the diagram: history rows go first, then the diagram
    tight = size_without_history - 500
    md = render_summary(v, max_bytes=tight)
    assert_well_formed(md, tight)
    assert "```mermaid" not in md and "rule\\-19" in md
    assert history_rows(md)[-1] == 50 and re.search(r"\b\d+ older entries omitted", md)  # the newest rows stay
    # not even the gate table fits: its verdict stays, the table goes
    tiny = 1500
    md = render_summary(v, max_bytes=tiny)
    assert_well_formed(md, tiny)
    assert "Merge gate: ❌ blocked" in md and "rule\\-19" not in md and "```mermaid" not in md


@pytest.mark.parametrize("max_bytes", [0, 50, 200, 400, 800])
def test_absurdly_small_limits_still_give_valid_output(max_bytes: int) -> None:
    md = render_summary(full_view(many(100), "x" * 300), max_bytes=max_bytes)
    assert_well_formed(md, max_bytes)


def test_many_violations_and_messages_are_bounded() -> None:
    entries = many(5_000, outcome=Outcome.VIOLATION, rule="r", reason="because " * 40)
    md = render_summary(view(entries=entries, messages=["m " * 200] * 1_000))
    assert_well_formed(md)
    assert "earlier violations omitted" in md and "more messages omitted" in md
    assert history_rows(md)[-1] == 5_000
    assert "entry 5000," in md  # the newest violation is always shown
    shown_messages = len(re.findall(r"^- m m", md, re.M))
    assert f"- … {1_000 - shown_messages} more messages omitted" in md
    shown_violations = len(re.findall(r"^> \*\*Violation\*\* \(entry", md, re.M))
    assert f"> {5_000 - shown_violations} earlier violations omitted." in md


def test_violations_are_all_shown_when_they_fit() -> None:
    entries = [entry(i, outcome=Outcome.VIOLATION, rule=f"rule{i}", reason=f"why {i}") for i in range(1, 6)]
    md = render_summary(view(entries=entries))
    assert md.count("> [!WARNING]") == 5
    for i in range(1, 6):
        assert f"rule **rule{i}** — why {i}" in md


def mermaid_block(markdown: str) -> str:
    m = re.search(r"```mermaid\n(.*?)\n```", markdown, re.S)
    assert m, "no mermaid block"
    return m.group(1)


def test_diagram_is_the_path_this_record_took() -> None:
    entries = [entry(1, from_state=None, to_state=S.PR_CREATED, trigger="pull_request.opened"),
               entry(2, from_state=S.PR_CREATED, to_state=S.CI_PENDING),
               entry(3, from_state=S.CI_PENDING, to_state=S.CI_FAILED),
               entry(4, from_state=S.CI_FAILED, to_state=S.CI_PENDING),
               entry(5, from_state=S.CI_PENDING, to_state=S.CI_FAILED),
               entry(6, from_state=S.CI_FAILED, to_state=S.CI_PENDING),
               entry(7, from_state=S.CI_PENDING, to_state=S.CI_PASSED),
               entry(8, outcome=Outcome.REJECTED, from_state=S.CI_PASSED, to_state=S.CLOSED, reason="no"),
               entry(9, outcome=Outcome.NOTED, from_state=S.CI_PASSED, to_state=S.CI_PASSED),
               entry(10, outcome=Outcome.VIOLATION, from_state=S.CI_PASSED, to_state=S.MERGED, rule="policy:x")]
    md = render_summary(view(entries=entries, state=S.MERGED))
    diagram = mermaid_block(md)
    assert diagram.startswith("flowchart TD")
    nodes = set(re.findall(r"^    (\w+)\(\[\"", diagram, re.M))
    # only the states visited: not the 14 of the table, not the rejected target
    assert nodes == {"pr_created", "ci_pending", "ci_failed", "ci_passed", "merged"}
    edges = re.findall(r"^    (\w+) -->\|\"([^\"]*)\"\| (\w+)$", diagram, re.M)
    assert edges == [("start", "1×", "pr_created"), ("pr_created", "1×", "ci_pending"),
                     ("ci_pending", "2×", "ci_failed"), ("ci_failed", "2×", "ci_pending"),
                     ("ci_pending", "1×", "ci_passed"), ("ci_passed", "1× · 1 violation", "merged")]
    assert "    linkStyle 5 stroke:#d73a49" in diagram  # the violation edge (the 6th) is red
    assert "    class merged violation" in diagram and "    class merged current" in diagram
    assert "whole trail" in md
    assert_well_formed(md)


def test_diagram_uses_the_heads_path_over_the_whole_trail() -> None:
    window = [entry(i) for i in range(941, 1001)]  # the newest 60 of 1,000 entries, all ci_pending -> ci_passed
    path = {">issue_created": {"taken": 1, "violations": 0}, "issue_created>pr_created": {"taken": 1},
            "pr_created>ci_pending": {"taken": 1, "violations": 0},
            "ci_pending>ci_passed": {"taken": 500, "violations": 0},
            "ci_passed>ci_pending": {"taken": 499, "violations": 0},
            "bogus>merged": {"taken": 1}, "ci_passed>nowhere": {"taken": 1}, "x": {"taken": 1},
            "ci_passed>merged": {"taken": 0}}
    diagram = mermaid_block(render_summary(view(entries=window, path=path)))
    assert "ci_pending -->|\"500×\"| ci_passed" in diagram and "ci_passed -->|\"499×\"| ci_pending" in diagram
    assert "start -->|\"1×\"| issue_created" in diagram
    assert "merged" not in diagram and "nowhere" not in diagram and "bogus" not in diagram  # malformed keys dropped
    # without the head's path, the window is counted and the diagram says so
    md = render_summary(view(entries=window))
    assert "ci_pending -->|\"60×\"| ci_passed" in mermaid_block(md) and "entries 941–1000" in md


def history_header(markdown: str) -> list[str]:
    line = next(ln for ln in markdown.split("\n") if ln.startswith("| # |"))
    return [c.strip() for c in gfm_cells(line)]


def test_columns_empty_on_every_row_are_left_out() -> None:
    bare = [entry(i, actor=None) for i in range(1, 4)]  # replayed: no actor, no details, no run
    md = render_summary(view(entries=bare))
    assert history_header(md) == ["#", "Time (UTC)", "Transition", "Trigger", "Outcome"]
    assert_well_formed(md)
    mixed = [*bare, entry(4, rule="r", reason="why", run_url="https://github.com/o/r/actions/runs/42/attempts/1")]
    md = render_summary(view(entries=mixed))
    assert history_header(md) == ["#", "Time (UTC)", "Transition", "Trigger", "Actor", "Outcome", "Details", "Run"]
    assert "[run 42](https://github.com/o/r/actions/runs/42/attempts/1)" in md
    assert_well_formed(md)
    # the only row with a run link did not fit: the column goes with it
    tail = [entry(1, run_url="https://github.com/o/r/actions/runs/7"), *[entry(i, actor=None) for i in range(2, 400)]]
    md = render_summary(view(entries=tail), max_bytes=6000)
    assert 1 not in history_rows(md) and history_header(md)[-1] == "Outcome"
    assert_well_formed(md, 6000)


# ------------------------------------------------------------------------------------------ check_run_output


@pytest.mark.parametrize(("verdict", "status", "conclusion", "title"), [
    ("pass", "completed", "success", "ci_passed — may merge"),
    ("block", "completed", "failure", "ci_passed — merge blocked (1 rule failed)"),
    ("pending", "in_progress", None, "ci_passed — waiting for 1 rule"),
    (None, "completed", "neutral", "ci_passed — applied"),
])
def test_check_run_output(verdict: str | None, status: str, conclusion: str | None, title: str) -> None:
    gate = None if verdict is None else GateView(
        verdict=verdict, rows=[GateRow(rule="a", status="failed" if verdict == "block" else "pending")])
    out = check_run_output(view(gate=gate, entries=many(3)))
    assert (out["status"], out["conclusion"], out["title"]) == (status, conclusion, title)
    assert out["summary"] == render_summary(view(gate=gate, entries=many(3)))
    assert set(out) == {"title", "summary", "status", "conclusion"}


def test_check_run_title_is_short_plain_text() -> None:
    out = check_run_output(view(outcome="\x1b[31m::error::x\n" + "y" * 1000,
                                entries=[entry(1, outcome=Outcome.VIOLATION)]))
    assert len(out["title"]) <= 200 and out["title"].startswith("ci_passed — ::error::x y")
    assert "\n" not in out["title"] and "\x1b" not in out["title"]
    out = check_run_output(view(gate=GateView(verdict="pass"), entries=[entry(1, outcome=Outcome.VIOLATION)]))
    assert out["title"] == "ci_passed — may merge — 1 violation"
