import click

from pnldb import schema as schema_mod
from pnldb.cli import main, pass_settings


@main.command()
@pass_settings
def migrate(settings) -> None:
    """Apply pending migrations and (re)install the SQL layer, in one transaction: all or nothing.

    Views and functions that others built on pnldb's are kept; a change that cannot keep them stops with
    an error naming them. Routines, views and triggers the layer no longer defines are dropped."""
    notes: list[str] = []
    applied = schema_mod.migrate(settings.conn, settings.schema, notes=notes)
    for note in notes:
        click.echo(note, err=True)
    if applied:
        click.echo(f"applied {len(applied)} migration(s): {', '.join(applied)}", err=True)
    else:
        click.echo("no pending migrations", err=True)
    click.echo(f"installed {len(schema_mod.sql_files())} SQL object file(s) into schema {settings.schema}", err=True)


@main.command()
@pass_settings
def render(settings) -> None:
    """Print the rendered SQL layer, for a DBA to read or apply by hand."""
    click.echo(schema_mod.render_sql(settings.schema), nl=False)
