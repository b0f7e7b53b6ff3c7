"""create_snapshot: contract §2 on worked examples, the run header, bad input, failures, immutability."""
from __future__ import annotations

import datetime as dt
import threading
import time
from decimal import Decimal

import psycopg
import pytest

from tests.builders import (
    COB,
    cond,
    facts,
    header,
    in_thread,
    open_conn,
    results,
    rule,
    snapshot,
    structure,
    use_case,
    wait_until_blocked,
)

MEASURES = ("daily", "wtd", "ytd")
D = Decimal

TREE = [
    ("FIRM", None),
    ("EMEA", "FIRM"), ("RATES", "EMEA"), ("RATES_1", "RATES"), ("RATES_2", "RATES"), ("FX", "EMEA"), ("FX_1", "FX"),
    ("AMER", "FIRM"), ("EQ", "AMER"), ("EQ_1", "EQ"),
]


@pytest.fixture
def firm(conn):
    structure(conn, "TRADING", TREE)
    return use_case(conn, "Project Sterling", "TRADING")


def test_root_equals_the_sum_of_all_in_scope_facts_including_unmapped(conn, firm):
    facts(conn, firm, [
        ("ACTUAL", "RATES_1", "100.10", "200.20", "300.30", {}),
        ("ACTUAL", "FX_1", "-40.05", "10", "20", {}),
        ("ACTUAL", "EMEA", "7.00", "7", "7", {}),          # a fact on an inner node
        ("ACTUAL", "NO_SUCH_BOOK", "1.01", "2.02", "3.03", {}),
        ("PRIOR", "EQ_1", "5", "6", "7", {}),
    ])
    res = results(conn, snapshot(conn, firm))
    root = res[("FIRM", "ACTUAL")]
    assert (root["daily_natural"], root["wtd_natural"], root["ytd_natural"]) == (D("68.06"), D("219.22"), D("330.33"))
    assert set(res) == {(node, s) for node in [n for n, _ in TREE] + ["__UNMAPPED__"]
                        for s in ("ACTUAL", "PRIOR", "VARIANCE")}
    unmapped = res[("__UNMAPPED__", "ACTUAL")]
    assert (unmapped["node_name"], unmapped["parent_node_id"], unmapped["depth"]) == ("Unmapped", "FIRM", 1)
    assert unmapped["daily_natural"] == D("1.01")
    assert res[("EMEA", "ACTUAL")]["daily_natural"] == D("67.05")
    assert res[("FIRM", "PRIOR")]["ytd_natural"] == D("7.00")


def test_unmapped_node_is_absent_when_every_fact_maps(conn, firm):
    facts(conn, firm, [("ACTUAL", "RATES_1", "1", "1", "1", {})])
    res = results(conn, snapshot(conn, firm))
    assert {node for node, _ in res} == {node for node, _ in TREE}


def test_every_node_gets_actual_prior_and_variance_rows_with_zeros_where_no_facts(conn, firm):
    facts(conn, firm, [("ACTUAL", "RATES_1", "1", "1", "1", {})])
    res = results(conn, snapshot(conn, firm))
    assert set(res) == {(node, s) for node, _ in TREE for s in ("ACTUAL", "PRIOR", "VARIANCE")}
    eq = res[("EQ_1", "PRIOR")]
    assert [eq[f"{m}_{k}"] for m in MEASURES for k in ("natural", "adjusted", "plug")] == [D("0.00")] * 9
    assert eq["is_reconciled"] is True
    assert (res[("EQ_1", "ACTUAL")]["depth"], res[("EQ_1", "ACTUAL")]["parent_node_id"]) == (3, "EQ")


def test_natural_equals_adjusted_plus_plug_at_every_node(conn, firm):
    facts(conn, firm, [
        ("ACTUAL", "RATES_1", "10", "11", "12", {"region": "EMEA"}),
        ("ACTUAL", "RATES_2", "20", "21", "22", {"region": "APAC"}),
        ("ACTUAL", "FX_1", "30", "31", "32", {}),
        ("PRIOR", "EQ_1", "40", "41", "42", {"region": "US"}),
    ])
    rule(conn, firm, "EMEA", cond("region", "equals", "EMEA"))
    rule(conn, firm, "FIRM", cond("daily_amount", "less_than", 35))
    res = results(conn, snapshot(conn, firm))
    for row in res.values():
        for m in MEASURES:
            assert row[f"{m}_natural"] == row[f"{m}_adjusted"] + row[f"{m}_plug"]
        assert row["is_reconciled"] == all(row[f"{m}_plug"] == 0 for m in MEASURES)
    assert res[("EMEA", "ACTUAL")]["daily_adjusted"] == D("10.00")
    assert res[("EQ_1", "PRIOR")]["daily_plug"] == D("40.00")


