"""Workflow commands and file commands: untrusted text must never become a command the runner obeys.

``runner_commands`` below parses stdout the way the Actions runner does (``ActionCommandManager``): each line is
trimmed; ``::cmd props::data`` (v2) or a legacy ``##[cmd props]data`` anywhere in the line (v1) is a command;
after ``::stop-commands::TOKEN`` every command is ignored until ``::TOKEN::``. ``runner_outputs`` parses a
``$GITHUB_OUTPUT`` file like the runner's ``FileCommandManager`` (``name=value`` or ``name<<DELIM`` heredocs).
"""

from __future__ import annotations

import io
import os
import re
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopforge.github.workflow_commands import (
    SUMMARY_LIMIT_BYTES,
    Log,
    append_summary,
    clean_text,
    escape_data,
    escape_property,
    set_output,
)

INJECTIONS = [
    "::error::pwned",
    "::add-mask::hunter2",
    "::stop-commands::deadbeef",
    "::set-output name=merged::true",
    "::set-env name=LD_PRELOAD::/tmp/x.so",
    "::add-path::/tmp/evil",
    "::save-state name=x::y",
    "::warning file=a.py,line=1::spoofed",
    "::group::fake",
    "::endgroup::",
    "::echo::on",
    "::debug::x",
    "##[add-mask]hunter2",
    "title ##[set-output name=x;]y",
    "  ::error::indented",
    "\t::error::tabbed",
    "ok\n::error::pwned",
    "ok\r::add-mask::cr-only",
    "ok\r\n::set-output name=a::b",
    "ok%0A::error::percent-encoded-newline",
    "ok%0D%0A::error::x",
    "ok\u2028::error::line-separator",
    "ok\x85::error::nel",
    "ok\x0b::error::vt\x0c::error::ff",
    "\x1b[31m::error::ansi\x1b[0m",
    "\x1b]8;;https://evil.example\x07link\x1b]8;;\x07",
    "\x1b]0;title",
    "\x9b31m c1 csi",
    "\x00\x07\x08\x7f nul bell",
    "\u202e::error::rtl-override",
    "\ud800 lone surrogate",
    "</details><img src=x onerror=alert(1)>",
    "@org/team @octocat please",
    "[x](javascript:alert(1))",
    "a | b || c",
    "`code` ``` fence",
    "x" * 100_000,
    "é" * 50_000,
    "💥" * 30_000,
    "\n" * 10_000 + "::error::after-newlines",
]

KNOWN = {"error", "warning", "notice", "debug", "group", "endgroup", "add-mask", "stop-commands", "set-output",
         "set-env", "add-path", "save-state", "echo", "add-matcher", "remove-matcher"}


def runner_unescape_data(value: str) -> str:
    return value.replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%")


def runner_unescape_property(value: str) -> str:
    return (value.replace("%0D", "\r").replace("%0A", "\n").replace("%3A", ":").replace("%2C", ",")
            .replace("%25", "%"))


def runner_lines(output: str) -> list[str]:
    # .NET's line reader splits on \r, \n and \r\n
    return re.split(r"\r\n|\r|\n", output)


def _parse_v2(line: str) -> tuple[str, dict[str, str], str] | None:
    if not line.startswith("::"):
        return None
    end = line.find("::", 2)
    if end < 0:
        return None
    info = line[2:end]
    name, _, props_text = info.partition(" ")
    props: dict[str, str] = {}
    for pair in filter(None, props_text.split(",")):
        key, sep, value = pair.partition("=")
        if sep:
            props[key] = runner_unescape_property(value)
    return name, props, runner_unescape_data(line[end + 2:])


def _parse_v1(line: str) -> tuple[str, dict[str, str], str] | None:
    start = line.find("##[")
    if start < 0:
        return None
    close = line.find("]", start)
    if close < 0:
        return None
    name = line[start + 3:close].split(" ")[0]
    return name, {}, line[close + 1:]


