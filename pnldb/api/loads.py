"""Loads from files: the loaders of pnldb.loaders, with the use case given by id or name; and the fact
loads they leave (list_loads, purge_superseded_facts of the SQL API, one call each)."""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from uuid import UUID

import psycopg

from pnldb import loaders
from pnldb.api.connection import purge_shards_if_committed
from pnldb.api.use_cases import resolve_use_case
from pnldb.jsonfmt import from_sql_json
from pnldb.loaders import load_hierarchy
from pnldb.loaders.reading import Progress

__all__ = ["list_loads", "list_loads_text", "load_facts", "load_fx", "load_hierarchy",
           "load_rules", "purge_superseded_facts",
           "purge_superseded_facts_text"]


def load_facts(conn: psycopg.Connection, source, use_case, replace: bool = False, append: bool = False,
               progress: Progress | None = None, dates: Iterable[dt.date | str] | None = None) -> dict:
    """Load P&L facts from CSV into use case `use_case` (id or name): all rows or none. Into slices that
    already have current facts only with `replace` (supersede them) or `append` (one more load beside
    them); with `dates`, a row of any other COB date is refused. See pnldb.loaders.load_facts for the
    columns, `replace`, `append`, `progress` and `dates`."""
    return loaders.load_facts(conn, source, resolve_use_case(conn, use_case), replace=replace, append=append,
                              progress=progress, dates=dates)


def load_fx(conn: psycopg.Connection, source, replace: bool = False) -> dict:
    """Load FX rates from CSV (pnl_date, currency, reporting_currency, rate): all rows or none; with
    `replace` the file's rates replace those of its dates. See pnldb.loaders.load_fx."""
    return loaders.load_fx(conn, source, replace=replace)


def load_rules(conn: psycopg.Connection, source, use_case, replace: bool = False) -> dict:
    """Upsert rules from a JSON list of {node_id, predicate_json, logic_en} into use case `use_case`
    (id or name): all or none; with `replace` the file becomes its whole rule set. See
    pnldb.loaders.load_rules."""
    return loaders.load_rules(conn, source, resolve_use_case(conn, use_case), replace=replace)


def list_loads(conn: psycopg.Connection, use_case_id: UUID | str, pnl_date: dt.date | None = None) -> dict:
    """The fact loads of a use case, newest first, with their slices, current and superseded."""
    return from_sql_json(list_loads_text(conn, use_case_id, pnl_date))


def list_loads_text(conn: psycopg.Connection, use_case_id: UUID | str, pnl_date: dt.date | None = None) -> str:
    return conn.execute("SELECT list_loads(%s::uuid, %s::date)::text", (str(use_case_id), pnl_date)).fetchone()[0]


def purge_superseded_facts(conn: psycopg.Connection, older_than: dt.datetime) -> dict:
    """Remove the facts of slices superseded before `older_than` that no existing run read; their counts.
    A naive datetime is read in the session's time zone, as PostgreSQL reads a timestamp."""
    return from_sql_json(purge_superseded_facts_text(conn, older_than))


def purge_superseded_facts_text(conn: psycopg.Connection, older_than: dt.datetime) -> str:
    purged = conn.execute("SELECT purge_superseded_facts(%s::timestamptz)::text", (older_than,)).fetchone()[0]
    purge_shards_if_committed(conn)
    return purged
