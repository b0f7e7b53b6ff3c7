"""The pure-Python reference of contract section 2: worked examples, predicate validation, properties.

No database needed. All values are exact Decimals.
"""
from __future__ import annotations

import json
import uuid
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pnldb.reference import (
    EXPLAIN_NODE_COLUMNS,
    EXPLAIN_PLUG_COLUMNS,
    EXPLAIN_VARIANCE_COLUMNS,
    MEASURES,
    RULE_STATS_COLUMNS,
    UNMAPPED,
    Explainer,
    PredicateError,
    evaluate_predicate,
    explain_node,
    explain_plug,
    explain_variance,
    rule_stats,
    snapshot,
    validate_predicate,
)

UC = uuid.UUID("11111111-2222-3333-4444-555555555555")
OTHER_UC = uuid.UUID("99999999-2222-3333-4444-555555555555")
D = date(2025, 12, 24)

#   ROOT
#   ├── TRADING
#   │   ├── RATES
#   │   └── FX
#   └── FEES
NODES = [
    ("ROOT", None, "Total P&L"),
    ("TRADING", "ROOT", "Trading"),
    ("RATES", "TRADING", "Rates"),
    ("FX", "TRADING", "FX"),
    ("FEES", "ROOT", "Fees"),
]


def fact(code, daily, wtd=None, ytd=None, scenario="ACTUAL", uc=UC, day=D, **attributes):
    daily = Decimal(daily)
    return {
        "use_case_id": uc,
        "pnl_date": day,
        "scenario": scenario,
        "category_code": code,
        "daily_amount": daily,
        "wtd_amount": Decimal(wtd) if wtd is not None else daily * 2,
        "ytd_amount": Decimal(ytd) if ytd is not None else daily * 10,
        "attributes": attributes,
    }


def pred(*conditions, conjunction=None):
    p = {"conditions": [{"field": f, "operator": o, "value": v} for f, o, v in conditions]}
    if conjunction is not None:
        p["conjunction"] = conjunction
    return p


def run(facts, rules=(), nodes=NODES, uc=UC, day=D):
    rows = snapshot(nodes, facts, rules, uc, day)
    keyed = {(r["node_id"], r["scenario"]): r for r in rows}
    assert len(keyed) == len(rows), "one row per (node, scenario)"
    return keyed


def vals(row, measure="daily"):
    return row[f"{measure}_natural"], row[f"{measure}_adjusted"], row[f"{measure}_plug"]


def dec(*xs):
    return tuple(Decimal(x) for x in xs)


# --------------------------------------------------------------------------------------------------
# Rows, structure, scope
# --------------------------------------------------------------------------------------------------

def test_every_node_gets_three_rows_with_node_columns():
    out = run([])
    assert set(out) == {(n, s) for n, _, _ in NODES for s in ("ACTUAL", "PRIOR", "VARIANCE")}
    assert out[("ROOT", "ACTUAL")]["depth"] == 0
    assert out[("ROOT", "ACTUAL")]["parent_node_id"] is None
    assert out[("RATES", "PRIOR")]["depth"] == 2
    assert out[("RATES", "PRIOR")]["parent_node_id"] == "TRADING"
    assert out[("RATES", "VARIANCE")]["node_name"] == "Rates"
    for row in out.values():
        for m in MEASURES:
            assert vals(row, m) == dec(0, 0, 0)
        assert row["is_override"] is False
        assert row["is_reconciled"] is True


def test_rows_are_in_a_deterministic_order():
    facts = [fact("ZZZ", "1"), fact("FX", "2")]
    rows = snapshot(NODES, facts, [], UC, D)
    order = [(r["node_id"], r["scenario"]) for r in rows]
    assert order[:3] == [("ROOT", "ACTUAL"), ("ROOT", "PRIOR"), ("ROOT", "VARIANCE")]
    assert [r["depth"] for r in rows] == sorted(r["depth"] for r in rows)
    assert rows == snapshot(NODES, list(reversed(facts)), [], UC, D)


def test_root_equals_sum_of_all_in_scope_facts_including_unmapped():
    facts = [fact("RATES", "100.25"), fact("FX", "-40.10"), fact("FEES", "5"), fact("NOT_A_NODE", "7.77")]
    out = run(facts)
    assert vals(out[("ROOT", "ACTUAL")]) == dec("72.92", "72.92", "0")
    assert vals(out[("ROOT", "ACTUAL")], "wtd") == dec("145.84", "145.84", "0")
    assert vals(out[("ROOT", "ACTUAL")], "ytd") == dec("729.20", "729.20", "0")
    assert vals(out[("TRADING", "ACTUAL")]) == dec("60.15", "60.15", "0")


def test_unmapped_node_present_only_when_needed():
    assert not any(n == UNMAPPED for n, _ in run([fact("FX", "1"), fact("RATES", "2", scenario="PRIOR")]))
    out = run([fact("FX", "1"), fact("GHOST", "3", scenario="PRIOR")])
    for scenario in ("ACTUAL", "PRIOR", "VARIANCE"):
        row = out[(UNMAPPED, scenario)]
        assert (row["node_name"], row["parent_node_id"], row["depth"]) == ("Unmapped", "ROOT", 1)
    assert vals(out[(UNMAPPED, "ACTUAL")]) == dec(0, 0, 0)
    assert vals(out[(UNMAPPED, "PRIOR")]) == dec(3, 3, 0)
    assert vals(out[(UNMAPPED, "VARIANCE")]) == dec(-3, -3, 0)


def test_unmapped_facts_of_other_use_cases_do_not_create_the_unmapped_node():
    out = run([fact("GHOST", "3", uc=OTHER_UC), fact("GHOST", "3", day=date(2025, 12, 23))])
    assert (UNMAPPED, "ACTUAL") not in out


def test_other_use_cases_dates_and_scenarios_are_ignored():
    facts = [
        fact("FX", "10"),
        fact("FX", "1000", uc=OTHER_UC),
        fact("FX", "2000", day=date(2025, 12, 23)),
        fact("FX", "3000", scenario="BUDGET"),
        fact("FX", "4", scenario="PRIOR"),
        fact("FX", "5000", scenario="PRIOR", uc=OTHER_UC),
    ]
    out = run(facts)
    assert vals(out[("ROOT", "ACTUAL")]) == dec(10, 10, 0)
    assert vals(out[("ROOT", "PRIOR")]) == dec(4, 4, 0)
    assert vals(out[("FX", "VARIANCE")]) == dec(6, 6, 0)


def test_use_case_id_may_be_given_as_string():
    out = run([fact("FX", "10")], uc=str(UC).upper())
    assert vals(out[("FX", "ACTUAL")]) == dec(10, 10, 0)


def test_facts_on_inner_nodes_count_at_that_node_and_above():
    facts = [fact("TRADING", "50"), fact("RATES", "20"), fact("ROOT", "1")]
    out = run(facts)
    assert vals(out[("RATES", "ACTUAL")]) == dec(20, 20, 0)
    assert vals(out[("FX", "ACTUAL")]) == dec(0, 0, 0)
    assert vals(out[("TRADING", "ACTUAL")]) == dec(70, 70, 0)
    assert vals(out[("ROOT", "ACTUAL")]) == dec(71, 71, 0)


def test_three_measures_are_independent():
    out = run([fact("FX", "1.01", "20.02", "300.03"), fact("RATES", "-0.01", "-0.02", "-0.03")])
    assert vals(out[("ROOT", "ACTUAL")], "daily") == dec("1.00", "1.00", 0)
    assert vals(out[("ROOT", "ACTUAL")], "wtd") == dec("20.00", "20.00", 0)
    assert vals(out[("ROOT", "ACTUAL")], "ytd") == dec("300.00", "300.00", 0)


def test_arithmetic_is_exact_decimal():
    facts = [fact("FX", "0.10")] * 3 + [fact("FX", "-0.30")] + [fact("RATES", "9999999999999999.99")] * 10
    out = run(facts)
    assert vals(out[("FX", "ACTUAL")]) == dec(0, 0, 0)
    assert out[("ROOT", "ACTUAL")]["daily_natural"] == Decimal("99999999999999999.90")
    assert all(isinstance(v, Decimal) for r in out.values() for k, v in r.items() if k.startswith(MEASURES))


