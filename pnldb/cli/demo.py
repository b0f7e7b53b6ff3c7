import click

from pnldb import schema as schema_mod
from pnldb.cli import main, pass_settings
from pnldb.embedded import EmbeddedPostgres


@main.command()
@pass_settings
def demo(settings) -> None:
    """The whole flow on an embedded, throw-away PostgreSQL (or --dsn)."""
    if settings.dsn:
        _run_demo(settings)
        return
    click.echo("starting an embedded PostgreSQL ...", err=True)
    with EmbeddedPostgres() as pg:
        settings.dsn = pg.url
        try:
            _run_demo(settings)
        finally:
            settings.close()


def _run_demo(settings) -> None:
    conn = settings.conn
    schema_mod.migrate(conn, settings.schema)
    rows = conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
        "AND table_name NOT LIKE '%%yoyo%%' ORDER BY 1", (settings.schema,)).fetchall()
    click.echo(f"schema {settings.schema}: " + ", ".join(r[0] for r in rows))
