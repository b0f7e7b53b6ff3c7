"""Use cases: found by id or name, created, listed, and what deleting one would remove."""
from __future__ import annotations

import re
import uuid

import psycopg

from pnldb.api.connection import call_json, call_json_text, call_rows
from pnldb.errors import PnlError
from pnldb.loaders.reading import quoted

UseCase = tuple[uuid.UUID, str, str]  # (use_case_id, name, structure_id)


def find_use_case(conn: psycopg.Connection, id_or_name) -> UseCase | None:
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
    return row


def resolve_use_case(conn: psycopg.Connection, id_or_name) -> UseCase:
    """find_use_case, or a PnlError naming what was asked for."""
    found = find_use_case(conn, id_or_name)
    if found is None:
        raise PnlError(f"unknown use case {quoted(str(id_or_name).strip())}; give a use-case id or exact name "
                       "(see `pnldb use-case list`)")
    return found


def create_use_case(conn: psycopg.Connection, name: str, structure_id: str,
                    description: str | None = None, currency: str | None = None) -> dict:
    """Insert a use case reporting in `currency` (three letters, contract §8; None: USD); returns its row
    as a dict. Unknown structure, a taken name or a bad currency code: PnlError."""
    name, structure_id = (name or "").strip(), (structure_id or "").strip()
    if not name:
        raise PnlError("use case name must not be blank")
    if currency is not None:
        currency = currency.strip().upper()
        if not re.fullmatch(r"[A-Z]{3}", currency, re.ASCII):
            raise PnlError(f"reporting currency {quoted(currency)} is not a currency code: three letters, such as "
                           "EUR")
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
                # No RETURNING: it would check the new row against the entitlement policy before the
                # row's trigger grants it to a creator not entitled to all use cases (sql/0144).
                conn.execute("""INSERT INTO use_cases (name, structure_id, description, reporting_currency)
                                VALUES (%s, %s, %s, coalesce(%s, 'USD'))""",
                             (name, structure_id, description, currency))
                (created,) = call_rows(
                    conn, """SELECT use_case_id, name, structure_id, description, status, created_at,
                                    reporting_currency
                             FROM use_cases WHERE name = %s""", (name,))
        except psycopg.errors.UniqueViolation:  # created concurrently since the check above
            raise PnlError(f"use case {quoted(name)} already exists") from None
        return created


def list_use_cases(conn: psycopg.Connection) -> list[dict]:
    """Every use case by name, with its structure and how many facts, rules and runs it holds. A count of
    a table the caller may not read (readers may not read facts and rules) is None: the query names only
    the tables the caller may read, as PostgreSQL checks every table a query names."""
    readable = dict(conn.execute(
        "SELECT t, has_table_privilege(t, 'SELECT') FROM unnest(%s::text[]) AS t",
        (["fact_pnl_entries", "metadata_rules", "calculation_runs"],)).fetchall())

    def counted(table: str, alias: str) -> str:
        if not readable[table]:
            return f"NULL::bigint AS {alias}"
        return f"(SELECT count(*) FROM {table} x WHERE x.use_case_id = u.use_case_id) AS {alias}"

    return call_rows(
        conn, f"""SELECT u.use_case_id, u.name, u.structure_id, u.status, u.created_at,
                         {counted("fact_pnl_entries", "facts")}, {counted("metadata_rules", "rules")},
                         {counted("calculation_runs", "runs")}
                  FROM use_cases u ORDER BY u.name""")


def use_case_names(conn: psycopg.Connection, ids) -> dict[str, str]:
    """{use_case_id as text: name} of these use cases (ids unknown to the database are left out)."""
    rows = conn.execute("SELECT use_case_id::text, name FROM use_cases WHERE use_case_id = ANY(%s::uuid[])",
                        (sorted({str(i) for i in ids}),)).fetchall()
    return dict(rows)


def use_case_footprint(conn: psycopg.Connection, use_case_id) -> dict:
    """What delete_use_case would remove, counted read-only."""
    return call_json(conn, "use_case_footprint", str(use_case_id))


def use_case_footprint_text(conn: psycopg.Connection, use_case_id) -> str:
    return call_json_text(conn, "use_case_footprint", str(use_case_id))


def schema_has_tables(conn: psycopg.Connection, schema: str) -> bool:
    """Whether `schema` holds pnldb's tables (it has been migrated at least once)."""
    return conn.execute("SELECT to_regclass(format('%%I.use_cases', %s::text)) IS NOT NULL",
                        (schema,)).fetchone()[0]


def find_structure(conn: psycopg.Connection, structure_id: str) -> dict | None:
    """The structure with this id, its node count and the names of the use cases on it; None if none."""
    rows = call_rows(
        conn, """SELECT s.structure_id, s.name,
                        (SELECT count(*) FROM dim_hierarchy h WHERE h.structure_id = s.structure_id) AS nodes,
                        ARRAY(SELECT u.name FROM use_cases u WHERE u.structure_id = s.structure_id
                              ORDER BY u.name) AS use_cases
                 FROM hierarchy_structures s WHERE s.structure_id = %s""", (structure_id,))
    return rows[0] if rows else None


# --- entitlements (issue 18) ------------------------------------------------------------------------------

def _grant_target(conn: psycopg.Connection, use_case) -> uuid.UUID | None:
    """The use case id a grant names: None (all use cases) for None, else the use case by id or name."""
    return None if use_case is None else resolve_use_case(conn, use_case)[0]


def grant_use_case(conn: psycopg.Connection, use_case, role: str) -> bool:
    """Entitle `role` (and its members) to a use case (id or name), or to all, present and future, when
    `use_case` is None. True, or False when the role held that grant already. Errors: unknown role or use
    case, a caller not entitled to what it grants (PnlError or psycopg's InsufficientPrivilege)."""
    target = _grant_target(conn, use_case)
    return conn.execute("SELECT grant_use_case(%s, %s)", (target, role)).fetchone()[0]


def revoke_use_case(conn: psycopg.Connection, use_case, role: str) -> None:
    """Take back a grant of grant_use_case (None: the grant of all); one the role never held is an error."""
    target = _grant_target(conn, use_case)
    conn.execute("SELECT revoke_use_case(%s, %s)", (target, role))


def list_use_case_grants(conn: psycopg.Connection, use_case=None) -> list[dict]:
    """The grants of the use cases the caller is entitled to, and the grants of all (use_case_id None);
    with `use_case`, the grants that cover it."""
    target = _grant_target(conn, use_case)
    return call_rows(conn, "SELECT * FROM list_use_case_grants(%s)", (target,))