@pytest.mark.parametrize("field", ["daily_amount", "wtd_amount", "ytd_amount"])
@pytest.mark.parametrize("position", [0, 1])  # the first fact of its node, or one added to running sums
def test_float_amounts_are_refused(field, position):
    bad = fact("FX", "1")
    bad[field] = 0.1
    facts = [fact("FX", "2"), fact("FX", "3")]
    facts.insert(position, bad)
    with pytest.raises(TypeError) as caught:
        snapshot(NODES, facts, [], UC, D)
    assert str(caught.value) == (f"fact 'FX' (ACTUAL, 2025-12-24): {field} must be a Decimal (or an int), "
                                 "got float 0.1; amounts are exact, never float")


@pytest.mark.parametrize("value", [True, "1.00", None])
def test_other_non_decimal_amounts_are_refused_and_ints_count_exactly(value):
    bad = fact("FX", "1")
    bad["wtd_amount"] = value
    with pytest.raises(TypeError, match=f"wtd_amount must be a Decimal \\(or an int\\), got {type(value).__name__} "):
        snapshot(NODES, [bad], [], UC, D)
    whole = fact("FX", "0", "0", "0")
    whole.update(daily_amount=7, wtd_amount=-3, ytd_amount=10**20)
    out = run([whole, fact("FX", "0.25")])
    assert vals(out[("ROOT", "ACTUAL")], "daily") == dec("7.25", "7.25", 0)
    assert vals(out[("ROOT", "ACTUAL")], "ytd") == dec("100000000000000000002.50", "100000000000000000002.50", 0)
    assert all(isinstance(v, Decimal) for r in out.values() for k, v in r.items() if k.startswith(MEASURES))


def test_empty_prior_side_gives_zeros_and_variance_equals_actual():
    out = run([fact("FX", "12.50"), fact("RATES", "-2.50")],
              [("TRADING", pred(("daily_amount", "greater_than", 0)))])
    for node in ("ROOT", "TRADING", "FX", "RATES", "FEES"):
        prior, actual, variance = out[(node, "PRIOR")], out[(node, "ACTUAL")], out[(node, "VARIANCE")]
        for m in MEASURES:
            assert vals(prior, m) == dec(0, 0, 0)
            assert vals(variance, m) == vals(actual, m)
        assert prior["is_reconciled"] is True
    assert vals(out[("TRADING", "VARIANCE")]) == dec("10.00", "12.50", "-2.50")


def test_empty_actual_side_gives_negative_variance():
    out = run([fact("FEES", "3", scenario="PRIOR")])
    assert vals(out[("FEES", "ACTUAL")]) == dec(0, 0, 0)
    assert vals(out[("FEES", "VARIANCE")]) == dec(-3, -3, 0)
    assert vals(out[("FEES", "VARIANCE")], "ytd") == dec(-30, -30, 0)


def test_variance_is_actual_minus_prior_for_all_three_values_and_measures():
    facts = [
        fact("FX", "100", "200", "300", region="EU"),
        fact("FX", "50", "60", "70", region="US"),
        fact("FX", "30", "40", "50", scenario="PRIOR", region="EU"),
        fact("FX", "5", "6", "7", scenario="PRIOR", region="US"),
    ]
    out = run(facts, [("FX", pred(("region", "equals", "EU")))])
    assert vals(out[("FX", "ACTUAL")], "daily") == dec(150, 100, 50)
    assert vals(out[("FX", "PRIOR")], "daily") == dec(35, 30, 5)
    assert vals(out[("FX", "VARIANCE")], "daily") == dec(115, 70, 45)
    assert vals(out[("FX", "VARIANCE")], "wtd") == dec(214, 160, 54)
    assert vals(out[("FX", "VARIANCE")], "ytd") == dec(313, 250, 63)
    assert vals(out[("ROOT", "VARIANCE")], "ytd") == dec(313, 250, 63)


def test_is_reconciled_of_variance_row_uses_its_own_plugs():
    # Same plug on both sides: ACTUAL and PRIOR not reconciled, VARIANCE plug 0 so reconciled.
    facts = [fact("FX", "5", "5", "5", region="US"), fact("FX", "5", "5", "5", scenario="PRIOR", region="US")]
    out = run(facts, [("FX", pred(("region", "equals", "EU")))])
    assert out[("FX", "ACTUAL")]["is_reconciled"] is False
    assert out[("FX", "PRIOR")]["is_reconciled"] is False
    assert vals(out[("FX", "VARIANCE")]) == dec(0, 0, 0)
    assert out[("FX", "VARIANCE")]["is_reconciled"] is True


def test_is_reconciled_needs_all_three_plugs_zero():
    # wtd of the excluded fact is 0 but daily is not: not reconciled.
    out = run([fact("FX", "1", "0", "0", region="US")], [("FX", pred(("region", "equals", "EU")))])
    assert vals(out[("FX", "ACTUAL")], "wtd") == dec(0, 0, 0)
    assert out[("FX", "ACTUAL")]["is_reconciled"] is False
    # Excluded facts that cancel out: plugs are all zero, reconciled.
    out = run([fact("FX", "1", region="US"), fact("FX", "-1", region="US")], [("FX", pred(("region", "equals", "EU")))])
    assert out[("FX", "ACTUAL")]["is_reconciled"] is True


# --------------------------------------------------------------------------------------------------
# Rules
# --------------------------------------------------------------------------------------------------

def test_natural_equals_adjusted_plus_plug_at_every_node():
    facts = [
        fact("RATES", "10", region="EU"), fact("RATES", "20", region="US"),
        fact("FX", "7", region="EU"), fact("FEES", "-3"), fact("GHOST", "4", region="EU"),
        fact("RATES", "1", scenario="PRIOR", region="US"),
    ]
    out = run(facts, [("ROOT", pred(("region", "equals", "EU")))])
    for row in out.values():
        for m in MEASURES:
            natural, adjusted, plug = vals(row, m)
            assert natural == adjusted + plug
    assert vals(out[("ROOT", "ACTUAL")]) == dec(38, 21, 17)
    assert vals(out[("FEES", "ACTUAL")]) == dec(-3, 0, -3)  # lacks region: equals is false
    assert vals(out[(UNMAPPED, "ACTUAL")]) == dec(4, 4, 0)  # the root's rule governs unmapped facts


def test_tree_adds_up_with_rules():
    facts = [fact("TRADING", "100", region="US"), fact("RATES", "10", region="EU"), fact("FX", "1", region="US")]
    out = run(facts, [("TRADING", pred(("region", "equals", "EU")))])
    assert vals(out[("TRADING", "ACTUAL")]) == dec(111, 10, 101)
    assert vals(out[("ROOT", "ACTUAL")]) == dec(111, 10, 101)


def test_parent_rule_governs_only_what_no_deeper_rule_covers():
    facts = [
        fact("RATES", "10", region="EU"), fact("RATES", "20", region="US"),
        fact("FX", "30", region="EU"), fact("FX", "40", region="US"),
        fact("TRADING", "50", region="US"),
        fact("FEES", "60", region="US"),
    ]
    rules = [
        ("ROOT", pred(("region", "equals", "US"))),  # governs TRADING, FX and FEES facts
        ("RATES", pred(("region", "equals", "EU"))),  # governs RATES facts only
    ]
    out = run(facts, rules)
    assert vals(out[("RATES", "ACTUAL")]) == dec(30, 10, 20)   # only EU kept, US excluded by the deeper rule
    assert vals(out[("FX", "ACTUAL")]) == dec(70, 40, 30)      # root rule: US kept
    assert vals(out[("TRADING", "ACTUAL")]) == dec(150, 100, 50)
    assert vals(out[("FEES", "ACTUAL")]) == dec(60, 60, 0)
    assert vals(out[("ROOT", "ACTUAL")]) == dec(210, 160, 50)
    assert out[("ROOT", "ACTUAL")]["is_override"] is True
    assert out[("RATES", "VARIANCE")]["is_override"] is True
    assert out[("TRADING", "PRIOR")]["is_override"] is False
    assert out[("FX", "ACTUAL")]["is_override"] is False


