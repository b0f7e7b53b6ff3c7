"""Migrations through Step 4.2: shape, idempotence, honest back-fill, upgrade = fresh install, rollback,
constraints."""
from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from decimal import Decimal

import psycopg
import pytest

from pnldb import schema
from pnldb.errors import PnlError

BASELINE = "0001_baseline"
CONTRACT_TABLES = {
    "hierarchy_structures", "dim_hierarchy", "use_cases", "metadata_rules", "fact_pnl_entries",
    "use_case_runs", "calculation_runs", "fact_calculated_results",
}
CONTRACT_INDEXES = {
    "ix_calculation_runs_pnl_date", "ix_calculation_runs_use_case_id",
    "ix_calculation_runs_date_use_case", "ix_fact_calculated_results_calc_run_id",
}



def test_migrate_creates_every_contract_table_and_index_in_schema_pnl(set_up_conn):
    applied = schema.migrate(set_up_conn)
    assert applied[:2] == ["0001_baseline", "0002_step_4_2"]
    tables = {r[0] for r in set_up_conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'pnl' AND table_type = 'BASE TABLE'")}
    assert tables >= CONTRACT_TABLES
    indexes = {r[0] for r in set_up_conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'pnl'")}
    assert indexes >= CONTRACT_INDEXES
    composite = set_up_conn.execute(
        "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_calculation_runs_date_use_case'").fetchone()[0]
    assert "(pnl_date, use_case_id)" in composite


def test_second_migrate_is_a_no_op(set_up_conn):
    schema.migrate(set_up_conn)
    before = schema.describe_catalog(set_up_conn)
    assert schema.migrate(set_up_conn) == []
    assert schema.describe_catalog(set_up_conn) == before


def test_install_into_another_schema(set_up_conn):
    schema.create_roles(set_up_conn, "pnl_other")
    schema.migrate(set_up_conn, "pnl_other")
    assert set_up_conn.execute("SELECT to_regclass('pnl_other.calculation_runs') IS NOT NULL").fetchone()[0]
    assert set_up_conn.execute("SELECT to_regclass('pnl.calculation_runs')").fetchone()[0] is None


def _legacy_facts(rng):
    """Legacy facts over several weeks across a year end; some series have several facts a day."""
    start = dt.date(2024, 12, 16)
    rows = []
    for day in range(35):
        date = start + dt.timedelta(days=day)
        if date.weekday() >= 5:
            continue
        for scenario in ("ACTUAL", "PRIOR"):
            for code in ("BOOK_A", "BOOK_B"):
                for book in ("x", "y")[: rng.randint(1, 2)]:
                    rows.append((date, scenario, code, Decimal(rng.randint(-99999, 99999)) / 100, book))
    return rows


def _expected_running_sums(rows):
    """WTD/YTD by the contract's words: running sums within ISO week / calendar year of each series."""
    expected = {}
    wtd, ytd = defaultdict(Decimal), defaultdict(Decimal)
    for i, (date, scenario, code, amount, book) in enumerate(rows):
        series = (scenario, code, book)
        week = (series, date.isocalendar()[:2])
        year = (series, date.year)
        wtd[week] += amount
        ytd[year] += amount
        expected[i] = (amount, wtd[week], ytd[year])
    return expected


def _insert_legacy_data(conn, rng):
    """Pre-4.2 data, written as a pre-4.2 deployment (baseline tables, no SQL layer) wrote it."""
    conn.execute("INSERT INTO pnl.hierarchy_structures VALUES ('S', 'Structure')")
    conn.execute("INSERT INTO pnl.dim_hierarchy (structure_id, node_id, parent_node_id, node_name) VALUES "
                 "('S', 'ROOT', NULL, 'Root'), ('S', 'BOOK_A', 'ROOT', 'A'), ('S', 'BOOK_B', 'ROOT', 'B')")
    use_case = conn.execute(
        "INSERT INTO pnl.use_cases (name, structure_id) VALUES ('Legacy', 'S') RETURNING use_case_id").fetchone()[0]
    rows = _legacy_facts(rng)
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO pnl.fact_pnl_entries (use_case_id, pnl_date, scenario, category_code, amount, attributes) "
            "VALUES (%s, %s, %s, %s, %s, jsonb_build_object('book', %s::text))",
            [(use_case, *row) for row in rows])
    run = conn.execute("INSERT INTO pnl.use_case_runs (use_case_id, pnl_date) VALUES (%s, '2025-01-03') "
                       "RETURNING run_id", (use_case,)).fetchone()[0]
    conn.execute("INSERT INTO pnl.fact_calculated_results (run_id, node_id, scenario, natural_value, "
                 "adjusted_value, plug_value) VALUES (%s, 'ROOT', 'ACTUAL', 10.50, 8.25, 2.25), "
                 "(%s, 'BOOK_A', 'ACTUAL', 10.50, 8.25, 2.25)", (run, run))
    return use_case, rows, run


def _install_baseline_with_legacy_data(conn, rng):
    assert schema.migrate(conn, to=BASELINE) == [BASELINE]
    return _insert_legacy_data(conn, rng)


def test_upgrade_from_populated_baseline_keeps_legacy_rows_and_backfills_running_sums(set_up_conn):
    _, rows, run = _install_baseline_with_legacy_data(set_up_conn, random.Random(7))
    assert schema.migrate(set_up_conn)[0] == "0002_step_4_2"
    got = set_up_conn.execute(
        "SELECT amount, daily_amount, wtd_amount, ytd_amount FROM pnl.fact_pnl_entries ORDER BY id").fetchall()
    assert len(got) == len(rows)
    expected = _expected_running_sums(rows)
    for i, (amount, daily, wtd, ytd) in enumerate(got):
        assert amount == rows[i][3]
        assert (daily, wtd, ytd) == expected[i], rows[i]
    # a year end resets YTD but not the ISO week that spans it (2024-12-30 .. 2025-01-05)
    assert any(r[0] == dt.date(2025, 1, 2) for r in rows)
    legacy = set_up_conn.execute(
        "SELECT run_id, calculation_run_id, daily_natural, daily_adjusted, daily_plug, wtd_natural "
        "FROM pnl.fact_calculated_results ORDER BY result_id").fetchall()
    assert legacy == [(run, None, Decimal("10.50"), Decimal("8.25"), Decimal("2.25"), None)] * 2


def test_an_upgrade_from_a_populated_baseline_leaves_the_catalog_of_a_fresh_install(set_up_conn, conn):
    _install_baseline_with_legacy_data(set_up_conn, random.Random(11))
    assert schema.migrate(set_up_conn) == schema.migration_ids()[1:]
    upgraded = schema.describe_catalog(set_up_conn).splitlines()
    assert upgraded == schema.describe_catalog(conn).splitlines()  # conn: a fresh install (the template)
    assert "CREATE VIEW pnl.v_run_results AS" in upgraded
    assert set_up_conn.execute("SELECT count(*) FROM pnl.fact_calculated_results").fetchone() == (2,)


def test_migrate_to_a_migration_applies_up_to_it_and_no_sql_layer(set_up_conn):
    assert schema.migrate(set_up_conn, to="0002_step_4_2") == ["0001_baseline", "0002_step_4_2"]
    assert set_up_conn.execute("SELECT to_regclass('pnl.calculation_runs') IS NOT NULL, "
                              "to_regclass('pnl.v_run_results')").fetchone() == (True, None)
    assert schema.migrate(set_up_conn, to="0002_step_4_2") == []
    assert schema.rollback(set_up_conn, to="0003_run_rules") == []  # nothing newer than 0003 is applied
    assert schema.rollback(set_up_conn, to=BASELINE) == ["0002_step_4_2"]
    with pytest.raises(PnlError, match=r"^unknown migration '0002'; the migrations are 0001_baseline, 0002_step_4_2, "):
        schema.migrate(set_up_conn, to="0002")


def test_rolling_the_patch_back_returns_the_baseline_schema_with_its_data(set_up_conn):
    schema.migrate(set_up_conn)
    schema.rollback(set_up_conn, to=BASELINE)
    baseline = schema.describe_catalog(set_up_conn)  # with the layer's grants on the tables, which stay
    _insert_legacy_data(set_up_conn, random.Random(3))
    facts = set_up_conn.execute("SELECT * FROM pnl.fact_pnl_entries ORDER BY id").fetchall()
    results = set_up_conn.execute("SELECT * FROM pnl.fact_calculated_results ORDER BY result_id").fetchall()
    schema.migrate(set_up_conn)
    schema.rollback(set_up_conn, to=BASELINE)
    assert schema.describe_catalog(set_up_conn) == baseline
    assert set_up_conn.execute("SELECT * FROM pnl.fact_pnl_entries ORDER BY id").fetchall() == facts
    assert set_up_conn.execute("SELECT * FROM pnl.fact_calculated_results ORDER BY result_id").fetchall() == results


def test_rolling_everything_back_leaves_no_table(set_up_conn):
    schema.migrate(set_up_conn)
    schema.rollback(set_up_conn)
    left = set_up_conn.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'pnl' "
                              "AND table_name NOT LIKE '%yoyo%'").fetchall()
    assert left == []


