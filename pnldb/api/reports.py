"""A run as a report reads it: header, result nodes in tree order, recorded rules."""
from __future__ import annotations

import json
import uuid
from decimal import Decimal

import psycopg
from psycopg import sql as pgsql

from pnldb.api.connection import call_rows
from pnldb.api.runs import get_run_text
from pnldb.errors import PnlError
from pnldb.vocabulary import RESULT_SCENARIOS, RESULT_VALUE_COLUMNS, UNMAPPED


def fetch_report(conn: psycopg.Connection, run_id, depth: int | None = None, plugs: bool = False) -> dict:
    """The run header, its result nodes in tree order (down to `depth` when given) and its rules; with
    `plugs`, also every plug by rule (run_plug_rules), or the reason it is not there ("plugs_note": the
    caller may not read facts, or the run recorded no inputs).

    A few queries whatever the size of the tree; on an autocommit connection they share one
    REPEATABLE READ snapshot, so a run deleted meanwhile cannot show a header without its nodes.
    """
    try:
        key = uuid.UUID(str(run_id).strip())
    except ValueError:
        raise PnlError(f"invalid run id {str(run_id)!r}: expected a UUID; list runs with `pnldb runs list`") from None
    if conn.autocommit:
        with conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            return _fetch(conn, key, depth, plugs)
    return _fetch(conn, key, depth, plugs)


def _fetch(conn: psycopg.Connection, key: uuid.UUID, depth: int | None, plugs: bool) -> dict:
    try:
        text = get_run_text(conn, key)
    except psycopg.errors.NoDataFound:
        raise PnlError(f"unknown run {key}; list runs with `pnldb runs list`") from None
    run = json.loads(text, parse_float=Decimal)

    columns = pgsql.SQL(", ").join(pgsql.Identifier(c) for c in RESULT_VALUE_COLUMNS)
    cur = conn.execute(
        pgsql.SQL("""SELECT node_id, parent_node_id, node_name, depth, is_override, scenario, is_reconciled, {}
                     FROM fact_calculated_results
                     WHERE calculation_run_id = %(run)s AND (%(depth)s::integer IS NULL OR depth <= %(depth)s)""")
        .format(columns), {"run": key, "depth": depth})
    by_id: dict[str, dict] = {}
    for node_id, parent, name, node_depth, is_override, scenario, is_reconciled, *values in cur:
        node = by_id.get(node_id)
        if node is None:
            node = by_id[node_id] = {"node_id": node_id, "parent_node_id": parent, "node_name": name,
                                     "depth": node_depth, "is_override": is_override,
                                     **{s: None for s in RESULT_SCENARIOS}}
        node[scenario] = {**dict(zip(RESULT_VALUE_COLUMNS, values)), "is_reconciled": is_reconciled}

    rules = []
    for rule_id, node_id, predicate, sql_where, logic_en in conn.execute(
            """SELECT rule_id, node_id, predicate_json::text, sql_where, logic_en
               FROM calculation_run_rules WHERE calculation_run_id = %s ORDER BY rule_id""", (key,)):
        rules.append({"rule_id": rule_id, "node_id": node_id,
                      "predicate_json": json.loads(predicate, parse_float=Decimal),
                      "sql_where": sql_where, "logic_en": logic_en})
    report = {"run": run, "nodes": tree_order(by_id), "rules": rules}
    if plugs and rules and run["status"] == "COMPLETED":
        report.update(_plug_rules(conn, key))
    return report


def _plug_rules(conn: psycopg.Connection, key: uuid.UUID) -> dict:
    """{"plug_rules": [rows of run_plug_rules]} or {"plug_rules": [], "plugs_note": why there are none}."""
    try:
        with conn.transaction():
            return {"plug_rules": call_rows(conn, "SELECT * FROM run_plug_rules(%s)", (key,))}
    except psycopg.errors.InsufficientPrivilege:
        return {"plug_rules": [], "plugs_note": "the plugs by rule read the run's facts, which only operators may"}
    except psycopg.errors.ObjectNotInPrerequisiteState as exc:
        return {"plug_rules": [], "plugs_note": exc.diag.message_primary}


def tree_order(by_id: dict[str, dict]) -> list[dict]:
    """Depth first; children sorted by node_id, __UNMAPPED__ last; iterative (deep trees are fine)."""
    children: dict[str | None, list[str]] = {}
    for node_id, node in by_id.items():
        parent = node["parent_node_id"] if node["parent_node_id"] in by_id else None
        children.setdefault(parent, []).append(node_id)
    for ids in children.values():
        ids.sort(key=lambda i: (i == UNMAPPED, i))
    ordered, stack = [], list(reversed(children.get(None, [])))
    while stack:
        node_id = stack.pop()
        ordered.append(by_id[node_id])
        stack.extend(reversed(children.get(node_id, [])))
    return ordered