def test_deeper_rule_that_includes_everything_shields_from_parent_rule():
    facts = [fact("FX", "5", region="APAC"), fact("RATES", "6", region="APAC")]
    rules = [("TRADING", pred(("region", "equals", "EU"))), ("FX", pred(("region", "not_equals", "XX")))]
    out = run(facts, rules)
    assert vals(out[("FX", "ACTUAL")]) == dec(5, 5, 0)
    assert vals(out[("RATES", "ACTUAL")]) == dec(6, 0, 6)
    assert vals(out[("TRADING", "ACTUAL")]) == dec(11, 5, 6)


def test_rule_on_a_leaf_does_not_affect_siblings_or_facts_above():
    facts = [fact("FX", "5", region="US"), fact("RATES", "6", region="US"), fact("TRADING", "7", region="US")]
    out = run(facts, [("FX", pred(("region", "equals", "EU")))])
    assert vals(out[("FX", "ACTUAL")]) == dec(5, 0, 5)
    assert vals(out[("RATES", "ACTUAL")]) == dec(6, 6, 0)
    assert vals(out[("TRADING", "ACTUAL")]) == dec(18, 13, 5)


def test_rule_on_root_governs_unmapped_facts_and_unmapped_is_not_an_override():
    out = run([fact("GHOST", "9", region="US")], [("ROOT", pred(("region", "equals", "EU")))])
    assert vals(out[(UNMAPPED, "ACTUAL")]) == dec(9, 0, 9)
    assert out[(UNMAPPED, "ACTUAL")]["is_override"] is False
    assert vals(out[("ROOT", "ACTUAL")]) == dec(9, 0, 9)


def test_rule_on_an_inner_node_does_not_govern_unmapped_facts():
    out = run([fact("GHOST", "9", region="US")], [("TRADING", pred(("region", "equals", "EU")))])
    assert vals(out[(UNMAPPED, "ACTUAL")]) == dec(9, 9, 0)


def test_rule_on_a_node_outside_the_structure_governs_nothing():
    out = run([fact("FX", "9", region="US")], [("ELSEWHERE", pred(("region", "equals", "EU")))])
    assert vals(out[("ROOT", "ACTUAL")]) == dec(9, 9, 0)
    assert ("ELSEWHERE", "ACTUAL") not in out


def test_rule_on_category_code_and_measures():
    facts = [fact("FX", "5"), fact("FX", "-5"), fact("RATES", "8"), fact("RATES", "0")]
    rules = [("TRADING", pred(("category_code", "in", ["RATES"]), ("daily_amount", "greater_than", 0),
                              conjunction="OR"))]
    out = run(facts, rules)
    assert vals(out[("FX", "ACTUAL")]) == dec(0, 5, -5)
    assert vals(out[("RATES", "ACTUAL")]) == dec(8, 8, 0)


def test_measure_comparison_is_exact_decimal():
    facts = [fact("FX", "0.30"), fact("FX", "0.31")]
    rule_json = '{"conditions": [{"field": "daily_amount", "operator": "less_than", "value": 0.3000000000000000001}]}'
    out = run(facts, [("FX", json.loads(rule_json, parse_float=Decimal))])
    assert vals(out[("FX", "ACTUAL")]) == dec("0.61", "0.30", "0.31")
    # equals on a measure compares values, not representations: 0.30 == 0.3 == JSON 0.3
    out = run(facts, [("FX", pred(("daily_amount", "equals", 0.3)))])
    assert vals(out[("FX", "ACTUAL")]) == dec("0.61", "0.30", "0.31")
    out = run(facts, [("FX", pred(("daily_amount", "in", [Decimal("0.310"), 7])))])
    assert vals(out[("FX", "ACTUAL")]) == dec("0.61", "0.31", "0.30")


def test_invalid_rule_is_refused_by_snapshot():
    with pytest.raises(PredicateError, match=r"rule on node 'FX'.*conditions\[0\].*unknown operator"):
        snapshot(NODES, [], [("FX", pred(("region", "like", "EU")))], UC, D)


def test_two_rules_on_one_node_are_refused():
    rule = pred(("region", "equals", "EU"))
    with pytest.raises(ValueError, match="more than one rule"):
        snapshot(NODES, [], [("FX", rule), ("FX", rule)], UC, D)


# --------------------------------------------------------------------------------------------------
# Structure errors
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "nodes, message",
    [
        ([], "no nodes"),
        ([("A", None, "a"), ("B", None, "b")], "exactly one root"),
        ([("A", None, "a"), ("A", None, "a")], "duplicate"),
        ([("A", None, "a"), ("B", "Z", "b")], "not in the structure"),
        ([("A", None, "a"), ("B", "C", "b"), ("C", "B", "c")], "cycle"),
        ([("A", None, "a"), (UNMAPPED, "A", "u")], "reserved"),
    ],
)
def test_bad_structures_are_refused(nodes, message):
    with pytest.raises(ValueError, match=message):
        snapshot(nodes, [], [], UC, D)


# --------------------------------------------------------------------------------------------------
# Predicate evaluation
# --------------------------------------------------------------------------------------------------

WITH_REGION = fact("FX", "10", region="EU", book="B1")
WITHOUT_REGION = fact("FX", "10", book="B1")


@pytest.mark.parametrize(
    "operator, value, with_attr, without_attr",
    [
        ("equals", "EU", True, False),
        ("equals", "US", False, False),
        ("not_equals", "EU", False, True),
        ("not_equals", "US", True, True),
        ("in", ["US", "EU"], True, False),
        ("in", ["US"], False, False),
        ("in", "EU", True, False),
        ("not_in", ["US", "EU"], False, True),
        ("not_in", ["US"], True, True),
        ("not_in", "US", True, True),
    ],
)
def test_attribute_operators_and_missing_attribute(operator, value, with_attr, without_attr):
    p = pred(("region", operator, value))
    assert evaluate_predicate(p, WITH_REGION) is with_attr
    assert evaluate_predicate(p, WITHOUT_REGION) is without_attr


def test_missing_attribute_in_a_snapshot_for_each_operator():
    facts = [fact("FX", "1", region="EU"), fact("FX", "10")]  # the second lacks region
    cases = [("equals", "EU", 1), ("in", ["EU"], 1), ("not_equals", "US", 11), ("not_in", ["US"], 11),
             ("not_equals", "EU", 10), ("not_in", ["EU"], 10), ("equals", "US", 0), ("in", ["US"], 0)]
    for operator, value, adjusted in cases:
        out = run(facts, [("FX", pred(("region", operator, value)))])
        assert out[("FX", "ACTUAL")]["daily_adjusted"] == Decimal(adjusted), (operator, value)
        assert out[("FX", "ACTUAL")]["daily_natural"] == Decimal(11)


def test_missing_attribute_with_greater_and_less_than_is_false():
    # greater_than / less_than only apply to measures, which every fact carries; a fact with no
    # attributes at all still compares its measures.
    bare = fact("FX", "10")
    bare["attributes"] = {}
    assert evaluate_predicate(pred(("daily_amount", "greater_than", 5)), bare) is True
    assert evaluate_predicate(pred(("daily_amount", "less_than", 5)), bare) is False
    assert evaluate_predicate(pred(("daily_amount", "less_than", 10)), bare) is False
    assert evaluate_predicate(pred(("daily_amount", "greater_than", 10)), bare) is False


def test_attribute_values_compare_as_strings():
    f = fact("FX", "1", desk="007")
    assert evaluate_predicate(pred(("desk", "equals", "007")), f) is True
    assert evaluate_predicate(pred(("desk", "equals", "7")), f) is False
    assert evaluate_predicate(pred(("desk", "equals", "EU")), fact("FX", "1", desk="eu")) is False


