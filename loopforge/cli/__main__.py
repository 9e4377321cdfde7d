"""``python -m loopforge.cli``: the ``loopforge`` command."""

import sys

from loopforge.cli import main

sys.exit(main())