def runner_commands(output: str) -> list[tuple[str, dict[str, str], str]]:
    """The commands the runner would obey, in order (stop/resume markers included, ignored ones left out)."""
    obeyed: list[tuple[str, dict[str, str], str]] = []
    stop_token: str | None = None
    for raw in runner_lines(output):
        line = raw.strip()
        parsed = _parse_v2(line) or _parse_v1(line)
        if parsed is None:
            continue
        name = parsed[0]
        if name not in KNOWN and name != stop_token:
            continue
        if stop_token is not None:
            if name == stop_token:
                stop_token = None
                obeyed.append(parsed)
            continue
        if name == "stop-commands":
            stop_token = parsed[2]
        obeyed.append(parsed)
    return obeyed


def runner_outputs(text: str) -> dict[str, str]:
    """``$GITHUB_OUTPUT`` as the runner reads it (Linux: lines end at ``\\n`` only)."""
    out: dict[str, str] = {}
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if line == "":
            continue
        eq, heredoc = line.find("="), line.find("<<")
        if eq >= 0 and (heredoc < 0 or eq < heredoc):
            out[line[:eq]] = line[eq + 1:]
            continue
        assert heredoc > 0, f"unparseable line {line!r}"
        name, delimiter = line[:heredoc], line[heredoc + 2:]
        body: list[str] = []
        while True:
            assert i < len(lines), f"heredoc {delimiter!r} not closed"
            if lines[i] == delimiter:
                i += 1
                break
            body.append(lines[i])
            i += 1
        out[name] = "\n".join(body)
    return out


def make_log() -> tuple[Log, io.StringIO]:
    buf = io.StringIO()
    return Log(buf, env={}), buf


# ------------------------------------------------------------------------------------------ escaping


def test_escape_data_and_property_like_the_toolkit() -> None:
    assert escape_data("50% done\r\nnext") == "50%25 done%0D%0Anext"
    assert escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"
    assert escape_data(None) == ""
    assert escape_data(12) == "12"


@given(st.text())
def test_escape_data_never_leaves_a_line_break_and_round_trips(text: str) -> None:
    escaped = escape_data(text)
    assert "\n" not in escaped and "\r" not in escaped
    assert runner_unescape_data(escaped) == text


@given(st.text())
def test_escape_property_round_trips_and_has_no_separators(text: str) -> None:
    escaped = escape_property(text)
    assert not set(escaped) & {"\n", "\r", ":", ","}
    assert runner_unescape_property(escaped) == text


def test_escape_data_replaces_lone_surrogates() -> None:
    assert escape_data("a\ud800b") == "a\ufffdb"
    escape_data("a\ud800b").encode("utf-8")


# ------------------------------------------------------------------------------------------ clean_text


@pytest.mark.parametrize("text", INJECTIONS)
def test_clean_text_is_one_printable_bounded_line(text: str) -> None:
    cleaned = clean_text(text, 300)
    assert len(cleaned) <= 300
    assert all(c.isprintable() or c == " " for c in cleaned), repr(cleaned)
    assert "\x1b" not in cleaned and "\u202e" not in cleaned
    assert cleaned == cleaned.strip() and "  " not in cleaned
    cleaned.encode("utf-8")


def test_clean_text_examples() -> None:
    assert clean_text("  a\n\tb\r\nc  ") == "a b c"
    assert clean_text("\x1b[1;31mred\x1b[0m \x1b]8;;https://x\x07link\x1b]8;;\x07!") == "red link!"
    assert clean_text("abcdef", 4) == "abc…"
    assert clean_text("abcd", 4) == "abcd"
    assert clean_text("ab  cd", 3) == "ab…"
    assert clean_text(None) == ""
    assert clean_text("x", 0) == ""
    assert clean_text("a\x00b\x7fc\x9b1md\x9f") == "abcd"
    # 100 KB of whitespace then text: bounded work, still marked as cut
    assert clean_text(" " * 100_000 + "tail", 50) == "…"
    assert clean_text("x" * 100_000, 10) == "x" * 9 + "…"


@given(st.text(), st.integers(min_value=1, max_value=500))
def test_clean_text_properties(text: str, limit: int) -> None:
    cleaned = clean_text(text, limit)
    assert len(cleaned) <= limit
    assert "\n" not in cleaned and "\r" not in cleaned
    assert not any(0 <= ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in cleaned)


