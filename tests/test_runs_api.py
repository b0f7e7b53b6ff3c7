"""SQL API around runs (contract §3): list_runs, get_run, compare_runs and the reporting views."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import psycopg
import pytest

import pnldb
from tests.builders import (
    COB,
    EARLIER,
    NO_SUCH,
    cond,
    facts,
    header,
    results,
    rule,
    snapshot,
    sql_json,
    trading_use_case,
)

D = Decimal
MEASURES = ("daily", "wtd", "ytd")
TREE_DEPTH = {"FIRM": 0, "EMEA": 1, "AMER": 1, "RATES": 2, "FX": 2, "EQ": 2,
              "RATES_1": 3, "RATES_2": 3, "FX_1": 3, "EQ_1": 3, "__UNMAPPED__": 1}


def expected_run_json(conn, run_id) -> dict:
    h = header(conn, run_id)
    return {
        "id": str(h["id"]),
        "pnl_date": h["pnl_date"].isoformat(),
        "use_case_id": str(h["use_case_id"]),
        "run_name": h["run_name"],
        "executed_at": h["executed_at"].astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00"),
        "status": h["status"],
        "triggered_by": h["triggered_by"],
        "duration_ms": h["calculation_duration_ms"],
    }


def list_runs(conn, pnl_date=None, use_case_id=None, max_runs=None):
    if max_runs is None:
        return sql_json(conn, "SELECT list_runs(%s::date, %s::uuid)::text", (pnl_date, use_case_id))
    return sql_json(conn, "SELECT list_runs(%s::date, %s::uuid, %s)::text", (pnl_date, use_case_id, max_runs))


@pytest.fixture
def sterling(conn):
    return trading_use_case(conn)


@pytest.fixture
def other(conn, sterling):
    return trading_use_case(conn, "Other Book")


# --- list_runs ---------------------------------------------------------------------------------------------

def test_list_runs_item_is_exactly_the_run_json_of_the_contract(conn, sterling):
    run = snapshot(conn, sterling, name="Initial Run", by="user123")
    got = list_runs(conn)
    item = expected_run_json(conn, run)
    assert got == {"runs": [item], "total": 1, "filters": {"pnl_date": None, "use_case_id": None}}
    assert item["run_name"] == "Initial Run" and item["triggered_by"] == "user123" and item["status"] == "COMPLETED"
    assert isinstance(item["duration_ms"], int)


@pytest.fixture
def four_runs(conn, sterling, other):
    """Sterling: two runs on COB, one the day before; Other: one run on COB. Returned oldest first."""
    return {
        "s1": snapshot(conn, sterling),
        "s_earlier": snapshot(conn, sterling, EARLIER),
        "o1": snapshot(conn, other),
        "s2": snapshot(conn, sterling),
    }


@pytest.mark.parametrize("by_date, by_use_case, expected", [
    (None, None, ["s2", "o1", "s_earlier", "s1"]),
    (COB, None, ["s2", "o1", "s1"]),
    (EARLIER, None, ["s_earlier"]),
    (None, "sterling", ["s2", "s_earlier", "s1"]),
    (None, "other", ["o1"]),
    (COB, "sterling", ["s2", "s1"]),
    (EARLIER, "other", []),
])
def test_list_runs_filters_by_date_use_case_both_or_neither_newest_first(
        conn, sterling, other, four_runs, by_date, by_use_case, expected):
    use_case_id = {"sterling": sterling, "other": other, None: None}[by_use_case]
    got = list_runs(conn, by_date, use_case_id)
    assert got == {
        "runs": [expected_run_json(conn, four_runs[k]) for k in expected],
        "total": len(expected),
        "filters": {"pnl_date": by_date and by_date.isoformat(), "use_case_id": use_case_id and str(use_case_id)},
    }


def test_list_runs_breaks_executed_at_ties_by_id(conn, sterling, four_runs):
    # runs taken in one transaction share nothing but may share a timestamp; order must still be stable
    with conn.transaction():  # the superuser around the triggers (DDL on the runs is refused: issue 18)
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute("UPDATE calculation_runs SET executed_at = '2025-12-24 09:00:00+00'")
    ids = [r["id"] for r in list_runs(conn)["runs"]]
    assert ids == sorted(str(r) for r in four_runs.values())
    assert {r["executed_at"] for r in list_runs(conn)["runs"]} == {"2025-12-24T09:00:00.000000+00:00"}


def test_max_runs_caps_the_page_with_or_without_filters_and_total_counts_all(conn, sterling, four_runs):
    got = list_runs(conn, max_runs=2)
    assert [r["id"] for r in got["runs"]] == [str(four_runs["s2"]), str(four_runs["o1"])]
    assert got["total"] == 4
    got = list_runs(conn, COB, sterling, max_runs=1)
    assert [r["id"] for r in got["runs"]] == [str(four_runs["s2"])] and got["total"] == 2


def test_more_than_a_hundred_runs_default_page_is_a_hundred_newest(conn, sterling):
    runs = [snapshot(conn, sterling) for _ in range(105)]
    got = list_runs(conn)
    assert got["total"] == 105 and len(got["runs"]) == 100
    assert [r["id"] for r in got["runs"]] == [str(r) for r in reversed(runs[5:])]
    assert got["runs"][0]["run_name"] == "Run 105"
    filtered = list_runs(conn, COB, sterling)
    assert filtered["total"] == 105 and len(filtered["runs"]) == 100
    assert len(list_runs(conn, max_runs=1000)["runs"]) == 105


def test_no_runs_is_an_empty_page(conn, sterling):
    assert list_runs(conn) == {"runs": [], "total": 0, "filters": {"pnl_date": None, "use_case_id": None}}
    assert list_runs(conn, None, sterling)["runs"] == []


def test_list_runs_of_an_unknown_use_case_is_an_error(conn, sterling):
    with pytest.raises(psycopg.errors.NoDataFound, match=f"unknown use case {NO_SUCH}"):
        list_runs(conn, None, NO_SUCH)


@pytest.mark.parametrize("max_runs", [0, -1])
def test_max_runs_below_one_is_an_error(conn, max_runs):
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=f"max_runs must be at least 1, got {max_runs}"):
        list_runs(conn, max_runs=max_runs)


def test_max_runs_null_is_an_error(conn):
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="got NULL"):
        conn.execute("SELECT list_runs(max_runs => NULL)")


def test_list_runs_named_arguments_for_a_dba(conn, sterling, four_runs):
    got = sql_json(conn, "SELECT list_runs(use_case_id => %s, max_runs => 1)::text", (sterling,))
    assert got["total"] == 3 and got["filters"] == {"pnl_date": None, "use_case_id": str(sterling)}


# --- get_run ----------------------------------------------------------------------------------------------

def test_get_run_is_the_run_json_plus_counts_error_and_use_case_name(conn, sterling):
    rule(conn, sterling, "FX_1", cond("book", "equals", "a"))
    run = snapshot(conn, sterling, name="Initial Run", by="user123")
    got = sql_json(conn, "SELECT get_run(%s)::text", (run,))
    assert got == {**expected_run_json(conn, run), "results_count": 10 * 3, "rules_applied": 1,
                   "error_message": None, "use_case_name": "Project Sterling",
                   "reporting_currency": "USD"}  # contract §8


def test_get_run_of_a_failed_run_carries_its_error(conn, sterling):
    conn.execute("ALTER TABLE metadata_rules DISABLE TRIGGER rule_is_valid")
    conn.execute("""INSERT INTO metadata_rules (use_case_id, node_id, predicate_json) VALUES
                    (%s, 'RATES', '{"conditions": [{"field": "book", "operator": "contains", "value": "x"}]}')""",
                 (sterling,))
    conn.execute("ALTER TABLE metadata_rules ENABLE TRIGGER rule_is_valid")
    run = snapshot(conn, sterling)
    got = sql_json(conn, "SELECT get_run(%s)::text", (run,))
    assert got["status"] == "FAILED" and got["results_count"] == 0
    assert "unknown operator" in got["error_message"]


def test_get_run_of_an_unknown_id_is_an_error_naming_it(conn):
    with pytest.raises(psycopg.errors.NoDataFound, match=f"unknown run {NO_SUCH}"):
        conn.execute("SELECT get_run(%s)", (NO_SUCH,))
    with pytest.raises(psycopg.errors.NullValueNotAllowed, match="needs a run_id"):
        conn.execute("SELECT get_run(NULL)")


# --- compare_runs -----------------------------------------------------------------------------------------

def compare(conn, a, b, tolerance=None) -> list[tuple]:
    if tolerance is None:
        return conn.execute("SELECT * FROM compare_runs(%s, %s)", (a, b)).fetchall()
    return conn.execute("SELECT * FROM compare_runs(%s, %s, %s)", (a, b, D(tolerance))).fetchall()


@pytest.fixture
def one_rule_apart(conn, sterling):
    """Run A without rules; a rule on the leaf FX_1 keeping book a only (drops 7.50 ACTUAL, 5.00 PRIOR); run B."""
    run_a = snapshot(conn, sterling, name="before")
    rule(conn, sterling, "FX_1", cond("book", "equals", "a"))
    run_b = snapshot(conn, sterling, name="after")
    return run_a, run_b


def test_runs_one_rule_apart_differ_exactly_on_that_node_and_its_ancestors(conn, one_rule_apart):
    run_a, run_b = one_rule_apart
    res_a = results(conn, run_a)
    change = {"ACTUAL": D("-7.50"), "PRIOR": D("-5.00"), "VARIANCE": D("-2.50")}
    expected = [
        (node, scenario, m, res_a[(node, scenario)][f"{m}_adjusted"],
         res_a[(node, scenario)][f"{m}_adjusted"] + change[scenario], change[scenario])
        for node in ("FIRM", "EMEA", "FX", "FX_1")  # depth 0, 1, 2, 3
        for scenario in ("ACTUAL", "PRIOR", "VARIANCE")
        for m in MEASURES
    ]
    got = compare(conn, run_a, run_b)
    assert got == expected
    assert got[0] == ("FIRM", "ACTUAL", "daily", D("1000097.25"), D("1000089.75"), D("-7.50"))
    assert ("FIRM", "VARIANCE", "ytd", D("3000513.05"), D("3000510.55"), D("-2.50")) in got


def test_difference_is_b_minus_a(conn, one_rule_apart):
    run_a, run_b = one_rule_apart
    forward, backward = compare(conn, run_a, run_b), compare(conn, run_b, run_a)
    assert [(n, s, m, b, a, -d) for n, s, m, a, b, d in backward] == forward


def test_a_run_compared_with_itself_reports_nothing(conn, one_rule_apart):
    assert compare(conn, one_rule_apart[0], one_rule_apart[0]) == []
    assert compare(conn, one_rule_apart[1], one_rule_apart[1]) == []


@pytest.mark.parametrize("tolerance, scenarios", [
    ("0", {"ACTUAL", "PRIOR", "VARIANCE"}),
    ("2.49", {"ACTUAL", "PRIOR", "VARIANCE"}),
    ("2.50", {"ACTUAL", "PRIOR"}),  # strictly more than the tolerance
    ("5", {"ACTUAL"}),
    ("7.50", set()),
])
def test_tolerance_keeps_only_differences_strictly_above_it(conn, one_rule_apart, tolerance, scenarios):
    got = compare(conn, *one_rule_apart, tolerance)
    assert {row[1] for row in got} == scenarios
    assert len(got) == 4 * 3 * len(scenarios)


def test_a_node_present_in_one_run_only_counts_zero_on_the_other_side(conn, sterling):
    run_a = snapshot(conn, sterling)
    facts(conn, sterling, [("ACTUAL", "NOT_A_NODE", "3.00", "4.00", "5.00", {})])
    run_b = snapshot(conn, sterling)
    got = compare(conn, run_a, run_b)
    unmapped = [r for r in got if r[0] == "__UNMAPPED__"]
    assert unmapped == [
        ("__UNMAPPED__", "ACTUAL", "daily", D(0), D("3.00"), D("3.00")),
        ("__UNMAPPED__", "ACTUAL", "wtd", D(0), D("4.00"), D("4.00")),
        ("__UNMAPPED__", "ACTUAL", "ytd", D(0), D("5.00"), D("5.00")),
        ("__UNMAPPED__", "VARIANCE", "daily", D(0), D("3.00"), D("3.00")),
        ("__UNMAPPED__", "VARIANCE", "wtd", D(0), D("4.00"), D("4.00")),
        ("__UNMAPPED__", "VARIANCE", "ytd", D(0), D("5.00"), D("5.00")),
    ]
    assert [r[0] for r in got] == ["FIRM"] * 6 + ["__UNMAPPED__"] * 6
    back = compare(conn, run_b, run_a)
    assert [r[3:] for r in back if r[0] == "__UNMAPPED__"] == \
        [(D(v), D(0), -D(v)) for v in ("3.00", "4.00", "5.00")] * 2


def test_rows_come_in_depth_node_scenario_measure_order(conn, sterling):
    run_a = snapshot(conn, sterling)
    rule(conn, sterling, "EMEA", cond("book", "equals", "b"))
    rule(conn, sterling, "EQ", cond("book", "equals", "b"))
    run_b = snapshot(conn, sterling)
    got = compare(conn, run_a, run_b)
    order = {"ACTUAL": 0, "PRIOR": 1, "VARIANCE": 2}
    keys = [(TREE_DEPTH[n], n, order[s], MEASURES.index(m)) for n, s, m, *_ in got]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert {r[0] for r in got} == {"FIRM", "EMEA", "AMER", "RATES", "RATES_1", "FX", "FX_1", "EQ", "EQ_1"}


def test_runs_of_different_dates_compare_with_a_notice(conn, sterling):
    notices = []
    conn.add_notice_handler(lambda d: notices.append((d.severity_nonlocalized, d.message_primary)))
    run_a, run_b = snapshot(conn, sterling, EARLIER), snapshot(conn, sterling)
    got = compare(conn, run_a, run_b)
    assert ("FIRM", "ACTUAL", "daily", D("1.00"), D("1000097.25"), D("1000096.25")) in got
    assert notices == [("NOTICE", "comparing runs of different dates: 2025-12-23 vs 2025-12-24")]
    notices.clear()
    compare(conn, run_b, run_b)
    assert notices == []


def test_runs_of_different_use_cases_are_an_error(conn, sterling, other):
    run_a, run_b = snapshot(conn, sterling), snapshot(conn, other)
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="belong to different use cases"):
        compare(conn, run_a, run_b)


def test_unknown_runs_are_an_error_naming_them(conn, sterling):
    run = snapshot(conn, sterling)
    other_missing = "11111111-1111-1111-1111-111111111111"
    for a, b, named in [(NO_SUCH, run, NO_SUCH), (run, NO_SUCH, NO_SUCH), (NO_SUCH, NO_SUCH, NO_SUCH),
                        (NO_SUCH, other_missing, f"{NO_SUCH}, {other_missing}")]:
        with pytest.raises(psycopg.errors.NoDataFound) as caught:
            compare(conn, a, b)
        assert caught.value.diag.message_primary == f"unknown run {named}"


@pytest.mark.parametrize("tolerance", ["-0.01", None])
def test_negative_or_null_tolerance_is_an_error(conn, sterling, tolerance):
    run = snapshot(conn, sterling)
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="tolerance must be zero or positive"):
        conn.execute("SELECT * FROM compare_runs(%s, %s, %s::numeric)", (run, run, tolerance))


def test_a_failed_run_cannot_be_compared(conn, sterling):
    good = snapshot(conn, sterling)
    conn.execute("ALTER TABLE metadata_rules DISABLE TRIGGER rule_is_valid")
    conn.execute("""INSERT INTO metadata_rules (use_case_id, node_id, predicate_json) VALUES
                    (%s, 'RATES', '{"conditions": [{"field": "book", "operator": "contains", "value": "x"}]}')""",
                 (sterling,))
    conn.execute("ALTER TABLE metadata_rules ENABLE TRIGGER rule_is_valid")
    failed = snapshot(conn, sterling)
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match=f"run {failed} is FAILED"):
        compare(conn, good, failed)


# --- views ------------------------------------------------------------------------------------------------

def view_rows(conn, query, params=()) -> list[dict]:
    cur = conn.execute(query, params)
    names = [c.name for c in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def test_v_calculation_runs_is_the_header_plus_use_case_name_and_results_count(conn, sterling, other):
    run = snapshot(conn, sterling, name="Initial Run", by="user123")
    snapshot(conn, other)
    got = view_rows(conn, "SELECT * FROM v_calculation_runs WHERE id = %s", (run,))
    assert got == [{**header(conn, run), "use_case_name": "Project Sterling", "results_count": 30}]
    table_columns = [c.name for c in conn.execute("SELECT * FROM calculation_runs LIMIT 0").description]
    view_columns = [c.name for c in conn.execute("SELECT * FROM v_calculation_runs LIMIT 0").description]
    assert set(table_columns) < set(view_columns)
    assert conn.execute("SELECT count(*) FROM v_calculation_runs").fetchone()[0] == 2


def test_v_run_results_pivots_the_three_scenario_rows_of_each_node(conn, sterling):
    rule(conn, sterling, "FX_1", cond("book", "equals", "a"))
    run = snapshot(conn, sterling)
    snapshot(conn, sterling)  # another run must not mix in
    res = results(conn, run)
    got = view_rows(conn, "SELECT * FROM v_run_results WHERE calculation_run_id = %s ORDER BY depth, node_id", (run,))
    assert [r["node_id"] for r in got] == sorted(TREE_DEPTH.keys() - {"__UNMAPPED__"},
                                                 key=lambda n: (TREE_DEPTH[n], n))
    for row in got:
        node = row["node_id"]
        actual = res[(node, "ACTUAL")]
        expected = {
            "calculation_run_id": run, "use_case_id": sterling, "pnl_date": COB,
            "node_id": node, "parent_node_id": actual["parent_node_id"], "node_name": actual["node_name"],
            "depth": actual["depth"], "is_override": actual["is_override"],
            "actual_is_reconciled": actual["is_reconciled"],
            "reporting_currency": "USD",  # contract §8, the last column
        }
        for m in MEASURES:
            expected[f"{m}_actual"] = actual[f"{m}_adjusted"]
            expected[f"{m}_prior"] = res[(node, "PRIOR")][f"{m}_adjusted"]
            expected[f"{m}_variance"] = res[(node, "VARIANCE")][f"{m}_adjusted"]
            expected[f"{m}_actual_natural"] = actual[f"{m}_natural"]
            expected[f"{m}_actual_plug"] = actual[f"{m}_plug"]
        assert row == expected
    fx = next(r for r in got if r["node_id"] == "FX_1")
    assert (fx["daily_actual"], fx["daily_prior"], fx["daily_variance"]) == (D("40.00"), D("0.00"), D("40.00"))
    assert (fx["daily_actual_natural"], fx["daily_actual_plug"], fx["is_override"]) == (D("47.50"), D("7.50"), True)


def test_contract_columns_of_v_run_results_come_first(conn):
    columns = [c.name for c in conn.execute("SELECT * FROM v_run_results LIMIT 0").description]
    contract = [f"{m}_{s}" for m in MEASURES for s in ("actual", "prior", "variance")]
    node_columns = ["node_id", "parent_node_id", "node_name", "depth", "is_override"]
    assert columns[:len(node_columns) + 3] == ["calculation_run_id", "use_case_id", "pnl_date"] + node_columns
    assert columns[len(node_columns) + 3:][:len(contract)] == contract


@pytest.mark.parametrize("view", ["v_calculation_runs", "v_run_results"])
def test_views_explain_themselves_and_every_column(conn, view):
    assert conn.execute("SELECT obj_description(%s::regclass, 'pg_class')", (f"pnl.{view}",)).fetchone()[0]
    undocumented = conn.execute(
        """SELECT a.attname FROM pg_attribute a
           WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped
             AND col_description(a.attrelid, a.attnum) IS NULL""", (f"pnl.{view}",)).fetchall()
    assert undocumented == []


# --- the Python API keeps working on top -------------------------------------------------------------------

def test_python_api_wrappers(db_url, sterling, conn):
    with pnldb.connect(db_url) as api:
        first = pnldb.create_snapshot(api, sterling, COB, run_name="Initial Run", triggered_by="user123")
        assert first["results_count"] == 30 and first["pnl_date"] == COB
        rule(conn, sterling, "FX_1", cond("book", "equals", "a"))
        second = pnldb.create_snapshot(api, sterling, COB)
        listed = pnldb.list_runs(api, pnl_date=COB)
        assert [r["id"] for r in listed["runs"]] == [second["id"], first["id"]] and listed["total"] == 2
        assert listed["filters"] == {"pnl_date": COB, "use_case_id": None}
        assert pnldb.list_runs(api, use_case_id=sterling, max_runs=1)["total"] == 2
        assert pnldb.get_run(api, first["id"])["use_case_name"] == "Project Sterling"
        diff = pnldb.compare_runs(api, first["id"], second["id"], tolerance=D("5"))
        assert len(diff) == 12 and diff[0] == {"node_id": "FIRM", "scenario": "ACTUAL", "measure": "daily",
                                               "value_a": D("1000097.25"), "value_b": D("1000089.75"),
                                               "difference": D("-7.50")}
        summary = pnldb.delete_use_case(api, sterling)
        assert summary["calculation_runs_purged"] == 2 and summary["results_purged"] == 60
