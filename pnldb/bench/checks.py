"""The bench's correctness checks: a snapshot's root ties out to the in-scope facts, and the engine
equals the Python reference row for row. A failed check fails the bench, however fast it was."""
from __future__ import annotations

import uuid
from decimal import Decimal

import psycopg

from pnldb import api
from pnldb.bench.generation import COB_DATE, MAIN_USE_CASE, level_counts, node_count, node_id
from pnldb.errors import PnlError
from pnldb.vocabulary import RESULT_VALUE_COLUMNS, SCENARIOS

# the columns of a result row, as the engine stores them and the reference returns them
RESULT_COLUMNS = ["node_id", "parent_node_id", "node_name", "depth", "scenario", *RESULT_VALUE_COLUMNS,
                  "is_override", "is_reconciled"]
REFERENCE_TABLE = "bench_reference_rows"


def check_run(conn: psycopg.Connection, s: str, floor_rows: list) -> tuple[uuid.UUID, dict]:
    """A committed snapshot, checked: it completed, every node has its three rows, and the root's
    natural values equal the sums of all in-scope facts (the floor's groups added up)."""
    run = api.create_snapshot(conn, MAIN_USE_CASE, COB_DATE, "bench check")
    if run["status"] != "COMPLETED":
        raise PnlError(f"create_snapshot ended {run['status']}: {run['error_message']}")
    run_id = uuid.UUID(run["id"])
    expected: dict[str, list[Decimal]] = {sc: [Decimal(0)] * 3 for sc in SCENARIOS}
    unmapped = False
    codes = set(node_id(lvl, n) for lvl, count in enumerate(level_counts()) for n in range(1, count + 1))
    for scenario, code, *sums in floor_rows:
        expected[scenario] = [a + b for a, b in zip(expected[scenario], sums)]
        unmapped = unmapped or code not in codes
    rows = conn.execute(
        f"""SELECT scenario, daily_natural, wtd_natural, ytd_natural, count(*) OVER ()
            FROM {s}.fact_calculated_results WHERE calculation_run_id = %s AND node_id = %s""",
        (run_id, node_id(0, 1))).fetchall()
    got = {sc: list(vals) for sc, *vals, _ in rows}
    count = conn.execute(f"SELECT count(*) FROM {s}.fact_calculated_results WHERE calculation_run_id = %s",
                         (run_id,)).fetchone()[0]
    want_count = 3 * (node_count() + (1 if unmapped else 0))
    if count != want_count:
        raise PnlError(f"the snapshot has {count} result rows; expected {want_count} (3 per node"
                       f"{' and for __UNMAPPED__' if unmapped else ''})")
    for scenario in SCENARIOS:
        if got.get(scenario) != expected[scenario]:
            raise PnlError(f"the root's {scenario} natural values {got.get(scenario)} differ from the sums of the "
                           f"in-scope facts {expected[scenario]}")
    return run_id, {"root_ties_out": True, "result_rows": count}


def _reference_table_sql(s: str) -> str:
    numeric = set(RESULT_VALUE_COLUMNS)
    types = {"depth": "integer", "is_override": "boolean", "is_reconciled": "boolean"}
    columns = ", ".join(f"{c} {types.get(c, 'numeric' if c in numeric else 'text')}" for c in RESULT_COLUMNS)
    return f"CREATE TABLE {s}.{REFERENCE_TABLE} ({columns})"


def store_reference_rows(conn: psycopg.Connection, s: str, rows: list[dict]) -> None:
    """The reference's rows into a table of the scratch schema, for compare_with_reference."""
    with conn.transaction():
        conn.execute(f"DROP TABLE IF EXISTS {s}.{REFERENCE_TABLE}")
        conn.execute(_reference_table_sql(s))
        with conn.cursor().copy(f"COPY {s}.{REFERENCE_TABLE} ({', '.join(RESULT_COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([row[c] for c in RESULT_COLUMNS])


def compare_with_reference(conn: psycopg.Connection, s: str, run_id: uuid.UUID) -> None:
    """Every row of the engine's run equals the reference's, every node, scenario and measure column,
    compared in SQL (exact numeric equality), both ways."""
    listed = ", ".join(RESULT_COLUMNS)
    ref = f"{s}.{REFERENCE_TABLE}"
    diff = conn.execute(
        f"""WITH engine AS (SELECT {listed} FROM {s}.fact_calculated_results WHERE calculation_run_id = %s),
                 only_engine AS (SELECT {listed} FROM engine EXCEPT ALL SELECT {listed} FROM {ref}),
                 only_reference AS (SELECT {listed} FROM {ref} EXCEPT ALL SELECT {listed} FROM engine)
            SELECT (SELECT count(*) FROM engine), (SELECT count(*) FROM {ref}),
                   (SELECT count(*) FROM only_engine), (SELECT count(*) FROM only_reference),
                   (SELECT row_to_json(x)::text
                    FROM (SELECT * FROM only_engine ORDER BY node_id, scenario LIMIT 1) x),
                   (SELECT row_to_json(x)::text
                    FROM (SELECT * FROM only_reference ORDER BY node_id, scenario LIMIT 1) x)""",
        (run_id,)).fetchone()
    engine_rows, reference_rows, only_engine, only_reference, engine_row, reference_row = diff
    if only_engine or only_reference or engine_rows != reference_rows:
        raise PnlError(f"the engine's results differ from the Python reference's: {engine_rows} engine rows, "
                       f"{reference_rows} reference rows, {only_engine} engine row(s) and {only_reference} reference "
                       f"row(s) without an equal; first engine row without an equal: {engine_row}; first reference "
                       f"row without an equal: {reference_row}")
