"""Explaining a run (contract §6): run_facts, explain_node, explain_plug, explain_variance and run_rule_stats
read a run's own inputs — the loads, rules and tree it recorded — and add up to its stored values exactly,
also after the facts, the rules and the hierarchy have changed."""
from __future__ import annotations

import json
from decimal import Decimal

import psycopg
import pytest

import pnldb
from pnldb import api, schema
from tests.builders import (
    COB,
    EARLIER,
    NO_SUCH,
    TRADING_TREE,
    cond,
    facts,
    results,
    rule,
    snapshot,
    structure,
    use_case,
)

D = Decimal
MEASURES = ("daily", "wtd", "ytd")
SCENARIOS = ("ACTUAL", "PRIOR")
UNMAPPED = "__UNMAPPED__"

# (scenario, category_code, daily, wtd, ytd, attributes); GHOST is no node of the tree when the run is taken
ACTUAL_FACTS = [
    ("ACTUAL", "RATES_1", "100.00", "300.00", "1000.00", {"book": "a", "strategy": "FLOW"}),  # RATES_1 rule: in
    ("ACTUAL", "RATES_1", "-40.00", "10.00", "20.00", {"book": "b"}),                         # RATES_1 rule: out
    ("ACTUAL", "RATES", "25.50", "25.50", "25.50", {"book": "c"}),                            # EMEA rule: in
    ("ACTUAL", "RATES", "12.00", "1.00", "2.00", {"book": "b"}),                              # EMEA rule: out
    ("ACTUAL", "EMEA", "7.25", "7.25", "7.25", {"book": "a"}),                                # EMEA rule: in
    ("ACTUAL", "FX_1", "40.00", "80.00", "400.00", {"book": "a", "strategy": "FLOW"}),        # FX rule: in
    ("ACTUAL", "FX_1", "-60.00", "5.00", "6.00", {"book": "a"}),                              # FX rule: out
    ("ACTUAL", "FX", "3.00", "3.00", "3.00", {"strategy": "HEDGE"}),                          # FX rule: out
    ("ACTUAL", "EQ_1", "1000000.00", "2000000.00", "3000000.55", {"book": "a"}),              # FIRM rule: in
    ("ACTUAL", "EQ_1", "500.00", "1.00", "1.00", {"book": "x"}),                              # FIRM rule: out
    ("ACTUAL", "GHOST", "11.00", "22.00", "33.00", {"book": "c"}),                            # FIRM rule: in
    ("ACTUAL", "GHOST", "-5.00", "-5.00", "-5.00", {"book": "x"}),                            # FIRM rule: out
    ("ACTUAL", "EQ", "5.00", "0.00", "0.00", {}),                                             # FIRM rule: in
]
PRIOR_FACTS = [
    ("PRIOR", "RATES_1", "90.00", "200.00", "900.00", {"book": "a"}),
    ("PRIOR", "FX_1", "5.00", "5.00", "5.00", {"book": "b", "strategy": "FLOW"}),
    ("PRIOR", "EQ_1", "10.00", "10.00", "10.00", {"book": "a"}),
    ("PRIOR", "EQ_1", "4.00", "4.00", "4.00", {"book": "d"}),
    ("PRIOR", "GHOST", "2.00", "2.00", "2.00", {"book": "x"}),
]


def fact_ids(conn, uc, scenario) -> list[int]:
    return [r[0] for r in conn.execute("SELECT id FROM fact_pnl_entries WHERE use_case_id = %s AND pnl_date = %s "
                                       "AND scenario = %s ORDER BY id", (uc, COB, scenario))]


