"""The `pnldb` command. Data goes to stdout, messages to stderr; errors are one line and exit 1."""
from __future__ import annotations

import click

from pnldb.api import DEFAULT_SCHEMA
from pnldb.cli.bench import bench
from pnldb.cli.close import close
from pnldb.cli.cluster import cluster
from pnldb.cli.common import PnlGroup, Settings
from pnldb.cli.demo import demo
from pnldb.cli.explain import explain
from pnldb.cli.load import load
from pnldb.cli.loads import loads
from pnldb.cli.report import report
from pnldb.cli.roles import roles
from pnldb.cli.rules import rules
from pnldb.cli.runs import runs
from pnldb.cli.schema_cmds import migrate, render
from pnldb.cli.snapshot import snapshot
from pnldb.cli.use_case import use_case


@click.group(cls=PnlGroup)
@click.option("--dsn", envvar="PNLDB_DSN",
              help="PostgreSQL DSN or URL; default PNLDB_DSN, DATABASE_URL, then PGHOST...")
@click.option("--schema", default=DEFAULT_SCHEMA, show_default=True, help="Schema pnldb lives in.")
@click.version_option(package_name="pnldb")
@click.pass_context
def main(ctx: click.Context, dsn: str | None, schema: str) -> None:
    """pnldb: P&L snapshots inside PostgreSQL."""
    settings = Settings(dsn, schema)
    ctx.obj = settings
    ctx.call_on_close(settings.close)


main.add_command(roles)
main.add_command(migrate)
main.add_command(render)
main.add_command(snapshot)
main.add_command(runs)
main.add_command(use_case)
main.add_command(load)
main.add_command(loads)
main.add_command(report)
main.add_command(demo)
main.add_command(bench)
main.add_command(rules)
main.add_command(explain)
main.add_command(close)
main.add_command(cluster)