# ------------------------------------------------------------------------------------------ Log


@pytest.mark.parametrize("method", ["error", "warning", "notice"])
def test_annotation_is_exactly_one_line(method: str) -> None:
    log, buf = make_log()
    getattr(log, method)("line one\nline two: 100%", title="Rule: a, b")
    assert buf.getvalue() == f"::{method} title=Rule%3A a%2C b::line one%0Aline two: 100%25\n"
    log, buf = make_log()
    getattr(log, method)("no title")
    assert buf.getvalue() == f"::{method}::no title\n"


@pytest.mark.parametrize("text", INJECTIONS)
def test_untrusted_text_through_every_log_path_is_never_obeyed(text: str) -> None:
    log, buf = make_log()
    log.error(text, title=text)
    log.warning(text, title=text)
    log.notice(text, title=text)
    log.debug(text)
    with log.group(text):
        tokens = [log.untrusted(text)]
    tokens.append(log.untrusted(text))
    output = buf.getvalue()
    lines = output.split("\n")
    assert lines[-1] == ""
    lines = lines[:-1]
    assert runner_lines(output)[:-1] == lines  # no stray \r: the runner sees the same lines we wrote

    obeyed = runner_commands(output)
    names = [c[0] for c in obeyed]
    assert names == ["error", "warning", "notice", "debug", "group", "stop-commands", tokens[0], "endgroup",
                     "stop-commands", tokens[1]]
    for name, props, data in obeyed[:3]:
        assert data == runner_unescape_data(escape_data(data))
        assert set(props) <= {"title"}, (name, props)
        assert "\n" not in props.get("title", "")
    # the only lines that start with '::' are the 10 the Log emitted (one per annotation/group, two per untrusted)
    starting = [line for line in lines if line.strip().startswith("::")]
    assert len(starting) == 10
    assert all(line.startswith(("::error", "::warning", "::notice", "::debug::", "::group::", "::endgroup::",
                                "::stop-commands::", f"::{tokens[0]}::", f"::{tokens[1]}::")) for line in starting)
    assert not any(line.lstrip().startswith("##[") or "##[" in line for line in lines
                   if not line.startswith(("::error", "::warning", "::notice", "::debug::", "::group::")))
    for line in lines:
        assert len(line) < 40_000


def test_untrusted_uses_fresh_random_tokens_and_matching_markers() -> None:
    log, buf = make_log()
    tokens = [log.untrusted(f"::stop-commands::{i}") for i in range(50)]
    assert len(set(tokens)) == 50
    assert all(re.fullmatch(r"[0-9a-f]{32}", t) for t in tokens)
    lines = buf.getvalue().splitlines()
    assert len(lines) == 150
    for i, token in enumerate(tokens):
        start, body, end = lines[3 * i: 3 * i + 3]
        assert start == f"::stop-commands::{token}"
        assert end == f"::{token}::"
        assert token not in body
        assert not body.lstrip().startswith("::")


def test_untrusted_cannot_resume_commands_early() -> None:
    log, buf = make_log()
    token = log.untrusted("::resume:: ::stop-commands::x\n::x::\n::error::x\n::add-mask::y")
    assert [c[0] for c in runner_commands(buf.getvalue())] == ["stop-commands", token]
    # even a runner that ignored stop-commands would see no command in the body line
    body = buf.getvalue().splitlines()[1]
    assert _parse_v2(body.strip()) is None and _parse_v1(body) is None


def test_untrusted_output_is_cleaned_and_bounded() -> None:
    log, buf = make_log()
    log.untrusted("\x1b[31mred\x1b[0m\nnext line " + "x" * 100_000)
    body = buf.getvalue().splitlines()[1]
    assert body.startswith("red next line x")
    assert len(body) <= 4000 and body.endswith("…")


