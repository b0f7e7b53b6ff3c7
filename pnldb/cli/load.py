"""`pnldb load ...`: hierarchies, facts and FX rates from CSV, rules from JSON. All or nothing, each one."""
from __future__ import annotations

import contextlib
import os
import sys
import time

import click

from pnldb import api
from pnldb import format as fmt
from pnldb.cli.common import emit_json, json_option, pass_settings
from pnldb.cli.params import IsoDate

PROGRESS_MIN_BYTES = 8 << 20  # show a progress bar for files from 8 MiB, on a terminal only

file_argument = click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=True))


@click.group("load")
def load() -> None:
    """Load hierarchies, facts and rules."""


@load.command("hierarchy")
@file_argument
@click.option("--structure", "structure_id", required=True, help="Structure id to create or replace.")
@click.option("--name", help="Display name of the structure (default: kept, or the id for a new one).")
@json_option
@pass_settings
def hierarchy(settings, file: str, structure_id: str, name: str | None, as_json: bool) -> None:
    """Create or replace structure S from a CSV of node_id,parent_node_id,node_name (blank parent = root)."""
    summary = api.load_hierarchy(settings.conn, file, structure_id, name)
    verb = "replaced" if summary["replaced"] else "created"
    click.echo(f"{verb} structure {summary['structure_id']} ({summary['name']}): "
               f"{_count(summary['nodes_loaded'], 'node')}, root {summary['root']}"
               + (f"; {_count(summary['nodes_removed'], 'previous node')} removed" if summary["replaced"] else ""),
               err=True)
    if as_json:
        emit_json(summary)


@load.command("facts")
@file_argument
@click.option("--use-case", "use_case", required=True, metavar="ID_OR_NAME", help="Use case to load into.")
@click.option("--replace", is_flag=True,
              help="Supersede the use case's current facts for the (pnl_date, scenario) slices in the file; "
                   "needs --date.")
@click.option("--date", "dates", multiple=True, type=IsoDate(),
              help="A COB date the file is for (repeatable): a row of any other date is refused. Required "
                   "with --replace.")
@click.option("--append", is_flag=True,
              help="Add the file as one more load beside the current facts of its slices (refused if its rows "
                   "equal a current load's).")
@json_option
@pass_settings
def facts(settings, file: str, use_case: str, replace: bool, dates: tuple, append: bool, as_json: bool) -> None:
    """Load P&L facts from CSV with COPY; all rows or none.

    Columns, in any order and any case: use_case_id (optional, blank = --use-case), pnl_date,
    category_code, daily_amount, wtd_amount, ytd_amount, scenario (ACTUAL or PRIOR, any case),
    amount (optional legacy column, stored as given; blank = daily_amount), currency (optional, three
    letters; blank = the use case's reporting currency), then any dimension columns
    (legal_entity, region, book, ...), stored in attributes. The separator is a comma.

    A (pnl_date, scenario) slice that already has current facts is loaded into only with --replace or
    --append; otherwise nothing is loaded. `pnldb loads list` shows the loads. --replace names the
    dates it replaces with --date (repeatable), so that one stray-dated row cannot replace another day;
    each replaced slice is listed with its rows and totals before and after.
    """
    if replace and append:
        raise click.UsageError("--replace and --append exclude each other: --replace supersedes the current facts "
                               "of the file's slices, --append adds the file beside them")
    if replace and not dates:
        raise click.UsageError("--replace needs --date D (repeatable): the COB dates the file replaces; a row of "
                               "any other date is then refused, nothing loaded")
    started = time.monotonic()
    with _progress(file) as progress:
        summary = api.load_facts(settings.conn, file, use_case, replace=replace, append=append, progress=progress,
                                 dates=dates or None)
    elapsed = time.monotonic() - started
    slices = summary["slices"]
    listed = ", ".join(f"{s['pnl_date']} {s['scenario']}" for s in slices[:6]) + (" ..." if len(slices) > 6 else "")
    as_load = f" as load {summary['load_id']}" if summary["load_id"] is not None else ""
    click.echo(f"loaded {_count(summary['rows_loaded'], 'row')} into use case {summary['use_case_name']!r} "
               f"({_count(len(slices), 'slice')}{': ' + listed if slices else ''}) "
               f"in {elapsed:.1f}s{as_load}", err=True)
    if replace:
        click.echo(f"replaced {_count(summary['slices_replaced'], 'slice')}: "
                   f"{_count(summary['rows_superseded'], 'previous row')} superseded "
                   "(kept for the runs that read them)", err=True)
        for r in summary["replaced_slices"]:
            click.echo(f"  {r['pnl_date']} {r['scenario']}: {_count(r['old_rows'], 'row')} -> "
                       f"{_count(r['new_rows'], 'row')}; daily {fmt.money(r['old_daily_sum'])} -> "
                       f"{fmt.money(r['new_daily_sum'])}, wtd {fmt.money(r['old_wtd_sum'])} -> "
                       f"{fmt.money(r['new_wtd_sum'])}, ytd {fmt.money(r['old_ytd_sum'])} -> "
                       f"{fmt.money(r['new_ytd_sum'])}", err=True)
    if summary["slices_added_to"]:
        click.echo(f"appended: {_count(summary['slices_added_to'], 'slice')} already had current facts; this load "
                   f"adds to them (see `pnldb loads list`)", err=True)
    if summary["unmapped_rows"]:
        codes = summary["unmapped_codes"]
        unmapped = summary["unmapped_rows"]
        click.echo(f"warning: {_count(unmapped, 'row')} {'has' if unmapped == 1 else 'have'} a category_code that "
                   f"is no node of the structure ({', '.join(codes[:10])}{' ...' if len(codes) > 10 else ''}); "
                   f"snapshots report {'it' if unmapped == 1 else 'them'} under __UNMAPPED__", err=True)
    for missing in summary["missing_rates"]:
        click.echo(f"warning: no rate into the reporting currency for {', '.join(missing['currencies'])} on "
                   f"{missing['pnl_date']}: snapshots of that date are refused until `pnldb load fx` loads them",
                   err=True)
    if summary["amount_differs_rows"]:
        click.echo(f"note: amount differs from daily_amount in {summary['amount_differs_rows']} of "
                   f"{_count(summary['rows_loaded'], 'row')}; stored as the file gives it (amount is the legacy "
                   f"column; snapshots use daily_amount, wtd_amount and ytd_amount)", err=True)
    if as_json:
        emit_json(summary)


