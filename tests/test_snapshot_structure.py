"""How create_snapshot is built: its node rows type follows the vocabulary and survives re-installs, its
guards are not callable on their own, its one read still runs in parallel workers, and the planner sizes
that read's scan of a slice right."""
from __future__ import annotations

import datetime as dt
import re
import uuid
from decimal import Decimal

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from pnldb import schema
from pnldb.errors import PnlError
from pnldb.vocabulary import MEASURES, SCENARIOS
from tests.builders import COB, cond, rule, structure, use_case

NODE_COLUMNS = ["node_id", "parent_node_id", "node_name", "depth", "is_override"]


def type_attributes(conn) -> list[tuple[str, str]]:
    return conn.execute(
        """SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_type t
           JOIN pg_attribute a ON a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped
           WHERE t.oid = 'pnl.snapshot_node'::regtype ORDER BY a.attnum""").fetchall()


def type_oid(conn) -> int:
    return conn.execute("SELECT 'pnl.snapshot_node'::regtype::oid").fetchone()[0]


def test_node_values_cover_every_scenario_and_measure_natural_and_adjusted():
    values = schema.template_context()["node_values"]
    assert {(v["scenario"], v["measure"], v["kind"]) for v in values} == {
        (s, m, k) for s in SCENARIOS for m in MEASURES for k in ("natural", "adjusted")}
    assert [v["included_only"] for v in values] == [v["kind"] == "adjusted" for v in values]
    assert len({v["column"] for v in values}) == len(values)


def test_the_node_type_has_the_node_columns_then_one_numeric_per_node_value(conn):
    columns = [v["column"] for v in schema.template_context()["node_values"]]
    assert type_attributes(conn) == [
        ("node_id", "text"), ("parent_node_id", "text"), ("node_name", "text"), ("depth", "integer"),
        ("is_override", "boolean"), *((c, "numeric") for c in columns)]


def test_reinstalling_keeps_the_node_type_and_rebuilds_a_stale_one(conn):
    before = type_oid(conn)
    schema.install_sql(conn)
    assert type_oid(conn) == before
    conn.execute("DROP TYPE pnl.snapshot_node")
    conn.execute("CREATE TYPE pnl.snapshot_node AS (node_id text, daily numeric)")  # as an older vocabulary had it
    schema.install_sql(conn)
    assert [name for name, _ in type_attributes(conn)][:5] == NODE_COLUMNS
    assert len(type_attributes(conn)) == len(NODE_COLUMNS) + len(schema.template_context()["node_values"])


def test_a_stale_node_type_that_something_else_uses_stops_the_install_instead_of_vanishing(conn):
    conn.execute("DROP TYPE pnl.snapshot_node")
    conn.execute("CREATE TYPE pnl.snapshot_node AS (node_id text)")
    conn.execute("CREATE TABLE public.keeps_nodes (node pnl.snapshot_node)")
    with pytest.raises(PnlError) as refused:
        schema.install_sql(conn)
    assert str(refused.value).startswith(
        "installing sql/0305_type_snapshot_node.sql failed, nothing was changed: cannot drop type snapshot_node "
        "because other objects depend on it. column node of table keeps_nodes depends on type snapshot_node.")
    assert conn.execute("SELECT to_regclass('public.keeps_nodes') IS NOT NULL").fetchone()[0]
    assert type_attributes(conn) == [("node_id", "text")]  # the install was rolled back as a whole


def test_the_guards_are_not_callable_on_their_own(conn, db_url):
    structure(conn, "S", [("ROOT", None)])
    uc = use_case(conn, "U", "S")
    name = f"t_operator_{uuid.uuid4().hex[:8]}"
    conn.execute(f"CREATE ROLE {name} LOGIN PASSWORD 'pw' IN ROLE pnl_operator")
    try:
        with psycopg.connect(make_conninfo(db_url, user=name, password="pw"), autocommit=True) as operator, \
                pytest.raises(psycopg.errors.InsufficientPrivilege):
            operator.execute("SELECT pnl.open_snapshot_run(%s, %s, 'x', 'y')", (uc, COB))
        assert conn.execute("SELECT count(*) FROM calculation_runs").fetchone()[0] == 0
    finally:
        conn.execute(f"DROP ROLE {name}")


