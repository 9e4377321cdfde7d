"""Every ```python block of README.md that starts with ``from loopforge`` runs, in order, and what it prints is
checked; every other runnable example of the README is run by a named test (``test_every_example_is_run``)."""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Iterator

import pytest

from tests.readme import CLI_BLOCKS, README, TWO_COMMANDS

BLOCKS = [b for b in re.findall(r"```python\n(.*?)```", README, re.S) if b.startswith("from loopforge")]


def test_readme_has_examples() -> None:
    assert len(BLOCKS) >= 4


@pytest.fixture
def readme_env(block: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The DynamoDB example runs against the local DynamoDB-compatible server (tests/dynamo_server.py)."""
    if "DynamoDBRepository" not in block:
        yield
        return
    from loopforge.repository.dynamodb import create_table
    from tests.dynamo_server import DUMMY_AWS_ENV, local_server

    with local_server() as url:
        for name, value in DUMMY_AWS_ENV.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", url)
        create_table("loopforge-records")
        yield


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_example_runs(block: str, readme_env: None) -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block, "README.md", "exec"), {"__name__": "readme"})
    # any "# <expected output>" comment right after a print(...) line must match what was printed
    printed = out.getvalue()
    for expected in re.findall(r"print\([^\n]*\)\n# ([^\n]+)", block):
        assert expected in printed


def test_quick_start_prints_whole_history() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(BLOCKS[0], "README.md", "exec"), {"__name__": "readme"})
    lines = out.getvalue().splitlines()
    assert len(lines) == 7
    assert "ci_pending → ci_passed | ci.completed" in lines[4]
    assert lines[0].endswith("None → issue_created | record.created")


def test_every_example_is_run() -> None:
    """No runnable block sits in the README untested: the ```python blocks run here, in order; the first ```bash
    block (the two commands) in tests/packaging/test_readme_start.py; the command-line one in
    tests/cli/test_cli_readme.py. Other ```python blocks show signatures (a protocol, a test class), not programs."""
    python = re.findall(r"```python\n(.*?)```", README, re.S)
    assert [b for b in python if b.startswith("from loopforge")] == BLOCKS
    assert all(b.startswith(("from loopforge", "class ", "import pytest")) for b in python)
    assert re.findall(r"```(?:bash|sh|shell|console)\n(.*?)```", README, re.S) == [TWO_COMMANDS, *CLI_BLOCKS]
