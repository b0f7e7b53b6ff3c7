"""The rules in force for a use case: listed (list_rules of the SQL API) and deleted by node."""
from __future__ import annotations

import shlex
from uuid import UUID

import psycopg

from pnldb.api.connection import call_json_text
from pnldb.api.use_cases import resolve_use_case
from pnldb.errors import PnlError
from pnldb.jsonfmt import from_sql_json
from pnldb.loaders.reading import quoted

__all__ = ["delete_rules", "delete_rules_text", "list_rules", "list_rules_text"]


def list_rules(conn: psycopg.Connection, use_case_id: UUID | str) -> list[dict]:
    """The rules of a use case by node_id: their metadata_rules columns (timestamps as datetime)."""
    return from_sql_json(list_rules_text(conn, use_case_id))


def list_rules_text(conn: psycopg.Connection, use_case_id: UUID | str) -> str:
    return call_json_text(conn, "list_rules", str(use_case_id))


def delete_rules(conn: psycopg.Connection, use_case, node_ids) -> list[dict]:
    """delete_rules_text as Python objects."""
    return from_sql_json(delete_rules_text(conn, use_case, node_ids))


def delete_rules_text(conn: psycopg.Connection, use_case, node_ids) -> str:
    """Delete the rules on these nodes of use case `use_case` (id or name), all or none, in one
    transaction; returns the deleted rules as list_rules shows them (by node_id), as JSON text.

    A node that carries no rule of the use case is refused, naming it, and nothing is deleted. The
    database checks the privileges and takes the use-case lock (rule_is_valid) for each deleted rule."""
    uc_id, uc_name, structure_id = resolve_use_case(conn, use_case)
    nodes = list(dict.fromkeys(str(n) for n in node_ids))
    if not nodes:
        raise PnlError("no node given: name the nodes whose rules to delete")
    with conn.transaction():
        # One statement: list_rules reads the statement's snapshot, from before the DELETE.
        deleted, text = conn.execute(
            """WITH gone AS (DELETE FROM metadata_rules WHERE use_case_id = %(uc)s AND node_id = ANY(%(nodes)s::text[])
                             RETURNING node_id)
               SELECT coalesce((SELECT array_agg(node_id) FROM gone), '{}'),
                      coalesce((SELECT jsonb_agg(r.rule ORDER BY r.n) FROM jsonb_array_elements(list_rules(%(uc)s))
                                WITH ORDINALITY AS r(rule, n)
                                WHERE r.rule ->> 'node_id' IN (SELECT node_id FROM gone)), '[]')::text""",
            {"uc": uc_id, "nodes": nodes}).fetchone()
        missing = [n for n in nodes if n not in deleted]
        if missing:
            known = {r[0] for r in conn.execute(
                "SELECT node_id FROM dim_hierarchy WHERE structure_id = %s AND node_id = ANY(%s::text[])",
                (structure_id, missing)).fetchall()}
            named = ", ".join(quoted(n) + ("" if n in known else f" (no node of structure {structure_id})")
                              for n in missing)
            raise PnlError(f"use case {quoted(uc_name)} has no rule on node{'s' if len(missing) > 1 else ''} "
                           f"{named}; nothing deleted (see `pnldb rules list --use-case {shlex.quote(uc_name)}`)")
    return text