def test_the_one_read_scans_the_facts_in_parallel_workers(conn):
    """Its fact scan and the rule predicates run below a Gather: the statement stays read-only and
    parallel safe. Parallel plans are made cheap here so that a small table gets one too."""
    try:
        conn.execute("LOAD 'auto_explain'")
    except psycopg.Error:
        pytest.skip("auto_explain cannot be loaded on this server")
    structure(conn, "S", [("ROOT", None), ("A", "ROOT"), ("B", "A")])
    uc = use_case(conn, "U", "S")
    conn.execute(
        """INSERT INTO fact_pnl_entries (use_case_id, pnl_date, scenario, category_code, daily_amount, wtd_amount,
                                         ytd_amount, amount, attributes)
           SELECT %s, %s, CASE WHEN i %% 2 = 0 THEN 'ACTUAL' ELSE 'PRIOR' END, (ARRAY['A', 'B', 'LOST'])[i %% 3 + 1],
                  1, 2, 3, 1, jsonb_build_object('book', 'b' || i %% 5)
           FROM generate_series(1, 20000) i""", (uc, COB))
    conn.execute("ANALYZE fact_pnl_entries")
    rule(conn, uc, "ROOT", cond("book", "equals", "b1"))
    rule(conn, uc, "B", cond("book", "not_equals", "b2"))
    plans = []
    conn.add_notice_handler(lambda diag: plans.append(diag.message_primary or ""))
    for setting in ("auto_explain.log_min_duration = 0", "auto_explain.log_nested_statements = on",
                    "auto_explain.log_level = notice", "min_parallel_table_scan_size = 0",
                    "parallel_setup_cost = 0", "max_parallel_workers_per_gather = 2"):
        conn.execute(f"SET {setting}")
    run = conn.execute("SELECT create_snapshot(%s, %s)", (uc, COB)).fetchone()[0]
    [plan] = [p for p in plans if "fact_pnl_entries f" in p and "WITH RECURSIVE" in p]
    gather = plan.find("Gather")
    scan = re.search(r"Parallel [A-Za-z ]*Scan on fact_pnl_entries f", plan)
    assert gather >= 0 and scan and gather < scan.start(), plan
    root = conn.execute("SELECT daily_natural, daily_adjusted FROM fact_calculated_results "
                        "WHERE calculation_run_id = %s AND node_id = 'ROOT' AND scenario = 'ACTUAL'", (run,)).fetchone()
    # ACTUAL is every even i: 10,000 facts; the root's rule keeps book b1 on A and on LOST, B's rule all but b2
    kept = conn.execute(
        """SELECT count(*) FROM generate_series(2, 20000, 2) i
           WHERE CASE (ARRAY['A', 'B', 'LOST'])[i % 3 + 1] WHEN 'B' THEN i % 5 <> 2 ELSE i % 5 = 1 END""").fetchone()[0]
    assert root == (Decimal("10000.00"), Decimal(kept))


def slice_estimate(conn, uc, day, load_ids) -> int:
    """The planner's rows for the snapshot's own scan predicate (sql/_fact_pipeline.sql governed_facts)."""
    plan = conn.execute("EXPLAIN (FORMAT JSON) SELECT * FROM fact_pnl_entries f "
                        "WHERE f.use_case_id = %s AND f.pnl_date = %s AND f.load_id = ANY (%s)",
                        (uc, day, load_ids)).fetchone()[0]
    return plan[0]["Plan"]["Plan Rows"]


def test_the_snapshots_scan_is_estimated_at_its_slices_size_among_other_dates(conn):
    """A load ties use case, date and load id together; taken as independent, their selectivities
    multiplied put a 2,000,000-fact slice among 20 other dates at 4,501 rows, and the plan joined each
    fact to the tree by a nested loop (20 minutes instead of seconds). Migration 0019's statistics give
    the planner the slice's size."""
    structure(conn, "S", [("ROOT", None), ("A", "ROOT")])
    uc = use_case(conn, "U", "S")
    days = [COB - dt.timedelta(days=k) for k in range(12)]
    for day in days:  # a daily load each, as production loads come
        conn.execute(
            """INSERT INTO fact_pnl_entries (use_case_id, pnl_date, scenario, category_code, daily_amount, wtd_amount,
                                             ytd_amount, amount, attributes)
               SELECT %s, %s, 'ACTUAL', 'A', 1, 1, 1, 1, '{}' FROM generate_series(1, 5000)""", (uc, day))
    conn.execute("SELECT analyze_facts()")
    loads = conn.execute("SELECT array_agg(DISTINCT load_id) FROM fact_pnl_entries WHERE pnl_date = %s",
                         (COB,)).fetchone()[0]
    assert len(loads) == 1
    assert slice_estimate(conn, uc, COB, loads) >= 2500

    conn.execute("DROP STATISTICS fact_pnl_entries_slices")
    conn.execute("ANALYZE fact_pnl_entries")
    assert slice_estimate(conn, uc, COB, loads) < 1000  # what the planner guessed before 0019
