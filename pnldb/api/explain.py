"""Explaining a finished run from its own inputs (contract §6): explain_node, explain_plug,
explain_variance, run_rule_stats, run_absent_fields — one SQL call each, rows as dicts (money as Decimal)."""
from __future__ import annotations

from uuid import UUID

import psycopg

from pnldb.api.connection import call_rows

__all__ = ["explain_node", "explain_plug", "explain_variance", "run_absent_fields", "run_rule_stats"]


def explain_node(conn: psycopg.Connection, run_id: UUID | str, node_id: str, scenario: str = "ACTUAL",
                 max_rows: int | None = 1000) -> list[dict]:
    """The facts the run read at or below the node, largest daily amounts first; max_rows=None: all."""
    return call_rows(conn, "SELECT * FROM explain_node(%s::uuid, %s, %s, %s::integer)",
                     (str(run_id), node_id, scenario, max_rows))


def explain_plug(conn: psycopg.Connection, run_id: UUID | str, node_id: str, scenario: str = "ACTUAL") -> list[dict]:
    """The rules behind the node's plug, with the facts they govern and exclude there."""
    return call_rows(conn, "SELECT * FROM explain_plug(%s::uuid, %s, %s)", (str(run_id), node_id, scenario))


def explain_variance(conn: psycopg.Connection, run_id: UUID | str, node_id: str, measure: str = "daily",
                     by: str = "child") -> list[dict]:
    """The node's adjusted ACTUAL - PRIOR variance broken down by child, category_code or an attribute key."""
    return call_rows(conn, "SELECT * FROM explain_variance(%s::uuid, %s, %s, %s)",
                     (str(run_id), node_id, measure, by))


def run_rule_stats(conn: psycopg.Connection, run_id: UUID | str) -> list[dict]:
    """Every rule of the run: explain_plug at the root plus missing_fields."""
    return call_rows(conn, "SELECT * FROM run_rule_stats(%s::uuid)", (str(run_id),))


def run_absent_fields(conn: psycopg.Connection, run_id: UUID | str) -> list[str]:
    """The attribute keys the run's rules name that no fact it read carries (a misspelt field is one)."""
    return conn.execute("SELECT run_absent_fields(%s::uuid)", (str(run_id),)).fetchone()[0]
