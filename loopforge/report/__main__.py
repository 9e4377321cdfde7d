"""``python -m loopforge.report report|demo ...``: the two commands without the rest of the command line."""

from __future__ import annotations

import sys

from loopforge.report.cli import main

if __name__ == "__main__":
    sys.exit(main())