def _identity_caches(conn):
    return dict(conn.execute(
        "SELECT sequencename, cache_size FROM pg_sequences WHERE schemaname = 'pnl' "
        "AND sequencename IN ('fact_calculated_results_result_id_seq', 'fact_pnl_entries_id_seq')").fetchall())


def test_result_and_fact_ids_are_cached_a_thousand_at_a_time_and_the_rollback_restores_one(set_up_conn):
    schema.migrate(set_up_conn)
    assert _identity_caches(set_up_conn) == {"fact_calculated_results_result_id_seq": 1000,
                                            "fact_pnl_entries_id_seq": 1000}
    schema.rollback(set_up_conn, to="0003_run_rules")
    assert _identity_caches(set_up_conn) == {"fact_calculated_results_result_id_seq": 1,
                                            "fact_pnl_entries_id_seq": 1}


@pytest.fixture
def use_case(conn):
    conn.execute("INSERT INTO hierarchy_structures VALUES ('S', 'S'), ('T', 'T')")
    conn.execute("INSERT INTO dim_hierarchy (structure_id, node_id, parent_node_id, node_name) VALUES "
                 "('S', 'ROOT', NULL, 'Root'), ('S', 'A', 'ROOT', 'A'), ('T', 'TROOT', NULL, 'T root')")
    return conn.execute(
        "INSERT INTO use_cases (name, structure_id) VALUES ('U', 'S') RETURNING use_case_id").fetchone()[0]