@pytest.fixture
def book(conn):
    """A run of a use case with nested rules, facts on inner nodes and unmapped facts; then its ACTUAL slice
    replaced, PRIOR facts appended, rules edited and the hierarchy changed, and a second run taken."""
    structure(conn, "TRADING", TRADING_TREE)
    uc = use_case(conn, "Sterling", "TRADING")
    facts(conn, uc, ACTUAL_FACTS + PRIOR_FACTS + [("ACTUAL", "RATES_1", "1.00", "1.00", "1.00", {}, EARLIER)])
    other = use_case(conn, "Elsewhere", "TRADING")
    facts(conn, other, [("ACTUAL", "RATES_1", "777.00", "7.00", "7.00", {"book": "a"})])
    rules = {
        "FIRM": rule(conn, uc, "FIRM", cond("book", "not_equals", "x"), "not book x"),
        "EMEA": rule(conn, uc, "EMEA", cond("book", "in", ["a", "c"]), "books a and c"),
        "RATES_1": rule(conn, uc, "RATES_1", cond("daily_amount", "greater_than", 0)),
        "RATES_2": rule(conn, uc, "RATES_2", cond("book", "equals", "a")),  # RATES_2 has no facts
        "FX": rule(conn, uc, "FX", cond("strategy", "equals", "FLOW"), "flow only"),
    }
    read = {s: fact_ids(conn, uc, s) for s in SCENARIOS}
    first = snapshot(conn, uc, name="first")

    with conn.transaction():
        conn.execute("SELECT replace_facts(%s, %s, 'ACTUAL', 'corrected feed')", (uc, COB))
        facts(conn, uc, [("ACTUAL", "RATES_1", "999.00", "9.00", "9.00", {"book": "a"}),
                         ("ACTUAL", "GHOST", "3.00", "3.00", "3.00", {"book": "a"})])
    facts(conn, uc, [("PRIOR", "RATES_2", "8.00", "8.00", "8.00", {"book": "a"})])
    conn.execute("UPDATE metadata_rules SET predicate_json = %s::jsonb WHERE rule_id = %s",
                 (json.dumps(cond("book", "equals", "zzz")), rules["EMEA"]))
    conn.execute("DELETE FROM metadata_rules WHERE rule_id = %s", (rules["FX"],))
    rule(conn, uc, "AMER", cond("book", "equals", "a"))
    conn.execute("UPDATE dim_hierarchy SET parent_node_id = 'AMER' WHERE structure_id = 'TRADING' AND node_id = 'FX'")
    conn.execute("INSERT INTO dim_hierarchy (structure_id, node_id, parent_node_id, node_name) "
                 "VALUES ('TRADING', 'GHOST', 'FIRM', 'Ghost')")
    second = snapshot(conn, uc, name="second")
    return {"uc": uc, "first": first, "second": second, "rules": rules, "read": read}


def rows(conn, query, args=()) -> list[dict]:
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute(query, args).fetchall()


def explain_node(conn, run, node, scenario="ACTUAL", max_rows=None):
    return rows(conn, "SELECT * FROM explain_node(%s, %s, %s, %s)", (run, node, scenario, max_rows))


def refused(conn, query, args) -> str:
    with pytest.raises(psycopg.Error) as caught:
        conn.execute(query, args)
    return caught.value.diag.message_primary


# --- adding up to the stored run --------------------------------------------------------------------------

@pytest.mark.parametrize("which", ["first", "second"])
def test_every_node_measure_and_scenario_adds_up_to_the_stored_run_exactly(conn, book, which):
    run = book[which]
    stored = results(conn, run)
    nodes = sorted({node for node, _ in stored})
    assert (UNMAPPED in nodes) == (which == "first")  # GHOST became a node between the runs
    for node in nodes:
        for scenario in SCENARIOS:
            row = stored[(node, scenario)]
            explained = explain_node(conn, run, node, scenario)
            plug = rows(conn, "SELECT * FROM explain_plug(%s, %s, %s)", (run, node, scenario))
            for m in MEASURES:
                amount = f"{m}_amount"
                where = (which, node, scenario, m)
                assert sum(r[amount] for r in explained) == row[f"{m}_natural"], where
                assert sum(r[amount] for r in explained if r["included"]) == row[f"{m}_adjusted"], where
                assert sum(r[amount] for r in explained if not r["included"]) == row[f"{m}_plug"], where
                assert sum(r[f"{m}_excluded"] for r in plug) == row[f"{m}_plug"], where
            assert all(type(r[f"{m}_amount"]) is D for r in explained for m in MEASURES)
        for m in MEASURES:
            for by in ("child", "category_code", "book", "strategy"):
                variance = rows(conn, "SELECT * FROM explain_variance(%s, %s, %s, %s)", (run, node, m, by))
                where = (which, node, m, by)
                assert sum(r["variance"] for r in variance) == stored[(node, "VARIANCE")][f"{m}_adjusted"], where
                assert sum(r["actual"] for r in variance) == stored[(node, "ACTUAL")][f"{m}_adjusted"], where
                assert sum(r["prior"] for r in variance) == stored[(node, "PRIOR")][f"{m}_adjusted"], where


