"""Connections: DSN resolution shared by the CLI and the Python API."""
from __future__ import annotations

import os
import re

import psycopg

from pnldb.errors import PnlError

DEFAULT_SCHEMA = "pnl"


def resolve_dsn(dsn: str | None = None) -> str:
    """--dsn, else PNLDB_DSN, else DATABASE_URL, else '' (libpq's PGHOST, ...)."""
    return dsn or os.environ.get("PNLDB_DSN") or os.environ.get("DATABASE_URL") or ""


def redact_dsn(dsn: str) -> str:
    """The DSN with any password replaced by ***, for error messages."""
    if not dsn:
        return "(libpq environment: PGHOST, PGDATABASE, ...)"
    dsn = re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", dsn)
    return re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", dsn, flags=re.I)


def connect(dsn: str | None = None, **kwargs) -> psycopg.Connection:
    """Open a connection; a failure becomes one PnlError line naming the (redacted) DSN."""
    target = resolve_dsn(dsn)
    try:
        return psycopg.connect(target, **kwargs)
    except (psycopg.OperationalError, psycopg.ProgrammingError) as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        if target:
            reason = reason.replace(target, redact_dsn(target))
        raise PnlError(f"cannot connect to {redact_dsn(target)}: {reason}") from None


def check_identifier(name: str, what: str = "schema") -> str:
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise PnlError(f"invalid {what} name {name!r}: use lower-case letters, digits and _")
    return name
