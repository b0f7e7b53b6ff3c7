"""Connections and the one way the API calls a SQL function."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql as pgsql
from psycopg.rows import dict_row

from pnldb.db import DEFAULT_SCHEMA, check_identifier
from pnldb.db import connect as _connect
from pnldb.jsonfmt import from_sql_json


def open_connection(dsn: str | None = None, schema: str = DEFAULT_SCHEMA) -> psycopg.Connection:
    """A connection (autocommit) with the pnldb schema first on the search_path."""
    conn = _connect(dsn, autocommit=True)
    conn.execute("SELECT set_config('search_path', %s, false)", (f"{check_identifier(schema)}, public",))
    return conn


@contextmanager
def connect(dsn: str | None = None, schema: str = DEFAULT_SCHEMA) -> Iterator[psycopg.Connection]:
    """A connection for a `with` block (same DSN resolution as the CLI); closed at the end."""
    conn = open_connection(dsn, schema)
    try:
        yield conn
    finally:
        conn.close()


def call_json(conn: psycopg.Connection, function: str, *args):
    """SELECT function(args) of a jsonb-returning SQL function, as Python objects."""
    return from_sql_json(call_json_text(conn, function, *args))


def call_json_text(conn: psycopg.Connection, function: str, *args) -> str:
    """The JSON text exactly as the SQL function returned it (what `--json` prints)."""
    query = pgsql.SQL("SELECT {}({})::text").format(
        pgsql.Identifier(function), pgsql.SQL(", ").join(pgsql.Placeholder() * len(args)))
    return conn.execute(query, args).fetchone()[0]


def call_rows(conn: psycopg.Connection, query: str | pgsql.Composable, args=()) -> list[dict]:
    """Rows of a query as dicts (psycopg's dict_row)."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, args).fetchall()