def test_json_null_attribute_counts_as_missing():
    f = fact("FX", "1", region=None)
    assert evaluate_predicate(pred(("region", "equals", "EU")), f) is False
    assert evaluate_predicate(pred(("region", "not_equals", "EU")), f) is True


def test_and_vs_or():
    eu_b2 = fact("FX", "1", region="EU", book="B2")
    both = [("region", "equals", "EU"), ("book", "equals", "B1")]
    assert evaluate_predicate(pred(*both), eu_b2) is False
    assert evaluate_predicate(pred(*both, conjunction="AND"), eu_b2) is False
    assert evaluate_predicate(pred(*both, conjunction="OR"), eu_b2) is True
    us_b2 = fact("FX", "1", region="US", book="B2")
    assert evaluate_predicate(pred(*both, conjunction="OR"), us_b2) is False
    eu_b1 = fact("FX", "1", region="EU", book="B1")
    assert evaluate_predicate(pred(*both, conjunction="AND"), eu_b1) is True


def test_and_vs_or_in_a_snapshot():
    facts = [fact("FX", "1", region="EU", book="B1"), fact("FX", "10", region="EU", book="B2"),
             fact("FX", "100", region="US", book="B1"), fact("FX", "1000", region="US", book="B2")]
    both = [("region", "equals", "EU"), ("book", "equals", "B1")]
    assert run(facts, [("FX", pred(*both))])[("FX", "ACTUAL")]["daily_adjusted"] == Decimal(1)
    assert run(facts, [("FX", pred(*both, conjunction="OR"))])[("FX", "ACTUAL")]["daily_adjusted"] == Decimal(111)


def test_measure_and_category_operators():
    f = fact("FX", "10.00", "20", "-5")
    assert evaluate_predicate(pred(("daily_amount", "equals", 10)), f) is True
    assert evaluate_predicate(pred(("daily_amount", "not_equals", 10.0)), f) is False
    assert evaluate_predicate(pred(("wtd_amount", "in", [1, 20])), f) is True
    assert evaluate_predicate(pred(("wtd_amount", "not_in", [1, 20])), f) is False
    assert evaluate_predicate(pred(("ytd_amount", "less_than", 0)), f) is True
    assert evaluate_predicate(pred(("ytd_amount", "greater_than", -5)), f) is False
    assert evaluate_predicate(pred(("category_code", "equals", "FX")), f) is True
    assert evaluate_predicate(pred(("category_code", "not_in", ["FX", "RATES"])), f) is False


def test_predicate_from_json_text():
    p = json.loads('{"conditions": [{"field": "daily_amount", "operator": "greater_than", "value": 9.99},'
                   ' {"field": "region", "operator": "in", "value": ["EU", "UK"]}], "conjunction": "AND"}',
                   parse_float=Decimal)
    validate_predicate(p)
    assert evaluate_predicate(p, WITH_REGION) is True
    assert evaluate_predicate(p, WITHOUT_REGION) is False


# --------------------------------------------------------------------------------------------------
# Predicate validation
# --------------------------------------------------------------------------------------------------

def cond(field="region", operator="equals", value="EU"):
    return {"field": field, "operator": operator, "value": value}


OK = cond()


@pytest.mark.parametrize(
    "predicate",
    [
        {"conditions": [OK]},
        {"conditions": [OK], "conjunction": "AND"},
        {"conditions": [OK, cond("book", "not_in", ["B1", "B2"])], "conjunction": "OR"},
        {"conditions": [cond("category_code", "in", "FX")]},
        {"conditions": [cond("daily_amount", "greater_than", 0)]},
        {"conditions": [cond("wtd_amount", "less_than", -1.5)]},
        {"conditions": [cond("ytd_amount", "in", [1, 2.5, Decimal("3.25")])]},
        {"conditions": [cond("ytd_amount", "not_equals", Decimal("0"))]},
        {"conditions": [cond("_x9", "equals", "")]},
        {"conditions": [cond("a" * 63, "equals", "v")]},
    ],
)
def test_valid_predicates_pass(predicate):
    validate_predicate(predicate)


@pytest.mark.parametrize(
    "predicate, message",
    [
        # shape of the predicate
        ("not an object", r"predicate must be an object"),
        ({}, r"conditions are missing"),
        ({"conditions": []}, r"conditions are empty"),
        ({"conditions": OK}, r"conditions must be a list"),
        ({"conditions": [OK], "conjunction": "XOR"}, r"conjunction must be 'AND' or 'OR'"),
        ({"conditions": [OK], "conjunction": "and"}, r"conjunction must be 'AND' or 'OR'"),
        ({"conditions": [OK], "conjunction": None}, r"conjunction must be 'AND' or 'OR'"),
        ({"conditions": [OK], "sql": "1=1"}, r"predicate: unknown key.*'sql'"),
        # shape of a condition
        ({"conditions": [OK, "region = 'EU'"]}, r"conditions\[1\]: a condition must be an object"),
        ({"conditions": [{"field": "region", "operator": "equals"}]}, r"conditions\[0\]: missing value"),
        ({"conditions": [dict(OK, extra=1)]}, r"conditions\[0\]: unknown key.*'extra'"),
        # operator
        ({"conditions": [OK, cond(operator="like")]}, r"conditions\[1\]: unknown operator 'like'"),
        ({"conditions": [cond(operator="EQUALS")]}, r"conditions\[0\]: unknown operator 'EQUALS'"),
        ({"conditions": [cond(operator=None)]}, r"conditions\[0\]: unknown operator None"),
        # field
        ({"conditions": [cond(field="region; DROP TABLE")]},
         r"conditions\[0\]: field 'region; DROP TABLE' is not a plain identifier"),
        ({"conditions": [cond(field="9lives")]}, r"conditions\[0\]: field '9lives' is not a plain identifier"),
        ({"conditions": [cond(field="a" * 64)]}, r"conditions\[0\]: field 'a+' is not a plain identifier"),
        ({"conditions": [cond(field="")]}, r"conditions\[0\]: field '' is not a plain identifier"),
        ({"conditions": [cond(field="région")]}, r"conditions\[0\]: field 'région' is not a plain identifier"),
        ({"conditions": [cond(field="region\n")]}, r"conditions\[0\]: field 'region\\n' is not a plain identifier"),
        ({"conditions": [cond(field=1)]}, r"conditions\[0\]: field must be a string"),
        # greater_than / less_than only on measures
        ({"conditions": [cond("region", "greater_than", "EU")]},
         r"conditions\[0\]: operator 'greater_than' applies only to a measure"),
        ({"conditions": [cond("region", "less_than", 5)]},
         r"conditions\[0\]: operator 'less_than' applies only to a measure"),
        ({"conditions": [cond("category_code", "greater_than", "A")]},
         r"conditions\[0\]: operator 'greater_than' applies only to a measure"),
        # value types on attributes and category_code: strings
        ({"conditions": [cond("region", "equals", 5)]},
         r"conditions\[0\]: value on 'region' must be a string, got number 5"),
        ({"conditions": [cond("region", "equals", True)]},
         r"conditions\[0\]: value on 'region' must be a string, got boolean true"),
        ({"conditions": [cond("region", "equals", None)]},
         r"conditions\[0\]: value on 'region' must be a string, got null"),
        ({"conditions": [cond("category_code", "equals", 100)]},
         r"conditions\[0\]: value on 'category_code' must be a string"),
        ({"conditions": [cond("region", "in", ["EU", 3])]},
         r"conditions\[0\]\.value\[1\]: value on 'region' must be a string, got number 3"),
        ({"conditions": [cond("region", "equals", ["EU"])]},
         r"conditions\[0\]: operator 'equals' takes a single value, not a list"),
        ({"conditions": [cond("region", "in", {"EU": 1})]},
         r"conditions\[0\]: value on 'region' must be a string, got dict"),
        # value types on measures: numbers, not bools, not numeric strings
        ({"conditions": [cond("daily_amount", "greater_than", "100")]},
         r"conditions\[0\]: value on measure 'daily_amount' must be a number, got string '100'"),
        ({"conditions": [cond("daily_amount", "equals", "1.5")]},
         r"conditions\[0\]: value on measure 'daily_amount' must be a number, got string '1.5'"),
        ({"conditions": [cond("wtd_amount", "less_than", True)]},
         r"conditions\[0\]: value on measure 'wtd_amount' must be a number, got boolean true"),
        ({"conditions": [cond("ytd_amount", "in", [1, False])]},
         r"conditions\[0\]\.value\[1\]: value on measure 'ytd_amount' must be a number, got boolean false"),
        ({"conditions": [cond("ytd_amount", "greater_than", [1])]},
         r"conditions\[0\]: value on measure 'ytd_amount' must be a number"),
        ({"conditions": [cond("daily_amount", "greater_than", float("nan"))]},
         r"conditions\[0\]: value nan is not a finite number"),
        ({"conditions": [cond("daily_amount", "less_than", float("inf"))]},
         r"conditions\[0\]: value inf is not a finite number"),
        ({"conditions": [cond("daily_amount", "less_than", Decimal("NaN"))]},
         r"conditions\[0\]: value Decimal\('NaN'\) is not a finite number"),
        # in / not_in: non-empty list
        ({"conditions": [OK, cond("region", "in", [])]}, r"conditions\[1\]: operator 'in' needs a non-empty list"),
        ({"conditions": [cond("daily_amount", "not_in", [])]},
         r"conditions\[0\]: operator 'not_in' needs a non-empty list"),
    ],
)
def test_invalid_predicates_are_rejected_with_a_clear_message(predicate, message):
    with pytest.raises(PredicateError, match=message):
        validate_predicate(predicate)
    with pytest.raises(PredicateError):
        evaluate_predicate(predicate, WITH_REGION)


