"""Hypothesis strategies shared by the tests that check the SQL engine against the pure-Python reference
(tests/test_engine_matches_reference.py, tests/test_explain_matches_reference.py): random cases of ragged
trees, facts on leaves, inner nodes and unmapped codes, attributes present and missing, nested rules with
AND/OR and every operator, negative amounts, an empty PRIOR side, facts of other dates, scenarios and
use cases that must not leak in, and currencies (contract §8): facts in their own currencies or none (the
reporting currency), a reporting currency per case, the date's rates, and rules on `currency`."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from hypothesis import strategies as st

from pnldb import reference

COB = dt.date(2025, 12, 24)
OTHER_DATE = dt.date(2025, 12, 23)
ATTRIBUTE_KEYS = ("region", "book", "strategy")
ATTRIBUTE_VALUES = ("a", "b", "c")
AMOUNT_POOL = [Decimal("0.00"), Decimal("1.50"), Decimal("-2.25"), Decimal("100.00")]
MEASURE_FIELDS = tuple(f"{m}_amount" for m in reference.MEASURES)
REPORTING = ("USD", "EUR")
CURRENCIES = ("USD", "EUR", "GBP", "JPY")
RATE_POOL = [Decimal("1.5"), Decimal("0.8333"), Decimal("1.25"), Decimal("0.0065"), Decimal("1"),
             Decimal("1.085072")]

amounts = st.one_of(
    st.sampled_from(AMOUNT_POOL),
    st.decimals(min_value=Decimal("-9999999999.99"), max_value=Decimal("9999999999.99"), places=2,
                allow_nan=False, allow_infinity=False),
)


@st.composite
def trees(draw):
    size = draw(st.integers(1, 18))
    parents = [None] + [draw(st.integers(0, i - 1)) for i in range(1, size)]
    names = draw(st.lists(st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)),
                                  min_size=1, max_size=6), min_size=size, max_size=size))
    return [(f"N{i}", None if p is None else f"N{p}", names[i]) for i, p in enumerate(parents)]


@st.composite
def conditions(draw, node_ids):
    field = draw(st.sampled_from(("category_code", "currency", *MEASURE_FIELDS, *ATTRIBUTE_KEYS)))
    is_measure = field in MEASURE_FIELDS
    operators = ["equals", "not_equals", "in", "not_in"] + (["greater_than", "less_than"] if is_measure else [])
    operator = draw(st.sampled_from(operators))
    if is_measure:
        scalar = st.sampled_from(AMOUNT_POOL).map(lambda d: float(d) if d != d.to_integral() else int(d))
    elif field == "category_code":
        scalar = st.sampled_from([*node_ids, "X1"])
    elif field == "currency":
        scalar = st.sampled_from(CURRENCIES)
    else:
        scalar = st.sampled_from(ATTRIBUTE_VALUES)
    value = draw(st.lists(scalar, min_size=1, max_size=3)) if operator in ("in", "not_in") else draw(scalar)
    return {"field": field, "operator": operator, "value": value}


@st.composite
def cases(draw):
    nodes = draw(trees())
    node_ids = [n for n, _, _ in nodes]
    codes = st.sampled_from([*node_ids, "X1", "X2"])
    attributes = st.dictionaries(st.sampled_from(ATTRIBUTE_KEYS), st.sampled_from(ATTRIBUTE_VALUES), max_size=3)
    currency = st.sampled_from([None, None, *CURRENCIES])
    fact = st.tuples(st.sampled_from(["ACTUAL", "PRIOR"]), codes, amounts, amounts, amounts, attributes, currency)
    in_scope = draw(st.lists(fact, min_size=0, max_size=25))
    in_scope.append(draw(fact.map(lambda f: ("ACTUAL", *f[1:]))))  # at least one ACTUAL fact
    if draw(st.booleans()):
        in_scope = [f for f in in_scope if f[0] == "ACTUAL"]  # an empty PRIOR side
    noise = draw(st.lists(st.tuples(st.sampled_from(["other_date", "other_use_case"]), fact), max_size=6))
    ruled = draw(st.lists(st.sampled_from(node_ids), unique=True, max_size=len(node_ids)))
    rules = []
    for node in ruled:
        conds = draw(st.lists(conditions(node_ids), min_size=1, max_size=3))
        predicate = {"conditions": conds}
        conjunction = draw(st.sampled_from([None, "AND", "OR"]))
        if conjunction:
            predicate["conjunction"] = conjunction
        rules.append((node, predicate))
    return nodes, in_scope, noise, rules


rates = st.one_of(st.sampled_from(RATE_POOL),
                  st.decimals(min_value=Decimal("0.000001"), max_value=Decimal("200"), places=6,
                              allow_nan=False, allow_infinity=False))


@st.composite
def money(draw, complete: bool = True):
    """(reporting currency, the COB's rates into it: currency -> rate). Not `complete`: some rates may be
    missing, so that a snapshot of facts in those currencies is refused."""
    reporting = draw(st.sampled_from(REPORTING))
    others = [c for c in CURRENCIES if c != reporting]
    kept = others if complete else draw(st.lists(st.sampled_from(others), unique=True))
    return reporting, {c: draw(rates) for c in kept}