def test_variance_is_actual_minus_prior_for_all_three_measures(conn, firm):
    facts(conn, firm, [
        ("ACTUAL", "RATES_1", "10.25", "100", "1000", {"book": "x"}),
        ("PRIOR", "RATES_1", "12.50", "90", "1100", {"book": "y"}),
        ("PRIOR", "FX_1", "3", "3", "3", {}),
    ])
    rule(conn, firm, "RATES", cond("book", "equals", "x"))
    res = results(conn, snapshot(conn, firm))
    for node, _ in TREE:
        actual, prior, variance = (res[(node, s)] for s in ("ACTUAL", "PRIOR", "VARIANCE"))
        for m in MEASURES:
            for k in ("natural", "adjusted", "plug"):
                assert variance[f"{m}_{k}"] == actual[f"{m}_{k}"] - prior[f"{m}_{k}"]
    v = res[("RATES_1", "VARIANCE")]
    assert (v["daily_natural"], v["daily_adjusted"], v["daily_plug"]) == (D("-2.25"), D("10.25"), D("-12.50"))
    assert res[("FX", "VARIANCE")]["wtd_natural"] == D("-3.00")


def test_a_parents_rule_governs_only_what_no_deeper_rule_covers(conn, firm):
    facts(conn, firm, [
        ("ACTUAL", "RATES_1", "1", "0", "0", {"strategy": "hedge"}),
        ("ACTUAL", "RATES_1", "2", "0", "0", {"strategy": "flow"}),
        ("ACTUAL", "FX_1", "4", "0", "0", {"strategy": "hedge"}),
        ("ACTUAL", "FX_1", "8", "0", "0", {"strategy": "flow"}),
        ("ACTUAL", "EMEA", "16", "0", "0", {"strategy": "flow"}),
    ])
    rule(conn, firm, "EMEA", cond("strategy", "equals", "flow"))      # the parent: keeps flow
    rule(conn, firm, "RATES", cond("strategy", "equals", "hedge"))    # deeper: keeps hedge under RATES
    res = results(conn, snapshot(conn, firm))
    assert res[("RATES", "ACTUAL")]["daily_adjusted"] == D("1.00")    # RATES' rule, not EMEA's
    assert res[("FX", "ACTUAL")]["daily_adjusted"] == D("8.00")       # EMEA's rule
    assert res[("EMEA", "ACTUAL")]["daily_adjusted"] == D("25.00")    # 1 + 8 + 16
    assert res[("EMEA", "ACTUAL")]["daily_natural"] == D("31.00")
    assert res[("RATES", "ACTUAL")]["is_override"] and res[("EMEA", "VARIANCE")]["is_override"]
    assert not res[("RATES_1", "ACTUAL")]["is_override"]


def test_a_rule_on_the_root_governs_unmapped_facts(conn, firm):
    facts(conn, firm, [("ACTUAL", "LOST", "5", "5", "5", {}), ("ACTUAL", "LOST", "50", "5", "5", {})])
    rule(conn, firm, "FIRM", cond("daily_amount", "greater_than", 10))
    res = results(conn, snapshot(conn, firm))
    assert res[("__UNMAPPED__", "ACTUAL")]["daily_adjusted"] == D("50.00")
    assert res[("__UNMAPPED__", "ACTUAL")]["daily_plug"] == D("5.00")


def test_missing_attributes_make_equals_and_in_false_and_not_equals_and_not_in_true(conn, firm):
    facts(conn, firm, [("ACTUAL", "RATES_1", "1", "1", "1", {}), ("ACTUAL", "FX_1", "2", "2", "2", {}),
                       ("ACTUAL", "EQ_1", "4", "4", "4", {}), ("ACTUAL", "RATES_2", "8", "8", "8", {})])
    rule(conn, firm, "RATES_1", cond("desk", "equals", "x"))
    rule(conn, firm, "FX_1", cond("desk", "not_equals", "x"))
    rule(conn, firm, "EQ_1", cond("desk", "in", ["x", "y"]))
    rule(conn, firm, "RATES_2", cond("desk", "not_in", ["x", "y"]))
    res = results(conn, snapshot(conn, firm))
    assert [res[(n, "ACTUAL")]["daily_adjusted"] for n in ("RATES_1", "FX_1", "EQ_1", "RATES_2")] == [
        D("0.00"), D("2.00"), D("0.00"), D("8.00")]


