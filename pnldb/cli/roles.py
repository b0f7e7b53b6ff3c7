"""`pnldb roles create`: the DBA's step that sets a database up for pnldb."""
import click

from pnldb import api
from pnldb.cli.common import pass_settings


@click.group()
def roles() -> None:
    """The installation's roles: a login-less owner and the four group roles."""


@roles.command("create")
@click.option("--roles", "prefix", metavar="PREFIX",
              help="Name the roles PREFIX_owner, PREFIX_reader, ... [default: the schema's name, or the prefix the "
                   "schema already has]; a database of its own prefix shares no reader with another.")
@click.option("--migrator", "migrators", multiple=True, metavar="LOGIN",
              help="A login that will run pnldb migrate (it may act as the owner); repeatable.")
@pass_settings
def create(settings, prefix: str | None, migrators: tuple[str, ...]) -> None:
    """Set this database up for pnldb, once, as a DBA: all or nothing, and safe to run again.

    Creates the roles (kept when they exist: they belong to the cluster) PREFIX_owner, which owns every
    pnldb object and cannot log in, and the groups PREFIX_reader, PREFIX_operator, PREFIX_admin and
    PREFIX_approver; creates the schema owned by PREFIX_owner (an existing pnldb schema is handed to it,
    data kept); lets each --migrator act as the owner; and installs the DDL guard.

    Needs a superuser. (CREATEROLE with CREATE on the database makes the roles and the schema, but not
    the DDL guard, whose event triggers only a superuser can create.)"""
    for note in api.create_roles(settings.conn, settings.schema, prefix, migrators):
        click.echo(note, err=True)
    click.echo(f"next: pnldb --schema {settings.schema} migrate, as a member of "
               f"{api.installation_roles(settings.conn, settings.schema).owner}", err=True)
