"""`pnldb report RUN_ID`: a run as an indented tree (text), its JSON, or a self-contained HTML page."""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import click

from pnldb import report as report_mod
from pnldb.api import fetch_report
from pnldb.cli.common import emit_json, pass_settings
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
@click.argument("run_id")
@click.option("--depth", type=click.IntRange(min=0), metavar="N",
              help="Down to depth N (the root is depth 0): the text and JSON leave deeper nodes out; "
                   "the HTML page has them all, deeper levels collapsed.")
@click.option("--html", "html_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="Write a self-contained HTML page to FILE (nothing on stdout unless --json).")
@click.option("--json", "as_json", is_flag=True,
              help="Print {run: get_run's JSON, nodes: [...], rules: [...]} as JSON, money exact.")
@pass_settings
def report(settings, run_id: str, depth: int | None, html_file: str | None, as_json: bool) -> None:
    """Print a run: its header, then the tree with actual, prior and variance (adjusted) per measure.

    The text fits the terminal (COLUMNS, else its size; 160 columns when stdout is no terminal): node
    names are cut, never figures, and the measures go one below the other when they do not fit side
    by side. A FAILED run prints its header and error, no tree, and exits 0: the report itself worked.
    """
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
