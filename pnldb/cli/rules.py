"""`pnldb rules list | delete`: the rules in force for a use case (list_rules of the SQL API), and removing
rules by node. Rules are added with `pnldb load rules`."""
from __future__ import annotations

import click

from pnldb import api
from pnldb import format as fmt
from pnldb.cli.common import echo_lines, json_option, pass_settings
from pnldb.jsonfmt import from_sql_json

use_case_option = click.option("--use-case", "use_case", required=True, metavar="ID_OR_NAME",
                               help="Use case of the rules (id or name).")


@click.group("rules")
def rules() -> None:
    """The rules in force for a use case: list, delete (add them with `pnldb load rules`)."""


def _rule_lines(rules_: list[dict]) -> list[str]:
    return fmt.table(
        ["RULE", "NODE", "WHERE", "LOGIC", "MODIFIED (UTC)", "BY"],
        [[r["rule_id"], r["node_id"], r["sql_where"], r["logic_en"], fmt.timestamp(r["last_modified_at"]),
          r["last_modified_by"]] for r in rules_],
        align="rlllll")


@rules.command("list", short_help="The rules in force, by node.")
@use_case_option
@json_option
@pass_settings
def list_rules(settings, use_case: str, as_json: bool) -> None:
    """The rules of a use case by node: the predicate as SQL, the logic in words, who changed it last."""
    conn = settings.conn
    use_case_id, name, _ = api.resolve_use_case(conn, use_case)
    result = api.list_rules_text(conn, use_case_id)
    if as_json:
        click.echo(fmt.json_text(result))
        return
    data = from_sql_json(result)
    if not data:
        click.echo(f"use case '{name}' has no rules")
        return
    echo_lines(_rule_lines(data))
    click.echo(f"{fmt.count(len(data))} rule(s) of use case '{name}'")


@rules.command("delete", short_help="Delete the rules on these nodes, all or none.")
@use_case_option
@click.argument("nodes", nargs=-1, required=True, metavar="NODE...")
@json_option
@pass_settings
def delete_rules(settings, use_case: str, nodes: tuple[str, ...], as_json: bool) -> None:
    """Delete the rules on these nodes, all or none: a node without a rule is refused and nothing is deleted.
    Prints the deleted rules."""
    conn = settings.conn
    use_case_id, name, _ = api.resolve_use_case(conn, use_case)
    result = api.delete_rules_text(conn, use_case_id, nodes)
    if as_json:
        click.echo(fmt.json_text(result))
        return
    data = from_sql_json(result)
    click.echo(f"deleted {fmt.count(len(data))} rule(s) of use case '{name}':")
    echo_lines(_rule_lines(data))
