"""`pnldb loads list | purge`: the fact loads of a use case with their slices, current and superseded
(list_loads of the SQL API), and removing the superseded facts that no run read (purge_superseded_facts).

Data goes to stdout, messages to stderr; `--json` prints exactly the SQL API's JSON.
"""
from __future__ import annotations

import datetime as dt

import click

from pnldb import api
from pnldb import format as fmt
from pnldb.cli.common import echo_lines, json_option, pass_settings
from pnldb.cli.params import ISO_DATE
from pnldb.jsonfmt import from_sql_json


class Timestamp(click.ParamType):
    """An ISO 8601 date or date and time; UTC unless it carries an offset."""
    name = "TIMESTAMP"

    def convert(self, value, param, ctx):
        if isinstance(value, dt.datetime):
            return value
        try:
            stamp = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            self.fail(f"{value!r} is not a timestamp: write it ISO 8601, e.g. 2025-12-24 or 2025-12-24T18:00:00"
                      f"+01:00 (UTC unless an offset is given)", param, ctx)
        return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=dt.UTC)


TIMESTAMP = Timestamp()


@click.group("loads")
def loads() -> None:
    """Fact loads: list them with their slices, purge the superseded facts no run read."""


def _state(s: dict) -> str:
    if s["purged_at"] is not None:
        return "purged"
    if not s["current"]:
        return f"superseded by {s['superseded_by']}"
    return "current"


def _rows(data: dict) -> list[list]:
    """One row per slice of each load; a load without facts (it emptied slices) gets one row of its own."""
    rows = []
    for load in data["loads"]:
        head = [load["load_id"], fmt.timestamp(load["loaded_at"]), load["loaded_by"], load["source"]]
        if not load["slices"]:
            rows.append([*head, None, None, fmt.count(0), "no facts"])
        for s in load["slices"]:
            rows.append([*head, s["pnl_date"], s["scenario"], fmt.count(s["rows"]), _state(s)])
    return rows


@loads.command("list", short_help="The fact loads of a use case, newest first.")
@click.option("--use-case", "use_case", required=True, metavar="ID_OR_NAME", help="Use case of the loads (id or name).")
@click.option("--date", "pnl_date", type=ISO_DATE,
              help="Only the loads with (or that superseded) facts of this COB date.")
@json_option
@pass_settings
def list_loads(settings, use_case: str, pnl_date: dt.date | None, as_json: bool) -> None:
    """The fact loads of a use case, newest first, one line per (date, scenario) slice: current, superseded
    by a later load, or purged (superseded, and its facts removed by `pnldb loads purge`)."""
    conn = settings.conn
    use_case_id, name, _ = api.resolve_use_case(conn, use_case)
    result = api.list_loads_text(conn, use_case_id, pnl_date)
    if as_json:
        click.echo(fmt.json_text(result))
        return
    data = from_sql_json(result)
    of_date = f" for {pnl_date}" if pnl_date else ""
    if not data["loads"]:
        click.echo(f"use case '{name}' has no fact loads{of_date}", err=True)
        return
    echo_lines(fmt.table(["LOAD", "LOADED AT (UTC)", "BY", "SOURCE", "DATE", "SCENARIO", "ROWS", "STATE"],
                         _rows(data), align="rlllllrl"))
    click.echo(f"{fmt.count(len(data['loads']))} load(s) of use case '{name}'{of_date}, newest first", err=True)


@loads.command("purge", short_help="Remove superseded facts that no run read.")
@click.option("--older-than", "older_than", required=True, type=TIMESTAMP,
              help="Purge the slices superseded before this (ISO 8601; UTC unless it carries an offset).")
@json_option
@pass_settings
def purge(settings, older_than: dt.datetime, as_json: bool) -> None:
    """Remove the facts of the slices superseded before --older-than that no existing run read; their load
    records stay, marked purged. Facts a run read are kept as long as the run exists."""
    result = api.purge_superseded_facts_text(settings.conn, older_than)
    if as_json:
        click.echo(fmt.json_text(result))
        return
    data = from_sql_json(result)
    click.echo(f"superseded before {fmt.timestamp(older_than)} UTC:")
    echo_lines(fmt.key_values([("slices purged", fmt.count(data["slices_purged"])),
                               ("facts purged", fmt.count(data["facts_purged"])),
                               ("slices kept for runs", fmt.count(data["slices_kept_for_runs"]))],
                              indent="  ", align="r"))
