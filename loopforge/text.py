"""The one sanitiser of untrusted text (titles, branches, logins, bodies, error messages) before it is shown.

``clean_text`` makes one printable line (terminal, CI log, CSV cell, ``::error`` message, CLI error);
``clean_lines`` keeps line breaks (annotations, multi-line notes); ``printable`` only makes a string encodable.
Escaping for a particular format is separate and comes after: ``loopforge.github.workflow_commands`` for
workflow commands, ``loopforge.github.render`` for markdown and HTML.
"""

from __future__ import annotations

import re

__all__ = ["clean_lines", "clean_text", "printable"]

# ANSI escape sequences: CSI (ESC [ … final), OSC/DCS/SOS/PM/APC strings terminated by BEL or ST, the 8-bit
# CSI, and the other two-character escapes. Unterminated strings are not swallowed: their ESC is dropped below.
_ANSI = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b[\]PX^_][^\x07\x1b]*(?:\x07|\x1b\\)"
    r"|\x9b[0-?]*[ -/]*[@-~]"
    r"|\x1b[ -/]*[0-~]"
)
# Line breaks and other whitespace controls become a space; every other C0/C1 control, the bidirectional
# overrides/isolates ("Trojan Source") and BOM are removed; lone surrogates (which cannot be encoded) become U+FFFD.
_SPACE_CONTROLS = re.compile(r"[\t\n\v\f\r\x1c-\x1f\x85\u2028\u2029]")
_OTHER_CONTROLS = re.compile(
    r"[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]"
)
_SURROGATES = re.compile(r"[\ud800-\udfff]")


def printable(value: object) -> str:
    """``value`` as a string whose lone surrogates (which cannot be encoded) are U+FFFD; None is ``""``."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    return _SURROGATES.sub("\ufffd", text)


def clean_text(value: object, limit: int = 1000) -> str:
    """A printable one-line version of untrusted text.

    Removes ANSI escape sequences and all C0/C1 control characters (line breaks and tabs become spaces),
    bidirectional overrides and lone surrogates, collapses runs of whitespace into one space, strips the ends
    and, when longer than ``limit`` characters, cuts it to ``limit`` characters ending in ``…``.
    """
    if limit <= 0:
        return ""
    text = printable(value)
    # very long input: only a prefix can survive, so do not scan megabytes of it
    window = max(4 * limit, 4096)
    cut = len(text) > window
    if cut:
        text = text[:window]
    text = _ANSI.sub("", text)
    text = _SPACE_CONTROLS.sub(" ", text)
    text = _OTHER_CONTROLS.sub("", text)
    text = " ".join(text.split())
    if len(text) > limit or cut:
        text = text[: limit - 1].rstrip() + "…"
    return text


def clean_lines(value: object, limit: int = 4000) -> str:
    """Like ``clean_text`` but keeps line breaks, at most two in a row (annotations may span lines; a
    workflow command encodes them)."""
    text = printable(value)
    if len(text) > 4 * limit:
        text = text[: 4 * limit]
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = [clean_text(line, limit) for line in text.split("\n")]
    joined = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")
    if len(joined) > limit:
        joined = joined[: limit - 1].rstrip() + "…"
    return joined
