"""What every command shares: the settings and their one connection, the --json option, and the group
that turns every error into one line on stderr."""
from __future__ import annotations

import sys

import click
import psycopg

from pnldb import api
from pnldb.api.connection import SCHEMA_MISMATCH_ERRORS, schema_problem
from pnldb.errors import PnlError, describe_db_error
from pnldb.jsonfmt import to_json
from pnldb.terminal import clean


def _setup_problem(ctx: click.Context, exc: psycopg.Error) -> str | None:
    """After an error that a missing or older schema causes: what is wrong with the set-up, if anything.
    Asked only then, so the happy path pays nothing; a failure of the check itself keeps the original."""
    settings = ctx.obj
    conn = settings.open_conn if isinstance(settings, Settings) else None
    if not isinstance(exc, SCHEMA_MISMATCH_ERRORS) or conn is None or conn.closed:
        return None
    try:
        return schema_problem(conn, settings.schema)
    except (psycopg.Error, PnlError):
        return None


def _clean_lines(text) -> str:
    """`clean` line by line: a message of several lines (a loader's bad rows) keeps its lines."""
    return "\n".join(clean(line) for line in str(text).split("\n"))


class PnlGroup(click.Group):
    """Every error a subcommand meets becomes one line on stderr (a loader's bad rows: one line each),
    made safe for a terminal (a name it quotes may hold escapes): usage errors (a malformed date or
    uuid, a missing argument) exit 2 as in click, everything else exits 1."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            click.echo(f"pnldb: error: {clean(' '.join(exc.format_message().split()))}", err=True)
            sys.exit(2)
        except PnlError as exc:
            click.echo(f"pnldb: error: {_clean_lines(exc)}", err=True)
            sys.exit(1)
        except psycopg.Error as exc:
            click.echo(f"pnldb: error: {clean(_setup_problem(ctx, exc) or describe_db_error(exc))}", err=True)
            sys.exit(1)


class Settings:
    """--dsn and --schema, and the command's one connection, opened on first use."""

    def __init__(self, dsn: str | None, schema: str):
        self.dsn = dsn
        self.schema = schema
        self._conn = None

    @property
    def conn(self) -> psycopg.Connection:
        if self._conn is None:
            self._conn = api.open_connection(self.dsn, self.schema)
        return self._conn

    @property
    def open_conn(self) -> psycopg.Connection | None:
        """The connection if the command opened one; never opens it."""
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


pass_settings = click.pass_obj
json_option = click.option("--json", "as_json", is_flag=True, help="Print the SQL API's JSON.")


def stdin_is_a_terminal() -> bool:
    """Whether a confirmation can be asked (a prompt on a pipe would read the data as the answer)."""
    return sys.stdin.isatty()


def emit_json(value) -> None:
    click.echo(to_json(value))


def echo_lines(lines) -> None:
    for line in lines:
        click.echo(line)
