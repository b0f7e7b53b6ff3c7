"""`pnldb load ...`: hierarchies and facts from CSV, rules from JSON. All or nothing, each one."""
from __future__ import annotations

import contextlib
import os
import sys
import time

import click

from pnldb import loaders
from pnldb.cli import emit_json, json_option, main, pass_settings

PROGRESS_MIN_BYTES = 8 << 20  # show a progress bar for files from 8 MiB, on a terminal only

file_argument = click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=True))


@main.group("load")
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
    summary = loaders.load_hierarchy(settings.conn, file, structure_id, name)
    verb = "replaced" if summary["replaced"] else "created"
    click.echo(f"{verb} structure {summary['structure_id']} ({summary['name']}): "
               f"{summary['nodes_loaded']} nodes, root {summary['root']}"
               + (f"; {summary['nodes_removed']} previous nodes removed" if summary["replaced"] else ""), err=True)
    if as_json:
        emit_json(summary)
