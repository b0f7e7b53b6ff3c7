"""`pnldb use-case ...`: create, list and (from pnldb.cli.use_case_delete) delete use cases; grant, revoke
and list who is entitled to them."""
import click

from pnldb import api
from pnldb import format as fmt
from pnldb.cli.common import emit_json, json_option, pass_settings
from pnldb.cli.use_case_delete import delete


@click.group("use-case")
def use_case() -> None:
    """Create, list and delete use cases (reporting configurations), and grant who may see them."""


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


def _grant_arguments(targets: tuple[str, ...], every: bool, command: str) -> tuple[str | None, str]:
    if every and len(targets) == 1:
        return None, targets[0]
    if not every and len(targets) == 2:
        return targets[0], targets[1]
    raise click.UsageError(f"pnldb use-case {command} takes USE_CASE ROLE, or --all ROLE")


@use_case.command("grant")
@click.argument("targets", nargs=-1, metavar="[USE_CASE] ROLE")
@click.option("--all", "every", is_flag=True, help="Every use case, present and future, instead of one.")
@pass_settings
def grant(settings, targets: tuple[str, ...], every: bool) -> None:
    """Entitle ROLE (a group role or a login, and every member of it) to USE_CASE (id or name), or to all
    use cases with --all. Admins grant what they are entitled to themselves."""
    target, role = _grant_arguments(targets, every, "grant")
    added = api.grant_use_case(settings.conn, target, role)
    what = "all use cases" if target is None else f"use case {fmt.clean(target)!r}"
    click.echo(f"granted {what} to {fmt.clean(role)}" if added else f"{fmt.clean(role)} holds {what} already",
               err=True)


@use_case.command("revoke")
@click.argument("targets", nargs=-1, metavar="[USE_CASE] ROLE")
@click.option("--all", "every", is_flag=True, help="The grant of every use case, instead of one.")
@pass_settings
def revoke(settings, targets: tuple[str, ...], every: bool) -> None:
    """Take back a grant of USE_CASE (or, with --all, of all use cases) from ROLE; effective from the next
    statement of every session. Revoking what ROLE was never granted is an error."""
    target, role = _grant_arguments(targets, every, "revoke")
    api.revoke_use_case(settings.conn, target, role)
    what = "all use cases" if target is None else f"use case {fmt.clean(target)!r}"
    click.echo(f"revoked {what} from {fmt.clean(role)}", err=True)


@use_case.command("grants")
@click.argument("target", required=False, metavar="[USE_CASE]")
@json_option
@pass_settings
def grants(settings, target: str | None, as_json: bool) -> None:
    """The grants of the use cases you are entitled to, and the grants of all use cases (shown as *);
    with USE_CASE, the grants that cover it."""
    rows = api.list_use_case_grants(settings.conn, target)
    if as_json:
        emit_json(rows)
        return
    cells = [[r["use_case_id"] or "*", fmt.clean(r["use_case_name"] or "(all use cases)"), r["role_name"],
              fmt.clean(r["granted_by"]), fmt.timestamp(r["granted_at"])] for r in rows]
    for line in fmt.table(["USE CASE ID", "USE CASE", "ROLE", "GRANTED BY", "GRANTED AT"], cells):
        click.echo(line)
