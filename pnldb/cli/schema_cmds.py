"""`pnldb migrate` and `pnldb render`: the schema and the SQL layer."""
import click

from pnldb import api
from pnldb.cli.common import pass_settings
from pnldb.db import InstallationRoles
from pnldb.schema import DEFAULT_LOCK_TIMEOUT, rollback


@click.command()
@click.option("--lock-timeout", envvar="PNLDB_MIGRATE_LOCK_TIMEOUT", show_envvar=True, default=DEFAULT_LOCK_TIMEOUT,
              show_default=True, metavar="DURATION", help="Longest wait for one lock (5s, 500ms, 1min; 0: no limit).")
@click.option("--rollback-to", metavar="MIGRATION",
              help="Instead: roll back every migration after MIGRATION (and drop the SQL layer).")
@click.option("--force", is_flag=True,
              help="With --rollback-to: roll back even when that destroys runs, history or loaded figures.")
@pass_settings
def migrate(settings, lock_timeout: str, rollback_to: str | None, force: bool) -> None:
    """Apply pending migrations and (re)install the SQL layer, in one transaction: all or nothing.

    Views and functions that others built on pnldb's are kept; a change that cannot keep them stops with
    an error naming them. Routines, views and triggers the layer no longer defines are dropped.

    While migrate waits for a lock (an open transaction reads a view it replaces), every reader that
    comes after waits behind it: so it waits at most --lock-timeout, then stops, naming who holds it.

    --rollback-to MIGRATION rolls the schema back instead. It refuses, printing what would be lost (runs,
    their result rows, recorded rules and inputs, rule and load history, facts whose figures re-applying
    the migrations would rewrite), and changes nothing, unless --force."""
    if force and rollback_to is None:
        raise click.UsageError("--force goes with --rollback-to")
    if rollback_to is not None:
        rolled_back = rollback(settings.conn, settings.schema, to=rollback_to, lock_timeout=lock_timeout, force=force)
        if rolled_back:
            click.echo(f"rolled back {len(rolled_back)} migration(s): {', '.join(rolled_back)}; the SQL layer is "
                       "dropped until pnldb migrate", err=True)
        else:
            click.echo(f"nothing to roll back: no migration after {rollback_to} is applied", err=True)
        return
    notes: list[str] = []
    applied = api.migrate(settings.conn, settings.schema, notes=notes, lock_timeout=lock_timeout)
    for note in notes:
        click.echo(note, err=True)
    if applied:
        click.echo(f"applied {len(applied)} migration(s): {', '.join(applied)}", err=True)
    else:
        click.echo("no pending migrations", err=True)
    click.echo(f"installed {len(api.sql_files())} SQL object file(s) into schema {settings.schema}", err=True)


@click.command()
@click.option("--roles", "prefix", metavar="PREFIX",
              help="The installation's role prefix (pnldb roles create --roles) [default: the schema's name].")
@pass_settings
def render(settings, prefix: str | None) -> None:
    """Print the rendered SQL layer, for a DBA to read or apply by hand (as the owner role)."""
    click.echo(api.render_sql(settings.schema, InstallationRoles(prefix) if prefix else None), nl=False)
