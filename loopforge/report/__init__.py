"""The HTML report (``loopforge report``) and the demo (``loopforge demo``).

``loopforge report --html FILE [--since D] [--repo o/r]`` reads records through the ``Repository`` protocol
(``query`` + ``entries``; ``data.py``), draws the charts with pygal as static SVG (``charts.py``) and writes
one self-contained HTML page (``page.py``; each record's path as static SVG, ``pathsvg.py``). ``loopforge demo``
records a bundled multi-PR history through the Action's pipeline (``demo.py``, payloads in
``loopforge/demo_data/``) and writes the report and one PR's check-run markdown.

Nothing here is imported by the Action; the chart library is imported only while a report is built.
``cli.add_commands`` adds both commands to the ``loopforge`` command line; ``python -m loopforge.report`` runs
them on their own.
"""

from __future__ import annotations

__all__ = ["add_commands"]


def add_commands(sub: object) -> None:
    """Add ``report`` and ``demo`` to the ``loopforge`` command line (see ``loopforge.report.cli``)."""
    from loopforge.report.cli import add_commands as add

    add(sub)  # type: ignore[arg-type]