def test_an_earlier_run_is_explained_from_its_own_loads_rules_and_tree(conn, book):
    first, rules = book["first"], book["rules"]
    for scenario in SCENARIOS:
        got = sorted(r["fact_id"] for r in explain_node(conn, first, "FIRM", scenario))
        assert got == book["read"][scenario]  # superseded since, and not the facts appended later

    by_code = {}
    for r in explain_node(conn, first, "FIRM"):
        by_code.setdefault(r["category_code"], []).append(r)
    # GHOST is a node today, not in the run's tree: unmapped, governed by the root's rule
    assert {(r["mapped_node_id"], r["governing_rule_id"], r["governing_node_id"], r["included"])
            for r in by_code["GHOST"]} == {(UNMAPPED, rules["FIRM"], "FIRM", True),
                                           (UNMAPPED, rules["FIRM"], "FIRM", False)}
    # the FX rule, deleted since, and FX under EMEA as the run had it
    assert [(r["governing_rule_id"], r["governing_node_id"], r["included"]) for r in by_code["FX_1"]] == [
        (rules["FX"], "FX", False), (rules["FX"], "FX", True)]
    assert {r["category_code"] for r in explain_node(conn, first, "EMEA")} == {"RATES_1", "RATES", "EMEA", "FX_1", "FX"}
    # the EMEA rule as it was when the run read it (book in a, c)
    assert [(r["attributes"]["book"], r["included"]) for r in sorted(by_code["RATES"], key=lambda r: r["fact_id"])] == [
        ("c", True), ("b", False)]
    assert all(r["currency"] is None and r["rate"] == 1 for r in explain_node(conn, first, "FIRM"))

    second = {r["category_code"]: r for r in explain_node(conn, book["second"], "FIRM")}
    assert second["GHOST"]["mapped_node_id"] == "GHOST" and set(second) == {"RATES_1", "GHOST"}


def test_run_facts_is_every_fact_the_run_read_for_the_scenario(conn, book):
    first = book["first"]
    for scenario in SCENARIOS:
        got = rows(conn, "SELECT * FROM run_facts(%s, %s) ORDER BY fact_id", (first, scenario))
        assert [r["fact_id"] for r in got] == book["read"][scenario]
    eq = rows(conn, "SELECT * FROM run_facts(%s, 'ACTUAL') WHERE category_code = 'EQ'", (first,))
    assert eq == [{"fact_id": eq[0]["fact_id"], "category_code": "EQ", "mapped_node_id": "EQ", "attributes": {},
                   "currency": None, "daily_amount": D("5.00"), "wtd_amount": D("0.00"), "ytd_amount": D("0.00"),
                   "rate": D(1), "included": True, "governing_rule_id": book["rules"]["FIRM"],
                   "governing_node_id": "FIRM"}]


# --- explain_node -------------------------------------------------------------------------------------

def test_explain_node_orders_by_size_then_id_and_max_rows_cuts(conn, book):
    first = book["first"]
    every = explain_node(conn, first, "FIRM")
    assert len(every) == len(ACTUAL_FACTS)
    keys = [(-abs(r["daily_amount"]), r["fact_id"]) for r in every]
    assert keys == sorted(keys)
    ties = [r for r in every if abs(r["daily_amount"]) == 5]
    assert [r["daily_amount"] for r in ties] == [D("-5.00"), D("5.00")]  # the GHOST fact was inserted first
    assert explain_node(conn, first, "FIRM", max_rows=3) == every[:3]
    assert explain_node(conn, first, "FIRM", max_rows=0) == []
    default = rows(conn, "SELECT * FROM explain_node(%s, 'FIRM')", (first,))
    assert default == every  # scenario ACTUAL, at most 1000 rows
    unmapped = explain_node(conn, first, UNMAPPED)
    assert [r["category_code"] for r in unmapped] == ["GHOST", "GHOST"]
    assert "max_rows must be zero or more" in refused(conn, "SELECT * FROM explain_node(%s, 'FIRM', 'ACTUAL', -1)",
                                                      (first,))


# --- explain_plug -------------------------------------------------------------------------------------

