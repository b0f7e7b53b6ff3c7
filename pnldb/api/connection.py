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
from pnldb.schema import migration_ids

# What a query meets in a schema that is missing or older than this pnldb: the set-up check runs only then.
SCHEMA_MISMATCH_ERRORS = (psycopg.errors.UndefinedFunction, psycopg.errors.UndefinedTable,
                          psycopg.errors.UndefinedColumn, psycopg.errors.UndefinedObject,
                          psycopg.errors.InvalidSchemaName)


def open_connection(dsn: str | None = None, schema: str = DEFAULT_SCHEMA) -> psycopg.Connection:
    """A connection (autocommit) with the pnldb schema first on the search_path."""
    conn = _connect(dsn, autocommit=True)
    conn.execute("SELECT set_config('search_path', %s, false)", (f"{check_identifier(schema)}, public",))
    return conn


def schema_problem(conn: psycopg.Connection, schema: str = DEFAULT_SCHEMA) -> str | None:
    """What is wrong with the pnldb schema in the connected database, as one line saying what to run, or
    None when it is installed and at this pnldb's newest migration. Costs a few small catalog queries, so
    callers ask it after an error of SCHEMA_MISMATCH_ERRORS, not before every command."""
    check_identifier(schema)
    database = conn.info.dbname
    known = migration_ids()
    with conn.transaction():
        ledger, layer = conn.execute(
            "SELECT to_regclass(format('%%I._yoyo_migration', %s::text)), "
            "to_regproc(format('%%I.create_snapshot', %s::text))", (schema, schema)).fetchone()
        applied = {r[0] for r in conn.execute(
            pgsql.SQL("SELECT migration_id FROM {}._yoyo_migration").format(pgsql.Identifier(schema)))} \
            if ledger else set()
    if not applied:
        elsewhere = [r[0] for r in conn.execute(
            "SELECT y.relnamespace::regnamespace::text FROM pg_class y JOIN pg_class f USING (relnamespace) "
            "WHERE y.relname = '_yoyo_migration' AND f.relname = 'fact_pnl_entries' "
            "AND y.relnamespace <> coalesce(to_regnamespace(%s), 0) ORDER BY 1", (schema,))]
        set_up = conn.execute("SELECT to_regnamespace(%s) IS NOT NULL", (schema,)).fetchone()[0]
        install = ("run `pnldb migrate`" if set_up else
                   "a DBA runs `pnldb roles create` once (README, \"Setting up a database\"), then run `pnldb migrate`")
        # most likely a mistyped --schema: migrating would install a second, empty copy
        if len(elsewhere) == 1:
            return (f"schema {schema} is not installed in {database}; {install}, or, to use the "
                    f"pnldb installed in schema {elsewhere[0]}, pass --schema {elsewhere[0]}")
        if elsewhere:
            return (f"schema {schema} is not installed in {database}; {install}, or, to use a pnldb "
                    f"installed in schemas {', '.join(elsewhere)}, pass --schema with one of them")
        return f"schema {schema} is not installed in {database}; {install}"
    unknown = sorted(applied - set(known))
    if unknown:
        return (f"schema {schema} in {database} is at migration {unknown[-1]}, newer than this pnldb knows "
                f"(it needs {known[-1]}); upgrade pnldb")
    if len(applied) < len(known):
        current = max(applied, key=known.index)
        return (f"schema {schema} in {database} is at migration {current}, this pnldb needs {known[-1]}; "
                f"run `pnldb migrate` to upgrade")
    if layer is None:
        return (f"schema {schema} in {database} has its tables but not pnldb's functions and views; "
                f"run `pnldb migrate`")
    return None


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


def purge_shards_if_committed(conn) -> None:
    """On a coordinator (issue 16), the shard purges its last transaction queued, once it is committed (an
    autocommit connection); in an open transaction they wait for the next call, or `pnldb cluster purge`."""
    if conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE and conn.execute(
            "SELECT to_regprocedure('purge_shards()') IS NOT NULL").fetchone()[0]:
        conn.execute("SELECT purge_shards()")