def test_and_or_conjunctions_and_measure_operators(conn, firm):
    facts(conn, firm, [("ACTUAL", "RATES_1", "5", "50", "500", {"book": "a"}),
                       ("ACTUAL", "RATES_1", "6", "60", "600", {"book": "b"}),
                       ("ACTUAL", "FX_1", "5", "50", "500", {"book": "a"}),
                       ("ACTUAL", "FX_1", "6", "60", "600", {"book": "b"})])
    both = {"conditions": [{"field": "book", "operator": "equals", "value": "a"},
                           {"field": "wtd_amount", "operator": "in", "value": [50, 70.5]}], "conjunction": "AND"}
    either = {"conditions": [{"field": "book", "operator": "equals", "value": "zzz"},
                             {"field": "ytd_amount", "operator": "not_equals", "value": 500}], "conjunction": "OR"}
    rule(conn, firm, "RATES_1", both)
    rule(conn, firm, "FX_1", either)
    res = results(conn, snapshot(conn, firm))
    assert res[("RATES_1", "ACTUAL")]["daily_adjusted"] == D("5.00")
    assert res[("FX_1", "ACTUAL")]["daily_adjusted"] == D("6.00")


def test_other_dates_scenarios_and_use_cases_never_leak_in(conn, firm):
    other = use_case(conn, "Other", "TRADING")
    facts(conn, firm, [("ACTUAL", "RATES_1", "1", "1", "1", {}),
                       ("ACTUAL", "RATES_1", "1000", "1", "1", {}, COB - dt.timedelta(days=1)),
                       ("PRIOR", "RATES_1", "2000", "1", "1", {}, COB + dt.timedelta(days=1))])
    facts(conn, other, [("ACTUAL", "RATES_1", "3000", "1", "1", {}), ("PRIOR", "RATES_1", "4000", "1", "1", {})])
    res = results(conn, snapshot(conn, firm))
    assert res[("FIRM", "ACTUAL")]["daily_natural"] == D("1.00")
    assert res[("FIRM", "PRIOR")]["daily_natural"] == D("0.00")


def test_sums_are_exact_and_do_not_overflow_numeric_18_2(conn, firm):
    big = "9999999999999999.99"
    facts(conn, firm, [("ACTUAL", "RATES_1", big, big, big, {})] * 3
          + [("ACTUAL", "FX_1", "0.10", "0", "0", {}), ("ACTUAL", "FX_1", "0.20", "0", "0", {})])
    res = results(conn, snapshot(conn, firm))
    assert res[("FIRM", "ACTUAL")]["daily_natural"] == D("29999999999999999.97") + D("0.30")
    assert res[("FX", "ACTUAL")]["daily_natural"] == D("0.30")


# --- the run header -------------------------------------------------------------------------------

def test_a_completed_run_has_its_header_counts_and_default_names(conn, firm):
    facts(conn, firm, [("ACTUAL", "RATES_1", "1", "1", "1", {})])
    rule(conn, firm, "EMEA", cond("book", "equals", "x"))
    rule(conn, firm, "AMER", cond("book", "equals", "x"))
    first, second = snapshot(conn, firm), snapshot(conn, firm, by="user123")
    h1, h2 = header(conn, first), header(conn, second)
    assert (h1["run_name"], h2["run_name"]) == ("Run 1", "Run 2")
    assert h1["status"] == "COMPLETED" and h1["error_message"] is None
    assert h1["rules_applied"] == 2
    assert h1["triggered_by"] == conn.execute("SELECT session_user").fetchone()[0]
    assert h2["triggered_by"] == "user123"
    assert (h1["pnl_date"], h1["use_case_id"]) == (COB, firm)
    named = header(conn, snapshot(conn, firm, name="Initial Run"))
    assert named["run_name"] == "Initial Run"
    assert header(conn, snapshot(conn, firm))["run_name"] == "Run 4"


def test_a_runs_duration_is_the_milliseconds_it_took(db_url, conn, firm):
    facts(conn, firm, [("ACTUAL", "RATES_1", "1", "1", "1", {})])
    hold = 0.5
    with open_conn(db_url, autocommit=False) as blocker, open_conn(db_url, autocommit=True) as snapshotter:
        blocker.execute("LOCK TABLE fact_calculated_results IN SHARE MODE")  # the snapshot waits to write results

        def take():
            started = time.monotonic()
            return snapshot(snapshotter, firm), time.monotonic() - started

        thread, outcome = in_thread(take)
        wait_until_blocked(conn, snapshotter.info.backend_pid, thread)
        time.sleep(hold)
        blocker.rollback()
        thread.join(timeout=30)
    run, elapsed = outcome["value"]
    h = header(conn, run)
    assert h["status"] == "COMPLETED"
    # at least the wait, in milliseconds; at most what the client saw (+1: it is rounded up)
    assert hold * 1000 <= h["calculation_duration_ms"] <= elapsed * 1000 + 1


