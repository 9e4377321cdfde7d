"""Plain helpers of the command-line tests."""

from __future__ import annotations

import pytest

from loopforge.cli import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``loopforge <args>`` in this process: (exit code, stdout, stderr)."""
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err
