"""`pnldb use-case ...`: create (and, from its own issue, delete) use cases."""
import click

from pnldb import loaders
from pnldb.cli import emit_json, json_option, main, pass_settings


@main.group("use-case")
def use_case() -> None:
    """Create and delete use cases (reporting configurations)."""


@use_case.command("create")
@click.argument("name")
@click.option("--structure", "structure_id", required=True, help="Hierarchy structure the use case reports on.")
@click.option("--description", help="Free text.")
@json_option
@pass_settings
def create(settings, name: str, structure_id: str, description: str | None, as_json: bool) -> None:
    """Create use case NAME on structure S; prints its id, name and structure."""
    created = loaders.create_use_case(settings.conn, name, structure_id, description)
    if as_json:
        emit_json(created)
        return
    click.echo(f"use_case_id  {created['use_case_id']}")
    click.echo(f"name         {created['name']}")
    click.echo(f"structure_id {created['structure_id']}")
    if created["description"]:
        click.echo(f"description  {created['description']}")
    click.echo(f"created use case {created['name']!r}", err=True)
