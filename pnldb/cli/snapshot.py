import click

from pnldb import api
from pnldb import format as fmt
from pnldb.api import resolve_use_case
from pnldb.cli.common import emit_json, json_option, pass_settings
from pnldb.cli.params import ISO_DATE
from pnldb.errors import PnlError
from pnldb.vocabulary import MEASURES


@click.command()
@click.option("--use-case", "use_case", required=True, help="Use-case id or name.")
@click.option("--date", "pnl_date", required=True, type=ISO_DATE, help="COB date, YYYY-MM-DD.")
@click.option("--name", "run_name", help="Run name; default 'Run N'.")
@click.option("--by", "triggered_by", help="Who triggered it; default the database user.")
@json_option
@pass_settings
def snapshot(settings, use_case, pnl_date, run_name, triggered_by, as_json) -> None:
    """Take a snapshot of a use case for a COB date and print the run."""
    conn = settings.conn
    use_case_id, _, _ = resolve_use_case(conn, use_case)
    warnings = []
    conn.add_notice_handler(lambda diag: warnings.append(diag.message_primary))
    run = api.create_snapshot(conn, use_case_id, pnl_date, run_name=run_name, triggered_by=triggered_by)
    if as_json:
        emit_json(run)
    else:
        _print_run(conn, run)
    if run["status"] != "COMPLETED":
        raise PnlError(f"snapshot {run['id']} {run['status']}: {run['error_message']}")


def _print_run(conn, run: dict) -> None:
    click.echo(f"run        {run['id']}  {run['run_name']}")
    click.echo(f"use case   {run['use_case_name']}  ({run['use_case_id']})")
    click.echo(f"date       {run['pnl_date']}")
    click.echo(f"status     {run['status']} in {run['duration_ms']} ms, {run['rules_applied']} rule(s) applied, "
               f"{run['results_count']} result rows")
    if run["status"] != "COMPLETED":
        return
    values = {
        (scenario, measure, kind): value
        for scenario, measure, kind, value in conn.execute(
            """SELECT r.scenario, m.measure, k.kind, (to_jsonb(r) ->> (m.measure || '_' || k.kind))::numeric
               FROM fact_calculated_results r, unnest(%s::text[]) m(measure), unnest(ARRAY['adjusted', 'plug']) k(kind)
               WHERE r.calculation_run_id = %s AND r.depth = 0""", (list(MEASURES), run["id"]))
    }
    scenarios = ("ACTUAL", "PRIOR", "VARIANCE")
    rows = [[m, *(fmt.money(values[(s, m, "adjusted")]) for s in scenarios)] for m in MEASURES]
    if any(values[(s, m, "plug")] for s in scenarios for m in MEASURES):
        rows += [[f"{m} plug", *(fmt.money(values[(s, m, "plug")]) for s in scenarios)] for m in MEASURES]
    for line in fmt.table(["root (adjusted)", *scenarios], rows, align="lrrr"):
        click.echo(line)