def test_predicate_error_is_a_value_error():
    # a caller catching ValueError catches an invalid predicate from every entry point
    bad = pred(("region", "like", "EU"))
    for call in (lambda: validate_predicate(bad), lambda: evaluate_predicate(bad, WITH_REGION),
                 lambda: snapshot(NODES, [], [("FX", bad)], UC, D)):
        with pytest.raises(ValueError, match=r"conditions\[0\]: unknown operator 'like'") as caught:
            call()
        assert isinstance(caught.value, PredicateError)


# --------------------------------------------------------------------------------------------------
# Properties, against a naive per-fact implementation written straight from the contract's words
# --------------------------------------------------------------------------------------------------

def naive_holds(predicate, f):
    """The predicate on one fact, written independently of pnldb.reference (valid predicates only)."""
    def one(c):
        field, op, value = c["field"], c["operator"], c["value"]
        if field == "category_code":
            actual = f[field]
        elif field in ("daily_amount", "wtd_amount", "ytd_amount"):
            actual = f[field]
            value = [Decimal(str(v)) for v in value] if isinstance(value, list) else Decimal(str(value))
        else:
            actual = f["attributes"].get(field)
            if actual is None:
                return op in ("not_equals", "not_in")
        if isinstance(value, (str, Decimal)) and op in ("in", "not_in"):
            value = [value]
        return {"equals": lambda: actual == value, "not_equals": lambda: actual != value,
                "in": lambda: actual in value, "not_in": lambda: actual not in value,
                "greater_than": lambda: actual > value, "less_than": lambda: actual < value}[op]()
    results = [one(c) for c in predicate["conditions"]]
    return any(results) if predicate.get("conjunction", "AND") == "OR" else all(results)


def naive_snapshot(nodes, facts, rules, uc, day):
    """Per fact: its node, its path to the root, its governing rule; then sums per node on the path."""
    parent = {n: p for n, p, _ in nodes}
    root = next(n for n, p in parent.items() if p is None)
    rules = dict(rules)
    scoped = [f for f in facts if f["use_case_id"] == uc and f["pnl_date"] == day
              and f["scenario"] in ("ACTUAL", "PRIOR")]
    zero = {f"{m}_{k}": Decimal(0) for m in MEASURES for k in ("natural", "adjusted", "plug")}
    result = {(n, s): dict(zero) for n in parent for s in ("ACTUAL", "PRIOR")}
    own = {(n, s): dict(zero) for n in list(parent) + [UNMAPPED] for s in ("ACTUAL", "PRIOR")}
    for f in scoped:
        home = f["category_code"] if f["category_code"] in parent else UNMAPPED
        path = [home]
        while path[-1] != root:
            path.append(root if path[-1] == UNMAPPED else parent[path[-1]])
        governing = next((n for n in path if n in rules), None)
        included = governing is None or naive_holds(rules[governing], f)
        for node in path + [("own", home)]:
            row = own[(home, f["scenario"])] if isinstance(node, tuple) else \
                result.setdefault((node, f["scenario"]), dict(zero))
            for m in MEASURES:
                amount = f[f"{m}_amount"]
                row[f"{m}_natural"] += amount
                row[f"{m}_adjusted"] += amount if included else 0
                row[f"{m}_plug"] += 0 if included else amount
    if (UNMAPPED, "ACTUAL") in result:
        result.setdefault((UNMAPPED, "PRIOR"), dict(zero))
    if (UNMAPPED, "PRIOR") in result:
        result.setdefault((UNMAPPED, "ACTUAL"), dict(zero))
    for table in (result, own):
        for node in {n for n, _ in table}:
            table[(node, "VARIANCE")] = {k: table[(node, "ACTUAL")][k] - table[(node, "PRIOR")][k] for k in zero}
    return result, own


@st.composite
def trees(draw):
    size = draw(st.integers(1, 8))
    nodes = [("N0", None, "root")]
    for i in range(1, size):
        nodes.append((f"N{i}", f"N{draw(st.integers(0, i - 1))}", f"node {i}"))
    return nodes


amounts = st.decimals(min_value=-10**6, max_value=10**6, places=2, allow_nan=False, allow_infinity=False)
regions = st.sampled_from(["EU", "US", "APAC"])


@st.composite
def scenarios(draw):
    nodes = draw(trees())
    codes = [n for n, _, _ in nodes] + ["GHOST"]
    facts = draw(st.lists(st.builds(
        lambda code, d, w, y, scenario, uc, day, region: {
            "use_case_id": uc, "pnl_date": day, "scenario": scenario, "category_code": code,
            "daily_amount": d, "wtd_amount": w, "ytd_amount": y,
            "attributes": {} if region is None else {"region": region},
        },
        st.sampled_from(codes), amounts, amounts, amounts,
        st.sampled_from(["ACTUAL", "PRIOR", "ACTUAL", "PRIOR", "BUDGET"]),
        st.sampled_from([UC, UC, UC, OTHER_UC]), st.sampled_from([D, D, D, date(2025, 12, 23)]),
        st.none() | regions,
    ), max_size=25))
    condition = st.one_of(
        st.builds(lambda op, v: {"field": "region", "operator": op, "value": v},
                  st.sampled_from(["equals", "not_equals"]), regions),
        st.builds(lambda op, v: {"field": "region", "operator": op, "value": v},
                  st.sampled_from(["in", "not_in"]), regions | st.lists(regions, min_size=1, max_size=2)),
        st.builds(lambda f, op, v: {"field": f, "operator": op, "value": v},
                  st.sampled_from(["daily_amount", "wtd_amount", "ytd_amount"]),
                  st.sampled_from(["greater_than", "less_than", "equals", "not_equals"]),
                  st.integers(-1000, 1000) | amounts),
        st.builds(lambda op, v: {"field": "category_code", "operator": op, "value": v},
                  st.sampled_from(["in", "not_in"]), st.lists(st.sampled_from(codes), min_size=1, max_size=3)),
    )
    predicate = st.builds(lambda cs, conj: {"conditions": cs, "conjunction": conj},
                          st.lists(condition, min_size=1, max_size=3), st.sampled_from(["AND", "OR"]))
    rule_nodes = draw(st.lists(st.sampled_from(codes[:-1]), unique=True, max_size=len(nodes)))
    rules = [(n, draw(predicate)) for n in rule_nodes]
    return nodes, facts, rules


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_matches_naive_implementation_and_invariants(case):
    nodes, facts, rules = case
    out = run(facts, rules, nodes=nodes)
    expected, own = naive_snapshot(nodes, facts, rules, UC, D)
    assert set(out) == set(expected)
    rule_nodes = {n for n, _ in rules}
    children = {}
    for n, p, _ in nodes:
        children.setdefault(p, []).append(n)
    if (UNMAPPED, "ACTUAL") in out:
        children.setdefault("N0", []).append(UNMAPPED)
    for (node, scenario), row in out.items():
        for key, value in expected[(node, scenario)].items():
            assert row[key] == value, (node, scenario, key)
        for m in MEASURES:
            assert row[f"{m}_natural"] == row[f"{m}_adjusted"] + row[f"{m}_plug"]
        assert row["is_override"] is (node in rule_nodes)
        assert row["is_reconciled"] is all(row[f"{m}_plug"] == 0 for m in MEASURES)
        # the tree adds up: a node's values are its own facts plus the sums over its children
        for m in MEASURES:
            for kind in ("natural", "adjusted"):
                key = f"{m}_{kind}"
                below = sum((out[(c, scenario)][key] for c in children.get(node, [])), Decimal(0))
                assert row[key] == own[(node, scenario)][key] + below, (node, scenario, key)
    # the root ties out to the sum of all in-scope facts, per scenario and measure
    for scenario in ("ACTUAL", "PRIOR"):
        for m in MEASURES:
            total = sum((f[f"{m}_amount"] for f in facts
                         if f["use_case_id"] == UC and f["pnl_date"] == D and f["scenario"] == scenario), Decimal(0))
            assert out[("N0", scenario)][f"{m}_natural"] == total


