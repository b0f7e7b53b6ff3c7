"""`pnldb use-case ...`: create, list and (from pnldb.cli.use_case_delete) delete use cases."""
import click

from pnldb import api
from pnldb import format as fmt
from pnldb.cli.common import emit_json, json_option, pass_settings
from pnldb.cli.use_case_delete import delete


@click.group("use-case")
def use_case() -> None:
    """Create, list and delete use cases (reporting configurations)."""


use_case.add_command(delete)


@use_case.command("create")
@click.argument("name")
@click.option("--structure", "structure_id", required=True, help="Hierarchy structure the use case reports on.")
@click.option("--description", help="Free text.")
@click.option("--currency", metavar="CODE", help="Reporting currency, three letters (default USD).")
@json_option
@pass_settings
def create(settings, name: str, structure_id: str, description: str | None, currency: str | None,
           as_json: bool) -> None:
    """Create use case NAME on structure S; prints its id, name, structure and reporting currency."""
    created = api.create_use_case(settings.conn, name, structure_id, description, currency)
    if as_json:
        emit_json(created)
        return
    click.echo(f"use_case_id  {created['use_case_id']}")
    click.echo(f"name         {fmt.clean(created['name'])}")
    click.echo(f"structure_id {created['structure_id']}")
    click.echo(f"currency     {created['reporting_currency']}")
    if created["description"]:
        click.echo(f"description  {fmt.clean(created['description'])}")
    click.echo(f"created use case {fmt.clean(created['name'])!r}", err=True)


@use_case.command("list")
@json_option
@pass_settings
def list_(settings, as_json: bool) -> None:
    """List use cases with their structure and how many facts, rules and runs they hold."""
    rows = api.list_use_cases(settings.conn)
    if as_json:
        emit_json(rows)
        return
    cells = [[r["use_case_id"], r["name"], r["structure_id"], r["status"], fmt.count(r["facts"]),
              fmt.count(r["rules"]), fmt.count(r["runs"])] for r in rows]
    for line in fmt.table(["USE CASE ID", "NAME", "STRUCTURE", "STATUS", "FACTS", "RULES", "RUNS"], cells,
                          align="llllrrr"):
        click.echo(line)
    if any(r[key] is None for r in rows for key in ("facts", "rules", "runs")):
        click.echo("note: - where your role may not read the facts or rules (operators may)", err=True)
