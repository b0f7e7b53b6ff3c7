"""Small builders for test data, straight into the tables."""
from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

COB = dt.date(2025, 12, 24)


def structure(conn, structure_id: str, nodes: list[tuple[str, str | None]]) -> None:
    """nodes: (node_id, parent_node_id); names are 'Name of <id>'."""
    conn.execute("INSERT INTO hierarchy_structures (structure_id, name) VALUES (%s, %s)", (structure_id, structure_id))
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO dim_hierarchy (structure_id, node_id, parent_node_id, node_name) VALUES (%s, %s, %s, %s)",
            [(structure_id, node, parent, f"Name of {node}") for node, parent in nodes])


def use_case(conn, name: str, structure_id: str):
    return conn.execute("INSERT INTO use_cases (name, structure_id) VALUES (%s, %s) RETURNING use_case_id",
                        (name, structure_id)).fetchone()[0]


def facts(conn, use_case_id, rows) -> None:
    """rows: (scenario, category_code, daily, wtd, ytd, attributes dict[, pnl_date])."""
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO fact_pnl_entries (use_case_id, pnl_date, scenario, category_code, daily_amount, "
            "wtd_amount, ytd_amount, amount, attributes) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb)",
            [(use_case_id, row[6] if len(row) > 6 else COB, row[0], row[1], Decimal(row[2]), Decimal(row[3]),
              Decimal(row[4]), Decimal(row[2]), json.dumps(row[5])) for row in rows])


def rule(conn, use_case_id, node_id: str, predicate: dict, logic_en: str | None = None) -> int:
    return conn.execute(
        "INSERT INTO metadata_rules (use_case_id, node_id, predicate_json, logic_en) VALUES (%s, %s, %s::jsonb, %s) "
        "RETURNING rule_id", (use_case_id, node_id, json.dumps(predicate), logic_en)).fetchone()[0]


def cond(field: str, operator: str, value, conjunction: str | None = None) -> dict:
    predicate = {"conditions": [{"field": field, "operator": operator, "value": value}]}
    if conjunction:
        predicate["conjunction"] = conjunction
    return predicate


def snapshot(conn, use_case_id, date=COB, name=None, by=None):
    return conn.execute("SELECT create_snapshot(%s, %s, %s, %s)", (use_case_id, date, name, by)).fetchone()[0]


def results(conn, run_id) -> dict:
    """{(node_id, scenario): row dict} of a run."""
    cur = conn.execute("SELECT * FROM fact_calculated_results WHERE calculation_run_id = %s", (run_id,))
    names = [c.name for c in cur.description]
    return {(r["node_id"], r["scenario"]): r for r in (dict(zip(names, row)) for row in cur.fetchall())}
