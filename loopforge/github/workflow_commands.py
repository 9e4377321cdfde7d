"""GitHub Actions workflow commands and file commands, safe against untrusted text.

The runner parses every line of a step's stdout that starts (after leading whitespace) with ``::`` as a
workflow command, so a PR title such as ``::add-mask::…`` or ``::stop-commands::x`` printed verbatim would be
obeyed. Everything here that prints text which may come from a user either escapes it into the data part of
one of our own commands (``escape_data`` turns line breaks into ``%0A`` so the text stays on our line) or
prints it between ``::stop-commands::<random token>`` and ``::<token>::``, while the runner ignores commands.

``action_input`` reads an input the way the runner passes it. ``set_output`` and ``append_summary`` write the
``$GITHUB_OUTPUT`` / ``$GITHUB_STEP_SUMMARY`` files. When the
variable is missing (not running under Actions) or the file cannot be written they do nothing and return False.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import sys
from collections.abc import Iterator, Mapping
from typing import TextIO

from loopforge.text import clean_lines, clean_text, printable

__all__ = [
    "SUMMARY_LIMIT_BYTES",
    "Log",
    "action_input",
    "append_summary",
    "clean_text",
    "escape_data",
    "escape_property",
    "set_output",
]


def action_input(env: Mapping[str, str], name: str, default: str = "") -> str:
    """Input ``name`` (``with:`` in the workflow), stripped: the runner passes ``INPUT_<NAME>`` upper-cased with
    hyphens kept (``INPUT_GITHUB-TOKEN``); the underscore spelling is read too."""
    value = env.get(f"INPUT_{name.upper()}")
    if value is None:
        value = env.get(f"INPUT_{name.upper().replace('-', '_')}")
    return (value if value is not None else default).strip()

#: GitHub refuses to show a step summary larger than this (1 MiB per step, all appends together).
SUMMARY_LIMIT_BYTES = 1024 * 1024

_OUTPUT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def escape_data(value: object) -> str:
    """Escape the data part of a workflow command (``::cmd::<data>``), as the runner toolkit does."""
    return printable(value).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(value: object) -> str:
    """Escape a property value of a workflow command (``::cmd key=<value>::``): also ``:`` and ``,``."""
    return escape_data(value).replace(":", "%3A").replace(",", "%2C")


def _env(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


class Log:
    """Writes workflow commands to ``stream`` (``sys.stdout`` at the time of each call when not given).

    ``error``/``warning``/``notice``/``debug`` each print exactly one line whose untrusted parts are escaped;
    ``untrusted`` prints text from users between ``::stop-commands::`` markers; ``info`` prints trusted text as is.
    """

    def __init__(self, stream: TextIO | None = None, *, env: Mapping[str, str] | None = None) -> None:
        self._stream = stream
        self._env = env

    @property
    def stream(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stdout

    def _line(self, line: str) -> None:
        stream = self.stream
        stream.write(line + "\n")
        with contextlib.suppress(Exception):
            stream.flush()

    def _annotation(self, command: str, message: object, title: str | None) -> None:
        props = ""
        if title is not None:
            cleaned = clean_text(title, 200)
            if cleaned:
                props = f" title={escape_property(cleaned)}"
        self._line(f"::{command}{props}::{escape_data(clean_lines(message))}")

    def error(self, message: object, *, title: str | None = None) -> None:
        """An error annotation: one line ``::error title=…::…``."""
        self._annotation("error", message, title)

    def warning(self, message: object, *, title: str | None = None) -> None:
        self._annotation("warning", message, title)

    def notice(self, message: object, *, title: str | None = None) -> None:
        self._annotation("notice", message, title)

    def debug(self, message: object) -> None:
        """A debug line (shown only when step debug logging is on)."""
        self._line(f"::debug::{escape_data(clean_lines(message))}")

    def mask(self, secret: str) -> None:
        """Ask the runner to mask ``secret`` in the rest of the log (each line of it separately)."""
        for part in printable(secret).splitlines():
            if part.strip():
                self._line(f"::add-mask::{escape_data(part)}")

    def info(self, message: str) -> None:
        """Print TRUSTED text as is (it may itself contain workflow commands). Never pass user text here."""
        for line in str(message).splitlines() or [""]:
            self._line(line)

    def untrusted(self, text: object, *, limit: int = 4000) -> str:
        """Print untrusted text as one cleaned line that the runner cannot read as a command.

        Emits ``::stop-commands::<token>``, the line, then ``::<token>::``, with a fresh random 32-hex token.
        Returns the token (for tests and logs).
        """
        token = secrets.token_hex(16)
        # belt and braces: even outside stop-commands this line is neither a `::cmd::` nor a legacy `##[cmd]`
        line = clean_text(text, limit).replace("##[", "## [")
        if line.startswith(":"):
            line = "\\" + line
        self._line(f"::stop-commands::{token}")
        self._line(line)
        self._line(f"::{token}::")
        return token

    @contextlib.contextmanager
    def group(self, title: object) -> Iterator[None]:
        """A collapsible group in the log: ``::group::<title>`` … ``::endgroup::``."""
        self._line(f"::group::{escape_data(clean_text(title, 200))}")
        try:
            yield
        finally:
            self._line("::endgroup::")

    def set_output(self, name: str, value: object) -> bool:
        return set_output(name, value, env=self._env)

    def append_summary(self, markdown: str) -> bool:
        return append_summary(markdown, env=self._env)


def _value_text(value: object) -> str:
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, int | float):
        return str(value)
    return printable(json.dumps(value, default=str, ensure_ascii=False))


def _append(path: str, text: str) -> bool:
    try:
        with open(path, "a", encoding="utf-8", newline="") as fh:
            fh.write(text)
    except (OSError, ValueError):
        return False
    return True


def set_output(name: str, value: object, path: str | None = None, *, env: Mapping[str, str] | None = None) -> bool:
    """Append a step output to ``path`` (default ``$GITHUB_OUTPUT``) in the heredoc form.

    Writes ``name<<DELIM\\nvalue\\nDELIM\\n`` with a random delimiter that does not occur in the value, so any
    value (several lines, ``=``, ``<<``, text that looks like a delimiter) reads back unchanged. ``name`` is
    ours, not user text: a name the runner cannot parse raises ``ValueError``. Returns False, writing nothing,
    when there is no output file or it cannot be written.
    """
    if not _OUTPUT_NAME.match(name):
        raise ValueError(f"invalid output name: {name!r}")
    target = path if path is not None else _env(env).get("GITHUB_OUTPUT")
    if not target:
        return False
    text = _value_text(value)
    delimiter = f"ghadelimiter_{secrets.token_hex(16)}"
    while delimiter in text:  # pragma: no cover - 128 random bits
        delimiter = f"ghadelimiter_{secrets.token_hex(16)}"
    return _append(target, f"{name}<<{delimiter}\n{text}\n{delimiter}\n")


def _close_fences(lines: list[str]) -> str:
    """The closing fence needed after ``lines`` (``""`` when no fenced block is left open)."""
    open_fence: str | None = None
    for line in lines:
        m = _FENCE.match(line)
        if not m:
            continue
        fence = m.group(1)
        if open_fence is None:
            open_fence = fence
        elif fence[0] == open_fence[0] and len(fence) >= len(open_fence) and not line.strip()[len(fence):].strip():
            open_fence = None
    return "" if open_fence is None else open_fence + "\n"


def append_summary(
    markdown: str,
    path: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    limit: int = SUMMARY_LIMIT_BYTES,
) -> bool:
    """Append markdown to ``path`` (default ``$GITHUB_STEP_SUMMARY``), keeping the file within ``limit`` bytes.

    Text that does not fit is cut at a line boundary (closing an open code fence) and followed by a note.
    Returns False, writing nothing, when there is no summary file, it cannot be written or nothing fits.
    """
    target = path if path is not None else _env(env).get("GITHUB_STEP_SUMMARY")
    if not target:
        return False
    text = printable(markdown)
    if not text.endswith("\n"):
        text += "\n"
    try:
        used = os.path.getsize(target) if os.path.exists(target) else 0
    except OSError:
        return False
    room = limit - used
    data = text.encode("utf-8")
    if len(data) <= room:
        return _append(target, text)
    note = (f"\n> [!NOTE]\n> Summary truncated: {len(data)} bytes did not fit in the step summary's "
            f"{limit // 1024} KiB limit.\n")
    budget = room - len(note.encode("utf-8"))
    if budget <= 0:
        return False
    cut = data[:budget]
    lines = cut[: cut.rfind(b"\n") + 1].decode("utf-8").splitlines(keepends=True)
    while True:
        kept = "".join(lines) + _close_fences(lines)
        if len(kept.encode("utf-8")) <= budget or not lines:
            break
        lines.pop()
    if not kept:
        return False
    return _append(target, kept + note)
