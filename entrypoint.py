#!/usr/bin/env python3
"""Container entry point of the LoopForge Action: everything happens in ``loopforge.action``."""

import sys

from loopforge.action import main

if __name__ == "__main__":
    sys.exit(main())
