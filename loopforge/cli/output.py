"""How the command line prints: aligned tables, JSON lines, CSV whose cells a spreadsheet will not execute.

Untrusted text (titles, branches, logins, reasons) goes through ``clean`` before it reaches a terminal:
one line, no control characters or ANSI escapes, bounded length (the one sanitiser, ``clean_text``).
CSV cells go through ``loopforge.text.csv_cell``: a cell that begins with ``=``, ``+``, ``-``, ``@`` (also behind
leading whitespace) gets a leading ``'`` (OWASP's advice), so Excel, LibreOffice and Google Sheets show it as text
instead of evaluating it, and control characters other than tab and line feed become spaces.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, TextIO

from loopforge.text import clean_text, csv_cell


def clean(value: object, limit: int = 60) -> str:
    """Untrusted text made safe for a terminal or a CI log: one line, printable, at most ``limit`` characters."""
    return clean_text(value, limit)


def error_line(message: object) -> str:
    """The one error format of every command: ``loopforge: error: <one clean line>``."""
    return f"loopforge: error: {clean_text(message, 2000)}"


def fail(message: object) -> int:
    """A check that ran and failed: the error line on stderr; returns exit code 1 for the command to return."""
    sys.stderr.write(error_line(message) + "\n")
    return 1


def timestamp(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S")


def table(rows: Sequence[Sequence[str]], headers: Sequence[str]) -> str:
    """Left-aligned columns two spaces apart, a dashed rule under the headers; cells must be clean already."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip(),
           "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(out)


def json_line(value: Any) -> str:
    """One JSON document on one line (non-ASCII kept; JSON escapes every control character)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=False)


class CsvWriter:
    """``csv.DictWriter`` over ``csv_cell``: ``writeheader()`` then ``writerow(mapping)`` per row."""

    def __init__(self, stream: TextIO, fieldnames: Sequence[str]) -> None:
        self.fieldnames = list(fieldnames)
        self._writer = csv.writer(stream, lineterminator="\r\n")

    def writeheader(self) -> None:
        self._writer.writerow(self.fieldnames)

    def writerow(self, row: Mapping[str, object]) -> None:
        self._writer.writerow([csv_cell(row.get(name)) for name in self.fieldnames])

    def writerows(self, rows: Iterable[Mapping[str, object]]) -> None:
        for row in rows:
            self.writerow(row)


__all__ = ["CsvWriter", "clean", "csv_cell", "error_line", "fail", "json_line", "table", "timestamp"]
