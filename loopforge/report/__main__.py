"""``python -m loopforge.report report|demo ...``: the ``loopforge`` command line, which holds the two commands."""

from __future__ import annotations

import sys

from loopforge.report.cli import main

if __name__ == "__main__":
    sys.exit(main())