def test_explain_plug_lists_rules_above_at_and_below_the_node(conn, book):
    first, rules = book["first"], book["rules"]

    def plug(node, scenario="ACTUAL"):
        return [(r["rule_id"], r["rule_node_id"], r["facts_governed"], r["facts_excluded"],
                 *(r[f"{m}_excluded"] for m in MEASURES))
                for r in rows(conn, "SELECT * FROM explain_plug(%s, %s, %s)", (first, node, scenario))]

    assert plug("EMEA") == [
        (rules["FX"], "FX", 3, 2, D("-57.00"), D("8.00"), D("9.00")),
        (rules["RATES_1"], "RATES_1", 2, 1, D("-40.00"), D("10.00"), D("20.00")),
        (rules["EMEA"], "EMEA", 3, 1, D("12.00"), D("1.00"), D("2.00")),
        (rules["RATES_2"], "RATES_2", 0, 0, D(0), D(0), D(0)),  # under the node, governs none
    ]
    assert plug("FX_1") == [(rules["FX"], "FX", 2, 1, D("-60.00"), D("5.00"), D("6.00"))]  # a rule above the node
    assert plug(UNMAPPED) == [(rules["FIRM"], "FIRM", 2, 1, D("-5.00"), D("-5.00"), D("-5.00"))]
    assert plug("AMER", "PRIOR") == [(rules["FIRM"], "FIRM", 2, 0, D(0), D(0), D(0))]
    logic = rows(conn, "SELECT rule_id, logic_en FROM explain_plug(%s, 'FIRM')", (first,))
    assert {r["rule_id"]: r["logic_en"] for r in logic} == {
        rules["FIRM"]: "not book x", rules["EMEA"]: "books a and c", rules["RATES_1"]: None, rules["RATES_2"]: None,
        rules["FX"]: "flow only"}


# --- explain_variance ---------------------------------------------------------------------------------

def variance(conn, run, node, measure="daily", by="child"):
    return [(r["key"], r["actual"], r["prior"], r["variance"], r["change"])
            for r in rows(conn, "SELECT * FROM explain_variance(%s, %s, %s, %s)", (run, node, measure, by))]


def test_explain_variance_by_child_has_every_child_and_the_node_itself_only_with_own_facts(conn, book):
    first = book["first"]
    assert variance(conn, first, "FIRM") == [
        ("AMER", D("1000005.00"), D("14.00"), D("999991.00"), "CHANGED"),
        ("EMEA", D("172.75"), D("95.00"), D("77.75"), "CHANGED"),
        (UNMAPPED, D("11.00"), D("0"), D("11.00"), "NEW"),
    ]
    assert variance(conn, first, "EMEA") == [
        ("RATES", D("125.50"), D("90.00"), D("35.50"), "CHANGED"),
        ("FX", D("40.00"), D("5.00"), D("35.00"), "CHANGED"),
        ("EMEA", D("7.25"), D("0"), D("7.25"), "NEW"),
    ]
    assert variance(conn, first, "RATES") == [
        ("RATES", D("25.50"), D("0"), D("25.50"), "NEW"),
        ("RATES_1", D("100.00"), D("90.00"), D("10.00"), "CHANGED"),
        ("RATES_2", D("0"), D("0"), D("0"), "UNCHANGED"),  # a child with no facts
    ]
    assert variance(conn, first, "RATES_2") == []
    assert variance(conn, first, "EQ", "wtd") == [("EQ_1", D("2000000.00"), D("14.00"), D("1999986.00"), "CHANGED"),
                                                   ("EQ", D("0.00"), D("0"), D("0.00"), "UNCHANGED")]


def test_explain_variance_by_attribute_and_category_code(conn, book):
    first = book["first"]
    assert variance(conn, first, "FIRM", by="book") == [
        ("a", D("1000147.25"), D("100.00"), D("1000047.25"), "CHANGED"),
        ("c", D("36.50"), D("0"), D("36.50"), "NEW"),
        ("b", D("0"), D("5.00"), D("-5.00"), "DROPPED"),
        (None, D("5.00"), D("0"), D("5.00"), "NEW"),  # the facts without a book, after the keys of equal size
        ("d", D("0"), D("4.00"), D("-4.00"), "DROPPED"),
        ("x", D("0"), D("0"), D("0"), "UNCHANGED"),  # all excluded
    ]
    assert variance(conn, first, "FX", by="category_code") == [
        ("FX_1", D("40.00"), D("5.00"), D("35.00"), "CHANGED"),
        ("FX", D("0"), D("0"), D("0"), "UNCHANGED"),
    ]
    assert variance(conn, first, "FX", by="no_such_key") == [(None, D("40.00"), D("5.00"), D("35.00"), "CHANGED")]


