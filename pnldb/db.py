"""Connections: DSN resolution shared by the CLI and the Python API."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

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
        reason = libpq_reason(str(exc)) or type(exc).__name__
        if target:
            reason = reason.replace(target, redact_dsn(target))
        elif not any(name.startswith("PG") for name in os.environ):
            raise PnlError(f"cannot connect: no database is set (no --dsn, PNLDB_DSN, DATABASE_URL or PG* "
                           f"variable), and libpq's default failed: {_sentence(reason)} Set the database with "
                           f"`--dsn URL` or PNLDB_DSN, e.g. postgresql://user@host:5432/dbname.") from None
        raise PnlError(f"cannot connect to {redact_dsn(target)}: {reason}") from None


_LIBPQ_PREFIX = re.compile(r"^(?:connection failed|connection is bad):\s*")
_ATTEMPTS = "Multiple connection attempts failed. All failures were:"


def libpq_reason(message: str) -> str:
    """libpq's connection error (several lines, hints indented by a tab) as one line: the main reason, then
    its hints as sentences, e.g. 'connection to server on socket "..." failed: No such file or directory.
    Is the server running locally and accepting connections on that socket?'"""
    message, _, attempts = message.partition(_ATTEMPTS)
    lines = [" ".join(_LIBPQ_PREFIX.sub("", line.strip()).split()) for line in message.splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        return ""
    text = lines[0]
    for line in lines[1:]:
        text = f"{_sentence(text)} {line}"
    tried = sum(1 for line in attempts.splitlines() if line.startswith("- "))
    if tried > 1:  # psycopg tried every address of the host; the reason above is the last one's
        text = f"{_sentence(text)} ({tried} connection attempts, all failed.)"
    return text


def _sentence(text: str) -> str:
    return text if text.endswith((".", "?", "!")) else text + "."


def check_identifier(name: str, what: str = "schema") -> str:
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise PnlError(f"invalid {what} name {name!r}: use lower-case letters, digits and _")
    return name


GROUPS = ("reader", "operator", "admin", "approver")


@dataclass(frozen=True)
class InstallationRoles:
    """The roles of one pnldb installation, named after one prefix (the schema's name unless the DBA chose
    another): a login-less owner of every object, and the four group roles granted to people and tools."""

    prefix: str

    def __post_init__(self):
        check_identifier(self.prefix, "role prefix")
        if len(self.prefix) > 63 - len("_operator"):
            raise PnlError(f"role prefix {self.prefix!r} is too long: the role names {self.prefix}_operator, ... "
                           "must fit PostgreSQL's 63 bytes")

    @property
    def owner(self) -> str:
        return f"{self.prefix}_owner"

    @property
    def reader(self) -> str:
        return f"{self.prefix}_reader"

    @property
    def operator(self) -> str:
        return f"{self.prefix}_operator"

    @property
    def admin(self) -> str:
        return f"{self.prefix}_admin"

    @property
    def approver(self) -> str:
        return f"{self.prefix}_approver"

    @property
    def groups(self) -> tuple[str, ...]:
        return tuple(f"{self.prefix}_{group}" for group in GROUPS)
