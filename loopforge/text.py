"""The one sanitiser of untrusted text (titles, branches, logins, bodies, error messages) before it is shown.

``clean_text`` makes one printable line (terminal, CI log, ``::error`` message, CLI error);
``clean_lines`` keeps line breaks (annotations, multi-line notes); ``printable`` only makes a string encodable;
``csv_cell`` makes a CSV cell a spreadsheet shows as text (every CSV the CLI writes).
Escaping for a particular format is separate and comes after: ``loopforge.github.workflow_commands`` for
workflow commands, ``loopforge.github.render`` for markdown and HTML.
"""

from __future__ import annotations

import json
import re

__all__ = ["FORMULA_PREFIXES", "clean_lines", "clean_text", "csv_cell", "printable"]

#: what makes a spreadsheet read a cell as a formula (OWASP, "CSV injection"), also behind leading whitespace
#: (OWASP's tab and carriage return: ``csv_cell`` quotes a leading tab or line feed and turns a CR into a space)
FORMULA_PREFIXES = ("=", "+", "-", "@")

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
# in a CSV cell: tab and line feed stay (the CSV writer quotes them), other controls become a space
_CELL_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
_CELL_INVISIBLE = re.compile(r"[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


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


def csv_cell(value: object) -> str:
    """A CSV cell a spreadsheet shows as text: ``None`` is empty, dicts and lists are JSON, booleans
    ``true``/``false``; control characters other than tab and line feed become a space and bidirectional
    overrides are dropped; a cell whose first character after any leading whitespace is a formula character
    (``=``, ``+``, ``-``, ``@``), or that starts with whitespace a spreadsheet would skip, gets a leading ``'``."""
    if value is None:
        return ""
    if isinstance(value, dict | list):
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    elif isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = printable(value)
    text = _CELL_INVISIBLE.sub("", _CELL_CONTROLS.sub(" ", text))
    if text.lstrip(" \t\n").startswith(FORMULA_PREFIXES) or text.startswith(("\t", "\n")):
        return "'" + text
    return text
