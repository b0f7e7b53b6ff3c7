"""`pnldb snapshot`: take a snapshot of a use case for a COB date and print the run with its root."""
import click

from pnldb import api
from pnldb import format as fmt
from pnldb.cli.common import json_option, pass_settings
from pnldb.cli.params import ISO_DATE
from pnldb.errors import PnlError
from pnldb.jsonfmt import from_sql_json
from pnldb.vocabulary import MEASURES, RESULT_SCENARIOS


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
    use_case_id, _, _ = api.resolve_use_case(conn, use_case)
    text = api.create_snapshot_text(conn, use_case_id, pnl_date, run_name=run_name, triggered_by=triggered_by)
    run = from_sql_json(text)
    if as_json:
        click.echo(fmt.json_text(text))
    else:
        _print_run(conn, run)
    if run["status"] != "COMPLETED":
        raise PnlError(f"snapshot {run['id']} {run['status']}: {run['error_message']}")
    for line in _rule_warnings(conn, run):
        click.echo(line, err=True)


def _rule_warnings(conn, run: dict) -> list[str]:
    """A line for each rule that excluded every fact it governs because none of them carries a field its
    conditions name: most likely a misspelt attribute. Asked only when some field of the run's rules is on
    none of its facts (run_absent_fields, cheap), which spares reading and judging every fact again."""
    if not run["rules_applied"] or not api.run_absent_fields(conn, run["id"]):
        return []
    lines = []
    for stats in api.run_rule_stats(conn, run["id"]):
        governed, fields = stats["facts_governed"], stats["missing_fields"]
        if governed and stats["facts_excluded"] == governed and fields:
            facts = "the 1 fact" if governed == 1 else f"all {fmt.count(governed)} facts"
            named = ", ".join(f"'{f}'" for f in fields)
            lines.append(f"warning: rule {stats['rule_id']} on node {stats['rule_node_id']} excluded {facts} it "
                         f"governs: none carries field{'s' if len(fields) > 1 else ''} {named}")
    return lines


def _print_run(conn, run: dict) -> None:
    click.echo(f"run        {run['id']}  {run['run_name']}")
    click.echo(f"use case   {run['use_case_name']}  ({run['use_case_id']})")
    click.echo(f"COB date   {run['pnl_date']}")
    click.echo(f"status     {run['status']} in {run['duration_ms']} ms, {run['rules_applied']} rule(s) applied, "
               f"{run['results_count']} result rows")
    if run["status"] != "COMPLETED":
        return
    root = api.run_root(conn, run["id"])
    rows = [[m, *(fmt.money(root[s][f"{m}_adjusted"]) for s in RESULT_SCENARIOS)] for m in MEASURES]
    if any(root[s][f"{m}_plug"] for s in RESULT_SCENARIOS for m in MEASURES):
        rows += [[f"{m} plug", *(fmt.money(root[s][f"{m}_plug"]) for s in RESULT_SCENARIOS)] for m in MEASURES]
    for line in fmt.table(["ROOT (ADJUSTED)", *RESULT_SCENARIOS], rows, align="lrrr"):
        click.echo(line)
