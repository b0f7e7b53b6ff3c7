"""`pnldb demo`: the whole flow on the bundled sample, on a throw-away PostgreSQL (or --dsn).

On a database the demo did not create (--dsn or PNLDB_DSN) it refuses to run when its structure or use
case already exists, and says what it will create before creating it."""
from __future__ import annotations

import csv
import datetime as dt
import json
from importlib import resources

import click

from pnldb import api
from pnldb import format as fmt
from pnldb.api.use_cases import find_structure, schema_has_tables
from pnldb.cli.close import status as close_status
from pnldb.cli.explain import explain
from pnldb.cli.report import report
from pnldb.cli.runs import diff_runs, list_runs
from pnldb.db import InstallationRoles
from pnldb.errors import PnlError

STRUCTURE = "GLOBAL_MARKETS"
USE_CASE = "Global Markets (demo)"
COB = dt.date(2025, 12, 24)
README_SECTION = 'README.md, "Using it with your own data"'


@click.command()
@click.option("--depth", type=click.IntRange(min=0), default=2, show_default=True,
              help="Depth of the report's tree.")
@click.pass_context
def demo(ctx: click.Context, depth: int) -> None:
    """The whole flow on the bundled sample: migrate, load, snapshot, change a rule, snapshot again,
    list, report, diff. On an embedded, throw-away PostgreSQL unless --dsn (or PNLDB_DSN) is given; on
    such a database it creates structure GLOBAL_MARKETS and use case 'Global Markets (demo)', and
    refuses to run if either exists."""
    settings = ctx.obj
    if settings.dsn:
        _check_nothing_exists(settings.conn, settings.schema)
        _announce(settings.conn, settings.schema)
        first, second = _run_demo(ctx, settings, depth)
        pnldb = _pnldb(settings.schema)
        click.echo(f"next (on the same database): {pnldb} report {second} --html run.html, "
                   f"{pnldb} runs diff {first} {second} --tolerance 1000", err=True)
        click.echo(f"then your own data: {README_SECTION}; remove the demo's use case with "
                   f"{_reopen(settings.schema)}, then {pnldb} use-case delete \"{USE_CASE}\" --yes", err=True)
        return
    step("starting an embedded PostgreSQL")
    with api.EmbeddedPostgres() as pg:
        settings.dsn = pg.url
        try:
            _run_demo(ctx, settings, depth)
        finally:
            settings.close()
    step("stopped and removed the embedded PostgreSQL")
    click.echo("next: keep the runs to explore them: pnldb --dsn URL demo on a database of yours "
               "(it creates only its own structure and use case)", err=True)
    click.echo(f"then your own data: {README_SECTION}", err=True)


def step(message: str) -> None:
    click.echo(f"== {message}", err=True)


def _pnldb(schema: str) -> str:
    return "pnldb" if schema == api.DEFAULT_SCHEMA else f"pnldb --schema {schema}"


def _sample_counts() -> tuple[int, int, int]:
    """(nodes, facts, rules) of the bundled sample."""
    data = resources.files("pnldb") / "data"
    with (data / "hierarchy.csv").open(newline="") as f:
        nodes = sum(1 for _ in csv.DictReader(f))
    with (data / "facts.csv").open(newline="") as f:
        facts = sum(1 for _ in csv.DictReader(f))
    with (data / "rules.json").open() as f:
        rules = len(json.load(f))
    return nodes, facts, rules


def _check_nothing_exists(conn, schema: str) -> None:
    if not schema_has_tables(conn, schema):
        return
    found = []
    use_case = next((u for u in api.list_use_cases(conn) if u["name"] == USE_CASE), None)
    if use_case is not None:
        found.append(f"use case '{USE_CASE}' ({fmt.count(use_case['facts'])} facts, "
                     f"{fmt.count(use_case['rules'])} rules, {fmt.count(use_case['runs'])} runs)")
    structure = find_structure(conn, STRUCTURE)
    if structure is not None:
        on_it = ", ".join(f"'{name}'" for name in structure["use_cases"]) or "none"
        found.append(f"structure {STRUCTURE} ({fmt.count(structure['nodes'])} nodes; use cases on it: {on_it})")
    if not found:
        return
    removal = []
    if use_case is not None and _signed_off(conn, use_case["use_case_id"]):
        removal.append(_reopen(schema))  # delete_use_case refuses a use case in the close (contract §7)
    if use_case is not None:
        removal.append(f"{_pnldb(schema)} use-case delete \"{USE_CASE}\" --yes")
    if structure is not None:
        removal.append(f"in psql DELETE FROM {schema}.hierarchy_structures WHERE structure_id = '{STRUCTURE}'")
    raise PnlError(
        f"not running the demo: it would replace what schema {schema} of this database already has: "
        f"{' and '.join(found)}; nothing changed. If they are a previous demo's, remove them "
        f"({', then '.join(removal)}); or run the demo elsewhere: on another database, in another schema "
        f"(pnldb --dsn URL --schema pnl_demo demo), or on a throw-away server (pnldb demo with no --dsn and "
        f"no PNLDB_DSN)")