@load.command("fx")
@file_argument
@click.option("--replace", is_flag=True,
              help="The file's rates become all the rates of each (pnl_date, reporting_currency) it has.")
@json_option
@pass_settings
def fx(settings, file: str, replace: bool, as_json: bool) -> None:
    """Load FX rates from CSV: pnl_date, currency, reporting_currency, rate; all rows or none.

    One unit of currency is worth rate units of reporting_currency on that COB (contract §8); no inverse
    or cross rates are derived. A rate already loaded with another value is refused unless --replace.
    A rate that a closed (pending, signed-off or locked) unit concerns cannot be changed or removed.
    """
    summary = api.load_fx(settings.conn, file, replace=replace)
    dates = summary["dates"]
    click.echo(f"loaded {_count(summary['rates_in_file'], 'rate')} for {_count(len(dates), 'date')} "
               f"({', '.join(dates[:6])}{' ...' if len(dates) > 6 else ''}): {summary['added']} added, "
               f"{summary['replaced']} replaced, {summary['unchanged']} unchanged"
               + (f", {summary['removed']} removed" if replace else ""), err=True)
    if as_json:
        emit_json(summary)


@load.command("rules")
@file_argument
@click.option("--use-case", "use_case", required=True, metavar="ID_OR_NAME", help="Use case the rules belong to.")
@click.option("--replace", is_flag=True,
              help="The file becomes the whole rule set: rules on nodes it does not name are deleted.")
@json_option
@pass_settings
def rules(settings, file: str, use_case: str, replace: bool, as_json: bool) -> None:
    """Upsert rules from a JSON list of {node_id, predicate_json, logic_en}; all or none.

    The other columns of a rules export (rule_id, use_case_id, sql_where, created_at, last_modified_by,
    last_modified_at, as `pnldb rules list --json` writes them) are ignored, with a note; sql_where is
    always derived. A rule whose use_case_id is another use case is refused.
    """
    summary = api.load_rules(settings.conn, file, use_case, replace=replace)
    if summary["ignored_keys"]:
        click.echo(f"note: {file}: ignored the rules-export key(s) {', '.join(summary['ignored_keys'])} "
                   "(the database sets them; sql_where is derived from predicate_json)", err=True)
    if replace:
        removed = summary["removed_nodes"]
        listed = (": " + ", ".join(removed[:10]) + (" ..." if len(removed) > 10 else "")) if removed else ""
        click.echo(f"replaced the rules of use case {summary['use_case_name']!r} with the {summary['rules_loaded']} "
                   f"rules of {file} ({summary['inserted']} added, {summary['updated']} replaced, "
                   f"{summary['removed']} removed{listed})", err=True)
    else:
        click.echo(f"loaded {summary['rules_loaded']} rules into use case {summary['use_case_name']!r} "
                   f"({summary['inserted']} new, {summary['updated']} updated)", err=True)
    for unknown in summary["unknown_fields"]:
        guess = f"; did you mean {unknown['suggestion']!r}?" if unknown["suggestion"] else ""
        click.echo(f"warning: rule on node {unknown['node_id']!r}: field {unknown['field']!r} is on no current fact "
                   f"of use case {summary['use_case_name']!r}{guess} (the rule treats every fact as lacking it)",
                   err=True)
    if as_json:
        emit_json(summary)


def _count(n: int, singular: str) -> str:
    return f"{n} {singular if n == 1 else singular + 's'}"


@contextlib.contextmanager
def _progress(file: str):
    """A byte-count callback driving a progress bar on stderr, for big files on a terminal; else None."""
    size = os.path.getsize(file)
    if size < PROGRESS_MIN_BYTES or not sys.stderr.isatty():
        yield None
        return
    with click.progressbar(length=size, label="reading", file=sys.stderr) as bar:
        def update(n_bytes: int) -> None:
            bar.update(n_bytes)
            if bar.pos >= size and not bar.hidden:  # read and checked; the database's part follows
                bar.render_finish()
                bar.hidden = True
                click.echo("writing to the database ...", err=True)
        yield update