# --------------------------------------------------------------------------------------------------
# Explain (contract section 6): worked examples
# --------------------------------------------------------------------------------------------------

#   ROOT
#   ├── TRADING
#   │   ├── RATES
#   │   ├── FX
#   │   └── CREDIT   (a rule, no facts)
#   └── FEES
XNODES = [*NODES, ("CREDIT", "TRADING", "Credit")]


def xfact(fact_id, code, daily, scenario="ACTUAL", **attributes):
    return dict(fact(code, daily, scenario=scenario, **attributes), id=fact_id)


XFACTS = [
    xfact(1, "RATES", "10", region="EU"),
    xfact(2, "RATES", "20", region="US"),
    xfact(3, "FX", "30", region="EU"),
    xfact(4, "FX", "-40", region="US"),
    xfact(5, "TRADING", "5"),                       # lacks region
    xfact(6, "FEES", "7", region="US"),
    xfact(7, "GHOST", "9", region="US"),            # unmapped
    xfact(8, "RATES", "4", scenario="PRIOR", region="EU"),
    xfact(9, "GHOST", "3", scenario="PRIOR", region="EU"),
    xfact(10, "FX", "1000", uc=OTHER_UC, region="EU"),           # out of scope
    xfact(11, "FX", "1000", day=date(2025, 12, 23), region="US"),  # out of scope
]
XRULES = [
    ("ROOT", pred(("region", "equals", "EU")), 100, "EU only"),   # above TRADING: RATES, TRADING, FEES, GHOST
    ("FX", pred(("region", "equals", "US")), 200, "FX: US desks"),
    ("CREDIT", pred(("region", "equals", "EU")), 300, None),      # below TRADING, governs nothing
]


def xexplainer(facts=XFACTS, rules=XRULES, nodes=XNODES):
    return Explainer(nodes, facts, rules, UC, D)


def node_row(fact_id, code, daily, included, rule_id, rule_node, mapped=None, **attributes):
    daily = Decimal(daily)
    return {"fact_id": fact_id, "category_code": code, "mapped_node_id": mapped or code, "attributes": attributes,
            "currency": None, "daily_amount": daily, "wtd_amount": daily * 2, "ytd_amount": daily * 10,
            "rate": Decimal(1), "included": included, "governing_rule_id": rule_id, "governing_node_id": rule_node}


def plug_row(rule_id, node, logic, governed, excluded, daily):
    daily = Decimal(daily)
    return {"rule_id": rule_id, "rule_node_id": node, "logic_en": logic, "facts_governed": governed,
            "facts_excluded": excluded, "daily_excluded": daily, "wtd_excluded": daily * 2,
            "ytd_excluded": daily * 10}


def variance_row(key, actual, prior, change, currency="USD", rate="1"):
    actual, prior = Decimal(actual), Decimal(prior)
    return {"key": key, "actual": actual, "prior": prior, "variance": actual - prior, "change": change,
            "currency": currency, "rate": Decimal(rate)}


def test_explain_node_lists_the_facts_at_or_below_with_their_governing_rule():
    rows = xexplainer().explain_node("TRADING")
    assert rows == [
        node_row(4, "FX", "-40", True, 200, "FX", region="US"),
        node_row(3, "FX", "30", False, 200, "FX", region="EU"),
        node_row(2, "RATES", "20", False, 100, "ROOT", region="US"),   # the rule above the node governs it
        node_row(1, "RATES", "10", True, 100, "ROOT", region="EU"),
        node_row(5, "TRADING", "5", False, 100, "ROOT"),               # lacks region: equals is false
    ]
    assert list(rows[0]) == list(EXPLAIN_NODE_COLUMNS)
    out = run(XFACTS, XRULES, nodes=XNODES)
    assert vals(out[("TRADING", "ACTUAL")]) == dec(25, -30, 55)
    assert sum(r["daily_amount"] for r in rows) == Decimal(25)
    assert sum(r["daily_amount"] for r in rows if r["included"]) == Decimal(-30)
    assert sum(r["ytd_amount"] for r in rows if not r["included"]) == Decimal(550)


def test_explain_node_of_the_root_has_the_unmapped_facts_and_of_a_node_without_facts_none():
    explainer = xexplainer()
    root = explainer.explain_node("ROOT")
    assert [r["fact_id"] for r in root] == [4, 3, 2, 1, 7, 6, 5]
    assert root[4] == node_row(7, "GHOST", "9", False, 100, "ROOT", mapped=UNMAPPED, region="US")
    assert explainer.explain_node(UNMAPPED) == [root[4]]
    assert explainer.explain_node(UNMAPPED, "PRIOR") == [
        node_row(9, "GHOST", "3", True, 100, "ROOT", mapped=UNMAPPED, region="EU")]
    assert explainer.explain_node("CREDIT") == []
    assert [r["fact_id"] for r in explainer.explain_node("ROOT", "PRIOR")] == [8, 9]
    assert explainer.node_ids == ["ROOT", "TRADING", "FEES", "RATES", "FX", "CREDIT", UNMAPPED]
    assert explainer.children("ROOT") == ["TRADING", "FEES", UNMAPPED]


def test_explain_node_ties_order_by_fact_id_and_max_rows_limits():
    facts = [xfact(5, "FX", "-3"), xfact(2, "FX", "3"), xfact(9, "FX", "0.5"), xfact(1, "FX", "3.00")]
    explainer = Explainer(NODES, facts, [], UC, D)
    assert [r["fact_id"] for r in explainer.explain_node("FX")] == [1, 2, 5, 9]
    assert [r["fact_id"] for r in explainer.explain_node("FX", max_rows=2)] == [1, 2]
    assert explainer.explain_node("FX", max_rows=0) == []
    assert len(explainer.explain_node("FX", max_rows=None)) == 4
    ungoverned = explainer.explain_node("FX")[0]
    assert (ungoverned["included"], ungoverned["governing_rule_id"], ungoverned["governing_node_id"]) == \
        (True, None, None)
    many = [xfact(i, "FX", "1") for i in range(1005)]
    assert len(explain_node(NODES, many, [], UC, D, "FX")) == 1000  # the contract's default max_rows
    assert len(explain_node(NODES, many, [], UC, D, "FX", max_rows=None)) == 1005


