"""The store options every command shares, and opening the store they name (through ``open_store``).

``--db FILE`` (``LOOPFORGE_DB``, default ``loopforge.db``), ``--dynamodb-table NAME``
(``LOOPFORGE_DYNAMODB_TABLE``; region, credentials and endpoint from the usual AWS settings) and
``--branch OWNER/REPO[@BRANCH]`` (``LOOPFORGE_BRANCH``; token from ``GITHUB_TOKEN`` or ``GH_TOKEN``, API from
``GITHUB_API_URL``). They may stand before the command (``loopforge --db x list``) or after it
(``loopforge list --db x``). A command that writes (``replay``, ``import``, ``demo``) opens with
``create=True``; every other command reads, and a store that does not exist is an error, never a new empty one.
"""

from __future__ import annotations

import argparse
import os
import re

from loopforge.errors import InputError
from loopforge.repository.base import Repository
from loopforge.repository.factory import open_store
from loopforge.text import clean_text

_FULL_NAME = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
_REPO = re.compile(r"[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}")


def repo_option(value: str, option: str = "--repo") -> str:
    """``value`` when it is an OWNER/REPO name (the ``--repo`` filter of ``report`` and ``evidence``), else
    ``InputError`` naming ``option``."""
    if not _REPO.fullmatch(value):
        raise InputError(f"{option}: expected OWNER/REPO, got {clean_text(value, 80)!r}")
    return value


def add_store_options(parser: argparse.ArgumentParser, *, top_level: bool) -> None:
    """Add ``--db``, ``--dynamodb-table`` and ``--branch``. At the top level they carry the defaults; on a
    subcommand they are optional overrides (``argparse.SUPPRESS``), so either position works."""
    group = parser.add_argument_group("store (pick one)")

    def default(env: str, fallback: str | None = None) -> str | None:
        return (os.environ.get(env) or fallback) if top_level else argparse.SUPPRESS

    group.add_argument("--db", default=default("LOOPFORGE_DB", "loopforge.db"), metavar="FILE",
                       help="SQLite store file (env LOOPFORGE_DB; default loopforge.db)")
    group.add_argument("--dynamodb-table", default=default("LOOPFORGE_DYNAMODB_TABLE"), metavar="NAME",
                       help="read this DynamoDB table instead (env LOOPFORGE_DYNAMODB_TABLE; region and "
                            "credentials from AWS_REGION, AWS_PROFILE, ...; endpoint from AWS_ENDPOINT_URL_DYNAMODB)")
    group.add_argument("--branch", dest="branch_store", default=default("LOOPFORGE_BRANCH"),
                       metavar="OWNER/REPO[@BRANCH]",
                       help="the Action's branch store on GitHub (default branch loopforge-state; token from "
                            "GITHUB_TOKEN or GH_TOKEN; env LOOPFORGE_BRANCH)")


def store_parent() -> argparse.ArgumentParser:
    """A parent parser holding the store options, for subcommands that open a store."""
    parent = argparse.ArgumentParser(add_help=False)
    add_store_options(parent, top_level=False)
    return parent


def store_from_args(args: argparse.Namespace, *, create: bool = False) -> Repository:
    """The store the options name: ``--branch``, else ``--dynamodb-table``, else the SQLite ``--db``."""
    spec = getattr(args, "branch_store", None)
    if spec:
        full_name, _, branch = str(spec).partition("@")
        if not _FULL_NAME.fullmatch(full_name):
            raise InputError(f"--branch: expected OWNER/REPO[@BRANCH], got {spec!r}")
        from loopforge.github.client import make_github

        token = os.environ.get("GITHUB_TOKEN") or os.environ.get("GH_TOKEN")
        gh = make_github(token, os.environ.get("GITHUB_API_URL") or "https://api.github.com")
        return open_store("branch", github_repo=(gh, full_name), branch=branch or None, create=create)
    table = getattr(args, "dynamodb_table", None)
    if table:
        return open_store("dynamodb", table=str(table), fail_fast=True, create=create)
    return open_store("sqlite", path=str(getattr(args, "db", None) or "loopforge.db"), create=create)


__all__ = ["add_store_options", "repo_option", "store_from_args", "store_parent"]