# --- run_rule_stats -----------------------------------------------------------------------------------

def test_run_rule_stats_is_explain_plug_at_the_root_plus_missing_fields(conn, book):
    first = book["first"]
    stats = rows(conn, "SELECT * FROM run_rule_stats(%s)", (first,))
    assert [{k: v for k, v in r.items() if k != "missing_fields"} for r in stats] == rows(
        conn, "SELECT * FROM explain_plug(%s, 'FIRM')", (first,))
    # each rule's fields are carried by some fact it governs; RATES_2 governs none
    assert {r["rule_node_id"]: r["missing_fields"] for r in stats} == {
        "FIRM": [], "EMEA": [], "RATES_1": [], "RATES_2": [], "FX": []}


def test_a_misspelt_field_shows_in_missing_fields(conn):
    structure(conn, "S", [("FIRM", None), ("EMEA", "FIRM"), ("AMER", "FIRM")])
    uc = use_case(conn, "Spelling", "S")
    facts(conn, uc, [("ACTUAL", "EMEA", "10.00", "1.00", "1.00", {"strategy": "FLOW", "book": "a"}),
                     ("ACTUAL", "EMEA", "5.00", "1.00", "1.00", {"strategy": "HEDGE"}),
                     ("ACTUAL", "AMER", "7.00", "1.00", "1.00", {"strategy": "FLOW"}),
                     ("PRIOR", "EMEA", "1.00", "1.00", "1.00", {"strategy": "FLOW"})])
    misspelt = rule(conn, uc, "EMEA", {"conditions": [
        {"field": "Strategy", "operator": "equals", "value": "FLOW"},
        {"field": "book", "operator": "not_equals", "value": "z"},
        {"field": "daily_amount", "operator": "greater_than", "value": 0},
        {"field": "category_code", "operator": "equals", "value": "EMEA"}]})
    fine = rule(conn, uc, "AMER", cond("strategy", "equals", "FLOW"))
    run = snapshot(conn, uc)
    stats = {r["rule_id"]: r for r in pnldb.run_rule_stats(conn, run)}
    assert stats[misspelt]["missing_fields"] == ["Strategy"]  # book is carried by one fact: not missing
    assert (stats[misspelt]["facts_governed"], stats[misspelt]["facts_excluded"]) == (2, 2)
    assert stats[misspelt]["daily_excluded"] == D("15.00")
    assert (stats[fine]["missing_fields"], stats[fine]["facts_excluded"]) == ([], 0)
    # the cheap question `pnldb snapshot` asks first: which named keys no fact of the run carries at all
    assert api.run_absent_fields(conn, run) == ["Strategy"]
    rule(conn, uc, "FIRM", cond("region", "equals", "EU"))  # a key no fact has, on a rule of a later run only
    assert api.run_absent_fields(conn, run) == ["Strategy"]
    assert api.run_absent_fields(conn, snapshot(conn, uc)) == ["Strategy", "region"]


# --- refusals -----------------------------------------------------------------------------------------

CALLS = {
    "run_facts": "SELECT * FROM run_facts(%s, 'ACTUAL')",
    "explain_node": "SELECT * FROM explain_node(%s, 'FIRM')",
    "explain_plug": "SELECT * FROM explain_plug(%s, 'FIRM')",
    "explain_variance": "SELECT * FROM explain_variance(%s, 'FIRM')",
    "run_rule_stats": "SELECT * FROM run_rule_stats(%s)",
}


