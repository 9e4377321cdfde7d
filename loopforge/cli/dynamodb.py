"""``loopforge dynamodb create-table``: set up the DynamoDB store (needs the extra ``loopforge[dynamodb]``).

boto3 is imported only when the command runs. The first request makes one attempt with a short connect
time-out, so a missing region, missing credentials or an unreachable endpoint is one line (exit 2) in about a
second, not a traceback after botocore's retries.
"""

from __future__ import annotations

import argparse
import os

from loopforge.cli.progress import echo
from loopforge.repository.factory import check_dynamodb_table, fail_fast_client


def create_table_command(args: argparse.Namespace) -> int:
    from loopforge.repository.dynamodb import create_table

    client = fail_fast_client(args.region, args.endpoint_url)
    existed = check_dynamodb_table(client, args.table, missing_ok=True)
    created = False if existed else create_table(args.table, args.region, endpoint_url=args.endpoint_url)
    echo(f"{'created' if created else 'exists'}: DynamoDB table {args.table} is ACTIVE")
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("dynamodb", help="the DynamoDB store (pip install 'loopforge[dynamodb]')",
                       description="The DynamoDB store (pip install 'loopforge[dynamodb]').")
    commands = p.add_subparsers(dest="dynamodb_command", metavar="COMMAND", required=True)
    c = commands.add_parser("create-table", help="create the table with its indexes unless it exists",
                            description="Create the table with its indexes (on-demand billing) unless it exists, "
                                        "and wait until it is ACTIVE.")
    # the table the other commands' --dynamodb-table reads (LOOPFORGE_DYNAMODB_TABLE), else the library's variable
    table = os.environ.get("LOOPFORGE_DYNAMODB_TABLE") or os.environ.get("LOOPFORGE_TABLE") or "loopforge"
    c.add_argument("--table", default=table,
                   help="table name (env LOOPFORGE_DYNAMODB_TABLE or LOOPFORGE_TABLE; default loopforge)")
    c.add_argument("--region", default=None, help="AWS region (default: AWS_REGION / AWS_DEFAULT_REGION / profile)")
    c.add_argument("--endpoint-url", default=None,
                   help="DynamoDB endpoint, e.g. a local server (default: AWS_ENDPOINT_URL_DYNAMODB or AWS)")
    c.set_defaults(func=create_table_command)


__all__ = ["add_commands"]