def test_a_run_keeps_the_hierarchy_and_rules_it_used(conn, firm):
    facts(conn, firm, [("ACTUAL", "RATES_1", "1", "1", "1", {"book": "x"})])
    rule_id = rule(conn, firm, "RATES", cond("book", "equals", "x"), "keep book x")
    run = snapshot(conn, firm)
    before = results(conn, run)
    conn.execute("UPDATE dim_hierarchy SET node_name = 'Renamed', parent_node_id = 'AMER' WHERE node_id = 'RATES'")
    conn.execute("""UPDATE metadata_rules
                    SET predicate_json = '{"conditions": [{"field": "book", "operator": "equals", "value": "y"}]}'""")
    assert results(conn, run) == before
    assert before[("RATES", "ACTUAL")]["node_name"] == "Name of RATES"
    recorded = conn.execute("SELECT rule_id, node_id, predicate_json, sql_where, logic_en FROM calculation_run_rules "
                            "WHERE calculation_run_id = %s", (run,)).fetchall()
    assert recorded == [(rule_id, "RATES", cond("book", "equals", "x"),
                         "(coalesce((attributes ->> 'book') = 'x', false))", "keep book x")]
    again = results(conn, snapshot(conn, firm))
    assert again[("RATES", "ACTUAL")]["parent_node_id"] == "AMER"
    assert again[("RATES", "ACTUAL")]["daily_adjusted"] == D("0.00")


# --- bad input: an error and nothing written ----------------------------------------------------------

def run_count(conn) -> int:
    return conn.execute("SELECT count(*) FROM calculation_runs").fetchone()[0]


def test_unknown_use_case_is_an_error_and_writes_no_run(conn, firm):
    with pytest.raises(psycopg.errors.NoDataFound, match="unknown use case 00000000-0000-0000-0000-000000000000"):
        snapshot(conn, "00000000-0000-0000-0000-000000000000")
    assert run_count(conn) == 0


def test_a_structure_without_nodes_is_an_error(conn):
    conn.execute("INSERT INTO hierarchy_structures VALUES ('EMPTY', 'Empty')")
    empty = use_case(conn, "Empty", "EMPTY")
    with pytest.raises(psycopg.errors.NoDataFound, match="structure EMPTY has no nodes"):
        snapshot(conn, empty)
    assert run_count(conn) == 0


def test_no_actual_facts_is_nothing_to_snapshot_but_an_empty_prior_side_is_fine(conn, firm):
    facts(conn, firm, [("PRIOR", "RATES_1", "1", "1", "1", {})])
    with pytest.raises(psycopg.errors.NoDataFound,
                       match='nothing to snapshot: use case "Project Sterling" has no ACTUAL facts for 2025-12-24'):
        snapshot(conn, firm)
    assert run_count(conn) == 0
    with conn.transaction():  # the PRIOR fact superseded by nothing, an ACTUAL one added
        conn.execute("SELECT replace_facts(%s, '2025-12-24', 'PRIOR')", (firm,))
        facts(conn, firm, [("ACTUAL", "RATES_1", "1", "1", "1", {})])
    res = results(conn, snapshot(conn, firm))
    assert res[("FIRM", "PRIOR")]["ytd_natural"] == D("0.00")
    assert res[("FIRM", "VARIANCE")]["ytd_natural"] == D("1.00")


@pytest.mark.parametrize("name, message", [
    ("Taken", "already has a run named 'Taken'"),
    ("   ", "not blank"),
    ("x" * 201, "1 to 200 characters"),
])
def test_a_bad_or_taken_run_name_is_an_error(conn, firm, name, message):
    facts(conn, firm, [("ACTUAL", "RATES_1", "1", "1", "1", {})])
    snapshot(conn, firm, name="Taken")
    with pytest.raises(psycopg.Error, match=message):
        snapshot(conn, firm, name=name)
    assert run_count(conn) == 1


def test_run_names_and_triggered_by_are_stored_exactly_as_given(conn, firm):
    facts(conn, firm, [("ACTUAL", "RATES_1", "1", "1", "1", {})])
    hostile = "Robert'); DROP TABLE calculation_runs; -- ünïcødé \"q\" \\ %s"
    run = snapshot(conn, firm, name=hostile, by=hostile[:100])
    assert (header(conn, run)["run_name"], header(conn, run)["triggered_by"]) == (hostile, hostile[:100])


# --- failure during the computation ---------------------------------------------------------------------

