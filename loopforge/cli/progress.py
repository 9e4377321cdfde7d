"""Progress bars for long work on a terminal (tqdm), silent when the output is not a terminal.

Use it from any command (replay, verify, export, report)::

    from loopforge.cli.progress import echo, progress

    for record_id in progress(ids, total=len(ids), label="verify", unit="record"):
        ...
        echo(f"ok {record_id}")          # a line of output that does not break the bar

``progress(iterable, total=None, label="", *, unit="it", stream=None) -> Iterator[T]`` yields the items of
``iterable`` unchanged. When ``stream`` (default ``sys.stderr``) is a TTY it draws a tqdm bar on it: the label,
``n/total`` (or just ``n`` when ``total`` is None), the percentage, elapsed/remaining time and the rate in
``unit``/s; the bar is removed when the loop ends. When the stream is not a TTY (CI logs, pipes, files, tests),
nothing at all is written. ``LOOPFORGE_PROGRESS=0`` turns bars off everywhere, ``LOOPFORGE_PROGRESS=1`` forces
them on (for a terminal that does not say it is one).

``echo(line, *, stream=None)`` prints one line to ``stream`` (default ``sys.stdout``) above any active bar.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TextIO, TypeVar

from tqdm import tqdm

from loopforge.cli.output import clean

T = TypeVar("T")


def enabled(stream: TextIO | None = None) -> bool:
    """Whether a bar would be drawn on ``stream`` (default ``sys.stderr``)."""
    setting = os.environ.get("LOOPFORGE_PROGRESS", "").strip()
    if setting in ("0", "false", "no", "off"):
        return False
    if setting in ("1", "true", "yes", "on"):
        return True
    target = stream if stream is not None else sys.stderr
    isatty = getattr(target, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except (OSError, ValueError):  # a closed or detached stream
        return False


def progress(iterable: Iterable[T], total: int | None = None, label: str = "", *, unit: str = "it",
             stream: TextIO | None = None) -> Iterator[T]:
    """Yield ``iterable``'s items, drawing a bar with counts and rate on ``stream`` if it is a TTY."""
    target = stream if stream is not None else sys.stderr
    if not enabled(target):
        yield from iterable
        return
    ncols, nrows = _size(target)
    bar = tqdm(iterable, total=total, desc=clean(label, 40) or None, unit=unit, file=target, leave=False,
               mininterval=0.1, ncols=ncols, nrows=nrows)
    try:
        yield from bar
    finally:
        bar.close()


def _size(stream: TextIO) -> tuple[int | None, int | None]:
    """``ncols``/``nrows`` for tqdm when the terminal reports a zero size (a fresh pseudo-terminal does, and
    tqdm then draws nothing); None otherwise, so tqdm reads the real size itself."""
    try:
        columns, lines = os.get_terminal_size(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return None, None
    return (None, None) if columns > 0 and lines > 0 else (columns or 80, lines or 24)


def echo(line: str, *, stream: TextIO | None = None) -> None:
    """Print ``line`` (and a newline) to ``stream`` (default ``sys.stdout``) without breaking an active bar."""
    target = stream if stream is not None else sys.stdout
    if tqdm._instances:  # type: ignore[attr-defined]  # a bar is being drawn: clear it, write, redraw
        tqdm.write(line, file=target)
    else:
        target.write(line + "\n")


__all__ = ["echo", "enabled", "progress"]
