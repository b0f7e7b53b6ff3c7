"""`pnldb report RUN_ID`: a run as an indented tree (text), its JSON, or a self-contained HTML page."""
from __future__ import annotations

from pathlib import Path

import click

from pnldb import report as report_mod
from pnldb.api import fetch_report
from pnldb.cli.common import emit_json, pass_settings
from pnldb.errors import PnlError


@click.command()
@click.argument("run_id")
@click.option("--depth", type=click.IntRange(min=0), metavar="N",
              help="Show the tree down to depth N (the root is depth 0).")
@click.option("--html", "html_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="Write a self-contained HTML page to FILE (nothing on stdout unless --json).")
@click.option("--json", "as_json", is_flag=True,
              help="Print {run: get_run's JSON, nodes: [...], rules: [...]} as JSON, money exact.")
@pass_settings
def report(settings, run_id: str, depth: int | None, html_file: str | None, as_json: bool) -> None:
    """Print a run: its header, then the tree with actual, prior and variance (adjusted) per measure.

    A FAILED run prints its header and error, no tree, and exits 0: the report itself worked.
    """
    data = fetch_report(settings.conn, run_id, depth)
    if html_file:
        path = Path(html_file)
        try:
            path.write_text(report_mod.render_html(data, depth), encoding="utf-8")
        except OSError as exc:
            raise PnlError(f"cannot write {html_file}: {exc.strerror or exc}") from None
        click.echo(f"wrote {path}", err=True)
    if as_json:
        emit_json(report_mod.report_json(data))
    elif not html_file:
        click.echo(report_mod.render_text(data, depth), nl=False)