def test_a_failing_computation_records_failed_with_its_error_and_no_results(conn, firm):
    facts(conn, firm, [("ACTUAL", "RATES_1", "1", "1", "1", {})])
    # a stored predicate that no longer validates, written behind the trigger's back
    conn.execute("ALTER TABLE metadata_rules DISABLE TRIGGER rule_is_valid")
    conn.execute("""INSERT INTO metadata_rules (use_case_id, node_id, predicate_json) VALUES
                    (%s, 'RATES', '{"conditions": [{"field": "book", "operator": "contains", "value": "x"}]}')""",
                 (firm,))
    conn.execute("ALTER TABLE metadata_rules ENABLE TRIGGER rule_is_valid")
    warnings = []
    conn.add_notice_handler(lambda diag: warnings.append((diag.severity_nonlocalized, diag.message_primary)))
    started = time.monotonic()
    run = snapshot(conn, firm)
    elapsed = time.monotonic() - started
    h = header(conn, run)
    assert h["status"] == "FAILED"
    assert "unknown operator" in h["error_message"] and "SQLSTATE 22023" in h["error_message"]
    assert 1 <= h["calculation_duration_ms"] <= elapsed * 1000 + 1  # recorded, rounded up, in milliseconds
    assert results(conn, run) == {}
    assert conn.execute("SELECT count(*) FROM calculation_run_rules").fetchone()[0] == 0
    assert [sev for sev, _ in warnings] == ["WARNING"]
    assert str(run) in warnings[0][1] and "FAILED" in warnings[0][1] and "unknown operator" in warnings[0][1]


# --- immutability -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("statement", [
    "UPDATE calculation_runs SET run_name = 'changed'",
    "UPDATE calculation_runs SET status = 'FAILED', error_message = 'x'",
    "DELETE FROM calculation_runs",
    "TRUNCATE calculation_runs CASCADE",
    "UPDATE fact_calculated_results SET daily_adjusted = 0",
    "DELETE FROM fact_calculated_results",
    "TRUNCATE fact_calculated_results",
    "UPDATE calculation_run_rules SET sql_where = 'true'",
    "DELETE FROM calculation_run_rules",
    "TRUNCATE calculation_run_rules",
])
def test_a_finished_run_cannot_be_changed(conn, firm, statement):
    facts(conn, firm, [("ACTUAL", "RATES_1", "1", "1", "1", {})])
    rule(conn, firm, "EMEA", cond("book", "equals", "x"))
    run = snapshot(conn, firm)

    def state():
        return header(conn, run), results(conn, run), conn.execute("SELECT * FROM calculation_run_rules").fetchall()

    before = state()
    assert len(before[2]) == 1
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="calculation runs are immutable"):
        conn.execute(statement)
    assert state() == before


def test_only_delete_use_case_removes_runs(conn, firm):
    facts(conn, firm, [("ACTUAL", "RATES_1", "1", "1", "1", {})])
    rule(conn, firm, "EMEA", cond("book", "equals", "x"))
    snapshot(conn, firm)
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="delete_use_case"):
        conn.execute("DELETE FROM use_cases WHERE use_case_id = %s", (firm,))
    # a hand-set purge mark does not help a plain DELETE of a run
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="calculation runs are immutable"), \
            conn.transaction():
        conn.execute("SELECT set_config('pnl.purging_use_case', %s, true)", (str(firm),))
        conn.execute("DELETE FROM calculation_runs")
    conn.execute("SELECT delete_use_case(%s)", (firm,))
    for table in ("calculation_runs", "fact_calculated_results", "calculation_run_rules", "metadata_rules",
                  "fact_pnl_entries"):
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0, table


# --- concurrency --------------------------------------------------------------------------------------------

def test_two_concurrent_snapshots_each_complete_as_their_own_run(db_url, conn, firm):
    facts(conn, firm, [("ACTUAL", "RATES_1", "1", "1", "1", {})])
    barrier = threading.Barrier(2)
    runs, errors = [], []

    def take():
        try:
            with psycopg.connect(db_url, autocommit=False) as mine:
                mine.execute("SET search_path TO pnl")
                barrier.wait()
                run = snapshot(mine, firm)
                mine.execute("SELECT pg_sleep(0.3)")  # hold the transaction open: the other must wait, not fail
                mine.commit()
                runs.append(run)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=take) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == [] and len(runs) == 2
    names = conn.execute("SELECT run_name, status FROM calculation_runs ORDER BY run_name").fetchall()
    assert names == [("Run 1", "COMPLETED"), ("Run 2", "COMPLETED")]
    for run in runs:
        assert results(conn, run)[("FIRM", "ACTUAL")]["daily_natural"] == D("1.00")
