"""The `pnldb` command. Data goes to stdout, messages to stderr; errors are one line and exit 1."""
from __future__ import annotations

import importlib
import sys

import click
import psycopg

from pnldb.db import DEFAULT_SCHEMA, connect, redact_dsn, resolve_dsn
from pnldb.errors import PnlError
from pnldb.jsonfmt import to_json

COMMAND_MODULES = ("schema_cmds", "snapshot", "runs", "use_case", "use_case_delete", "load", "report", "demo", "bench")


def describe_db_error(exc: psycopg.Error) -> str:
    diag = getattr(exc, "diag", None)
    primary = (diag.message_primary if diag else None) or str(exc).strip().splitlines()[0]
    parts = [primary]
    if diag is not None and diag.message_detail:
        parts.append(diag.message_detail)
    if diag is not None and diag.message_hint:
        parts.append(f"hint: {diag.message_hint}")
    return " ".join(" ".join(p.split()) for p in parts)


class PnlGroup(click.Group):
    """Every error a subcommand meets becomes one line on stderr: usage errors (a malformed date or
    uuid, a missing argument) exit 2 as in click, everything else exits 1."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            click.echo(f"pnldb: error: {' '.join(exc.format_message().split())}", err=True)
            sys.exit(2)
        except PnlError as exc:
            click.echo(f"pnldb: error: {exc}", err=True)
            sys.exit(1)
        except psycopg.Error as exc:
            click.echo(f"pnldb: error: {describe_db_error(exc)}", err=True)
            sys.exit(1)


class Settings:
    def __init__(self, dsn: str | None, schema: str):
        self.dsn = dsn
        self.schema = schema
        self._conn = None

    @property
    def conn(self) -> psycopg.Connection:
        if self._conn is None:
            self._conn = connect(self.dsn, autocommit=True)
            self._conn.execute("SELECT set_config('search_path', %s, false)", (f"{self.schema}, public",))
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


@click.group(cls=PnlGroup)
@click.option("--dsn", envvar="PNLDB_DSN", help="PostgreSQL DSN or URL; default PNLDB_DSN, DATABASE_URL, then PGHOST...")
@click.option("--schema", default=DEFAULT_SCHEMA, show_default=True, help="Schema pnldb lives in.")
@click.version_option(package_name="pnldb")
@click.pass_context
def main(ctx: click.Context, dsn: str | None, schema: str) -> None:
    """pnldb: P&L snapshots inside PostgreSQL."""
    settings = Settings(dsn, schema)
    ctx.obj = settings
    ctx.call_on_close(settings.close)


pass_settings = click.pass_obj
json_option = click.option("--json", "as_json", is_flag=True, help="Print the SQL API's JSON.")


def emit_json(value) -> None:
    click.echo(to_json(value))


for _name in COMMAND_MODULES:
    importlib.import_module(f"pnldb.cli.{_name}")