def test_explain_node_without_fact_ids_uses_positions_and_rules_without_ids_use_their_node():
    facts = [fact("FX", "1", uc=OTHER_UC), fact("FX", "2", region="EU"), fact("RATES", "3")]
    rows = explain_node(NODES, facts, [("TRADING", pred(("region", "equals", "EU")))], UC, D, "TRADING")
    assert [(r["fact_id"], r["included"], r["governing_rule_id"], r["governing_node_id"]) for r in rows] == [
        (2, False, "TRADING", "TRADING"), (1, True, "TRADING", "TRADING")]
    assert explain_plug(NODES, facts, [("TRADING", pred(("region", "equals", "EU")))], UC, D, "FX") == [
        {"rule_id": "TRADING", "rule_node_id": "TRADING", "logic_en": None, "facts_governed": 1, "facts_excluded": 0,
         "daily_excluded": 0, "wtd_excluded": 0, "ytd_excluded": 0}]


def test_explain_plug_has_the_rules_above_at_and_below_with_zeros_for_the_idle_ones():
    explainer = xexplainer()
    rows = explainer.explain_plug("TRADING")
    assert rows == [
        plug_row(200, "FX", "FX: US desks", 2, 1, "30"),
        plug_row(100, "ROOT", "EU only", 3, 2, "25"),    # above the node: only the facts at or below it count
        plug_row(300, "CREDIT", None, 0, 0, "0"),        # under the node, governs nothing
    ]
    assert list(rows[0]) == list(EXPLAIN_PLUG_COLUMNS)
    out = run(XFACTS, XRULES, nodes=XNODES)
    assert sum(r["daily_excluded"] for r in rows) == out[("TRADING", "ACTUAL")]["daily_plug"]
    assert explainer.explain_plug("ROOT") == [
        plug_row(100, "ROOT", "EU only", 5, 4, "41"),    # 2, 5, 6 and the unmapped 7
        plug_row(200, "FX", "FX: US desks", 2, 1, "30"),
        plug_row(300, "CREDIT", None, 0, 0, "0"),
    ]
    # FEES: the root's rule governs its fact; the idle CREDIT rule is not under FEES, FX's rule governs nothing here
    assert explainer.explain_plug("FEES") == [plug_row(100, "ROOT", "EU only", 1, 1, "7")]
    assert explainer.explain_plug("FX", "PRIOR") == [plug_row(200, "FX", "FX: US desks", 0, 0, "0")]
    assert explainer.explain_plug("RATES", "PRIOR") == [plug_row(100, "ROOT", "EU only", 1, 0, "0")]
    assert explainer.explain_plug(UNMAPPED) == [plug_row(100, "ROOT", "EU only", 1, 1, "9")]
    assert explainer.explain_plug("CREDIT") == [plug_row(300, "CREDIT", None, 0, 0, "0")]


def test_explain_plug_without_rules_is_empty_and_ties_order_by_rule_id():
    assert explain_plug(NODES, XFACTS, [], UC, D, "ROOT") == []
    rules = [("FX", pred(("region", "equals", "EU")), 7), ("RATES", pred(("region", "equals", "US")), 3)]
    facts = [xfact(1, "FX", "5", region="US"), xfact(2, "RATES", "-5", region="EU")]
    assert [r["rule_id"] for r in explain_plug(NODES, facts, rules, UC, D, "TRADING")] == [3, 7]


def test_explain_variance_by_child_lists_every_child_and_the_node_itself_when_facts_map_to_it():
    explainer = xexplainer()
    rows = explainer.explain_variance("TRADING")
    assert rows == [
        variance_row("FX", "-40", "0", "NEW"),
        variance_row("RATES", "10", "4", "CHANGED"),
        variance_row("CREDIT", "0", "0", "UNCHANGED"),   # a child without facts
        variance_row("TRADING", "0", "0", "UNCHANGED"),  # fact 5 maps to TRADING itself (excluded)
    ]
    assert list(rows[0]) == list(EXPLAIN_VARIANCE_COLUMNS)
    assert explainer.explain_variance("ROOT", "daily", "child") == [
        variance_row("TRADING", "-30", "4", "CHANGED"),
        variance_row(UNMAPPED, "0", "3", "DROPPED"),
        variance_row("FEES", "0", "0", "UNCHANGED"),     # no fact maps to ROOT itself: no ROOT row
    ]
    out = run(XFACTS, XRULES, nodes=XNODES)
    assert sum(r["variance"] for r in explainer.explain_variance("ROOT")) == out[("ROOT", "VARIANCE")]["daily_adjusted"]
    assert explainer.explain_variance("ROOT", "ytd") == [
        variance_row("TRADING", "-300", "40", "CHANGED"),
        variance_row(UNMAPPED, "0", "30", "DROPPED"),
        variance_row("FEES", "0", "0", "UNCHANGED"),
    ]
    assert explainer.explain_variance("FX") == [variance_row("FX", "-40", "0", "NEW")]
    assert explainer.explain_variance("CREDIT") == []


def test_explain_variance_by_category_code_and_by_attribute_with_facts_lacking_it():
    explainer = xexplainer()
    assert explainer.explain_variance("ROOT", by="category_code") == [
        variance_row("FX", "-40", "0", "NEW"),
        variance_row("RATES", "10", "4", "CHANGED"),
        variance_row("GHOST", "0", "3", "DROPPED"),      # an unmapped code is its own key
        variance_row("FEES", "0", "0", "UNCHANGED"),
        variance_row("TRADING", "0", "0", "UNCHANGED"),
    ]
    assert explainer.explain_variance("ROOT", "wtd", "region") == [
        variance_row("US", "-80", "0", "NEW"),
        variance_row("EU", "20", "14", "CHANGED"),
        variance_row(None, "0", "0", "UNCHANGED"),       # fact 5 lacks region
    ]
    assert explainer.explain_variance("TRADING", by="desk") == [variance_row(None, "-30", "4", "CHANGED")]


def test_explain_variance_change_labels():
    facts = [xfact(1, "FX", "5", region="A"), xfact(2, "FX", "5", "PRIOR", region="A"),
             xfact(3, "FX", "0", region="Z"), xfact(4, "FX", "0", "PRIOR", region="Z"),
             xfact(5, "FX", "-2", "PRIOR", region="B"), xfact(6, "FX", "1", "PRIOR", region="C"),
             xfact(7, "FX", "-1", "PRIOR", region="C"), xfact(8, "FX", "1", region="C")]
    assert explain_variance(NODES, facts, [], UC, D, "FX", by="region") == [
        variance_row("B", "0", "-2", "DROPPED"),
        variance_row("C", "1", "0", "NEW"),              # prior facts that cancel out: prior is 0
        variance_row("A", "5", "5", "UNCHANGED"),
        variance_row("Z", "0", "0", "UNCHANGED"),
    ]


def test_rule_stats_finds_a_misspelt_field():
    facts = [xfact(1, "FX", "5", region="EU"), xfact(2, "FX", "6", book="B1"), xfact(3, "FEES", "7", book="B1"),
             xfact(4, "RATES", "8", region="US"), xfact(5, "FEES", "1", "PRIOR", regoin="US")]
    rules = [
        # each field carried by one of the facts it governs
        ("FX", pred(("region", "equals", "EU"), ("book", "equals", "B1")), 1, "EU book B1"),
        ("FEES", pred(("regoin", "equals", "US"), ("daily_amount", "greater_than", 100), conjunction="OR"), 2, "typo"),
        ("TRADING", pred(("category_code", "in", ["RATES"])), 3, None),
        ("CREDIT", pred(("strategy", "equals", "X")), 4, None),                               # governs nothing
    ]
    stats = Explainer(XNODES, facts, rules, UC, D).rule_stats()
    assert stats == [
        {**plug_row(1, "FX", "EU book B1", 2, 2, "11"), "missing_fields": []},
        {**plug_row(2, "FEES", "typo", 1, 1, "7"), "missing_fields": ["regoin"]},
        {**plug_row(3, "TRADING", None, 1, 0, "0"), "missing_fields": []},
        {**plug_row(4, "CREDIT", None, 0, 0, "0"), "missing_fields": []},
    ]
    assert list(stats[0]) == list(RULE_STATS_COLUMNS)
    assert [r["missing_fields"] for r in rule_stats(XNODES, facts, rules, UC, D, "PRIOR")] == [[], [], [], []]
    both = [("FX", pred(("region", "equals", "EU"), ("zone", "in", ["Z"]), ("desk", "not_equals", "D"),
                        ("zone", "equals", "Y"), conjunction="OR"), 1, None)]
    assert rule_stats(XNODES, [xfact(1, "FX", "1", book="B1")], both, UC, D)[0]["missing_fields"] == \
        ["desk", "region", "zone"]
    # a JSON null is missing, as in a predicate
    assert rule_stats(XNODES, [xfact(1, "FX", "1", region=None)], rules[:1], UC, D)[0]["missing_fields"] == \
        ["book", "region"]