def test_add_mask_and_set_output_cannot_be_spoofed_by_title_or_message() -> None:
    log, buf = make_log()
    spoof = "x\n::add-mask::hunter2\n::set-output name=merged::true\n##[add-mask]hunter2"
    log.error(spoof, title=spoof)
    log.untrusted(spoof)
    with log.group(spoof):
        pass
    names = [c[0] for c in runner_commands(buf.getvalue())]
    assert "add-mask" not in names and "set-output" not in names
    # the annotation still carries the full message for the reader, as data
    assert runner_commands(buf.getvalue())[0][2] == "x\n::add-mask::hunter2\n::set-output name=merged::true\n" \
                                                   "##[add-mask]hunter2"


def test_group_ends_even_when_the_body_raises() -> None:
    log, buf = make_log()
    with pytest.raises(RuntimeError), log.group("title %\n"):
        raise RuntimeError("boom")
    assert buf.getvalue() == "::group::title %25\n::endgroup::\n"


def test_mask_masks_every_line_of_a_secret() -> None:
    log, buf = make_log()
    log.mask("line1\nline2%")
    assert [(c[0], c[2]) for c in runner_commands(buf.getvalue())] == [("add-mask", "line1"), ("add-mask", "line2%")]


def test_info_prints_trusted_text_verbatim() -> None:
    log, buf = make_log()
    log.info("hello\nworld")
    assert buf.getvalue() == "hello\nworld\n"


def test_default_stream_is_stdout_at_call_time(capsys: pytest.CaptureFixture[str]) -> None:
    log = Log()
    log.error("e")
    log.untrusted("::error::x")
    out = capsys.readouterr().out
    assert out.startswith("::error::e\n::stop-commands::")
    assert [c[0] for c in runner_commands(out)][:2] == ["error", "stop-commands"]
    assert log.stream is sys.stdout


# ------------------------------------------------------------------------------------------ $GITHUB_OUTPUT


OUTPUT_VALUES = [
    "",
    "simple",
    "two\nlines",
    "trailing newline\n",
    "\n",
    "\n\nleading",
    "a=b",
    "x<<EOF",
    "EOF",
    "ghadelimiter_0123456789abcdef0123456789abcdef",
    "line\nghadelimiter_0123456789abcdef0123456789abcdef\nmore",
    "name<<ghadelimiter_x\nvalue\nghadelimiter_x",
    "crlf\r\nkept",
    "::set-output name=x::y",
    "é 💥 中文",
    "x" * 100_000,
    *INJECTIONS[:-4],
]


@pytest.mark.parametrize("value", OUTPUT_VALUES)
def test_set_output_round_trips_through_the_runner_parser(tmp_path: Path, value: str) -> None:
    path = tmp_path / "output"
    assert set_output("result", value, str(path)) is True
    assert set_output("other", "after", str(path)) is True
    parsed = runner_outputs(path.read_bytes().decode("utf-8"))
    expected = value.replace("\ud800", "\ufffd")
    assert parsed == {"result": expected, "other": "after"}


@settings(max_examples=200)
@given(st.lists(st.text(), min_size=1, max_size=5))
def test_set_output_round_trips_any_text(tmp_path_factory: pytest.TempPathFactory, values: list[str]) -> None:
    path = tmp_path_factory.mktemp("out") / "output"
    for i, value in enumerate(values):
        assert set_output(f"v{i}", value, str(path))
    assert runner_outputs(path.read_bytes().decode("utf-8")) == {f"v{i}": v for i, v in enumerate(values)}


def test_set_output_uses_a_random_delimiter_absent_from_the_value(tmp_path: Path) -> None:
    path = tmp_path / "output"
    set_output("a", "v", str(path))
    set_output("a", "v", str(path))
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("a<<ghadelimiter_") and lines[3].startswith("a<<ghadelimiter_")
    assert lines[0] != lines[3]
    assert lines[2] == lines[0][3:]


def test_set_output_value_types(tmp_path: Path) -> None:
    path = tmp_path / "output"
    set_output("b", True, str(path))
    set_output("n", 3, str(path))
    set_output("d", {"k": [1, "é"]}, str(path))
    set_output("none", None, str(path))
    assert runner_outputs(path.read_bytes().decode("utf-8")) == {"b": "true", "n": "3", "d": '{"k": [1, "é"]}',
                                                                 "none": ""}