@pytest.mark.parametrize("function", sorted(CALLS))
def test_a_failed_or_unknown_run_is_refused_saying_so(conn, function):
    structure(conn, "TRADING", TRADING_TREE)
    uc = use_case(conn, "Sterling", "TRADING")
    facts(conn, uc, [("ACTUAL", "RATES_1", "1", "1", "1", {})])
    # a stored predicate that no longer validates, written behind the trigger's back: the snapshot FAILS
    conn.execute("ALTER TABLE metadata_rules DISABLE TRIGGER rule_is_valid")
    conn.execute("""INSERT INTO metadata_rules (use_case_id, node_id, predicate_json) VALUES
                    (%s, 'RATES', '{"conditions": [{"field": "book", "operator": "contains", "value": "x"}]}')""",
                 (uc,))
    conn.execute("ALTER TABLE metadata_rules ENABLE TRIGGER rule_is_valid")
    failed = snapshot(conn, uc, name="broken")
    message = refused(conn, CALLS[function], (failed,))
    assert message == (f"{function}: run {failed} (broken) is FAILED, not COMPLETED; only a completed run has "
                       "results to read")
    assert refused(conn, CALLS[function], (NO_SUCH,)) == f"unknown run {NO_SUCH}"


@pytest.mark.parametrize("function", ["explain_node", "explain_plug", "explain_variance"])
def test_a_node_the_run_does_not_have_is_refused_naming_run_and_node(conn, book, function):
    first = book["first"]
    query = CALLS[function].replace("'FIRM'", "%s")
    # GHOST is a node of the structure today, not of the first run
    assert refused(conn, query, (first, "GHOST")) == f"{function}: run {first} has no node 'GHOST'"
    assert refused(conn, query, (first, None)) == f"{function}: run {first} has no node NULL"


def test_scenario_measure_and_by_are_checked(conn, book):
    first = book["first"]
    for function in ("run_facts", "explain_node", "explain_plug"):
        query = {"run_facts": "SELECT * FROM run_facts(%s, %s)",
                 "explain_node": "SELECT * FROM explain_node(%s, 'FIRM', %s)",
                 "explain_plug": "SELECT * FROM explain_plug(%s, 'FIRM', %s)"}[function]
        assert refused(conn, query, (first, "actual")) == f"{function}: scenario must be ACTUAL or PRIOR, got 'actual'"
        assert refused(conn, query, (first, "VARIANCE")) == (
            f"{function}: scenario must be ACTUAL or PRIOR, got 'VARIANCE'")
    assert refused(conn, "SELECT * FROM explain_variance(%s, 'FIRM', %s)", (first, "monthly")) == (
        "explain_variance: measure must be one of daily, wtd, ytd; got 'monthly'")
    assert "by must be" in refused(conn, "SELECT * FROM explain_variance(%s, 'FIRM', 'daily', NULL)", (first,))


def test_a_run_taken_before_runs_recorded_their_inputs_is_refused_saying_so(empty_db_url):
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        schema.create_roles(conn)
        schema.migrate(conn, to="0004_identity_cache")
        conn.execute("INSERT INTO pnl.hierarchy_structures VALUES ('S', 'Structure')")
        conn.execute("INSERT INTO pnl.dim_hierarchy (structure_id, node_id, parent_node_id, node_name) VALUES "
                     "('S', 'ROOT', NULL, 'Root'), ('S', 'BOOK', 'ROOT', 'Book')")
        uc = conn.execute("INSERT INTO pnl.use_cases (name, structure_id) VALUES ('Old', 'S') "
                          "RETURNING use_case_id").fetchone()[0]
        conn.execute("INSERT INTO pnl.fact_pnl_entries (use_case_id, pnl_date, scenario, category_code, amount, "
                     "daily_amount, wtd_amount, ytd_amount) VALUES (%s, %s, 'ACTUAL', 'BOOK', 5, 5, 5, 5)", (uc, COB))
        run = conn.execute("INSERT INTO pnl.calculation_runs (pnl_date, use_case_id, run_name, status) "
                           "VALUES (%s, %s, 'Old Run', 'COMPLETED') RETURNING id", (COB, uc)).fetchone()[0]
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO pnl.fact_calculated_results (calculation_run_id, node_id, parent_node_id, node_name, "
                "depth, scenario, daily_natural, daily_adjusted, daily_plug, wtd_natural, wtd_adjusted, wtd_plug, "
                "ytd_natural, ytd_adjusted, ytd_plug) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 0, %s, %s, 0, %s, %s, 0)",
                [(run, node, parent, node.title(), depth, scenario, *(value,) * 6)
                 for node, parent, depth in (("ROOT", None, 0), ("BOOK", "ROOT", 1))
                 for scenario, value in (("ACTUAL", 5), ("PRIOR", 0), ("VARIANCE", 5))])
        schema.migrate(conn)
        conn.execute("SET search_path TO pnl")
        for function, query in CALLS.items():
            message = refused(conn, query, (run,))
            assert message == (f"{function}: run {run} (Old Run) was taken before pnldb recorded the facts each run "
                               "read (migration 0005_fact_loads), so it cannot be explained or verified"), function


