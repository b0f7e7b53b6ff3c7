"""`pnldb report RUN_ID`: a run as an indented tree (text), its JSON, or a self-contained HTML page."""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import click

from pnldb import api
from pnldb import report as report_mod
from pnldb.api import fetch_report
from pnldb.cli.common import emit_json, pass_settings
from pnldb.cli.params import ISO_DATE
from pnldb.errors import PnlError
from pnldb.report.text import TEXT_WIDTH


def text_width() -> int:
    """COLUMNS when set, else the terminal's width when stdout is one, else TEXT_WIDTH (pipes, files)."""
    columns = os.environ.get("COLUMNS", "").strip()
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    try:
        if sys.stdout.isatty():
            return shutil.get_terminal_size((TEXT_WIDTH, 24)).columns or TEXT_WIDTH
    except (AttributeError, ValueError, OSError):
        pass
    return TEXT_WIDTH


@click.command()
@click.argument("run_id", required=False)
@click.option("--use-case", "use_case", metavar="ID_OR_NAME",
              help="With --date instead of RUN_ID: the official run of that COB date (the close).")
@click.option("--date", "pnl_date", type=ISO_DATE, help="COB date of --use-case's official run.")
@click.option("--depth", type=click.IntRange(min=0), metavar="N",
              help="Down to depth N (the root is depth 0): the text and JSON leave deeper nodes out; "
                   "the HTML page has them all, deeper levels collapsed.")
@click.option("--html", "html_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="Write a self-contained HTML page to FILE (nothing on stdout unless --json).")
@click.option("--json", "as_json", is_flag=True,
              help="Print {run: get_run's JSON, nodes: [...], rules: [...]} as JSON, money exact.")
@pass_settings
def report(settings, run_id: str | None, depth: int | None, html_file: str | None, as_json: bool,
           use_case: str | None = None, pnl_date=None) -> None:
    """Print a run: its header, then the tree with actual, prior and variance (adjusted) per measure.
    RUN_ID, or --use-case U --date D for the official run of that COB date.

    The text fits the terminal (COLUMNS, else its size; 160 columns when stdout is no terminal): node
    names are cut, never figures, and the measures go one below the other when they do not fit side
    by side. A FAILED run prints its header and error, no tree, and exits 0: the report itself worked.
    """
    if (run_id is None) == (use_case is None and pnl_date is None):
        raise click.UsageError("give a RUN_ID, or --use-case and --date for the official run of a COB date")
    if run_id is None:
        if use_case is None or pnl_date is None:
            raise click.UsageError("--use-case and --date go together: the official run of that COB date")
        uc_id, uc_name = api.resolve_use_case(settings.conn, use_case)[:2]
        official = api.official_run(settings.conn, uc_id, pnl_date)
        if official is None:
            state = api.get_cob_status(settings.conn, uc_id, pnl_date)["status"]
            raise PnlError(f"use case {uc_name!r} has no official run for {pnl_date} (status {state}); "
                           "pnldb close status shows the signed-off dates, pnldb runs list the runs")
        run_id = str(official)
    # the page shows every node and collapses below --depth; text and JSON stay cut at --depth
    data = fetch_report(settings.conn, run_id, None if html_file else depth, plugs=bool(html_file))
    if html_file:
        path = Path(html_file)
        try:
            path.write_text(report_mod.render_html(data, depth), encoding="utf-8")
        except OSError as exc:
            raise PnlError(f"cannot write {html_file}: {exc.strerror or exc}") from None
        click.echo(f"wrote {path}", err=True)
    shown = report_mod.down_to(data, depth)
    if as_json:
        emit_json(report_mod.report_json(shown))
    elif not html_file:
        click.echo(report_mod.render_text(shown, depth, text_width()), nl=False)
