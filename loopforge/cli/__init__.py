"""The ``loopforge`` command: read, verify and export the audit trail; draw the lifecycle; replay events;
check policy files; set up DynamoDB.

One error format for every command: a single line on stderr, ``loopforge: error: <what is wrong>``, never a
traceback. One meaning per exit code:

* ``0`` — done;
* ``1`` — a check ran and failed (``verify`` found a tampered entry, ``replay`` recorded a violation,
  ``policy validate`` found the file invalid);
* ``2`` — bad input: an unknown command or option, a malformed file (JSON named with line and column), a ref of
  the wrong shape, no such record, or a store that cannot be used as given (a missing ``--db`` file for a
  reading command, a directory, a file that is not a LoopForge store, DynamoDB without region or credentials,
  an unreachable endpoint).

Modules: ``records`` (history, list, verify, export, import, graph), ``policy``, ``dynamodb``, ``replay``; ``options``
(the store options and ``store_from_args``), ``output`` (tables, JSON lines, injection-safe CSV, ``fail``),
``progress`` (terminal progress bars). A command module exposes
``add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None``; each subparser sets
``func=<callable(argparse.Namespace) -> int>`` returning the exit code, raises ``loopforge.errors.InputError``
(or any ``LoopForgeError``) for bad input, and returns ``output.fail(message)`` for a failed check. List the
module in ``COMMAND_MODULES`` to add its commands.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from importlib import metadata
from typing import NoReturn

from loopforge.cli.options import add_store_options
from loopforge.cli.output import error_line
from loopforge.errors import InputError, LoopForgeError

#: the modules whose ``add_commands`` build the command line, in the order ``--help`` lists them.
COMMAND_MODULES = ("loopforge.cli.records", "loopforge.cli.replay", "loopforge.cli.policy",
                   "loopforge.cli.dynamodb")

EXIT_OK, EXIT_CHECK_FAILED, EXIT_BAD_INPUT = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse that raises ``InputError`` instead of printing usage and exiting (one line, exit 2)."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("loopforge").strip()
        raise InputError(f"{command}: {message}" if command else message)


def _version() -> str:
    try:
        return metadata.version("loopforge")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="loopforge",
                     description="LoopForge: the lifecycle and audit trail of every issue and pull request.",
                     epilog="Exit codes: 0 ok, 1 a check failed, 2 bad input. Errors are one line on stderr.")
    parser.add_argument("--version", action="version", version=f"loopforge {_version()}")
    add_store_options(parser, top_level=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=_Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (the console script ``loopforge`` exits with it)."""
    try:
        args = build_parser().parse_args(argv)
        return int(args.func(args))
    except SystemExit as exc:  # --help / --version
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    except BrokenPipeError:  # e.g. `loopforge export | head`: the reader has all it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except KeyboardInterrupt:
        sys.stderr.write(error_line("interrupted") + "\n")
        return 130
    except (LoopForgeError, OSError) as exc:
        sys.stderr.write(error_line(_describe(exc)) + "\n")
        return EXIT_BAD_INPUT


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or exc}"
    return str(exc)


__all__ = ["COMMAND_MODULES", "EXIT_BAD_INPUT", "EXIT_CHECK_FAILED", "EXIT_OK", "build_parser", "main"]