# --- who may explain ----------------------------------------------------------------------------------

def test_an_operator_explains_and_a_reader_may_not(conn, book, login):
    first = book["first"]
    operator = login("operator")
    for query in CALLS.values():
        assert operator.execute(query, (first,)).fetchall()
    reader = login("reader")
    for query in CALLS.values():
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            reader.execute(query, (first,))


# --- the Python API -----------------------------------------------------------------------------------

def test_the_python_api_returns_the_sql_rows(conn, book):
    first = book["first"]
    assert pnldb.explain_node(conn, first, "EMEA", max_rows=None) == explain_node(conn, first, "EMEA")
    assert pnldb.explain_node(conn, first, "FIRM") == explain_node(conn, first, "FIRM")
    assert pnldb.explain_node(conn, first, "EMEA", "PRIOR", max_rows=1) == explain_node(conn, first, "EMEA", "PRIOR", 1)
    assert pnldb.explain_plug(conn, first, "EMEA", "PRIOR") == rows(
        conn, "SELECT * FROM explain_plug(%s, 'EMEA', 'PRIOR')", (first,))
    assert pnldb.explain_variance(conn, str(first), "FIRM", measure="ytd", by="book") == rows(
        conn, "SELECT * FROM explain_variance(%s, 'FIRM', 'ytd', 'book')", (first,))
    assert pnldb.run_rule_stats(conn, first) == rows(conn, "SELECT * FROM run_rule_stats(%s)", (first,))
    with pytest.raises(psycopg.errors.NoDataFound):
        pnldb.explain_node(conn, first, "NOPE")


def test_run_plug_rules_gives_every_plug_by_rule_adding_up_to_it(conn):
    """What the HTML report shows beside its tree: for every node and scenario, the rules that excluded
    facts at or below it; their excluded sums are the node's plug, exactly."""
    structure(conn, "TRADING", TRADING_TREE)
    uc = use_case(conn, "Plugs", "TRADING")
    facts(conn, uc, [("ACTUAL", "RATES_1", "100.00", "1.00", "2.00", {"book": "a"}),
                     ("ACTUAL", "RATES_2", "-40.25", "3.00", "4.00", {"book": "b"}),
                     ("ACTUAL", "FX_1", "7.50", "5.00", "6.00", {"book": "b"}),
                     ("ACTUAL", "ELSEWHERE", "1.00", "1.00", "1.00", {"book": "b"}),
                     ("PRIOR", "RATES_1", "9.00", "9.00", "9.00", {"book": "b"})])
    rule(conn, uc, "RATES", cond("book", "equals", "a"))
    rule(conn, uc, "FIRM", cond("book", "equals", "a"))  # governs FX_1 and the unmapped fact
    run = snapshot(conn, uc)
    got: dict = {}
    for r in rows(conn, "SELECT * FROM run_plug_rules(%s)", (run,)):
        key = (r["node_id"], r["scenario"])
        got[key] = [a + b for a, b in zip(got.get(key, [D(0)] * 3), (r["daily_excluded"], r["wtd_excluded"],
                                                                     r["ytd_excluded"]))]
    stored = results(conn, run)
    plugs = {key: [row[f"{m}_plug"] for m in ("daily", "wtd", "ytd")] for key, row in stored.items()
             if key[1] != "VARIANCE" and any(row[f"{m}_plug"] for m in ("daily", "wtd", "ytd"))}
    assert got == plugs
    assert got[("FIRM", "ACTUAL")] == [D("-31.75"), D("9.00"), D("11.00")]
    assert {r["node_id"] for r in rows(conn, "SELECT * FROM run_plug_rules(%s)", (run,))} == {
        "FIRM", "EMEA", "RATES", "RATES_2", "FX", "FX_1", "__UNMAPPED__", "RATES_1"}