@pytest.mark.parametrize("name", ["", "a=b", "a<<b", "a\nb", "a b", "::x", "1abc"])
def test_set_output_rejects_names_the_runner_would_misparse(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError):
        set_output(name, "v", str(tmp_path / "out"))


def test_set_output_without_github_output_does_nothing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("GITHUB_OUTPUT", raising=False)
    assert set_output("a", "b") is False
    assert set_output("a", "b", env={}) is False
    assert set_output("a", "b", env={"GITHUB_OUTPUT": ""}) is False
    assert Log(io.StringIO(), env={}).set_output("a", "b") is False
    # unwritable target: no crash
    assert set_output("a", "b", str(tmp_path)) is False
    assert set_output("a", "b", str(tmp_path / "missing-dir" / "out")) is False


def test_set_output_reads_the_path_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(path))
    assert set_output("a", "from env") is True
    env_path = tmp_path / "output2"
    assert Log(io.StringIO(), env={"GITHUB_OUTPUT": str(env_path)}).set_output("b", "x\ny") is True
    assert runner_outputs(path.read_bytes().decode("utf-8")) == {"a": "from env"}
    assert runner_outputs(env_path.read_bytes().decode("utf-8")) == {"b": "x\ny"}


# ------------------------------------------------------------------------------------------ $GITHUB_STEP_SUMMARY


def test_append_summary_appends(tmp_path: Path) -> None:
    path = tmp_path / "summary.md"
    assert append_summary("# one", str(path)) is True
    assert append_summary("two\n", str(path)) is True
    assert path.read_text(encoding="utf-8") == "# one\ntwo\n"


def test_append_summary_without_env_does_nothing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    assert append_summary("x") is False
    assert append_summary("x", env={}) is False
    assert Log(io.StringIO(), env={}).append_summary("x") is False
    assert append_summary("x", str(tmp_path)) is False  # a directory: no crash
    path = tmp_path / "s.md"
    assert append_summary("x", env={"GITHUB_STEP_SUMMARY": str(path)}) is True
    assert path.read_text(encoding="utf-8") == "x\n"


def test_append_summary_truncates_at_a_line_boundary_with_a_note(tmp_path: Path) -> None:
    path = tmp_path / "summary.md"
    text = "".join(f"line {i:05d} é\n" for i in range(1000))
    assert append_summary(text, str(path), limit=5000) is True
    data = path.read_bytes()
    assert len(data) <= 5000
    content = data.decode("utf-8")
    body, _, note = content.partition("\n> [!NOTE]\n")
    assert "Summary truncated" in note
    assert all(re.fullmatch(r"line \d{5} é", line) for line in body.splitlines())
    assert body.splitlines()[0] == "line 00000 é"


def test_append_summary_closes_an_open_fence(tmp_path: Path) -> None:
    path = tmp_path / "summary.md"
    text = "intro\n\n```mermaid\n" + "".join(f"    a{i} --> b{i}\n" for i in range(2000)) + "```\n"
    assert append_summary(text, str(path), limit=4000) is True
    content = path.read_text(encoding="utf-8")
    assert len(content.encode("utf-8")) <= 4000
    fences = [line for line in content.splitlines() if line.startswith("```")]
    assert len(fences) % 2 == 0 and len(fences) == 2


def test_append_summary_respects_what_is_already_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "summary.md"
    path.write_bytes(b"x" * (SUMMARY_LIMIT_BYTES - 2000) + b"\n")
    big = "".join(f"row {i} 💥\n" for i in range(100_000))
    assert append_summary(big, str(path)) is True
    assert os.path.getsize(path) <= SUMMARY_LIMIT_BYTES
    assert path.read_text(encoding="utf-8").rstrip().endswith("limit.")
    # full: nothing more fits, nothing is written
    size = os.path.getsize(path)
    assert append_summary("more\n" * 1000, str(path)) is False
    assert os.path.getsize(path) == size


def test_append_summary_replaces_lone_surrogates(tmp_path: Path) -> None:
    path = tmp_path / "summary.md"
    assert append_summary("bad \ud800 text", str(path)) is True
    assert path.read_text(encoding="utf-8") == "bad \ufffd text\n"
