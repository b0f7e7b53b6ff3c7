"""The bundled sample dataset (pnldb/data): well-formed, one tree, valid rules, and it snapshots."""
from __future__ import annotations

import datetime as dt
import filecmp
import importlib.util
import json
from collections import Counter, defaultdict
from decimal import Decimal

import pytest

from pnldb import reference
from tests.builders import DATA, DIMENSIONS, load_sample, read_facts, read_fx, read_hierarchy, read_rules, snapshot

MEASURES = ("daily", "wtd", "ytd")
DATES = (dt.date(2025, 12, 23), dt.date(2025, 12, 24))


# ---------------------------------------------------------------------------------------------- files

def test_the_committed_files_are_what_the_generator_writes(tmp_path):
    spec = importlib.util.spec_from_file_location("generate_sample", DATA / "generate_sample.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.write(tmp_path)
    for name in ("hierarchy.csv", "facts.csv", "fx.csv", "rules.json", "rules_v2.json"):
        assert filecmp.cmp(tmp_path / name, DATA / name, shallow=False), f"{name} differs: rerun generate_sample.py"


def test_hierarchy_is_one_tree_firm_regions_desks_books():
    rows = read_hierarchy()
    ids = [r["node_id"] for r in rows]
    assert len(ids) == len(set(ids)) and "__UNMAPPED__" not in ids
    parent = {r["node_id"]: r["parent_node_id"] or None for r in rows}
    assert [n for n, p in parent.items() if p is None] == ["GLOBAL_MARKETS"]
    assert all(p is None or p in parent for p in parent.values())
    depth = {}
    for node in parent:  # every node reaches the root without a cycle
        seen, walk = set(), node
        while parent[walk] is not None:
            assert walk not in seen, f"cycle at {walk}"
            seen.add(walk)
            walk = parent[walk]
        depth[node] = len(seen)
    levels = Counter(depth.values())
    assert levels[0] == 1 and levels[1] == 3 and 10 <= levels[2] <= 20 and 40 <= levels[3] <= 80
    assert set(levels) == {0, 1, 2, 3}
    assert {n for n, d in depth.items() if d == 1} == {"EMEA", "AMER", "APAC"}
    assert all(r["node_name"].strip() for r in rows)


def test_facts_parse_and_look_like_a_pnl_export():
    facts = read_facts()
    nodes = {r["node_id"] for r in read_hierarchy()}
    assert (DATA / "facts.csv").stat().st_size < 1_000_000
    assert all(r["use_case_id"] == "" for r in facts)
    assert {r["scenario"] for r in facts} == {"ACTUAL", "PRIOR"}
    per_scenario = Counter(r["scenario"] for r in facts)
    assert per_scenario["ACTUAL"] >= 2000 and per_scenario["PRIOR"] >= 2000
    assert {dt.date.fromisoformat(r["pnl_date"]) for r in facts} == set(DATES)
    for r in facts:
        for m in MEASURES:
            text = r[f"{m}_amount"]
            assert Decimal(text).as_tuple().exponent == -2, text  # exactly two decimals
    unmapped = {r["category_code"] for r in facts} - nodes
    assert 2 <= len(unmapped) <= 8
    for dim in DIMENSIONS:
        values = {r[dim] for r in facts}
        assert "" not in values
        assert len(values) >= 3 and (dim == "book" or len(values) <= 10), (dim, values)
    # WTD and YTD dwarf the daily moves at the firm level
    for date in DATES:
        actual = [r for r in facts if r["pnl_date"] == date.isoformat() and r["scenario"] == "ACTUAL"]
        daily = sum(Decimal(r["daily_amount"]) for r in actual)
        ytd = sum(Decimal(r["ytd_amount"]) for r in actual)
        assert abs(ytd) > 10 * abs(daily)


def test_wtd_and_ytd_carry_over_from_one_date_to_the_next():
    """ACTUAL positions (same book and attributes) on both dates: WTD and YTD grow by the 24th's daily move."""
    series = defaultdict(dict)
    for r in read_facts():
        if r["scenario"] == "ACTUAL":
            series[tuple(r[d] for d in DIMENSIONS)].setdefault(r["pnl_date"], []).append(r)
    checked = 0
    for by_date in series.values():
        first, second = by_date.get("2025-12-23"), by_date.get("2025-12-24")
        if first and second and len(first) == len(second) == 1:  # an unambiguous position
            a, b = first[0], second[0]
            for m in ("wtd", "ytd"):
                assert Decimal(b[f"{m}_amount"]) - Decimal(a[f"{m}_amount"]) == Decimal(b["daily_amount"]), (a, b)
            checked += 1
    assert checked >= 100


def test_rules_sit_on_existing_nodes_at_several_depths_nested_with_and_and_or():
    nodes = {r["node_id"]: r["parent_node_id"] or None for r in read_hierarchy()}
    for name in ("rules.json", "rules_v2.json"):
        rules = read_rules(name)
        assert 4 <= len(rules) <= 6
        assert all(set(r) == {"node_id", "predicate_json", "logic_en"} for r in rules)
        ruled = {r["node_id"] for r in rules}
        assert ruled <= set(nodes)
        assert len(ruled) == len(rules)
        assert any(nodes[n] in ruled and nodes[nodes[n]] in ruled for n in ruled if nodes[n])  # region > desk nested
        conjunctions = {r["predicate_json"].get("conjunction", "AND") for r in rules}
        assert conjunctions == {"AND", "OR"}
        fields = {c["field"] for r in rules for c in r["predicate_json"]["conditions"]}
        assert "daily_amount" in fields and {"legal_entity", "strategy"} <= fields
    v1, v2 = read_rules(), read_rules("rules_v2.json")
    changed = [a["node_id"] for a, b in zip(v1, v2) if a != b]
    assert changed == ["EMEA_RATES"] and [r["node_id"] for r in v1] == [r["node_id"] for r in v2]


# -------------------------------------------------------------------------------------------- database

def test_the_sample_loads_and_snapshots_tie_out_to_the_facts(conn):
    use_case_id = load_sample(conn)
    facts = read_facts()
    assert conn.execute("SELECT count(*) FROM metadata_rules").fetchone()[0] == len(read_rules())
    for date in DATES:
        run = snapshot(conn, use_case_id, date)
        expected = reference.snapshot_from_database(conn, use_case_id, date)
        header = conn.execute("SELECT status, rules_applied FROM calculation_runs WHERE id = %s", (run,)).fetchone()
        assert header == ("COMPLETED", len(read_rules()))
        for scenario in ("ACTUAL", "PRIOR"):
            root = conn.execute(
                "SELECT daily_natural, wtd_natural, ytd_natural FROM fact_calculated_results "
                "WHERE calculation_run_id = %s AND depth = 0 AND scenario = %s", (run, scenario)).fetchone()
            mine = [r for r in facts if r["pnl_date"] == date.isoformat() and r["scenario"] == scenario]
            translated = {(row["node_id"], row["scenario"]): row for row in expected}[("GLOBAL_MARKETS", scenario)]
            assert root == tuple(translated[f"{m}_natural"] for m in MEASURES)
            # the USD facts exactly, each other currency's within a cent per group of the translation
            native = defaultdict(Decimal)
            for r in mine:
                native[r["currency"] or "USD"] += Decimal(r["daily_amount"])
            rate = {f["currency"]: Decimal(f["rate"]) for f in read_fx() if f["pnl_date"] == date.isoformat()}
            assert set(native) == {"USD", "EUR", "GBP"}
            assert abs(root[0] - native["USD"] - sum(v * rate[c] for c, v in native.items() if c != "USD")) < 1
        # every rule bites somewhere, and unmapped facts are reported
        plugged = {row[0] for row in conn.execute(
            "SELECT node_id FROM fact_calculated_results WHERE calculation_run_id = %s AND scenario = 'ACTUAL' "
            "AND daily_plug <> 0", (run,))}
        assert {r["node_id"] for r in read_rules()} <= plugged
        assert "__UNMAPPED__" in plugged


def test_rules_v2_changes_emea_rates_and_what_is_above_it(conn):
    use_case_id = load_sample(conn)
    v1 = snapshot(conn, use_case_id, DATES[1], name="Adjusted v1")
    for r in read_rules("rules_v2.json"):
        conn.execute("UPDATE metadata_rules SET predicate_json = %s::jsonb, logic_en = %s "
                     "WHERE use_case_id = %s AND node_id = %s",
                     (json.dumps(r["predicate_json"]), r["logic_en"], use_case_id, r["node_id"]))
    v2 = snapshot(conn, use_case_id, DATES[1], name="Adjusted v2")
    changed = {row[0] for row in conn.execute(
        """SELECT a.node_id FROM fact_calculated_results a
           JOIN fact_calculated_results b ON b.node_id = a.node_id AND b.scenario = a.scenario
           WHERE a.calculation_run_id = %s AND b.calculation_run_id = %s AND a.scenario = 'ACTUAL'
             AND a.daily_adjusted <> b.daily_adjusted""", (v1, v2))}
    parent = {r["node_id"]: r["parent_node_id"] or None for r in read_hierarchy()}

    def ancestors(node):
        while parent[node] is not None:
            node = parent[node]
            yield node

    below = {n for n in parent if "EMEA_RATES" in ancestors(n)}
    assert {"EMEA_RATES", "EMEA", "GLOBAL_MARKETS"} <= changed <= {"EMEA_RATES", "EMEA", "GLOBAL_MARKETS"} | below
    assert below  # the rule sits on a desk with books under it


@pytest.mark.parametrize("name", ["rules.json", "rules_v2.json"])
def test_rules_are_accepted_by_the_engine_and_derive_sql(conn, name):
    use_case_id = load_sample(conn, rules_file=name)
    rows = conn.execute("SELECT node_id, sql_where FROM metadata_rules WHERE use_case_id = %s",
                        (use_case_id,)).fetchall()
    assert len(rows) == len(read_rules(name)) and all(where for _, where in rows)


def test_london_books_are_in_gbp_frankfurt_books_in_eur_with_rates_for_both_dates():
    currencies = defaultdict(set)
    for r in read_facts():
        currencies[r["category_code"].split("_")[0]].add(r["currency"])
    assert currencies.pop("LDN") == {"GBP"} and currencies.pop("FRA") == {"EUR"}
    assert set().union(*currencies.values()) == {""}  # everything else in the reporting currency, USD
    assert sorted((r["pnl_date"], r["currency"], r["reporting_currency"]) for r in read_fx()) == [
        (d.isoformat(), c, "USD") for d in DATES for c in ("EUR", "GBP")]
