"""The Python API: each function is one call of the SQL API, its JSON returned as Python objects."""
from __future__ import annotations

import datetime as dt
from contextlib import contextmanager
from decimal import Decimal
from typing import Iterator
from uuid import UUID

import psycopg
from psycopg import sql as pgsql

from pnldb.db import DEFAULT_SCHEMA, check_identifier
from pnldb.db import connect as _connect
from pnldb.jsonfmt import from_sql_json


@contextmanager
def connect(dsn: str | None = None, schema: str = DEFAULT_SCHEMA) -> Iterator[psycopg.Connection]:
    """A connection (autocommit) with the pnldb schema first on the search_path."""
    conn = _connect(dsn, autocommit=True)
    try:
        conn.execute("SELECT set_config('search_path', %s, false)", (f"{check_identifier(schema)}, public",))
        yield conn
    finally:
        conn.close()


def _call(conn: psycopg.Connection, function: str, *args):
    query = pgsql.SQL("SELECT {}({})::text").format(
        pgsql.Identifier(function), pgsql.SQL(", ").join(pgsql.Placeholder() * len(args)))
    return from_sql_json(conn.execute(query, args).fetchone()[0])


def create_snapshot(conn, use_case_id: UUID | str, pnl_date: dt.date, run_name: str | None = None,
                    triggered_by: str | None = None) -> dict:
    """Take a snapshot; returns the run as get_run reports it."""
    run_id = conn.execute("SELECT create_snapshot(%s::uuid, %s::date, %s, %s)",
                          (str(use_case_id), pnl_date, run_name, triggered_by)).fetchone()[0]
    return get_run(conn, run_id)


def list_runs(conn, pnl_date: dt.date | None = None, use_case_id: UUID | str | None = None,
              max_runs: int = 100) -> dict:
    return _call(conn, "list_runs", pnl_date, None if use_case_id is None else str(use_case_id), max_runs)


def get_run(conn, run_id: UUID | str) -> dict:
    return _call(conn, "get_run", str(run_id))


def delete_use_case(conn, use_case_id: UUID | str) -> dict:
    return _call(conn, "delete_use_case", str(use_case_id))


def compare_runs(conn, run_a: UUID | str, run_b: UUID | str, tolerance: Decimal = Decimal(0)) -> list[dict]:
    cur = conn.execute("SELECT * FROM compare_runs(%s::uuid, %s::uuid, %s::numeric)",
                       (str(run_a), str(run_b), tolerance))
    names = [c.name for c in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]
