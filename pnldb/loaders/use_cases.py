from __future__ import annotations

import uuid

import psycopg

from pnldb.errors import PnlError
from pnldb.loaders.reading import quoted


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
        raise PnlError(f"unknown use case {quoted(text)}; give a use-case id or exact name (see `pnldb use-case list`)")
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
            raise PnlError(f"unknown structure {quoted(structure_id)}; load it first with "
                           f"pnldb load hierarchy FILE --structure {structure_id}")
        existing = conn.execute("SELECT use_case_id FROM use_cases WHERE name = %s", (name,)).fetchone()
        if existing is not None:
            raise PnlError(f"use case {quoted(name)} already exists (id {existing[0]})")
        try:
            with conn.transaction():
                cur = conn.execute(
                    """INSERT INTO use_cases (name, structure_id, description) VALUES (%s, %s, %s)
                       RETURNING use_case_id, name, structure_id, description, status, created_at""",
                    (name, structure_id, description))
        except psycopg.errors.UniqueViolation:  # created concurrently since the check above
            raise PnlError(f"use case {quoted(name)} already exists") from None
        names = [c.name for c in cur.description]
        return dict(zip(names, cur.fetchone()))
