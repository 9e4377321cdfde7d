"""``loopforge dynamodb ...``: set up the DynamoDB store (needs the extra ``loopforge[dynamodb]``)."""

from __future__ import annotations

import click

from loopforge.errors import StoreError


@click.group("dynamodb")
def dynamodb() -> None:
    """The DynamoDB store (pip install 'loopforge[dynamodb]')."""


@dynamodb.command("create-table")
@click.option("--table", "table_name", envvar="LOOPFORGE_TABLE", default="loopforge", show_default=True,
              help="Table name (or $LOOPFORGE_TABLE).")
@click.option("--region", default=None, help="AWS region (default: AWS_REGION / AWS_DEFAULT_REGION / profile).")
@click.option("--endpoint-url", default=None,
              help="DynamoDB endpoint, e.g. a local server (default: AWS_ENDPOINT_URL_DYNAMODB or AWS).")
def create_table_command(table_name: str, region: str | None, endpoint_url: str | None) -> None:
    """Create the table with its indexes (on-demand billing) unless it exists, and wait until it is ACTIVE."""
    try:
        from loopforge.repository.dynamodb import create_table
    except ImportError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        created = create_table(table_name, region, endpoint_url=endpoint_url)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{'created' if created else 'exists'}: DynamoDB table {table_name} is ACTIVE")


__all__ = ["dynamodb"]
