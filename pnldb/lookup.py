"""Finding things the user names on the command line."""
from __future__ import annotations

import uuid

from pnldb.errors import PnlError


def resolve_use_case(conn, id_or_name: str) -> tuple[uuid.UUID, str, str]:
    """(use_case_id, name, structure_id) of a use case given by id or by name."""
    try:
        key = uuid.UUID(id_or_name)
        row = conn.execute("SELECT use_case_id, name, structure_id FROM use_cases WHERE use_case_id = %s",
                           (key,)).fetchone()
    except ValueError:
        row = conn.execute("SELECT use_case_id, name, structure_id FROM use_cases WHERE name = %s",
                           (id_or_name,)).fetchone()
    if row is None:
        raise PnlError(f"unknown use case {id_or_name!r}: give a use-case id or an exact name")
    return row
