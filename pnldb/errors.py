"""Errors meant for the user, and how a database error reads as one line."""
from __future__ import annotations

import psycopg


class PnlError(Exception):
    """An error meant for the user: one clear line, no traceback."""


def describe_db_error(exc: psycopg.Error) -> str:
    """One line: the primary message, the detail, and the hint as a sentence of its own
    ('... . Hint: ...')."""
    diag = getattr(exc, "diag", None)
    primary = (diag.message_primary if diag else None) or str(exc).strip().splitlines()[0]
    parts = [primary]
    if diag is not None and diag.message_detail:
        parts.append(diag.message_detail)
    if diag is not None and diag.message_hint:
        parts.append(f"Hint: {diag.message_hint}")
    parts = [" ".join(p.split()) for p in parts]
    return " ".join(p if p.endswith((".", "?", "!")) or i == len(parts) - 1 else p + "."
                    for i, p in enumerate(parts))
