"""Loaders: hierarchies and facts from CSV, rules from JSON, and use-case creation.

Each loader validates its input in Python first and reports every problem with the line (and, for
facts, the column) it sits on, then writes in one transaction: all or nothing. Writes are set-based
(COPY). The connection must have the pnldb schema first on its search_path, as `pnldb.connect` and
the CLI set it up.

Money is `Decimal` (or its exact text) end to end, never a float.
"""
from __future__ import annotations

import csv
import datetime as dt
import json
import re
import uuid
from decimal import Decimal
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator

import psycopg
from psycopg import sql as pgsql

from pnldb.errors import PnlError
from pnldb.jsonfmt import to_json

UNMAPPED = "__UNMAPPED__"
SCENARIOS = ("ACTUAL", "PRIOR")
MAX_REPORTED = 10  # problems quoted in one error message; the rest are counted

HIERARCHY_COLUMNS = ("node_id", "parent_node_id", "node_name")
FACT_REQUIRED = ("pnl_date", "category_code", "daily_amount", "wtd_amount", "ytd_amount", "scenario")
FACT_MEASURES = ("daily_amount", "wtd_amount", "ytd_amount")
FACT_OPTIONAL = ("use_case_id", "amount")
RULE_KEYS = ("node_id", "predicate_json", "logic_en")

Progress = Callable[[int], None]


# --------------------------------------------------------------------------------------------------
# use cases

def resolve_use_case(conn: psycopg.Connection, id_or_name) -> tuple[uuid.UUID, str, str]:
    """(use_case_id, name, structure_id) of the use case with this id or, failing that, this name."""
    text = str(id_or_name).strip()
    row = None
    try:
        as_uuid = uuid.UUID(text)
    except ValueError:
        as_uuid = None
    if as_uuid is not None:
        row = conn.execute("SELECT use_case_id, name, structure_id FROM use_cases WHERE use_case_id = %s",
                           (as_uuid,)).fetchone()
    if row is None:
        row = conn.execute("SELECT use_case_id, name, structure_id FROM use_cases WHERE name = %s",
                           (text,)).fetchone()
    if row is None:
        schema = conn.execute("SELECT current_schema()").fetchone()[0]
        raise PnlError(f"unknown use case {_q(text)}; list them with "
                       f"SELECT use_case_id, name FROM {schema}.use_cases")
    return row[0], row[1], row[2]


def create_use_case(conn: psycopg.Connection, name: str, structure_id: str,
                    description: str | None = None) -> dict:
    """Insert a use case; returns its row as a dict. Unknown structure or a taken name: PnlError."""
    name, structure_id = (name or "").strip(), (structure_id or "").strip()
    if not name:
        raise PnlError("use case name must not be blank")
    with conn.transaction():
        if conn.execute("SELECT 1 FROM hierarchy_structures WHERE structure_id = %s",
                        (structure_id,)).fetchone() is None:
            raise PnlError(f"unknown structure {_q(structure_id)}; load it first with "
                           f"pnldb load hierarchy FILE --structure {structure_id}")
        existing = conn.execute("SELECT use_case_id FROM use_cases WHERE name = %s", (name,)).fetchone()
        if existing is not None:
            raise PnlError(f"use case {_q(name)} already exists (id {existing[0]})")
        try:
            with conn.transaction():
                cur = conn.execute(
                    """INSERT INTO use_cases (name, structure_id, description) VALUES (%s, %s, %s)
                       RETURNING use_case_id, name, structure_id, description, status, created_at""",
                    (name, structure_id, description))
        except psycopg.errors.UniqueViolation:  # created concurrently since the check above
            raise PnlError(f"use case {_q(name)} already exists") from None
        names = [c.name for c in cur.description]
        return dict(zip(names, cur.fetchone()))



def _q(value: str, limit: int = 40) -> str:
    """A value quoted for a message: short, printable, on one line."""
    text = str(value)
    if len(text) > limit:
        text = text[:limit] + "..."
    if text.isprintable():
        return f"'{text}'"
    return repr(text)