def test_explain_refuses_unknown_nodes_scenarios_measures_and_rows():
    explainer = xexplainer()
    with pytest.raises(LookupError, match="'NOPE' is not a node of the run"):
        explainer.explain_node("NOPE")
    with pytest.raises(LookupError, match="the run has no unmapped facts"):
        Explainer(NODES, [fact("FX", "1")], [], UC, D).explain_plug(UNMAPPED)
    with pytest.raises(ValueError, match="scenario 'VARIANCE' is not one of ACTUAL, PRIOR"):
        explainer.explain_node("ROOT", "VARIANCE")
    with pytest.raises(ValueError, match="measure 'daily_amount' is not one of daily, wtd, ytd"):
        explainer.explain_variance("ROOT", "daily_amount")
    with pytest.raises(ValueError, match="max_rows must be a non-negative integer"):
        explainer.explain_node("ROOT", max_rows=-1)
    with pytest.raises(LookupError):
        explainer.explain_variance("NOPE", by="region")
    with pytest.raises(ValueError, match="more than one rule with rule_id 7"):
        eu = pred(("region", "equals", "EU"))
        Explainer(NODES, [], [("FX", eu, 7), ("RATES", eu, 7)], UC, D)


def test_snapshot_accepts_rules_with_ids_and_text_unchanged():
    plain = run(XFACTS, [rule[:2] for rule in XRULES], nodes=XNODES)
    assert run(XFACTS, XRULES, nodes=XNODES) == plain
    assert vals(plain[("ROOT", "ACTUAL")]) == dec(41, -30, 71)


# --------------------------------------------------------------------------------------------------
# Explain: properties on random cases, for every node of the run
# --------------------------------------------------------------------------------------------------

def naive_governing(nodes, rules, code):
    """The node of the rule that governs a fact of this code, by walking up from its node (None: no rule)."""
    parent = {n: p for n, p, _ in nodes}
    root = next(n for n, p in parent.items() if p is None)
    path = [code] if code in parent else [UNMAPPED, root]
    while parent.get(path[-1]) is not None:
        path.append(parent[path[-1]])
    return next((n for n in path if n in dict(rules)), None)


@settings(max_examples=200, deadline=None)
@given(scenarios(), st.sampled_from(["region", "desk"]))
def test_explanations_add_up_to_the_snapshot_at_every_node(case, attribute):
    nodes, facts, rules = case
    out = run(facts, rules, nodes=nodes)
    explainer = Explainer(nodes, facts, rules, UC, D)
    rule_nodes = dict(rules)
    assert set(explainer.node_ids) == {n for n, _ in out}
    children = {n: explainer.children(n) for n in explainer.node_ids}
    for node in explainer.node_ids:
        below, stack = set(), [node]
        while stack:
            below.add(stack[-1])
            stack.extend(children[stack.pop()])
        for scenario in ("ACTUAL", "PRIOR"):
            row = out[(node, scenario)]
            facts_rows = explainer.explain_node(node, scenario, None)
            for m in MEASURES:
                column = f"{m}_amount"
                assert sum((r[column] for r in facts_rows), Decimal(0)) == row[f"{m}_natural"]
                assert sum((r[column] for r in facts_rows if r["included"]), Decimal(0)) == row[f"{m}_adjusted"]
                assert sum((r[column] for r in facts_rows if not r["included"]), Decimal(0)) == row[f"{m}_plug"]
            # each row: a fact of the scenario at or below the node, its rule found by walking up the tree
            assert len(facts_rows) == sum(1 for f in facts if f["use_case_id"] == UC and f["pnl_date"] == D
                                          and f["scenario"] == scenario
                                          and (f["category_code"] if f["category_code"] in parent_of(nodes)
                                               else UNMAPPED) in below)
            for r in facts_rows:
                f = facts[r["fact_id"]]
                assert r["mapped_node_id"] in below and r["category_code"] == f["category_code"]
                governing = naive_governing(nodes, rules, f["category_code"])
                assert r["governing_node_id"] == r["governing_rule_id"] == governing
                assert r["included"] is (governing is None or naive_holds(rule_nodes[governing], f))
            keys = [(-abs(r["daily_amount"]), r["fact_id"]) for r in facts_rows]
            assert keys == sorted(keys)
            assert explainer.explain_node(node, scenario, 3) == facts_rows[:3]

            plug = explainer.explain_plug(node, scenario)
            for m in MEASURES:
                assert sum((r[f"{m}_excluded"] for r in plug), Decimal(0)) == row[f"{m}_plug"]
            governing_ids = {r["governing_rule_id"] for r in facts_rows} - {None}
            assert {r["rule_id"] for r in plug} == governing_ids | {n for n in rule_nodes if n in below}
            assert len(plug) == len({r["rule_id"] for r in plug})
            for r in plug:
                governed = [f for f in facts_rows if f["governing_rule_id"] == r["rule_id"]]
                assert r["facts_governed"] == len(governed)
                assert r["facts_excluded"] == sum(1 for f in governed if not f["included"])
            keys = [(-abs(r["daily_excluded"]), r["rule_id"]) for r in plug]
            assert keys == sorted(keys)

        for m in MEASURES:
            for by in ("child", "category_code", attribute):
                variance = explainer.explain_variance(node, m, by)
                assert sum((r["variance"] for r in variance), Decimal(0)) == out[(node, "VARIANCE")][f"{m}_adjusted"]
                assert sum((r["actual"] for r in variance), Decimal(0)) == out[(node, "ACTUAL")][f"{m}_adjusted"]
                assert sum((r["prior"] for r in variance), Decimal(0)) == out[(node, "PRIOR")][f"{m}_adjusted"]
                assert len({r["key"] for r in variance}) == len(variance)
                for r in variance:
                    assert r["variance"] == r["actual"] - r["prior"]
                    assert r["change"] == ("UNCHANGED" if r["actual"] == r["prior"] else "NEW" if r["prior"] == 0
                                           else "DROPPED" if r["actual"] == 0 else "CHANGED")
                keys = [(-abs(r["variance"]), r["key"] is None, r["key"] or "") for r in variance]
                assert keys == sorted(keys)
                if by == "child":
                    own = any(r["mapped_node_id"] == node for s in ("ACTUAL", "PRIOR")
                              for r in explainer.explain_node(node, s, None))
                    assert {r["key"] for r in variance} == set(children[node]) | ({node} if own else set())
                    for r in variance:
                        if r["key"] != node:
                            assert r["actual"] == out[(r["key"], "ACTUAL")][f"{m}_adjusted"]
                            assert r["prior"] == out[(r["key"], "PRIOR")][f"{m}_adjusted"]
                elif by == "desk":
                    assert [r["key"] for r in variance] in ([], [None])

    stats = explainer.rule_stats()
    assert [{k: v for k, v in r.items() if k != "missing_fields"} for r in stats] == \
        explainer.explain_plug(explainer.root)
    root_rows = explainer.explain_node(explainer.root, "ACTUAL", None)
    for r in stats:
        governed = [facts[f["fact_id"]] for f in root_rows if f["governing_rule_id"] == r["rule_id"]]
        fields = {c["field"] for c in rule_nodes[r["rule_id"]]["conditions"]} & {"region"}  # the only attribute here
        assert r["missing_fields"] == sorted(
            f for f in fields if governed and not any(f in g["attributes"] for g in governed))


def parent_of(nodes):
    return {n: p for n, p, _ in nodes}
