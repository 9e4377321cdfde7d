"""Build the report file: collect, draw, write (atomically: a failed build leaves no half-written file)."""

from __future__ import annotations

import os
import tempfile
from datetime import datetime
from pathlib import Path

from loopforge.report.data import ReportData, Wrap, collect
from loopforge.repository.base import Repository
from loopforge.trail import utcnow


def write_atomically(path: str | os.PathLike[str], text: str) -> None:
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent if str(target.parent)
                               else ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as an ordinary new file (mkstemp makes it private)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def build_report(repository: Repository, html_path: str | os.PathLike[str], *, since: datetime | None = None,
                 repo: str | None = None, details: int = 200, markdown_path: str | os.PathLike[str] | None = None,
                 artifact_name: str | None = None, now: datetime | None = None,
                 wrap: Wrap | None = None) -> ReportData:
    """Write the HTML report of ``repository`` to ``html_path`` (and a markdown digest to ``markdown_path``)."""
    from loopforge.report import charts  # the chart library: only now
    from loopforge.report.page import build_html, build_markdown

    data = collect(repository, since=since, repo=repo, details=details, now=now or utcnow(), wrap=wrap)
    html = build_html(data, charts.render_all(data))
    write_atomically(html_path, html)
    if markdown_path is not None:
        write_atomically(markdown_path, build_markdown(data, artifact=artifact_name))
    return data
