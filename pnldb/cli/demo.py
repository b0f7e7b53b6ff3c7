"""`pnldb demo`: the whole flow on the bundled sample, on a throw-away PostgreSQL (or --dsn)."""
from __future__ import annotations

import datetime as dt
from importlib import resources

import click

from pnldb import api
from pnldb.cli.report import report
from pnldb.cli.runs import diff_runs, list_runs

STRUCTURE = "GLOBAL_MARKETS"
USE_CASE = "Global Markets (demo)"
COB = dt.date(2025, 12, 24)


@click.command()
@click.option("--depth", type=click.IntRange(min=0), default=2, show_default=True,
              help="Depth of the report's tree.")
@click.pass_context
def demo(ctx: click.Context, depth: int) -> None:
    """The whole flow on the bundled sample: migrate, load, snapshot, change a rule, snapshot again,
    list, report, diff. On an embedded, throw-away PostgreSQL unless --dsn is given."""
    settings = ctx.obj
    if settings.dsn:
        _run_demo(ctx, settings, depth)
        return
    step("starting an embedded PostgreSQL")
    with api.EmbeddedPostgres() as pg:
        settings.dsn = pg.url
        try:
            _run_demo(ctx, settings, depth)
        finally:
            settings.close()
    step("stopped and removed the embedded PostgreSQL")


def step(message: str) -> None:
    click.echo(f"== {message}", err=True)


def _run_demo(ctx: click.Context, settings, depth: int) -> None:
    data = resources.files("pnldb") / "data"
    conn = settings.conn
    step(f"migrating schema {settings.schema}")
    api.migrate(conn, settings.schema)

    with resources.as_file(data / "hierarchy.csv") as path:
        nodes = api.load_hierarchy(conn, path, STRUCTURE, "Global Markets")
    step(f"loaded hierarchy {STRUCTURE}: {nodes['nodes_loaded']} nodes")
    existing = api.find_use_case(conn, USE_CASE)
    if existing is not None:
        api.delete_use_case(conn, existing[0])
    use_case_id = api.create_use_case(conn, USE_CASE, STRUCTURE)["use_case_id"]
    with resources.as_file(data / "facts.csv") as path:
        loaded = api.load_facts(conn, path, USE_CASE)
    step(f"loaded {loaded['rows_loaded']:,} facts into use case {USE_CASE!r}")
    with resources.as_file(data / "rules.json") as path:
        rules = api.load_rules(conn, path, USE_CASE)
    step(f"loaded {rules['rules_loaded']} rules")

    first = api.create_snapshot(conn, use_case_id, COB, run_name="Initial Run", triggered_by="pnldb demo")
    step(f"snapshot 'Initial Run': {first['status']} in {first['duration_ms']} ms")
    with resources.as_file(data / "rules_v2.json") as path:
        api.load_rules(conn, path, USE_CASE)
    step("changed one rule: EMEA_RATES now also keeps the MACRO strategy")
    second = api.create_snapshot(conn, use_case_id, COB, run_name="Adjusted v2", triggered_by="pnldb demo")
    step(f"snapshot 'Adjusted v2': {second['status']} in {second['duration_ms']} ms")

    click.echo(f"\nRuns of {COB}\n")
    ctx.invoke(list_runs, pnl_date=COB, use_case=USE_CASE, limit=100, as_json=False)
    click.echo(f"\nReport of 'Adjusted v2' (to depth {depth})\n")
    ctx.invoke(report, run_id=str(second["id"]), depth=depth, html_file=None, as_json=False)
    click.echo("\nWhat changed from 'Initial Run' to 'Adjusted v2'\n")
    ctx.invoke(diff_runs, run_a=first["id"], run_b=second["id"], tolerance=0, as_json=False)