def test_legacy_writer_setting_only_amount_gets_the_measures(conn, use_case):
    for date, amount in (("2025-01-06", "10.00"), ("2025-01-07", "5.50"), ("2025-01-13", "1.00")):
        conn.execute("INSERT INTO fact_pnl_entries (use_case_id, pnl_date, scenario, category_code, amount) "
                     "VALUES (%s, %s, 'ACTUAL', 'A', %s)", (use_case, date, amount))
    rows = conn.execute(
        "SELECT amount, daily_amount, wtd_amount, ytd_amount FROM fact_pnl_entries ORDER BY id").fetchall()
    assert rows == [
        (Decimal("10.00"), Decimal("10.00"), Decimal("10.00"), Decimal("10.00")),
        (Decimal("5.50"), Decimal("5.50"), Decimal("15.50"), Decimal("15.50")),
        (Decimal("1.00"), Decimal("1.00"), Decimal("1.00"), Decimal("16.50")),
    ]
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="facts are immutable: UPDATE"):
        conn.execute("UPDATE fact_pnl_entries SET amount = 7.50 WHERE pnl_date = '2025-01-07'")


def test_new_writer_setting_only_measures_gets_amount_equal_to_daily(conn, use_case):
    conn.execute("INSERT INTO fact_pnl_entries (use_case_id, pnl_date, scenario, category_code, daily_amount, "
                 "wtd_amount, ytd_amount) VALUES (%s, '2025-01-07', 'PRIOR', 'A', -3.25, 4.00, 100.00)", (use_case,))
    assert conn.execute("SELECT amount, daily_amount, wtd_amount, ytd_amount FROM fact_pnl_entries").fetchone() == (
        Decimal("-3.25"), Decimal("-3.25"), Decimal("4.00"), Decimal("100.00"))


def test_scenario_budget_is_refused(conn, use_case):
    with pytest.raises(psycopg.errors.CheckViolation, match="fact_pnl_entries_scenario_valid"):
        conn.execute("INSERT INTO fact_pnl_entries (use_case_id, pnl_date, scenario, category_code, amount) "
                     "VALUES (%s, '2025-01-07', 'BUDGET', 'A', 1)", (use_case,))


def test_second_root_is_refused_naming_both_roots(conn, use_case):
    with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="more than one root: ROOT, ROOT2"):
        conn.execute("INSERT INTO dim_hierarchy (structure_id, node_id, parent_node_id, node_name) "
                     "VALUES ('S', 'ROOT2', NULL, 'Second root')")


def test_second_root_is_refused_at_commit_even_without_the_tree_trigger(conn, use_case):
    # the deferred unique constraint is the backstop for writers that bypass the trigger
    with (pytest.raises(psycopg.errors.UniqueViolation, match="dim_hierarchy_one_root_per_structure"),
          conn.transaction()):
        conn.execute("ALTER TABLE dim_hierarchy DISABLE TRIGGER hierarchy_is_a_tree_on_insert")
        conn.execute("INSERT INTO dim_hierarchy (structure_id, node_id, parent_node_id, node_name) "
                     "VALUES ('S', 'ROOT2', NULL, 'Second root')")


def test_parent_from_another_structure_is_refused(conn, use_case):
    with pytest.raises(psycopg.errors.ForeignKeyViolation, match=r"\(S, TROOT\)"):
        conn.execute("INSERT INTO dim_hierarchy (structure_id, node_id, parent_node_id, node_name) "
                     "VALUES ('S', 'B', 'TROOT', 'B under a node of T')")


def test_cycle_is_refused_naming_its_nodes(conn, use_case):
    conn.execute("INSERT INTO dim_hierarchy (structure_id, node_id, parent_node_id, node_name) "
                 "VALUES ('S', 'B', 'A', 'B'), ('S', 'C', 'B', 'C')")
    with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="cycle: A -> C -> B -> A"):
        conn.execute("UPDATE dim_hierarchy SET parent_node_id = 'C' WHERE node_id = 'A'")


def test_hierarchy_view_derives_depth_path_and_leafness(conn, use_case):
    conn.execute("INSERT INTO dim_hierarchy (structure_id, node_id, parent_node_id, node_name) "
                 "VALUES ('S', 'B', 'A', 'B')")
    rows = conn.execute("SELECT node_id, depth, path, is_leaf FROM v_hierarchy_nodes WHERE structure_id = 'S' "
                        "ORDER BY depth").fetchall()
    assert rows == [("ROOT", 0, ["ROOT"], False), ("A", 1, ["ROOT", "A"], False), ("B", 2, ["ROOT", "A", "B"], True)]
