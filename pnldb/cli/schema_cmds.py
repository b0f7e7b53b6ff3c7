"""`pnldb migrate` and `pnldb render`: the schema and the SQL layer."""
import click

from pnldb import api
from pnldb.cli.common import pass_settings


@click.command()
@pass_settings
def migrate(settings) -> None:
    """Apply pending migrations and (re)install the SQL layer, in one transaction: all or nothing.

    Views and functions that others built on pnldb's are kept; a change that cannot keep them stops with
    an error naming them. Routines, views and triggers the layer no longer defines are dropped."""
    notes: list[str] = []
    applied = api.migrate(settings.conn, settings.schema, notes=notes)
    for note in notes:
        click.echo(note, err=True)
    if applied:
        click.echo(f"applied {len(applied)} migration(s): {', '.join(applied)}", err=True)
    else:
        click.echo("no pending migrations", err=True)
    click.echo(f"installed {len(api.sql_files())} SQL object file(s) into schema {settings.schema}", err=True)


@click.command()
@pass_settings
def render(settings) -> None:
    """Print the rendered SQL layer, for a DBA to read or apply by hand."""
    click.echo(api.render_sql(settings.schema), nl=False)