def _signed_off(conn, use_case_id) -> bool:
    """Whether the demo's COB is signed off (a previous demo's end), so it is reopened before a delete."""
    return any(u["pnl_date"] == COB and u["status"] == "SIGNED_OFF"
               for u in api.list_cob_status(conn, use_case_id)["units"])


def _reopen(schema: str) -> str:
    return f"{_pnldb(schema)} close reopen --use-case \"{USE_CASE}\" --date {COB} --reason \"remove the demo\""


def _announce(conn, schema: str) -> None:
    nodes, facts, rules = _sample_counts()
    set_up = ""
    if _needs_set_up(conn, schema):
        roles = InstallationRoles(schema)
        set_up = (f"schema {schema} itself with its roles as pnldb roles create does ({roles.owner}, "
                  f"{', '.join(roles.groups)}, those missing), and ")
    step(f"on this database the demo creates{',' if set_up else ''} {set_up}in schema {schema}: structure "
         f"{STRUCTURE} ({nodes} nodes) and use case '{USE_CASE}' with {facts:,} facts, {rules} rules and 2 runs "
         f"of {COB}; it changes nothing else of yours")


def _needs_set_up(conn, schema: str) -> bool:
    return conn.execute("SELECT to_regnamespace(%s) IS NULL", (schema,)).fetchone()[0]


def _run_demo(ctx: click.Context, settings, depth: int) -> tuple[str, str]:
    """Runs the flow; returns the ids of the two runs."""
    data = resources.files("pnldb") / "data"
    conn = settings.conn
    if _needs_set_up(conn, settings.schema):
        step(f"setting schema {settings.schema} up (as pnldb roles create does, a DBA's step)")
        api.create_roles(conn, settings.schema)
    step(f"migrating schema {settings.schema} (as pnldb migrate does)")
    api.migrate(conn, settings.schema)

    with resources.as_file(data / "hierarchy.csv") as path:
        nodes = api.load_hierarchy(conn, path, STRUCTURE, "Global Markets")
    step(f"loaded hierarchy {STRUCTURE}: {nodes['nodes_loaded']} nodes")
    use_case_id = api.create_use_case(conn, USE_CASE, STRUCTURE)["use_case_id"]
    with resources.as_file(data / "fx.csv") as path:
        rates = api.load_fx(conn, path)
    step(f"loaded {rates['rates_in_file']} FX rates into USD (the London books are in GBP, Frankfurt's in EUR)")
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
    click.echo("\nWhere EMEA Rates' daily variance in 'Adjusted v2' comes from, by strategy: its London books "
               "are in GBP, its Frankfurt book in EUR (native amounts, with the rate the run used)\n")
    ctx.invoke(explain, run_id=second["id"], node_id="EMEA_RATES", scenario=None, by="strategy", measure="daily",
               limit=20, as_json=False, csv_file=None)
    click.echo("\nWhat changed from 'Initial Run' to 'Adjusted v2'\n")
    ctx.invoke(diff_runs, run_a=first["id"], run_b=second["id"], tolerance=0, as_json=False)

    # the close (contract §7): one person signs the day off under SIMPLE; its facts freeze. The sample
    # keeps some books unmapped on purpose, so NO_UNMAPPED becomes a warning, acknowledged with a reason.
    api.set_signoff_policy(conn, use_case_id, "SIMPLE")
    api.set_check(conn, use_case_id, "NO_UNMAPPED", "WARNING")
    signed = api.sign_off_run(conn, second["id"], "pnldb demo",
                              {"NO_UNMAPPED": "the sample's unmapped books are left unmapped on purpose"})
    step(f"signed off 'Adjusted v2' as the official run of {COB} (policy SIMPLE; NO_UNMAPPED acknowledged): "
         f"{signed['status']}")
    click.echo(f"\nClose status of {USE_CASE!r}\n")
    ctx.invoke(close_status, use_case=USE_CASE, from_date=None, to_date=None, as_json=False)
    return str(first["id"]), str(second["id"])
