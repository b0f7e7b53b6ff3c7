"""`pnldb use-case delete ID_OR_NAME`: delete_use_case of the SQL API, with a preview and a confirmation.
(pnldb.cli.use_case adds it to the `use-case` group.)"""
from __future__ import annotations

import json

import click

from pnldb import api
from pnldb import format as fmt
from pnldb.cli import common
from pnldb.cli.common import emit_json, json_option, pass_settings
from pnldb.errors import PnlError
from pnldb.jsonfmt import from_sql_json

# (label, key in use_case_footprint, key in delete_use_case's summary)
COUNTS = [
    ("rules", "rules", "rules_purged"),
    ("legacy runs", "legacy_runs", "legacy_runs_purged"),
    ("calculation runs", "calculation_runs", "calculation_runs_purged"),
    ("facts", "facts", "facts_purged"),
    ("total items", "total_items", "total_items_deleted"),
    ("results", "results", "results_purged"),
]


def _as_delete_summary(footprint: dict, name: str) -> dict:
    """The footprint under the keys of delete_use_case's summary, so that a script reads a dry run and the
    delete alike; keys in the order jsonb gives them (by length, then bytes), as the real delete prints."""
    summary = {key: footprint[footprint_key] for _, footprint_key, key in COUNTS}
    summary["deleted_use_case"] = footprint["use_case_id"]
    summary["message"] = f"Use case '{name}' and all related data would be deleted (dry run: nothing deleted)"
    return {key: summary[key] for key in sorted(summary, key=lambda k: (len(k.encode()), k.encode()))}


def _footprint_lines(footprint: dict) -> list[str]:
    return fmt.key_values(((label, fmt.count(footprint[key])) for label, key, _ in COUNTS), indent="  ", align="r")


def _summary_lines(summary: dict) -> list[str]:
    return fmt.key_values(((label, fmt.count(summary[key])) for label, _, key in COUNTS), indent="  ", align="r")


@click.command("delete")
@click.argument("id_or_name")
@click.option("--yes", is_flag=True, help="Do not ask; required when stdin is not a terminal.")
@click.option("--dry-run", is_flag=True, help="Only show what would be deleted.")
@json_option
@pass_settings
def delete(settings, id_or_name, yes, dry_run, as_json) -> None:
    """Delete a use case with its rules, facts, runs and results, and print what went."""
    conn = settings.conn
    use_case_id, name, _ = api.resolve_use_case(conn, id_or_name)
    shown = fmt.clean(name)  # what the terminal gets; --json keeps the name exact
    if dry_run or not yes:  # a preview: counted read-only; the delete reports what it really removed
        footprint = api.use_case_footprint_text(conn, use_case_id)
    if dry_run:
        if as_json:
            emit_json(_as_delete_summary(json.loads(footprint), name))
        else:
            click.echo(f"would delete use case '{shown}' ({use_case_id}):")
            for line in _footprint_lines(from_sql_json(footprint)):
                click.echo(line)
        click.echo("dry run: nothing deleted", err=True)
        return
    if not yes:
        if not common.stdin_is_a_terminal():
            raise PnlError(f"not deleting use case '{shown}' without confirmation: stdin is not a terminal; "
                           "pass --yes (or --dry-run to see what would go)")
        click.echo(f"use case '{shown}' ({use_case_id}) with:", err=True)
        for line in _footprint_lines(from_sql_json(footprint)):
            click.echo(line, err=True)
        if not click.confirm(f"Delete use case '{shown}' and all of this?", default=False, err=True):
            raise PnlError("not confirmed: nothing deleted")
    summary = api.delete_use_case_text(conn, use_case_id)
    if as_json:
        click.echo(fmt.json_text(summary))
        return
    data = from_sql_json(summary)
    click.echo(f"{fmt.clean(data['message'])} ({data['deleted_use_case']}):")
    for line in _summary_lines(data):
        click.echo(line)
