"""The explain functions of contract §6 agree exactly with the pure-Python reference's explanations on random
cases (the strategies of tests/strategies.py), facts loaded in two or three loads, some slices superseded by
replace_facts; their sums equal the run's stored values; and they keep explaining the run as it was after
its rules, its hierarchy and its facts change."""
from __future__ import annotations

import json
import uuid
from decimal import ROUND_HALF_UP, Decimal

import psycopg
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from pnldb import reference
from tests.strategies import ATTRIBUTE_KEYS, COB, OTHER_DATE, cases, money

RESULT_COLUMNS = ["node_id", "parent_node_id", "node_name", "depth", "scenario",
                  *(f"{m}_{k}" for m in reference.MEASURES for k in reference.KINDS),
                  "is_override", "is_reconciled"]
SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
MISSPELT = {"field": "regoin", "operator": "equals", "value": "a"}


@st.composite
def loaded_cases(draw):
    """A case of tests/strategies.py, its in-scope facts spread over two or three loads, each load after the
    first either added beside the current ones or replacing a slice (ACTUAL, PRIOR or both, replace_facts);
    the last fact, an ACTUAL one, always in the last load so that the run has an ACTUAL fact. Some rules get a
    logic_en and a misspelt condition field; nodes to explain; an attribute to break variances down by."""
    nodes, in_scope, noise, rules = draw(cases())
    reporting, rates = draw(money())
    named_rules = []
    for node, predicate in rules:
        if draw(st.integers(0, 4)) == 0:
            predicate = {**predicate, "conditions": [*predicate["conditions"], MISSPELT]}
        named_rules.append((node, predicate, draw(st.none() | st.sampled_from([f"rule on {node}", "ünï 'q' %s"]))))
    n_loads = draw(st.integers(2, 3))
    assignment = [draw(st.integers(0, n_loads - 1)) for _ in in_scope[:-1]] + [n_loads - 1]
    loads = [[f for f, load in zip(in_scope, assignment) if load == i] for i in range(n_loads)]
    replaces = [None] + [draw(st.sampled_from([None, "ACTUAL", "PRIOR", "BOTH"])) for _ in range(n_loads - 1)]
    node_ids = [n for n, _, _ in nodes]
    others = draw(st.lists(st.sampled_from(node_ids[1:]), unique=True, max_size=3)) if len(node_ids) > 1 else []
    explained = [node_ids[0], *others]
    attribute = draw(st.sampled_from([*ATTRIBUTE_KEYS, "desk"]))  # desk: no fact has it
    return nodes, loads, replaces, noise, named_rules, explained, attribute, reporting, rates


def _insert_facts(conn, rows) -> list[dict]:
    """rows: (use_case_id, pnl_date, scenario, code, daily, wtd, ytd, attributes[, currency]); the facts as the
    reference takes them, each with the id the database gave it."""
    inserted = []
    for u, d, s, c, a, w, y, attrs, *currency in rows:
        currency = currency[0] if currency else None
        fact_id = conn.execute(
            "INSERT INTO fact_pnl_entries (use_case_id, pnl_date, scenario, category_code, daily_amount, wtd_amount, "
            "ytd_amount, amount, attributes, currency) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s) "
            "RETURNING id", (u, d, s, c, a, w, y, a, json.dumps(attrs), currency)).fetchone()[0]
        inserted.append({"id": fact_id, "use_case_id": u, "pnl_date": d, "scenario": s, "category_code": c,
                         "daily_amount": a, "wtd_amount": w, "ytd_amount": y, "attributes": attrs,
                         "currency": currency})
    return inserted


def _load_and_snapshot(conn, case):
    """Writes the case (each load in its own transaction) and takes a snapshot of the use case for COB.
    Returns (use case, run, the reference's inputs: nodes, the current facts, rules with id and logic_en)."""
    nodes, loads, replaces, noise, rules, _, _, reporting, rates = case
    tag = uuid.uuid4().hex[:12]
    structure = f"S_{tag}"
    with conn.transaction():
        conn.execute("INSERT INTO hierarchy_structures (structure_id, name) VALUES (%s, %s)", (structure, structure))
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO dim_hierarchy (structure_id, node_id, parent_node_id, node_name) "
                            "VALUES (%s, %s, %s, %s)", [(structure, *node) for node in nodes])
        uc, other = (conn.execute("INSERT INTO use_cases (name, structure_id, reporting_currency) VALUES (%s, %s, %s) "
                                  "RETURNING use_case_id", (f"{name}_{tag}", structure, reporting)).fetchone()[0]
                     for name in ("U", "V"))
        conn.execute("DELETE FROM fx_rates WHERE pnl_date = %s AND reporting_currency = %s", (COB, reporting))
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO fx_rates (pnl_date, currency, reporting_currency, rate) "
                            "VALUES (%s, %s, %s, %s)", [(COB, c, reporting, r) for c, r in rates.items()])
        reference_rules = []
        for node, predicate, logic_en in rules:
            rule_id = conn.execute("INSERT INTO metadata_rules (use_case_id, node_id, predicate_json, logic_en) "
                                   "VALUES (%s, %s, %s::jsonb, %s) RETURNING rule_id",
                                   (uc, node, json.dumps(predicate), logic_en)).fetchone()[0]
            reference_rules.append((node, json.loads(json.dumps(predicate), parse_float=Decimal), rule_id, logic_en))

    current: list[dict] = []  # the use case's current facts of COB, as the loads leave them
    superseded = 0
    for i, (load, replace) in enumerate(zip(loads, replaces)):
        with conn.transaction():
            if replace is not None:
                conn.execute("SELECT replace_facts(%s, %s, %s, %s)",
                             (uc, COB, None if replace == "BOTH" else replace, f"replacement {i}"))
                kept = [f for f in current if replace not in ("BOTH", f["scenario"])]
                superseded += len(current) - len(kept)
                current = kept
            current += _insert_facts(conn, [(uc, COB, *f) for f in load])
            if i == 0:  # facts that must not leak in: another date of the use case, another use case
                _insert_facts(conn, [(other if kind == "other_use_case" else uc,
                                      COB if kind == "other_use_case" else OTHER_DATE, *f) for kind, f in noise])
    event("some facts superseded" if superseded else "no fact superseded")
    run = conn.execute("SELECT create_snapshot(%s, %s)", (uc, COB)).fetchone()[0]
    status, error = conn.execute("SELECT status, error_message FROM calculation_runs WHERE id = %s",
                                 (run,)).fetchone()
    assert status == "COMPLETED", error
    return uc, run, ([(n, p, name) for n, p, name in nodes], current, reference_rules)


def _stored(conn, run) -> dict:
    """{(node_id, scenario): row} of the run's fact_calculated_results."""
    cur = conn.execute(f"SELECT {', '.join(RESULT_COLUMNS)} FROM fact_calculated_results "
                       "WHERE calculation_run_id = %s", (run,))
    return {(r[0], r[4]): dict(zip(RESULT_COLUMNS, r)) for r in cur.fetchall()}


def _rows(conn, query, params, columns) -> list[dict]:
    cur = conn.execute(query, params)
    assert [c.name for c in cur.description] == list(columns), query
    return [dict(zip(columns, row)) for row in cur.fetchall()]


def _explanations(conn, run, node_ids, attribute) -> dict:
    """Every explanation of the run this test compares, keyed by what was asked."""
    out = {}
    for node in node_ids:
        for scenario in reference.SCENARIOS:
            out[("node", node, scenario)] = _rows(conn, "SELECT * FROM explain_node(%s, %s, %s, NULL)",
                                                  (run, node, scenario), reference.EXPLAIN_NODE_COLUMNS)
            out[("plug", node, scenario)] = _rows(conn, "SELECT * FROM explain_plug(%s, %s, %s)",
                                                  (run, node, scenario), reference.EXPLAIN_PLUG_COLUMNS)
        for measure in reference.MEASURES:
            for by in ("child", "category_code", attribute):
                out[("variance", node, measure, by)] = _rows(
                    conn, "SELECT * FROM explain_variance(%s, %s, %s, %s)", (run, node, measure, by),
                    reference.EXPLAIN_VARIANCE_COLUMNS)
    out[("rule_stats",)] = _rows(conn, "SELECT * FROM run_rule_stats(%s)", (run,), reference.RULE_STATS_COLUMNS)
    return out


def _expected(explainer: reference.Explainer, node_ids, attribute) -> dict:
    out = {}
    for node in node_ids:
        for scenario in reference.SCENARIOS:
            out[("node", node, scenario)] = explainer.explain_node(node, scenario, None)
            out[("plug", node, scenario)] = explainer.explain_plug(node, scenario)
        for measure in reference.MEASURES:
            for by in ("child", "category_code", attribute):
                out[("variance", node, measure, by)] = explainer.explain_variance(node, measure, by)
    out[("rule_stats",)] = explainer.rule_stats()
    return out


def _edit_everything(conn, uc, nodes, rules):
    """After the run: every rule deleted or rewritten, a rule on a new node, a node moved under the root, a leaf
    deleted, and both slices of the date replaced by one new fact."""
    structure = conn.execute("SELECT structure_id FROM use_cases WHERE use_case_id = %s", (uc,)).fetchone()[0]
    with conn.transaction():
        for i, (_, _, rule_id, _) in enumerate(rules):
            if i % 2:
                conn.execute("DELETE FROM metadata_rules WHERE rule_id = %s", (rule_id,))
            else:
                conn.execute("UPDATE metadata_rules SET predicate_json = %s::jsonb, logic_en = 'rewritten' "
                             "WHERE rule_id = %s",
                             (json.dumps({"conditions": [{"field": "daily_amount", "operator": "greater_than",
                                                          "value": 0}]}), rule_id))
        root = nodes[0][0]
        conn.execute("INSERT INTO dim_hierarchy (structure_id, node_id, parent_node_id, node_name) "
                     "VALUES (%s, 'NEW', %s, 'New')", (structure, root))
        conn.execute("INSERT INTO metadata_rules (use_case_id, node_id, predicate_json) VALUES (%s, 'NEW', %s::jsonb)",
                     (uc, json.dumps({"conditions": [{"field": "region", "operator": "equals", "value": "a"}]})))
        deep = [n for n, p, _ in nodes if p is not None and p != root]
        if deep:
            conn.execute("UPDATE dim_hierarchy SET parent_node_id = %s, node_name = 'moved' "
                         "WHERE structure_id = %s AND node_id = %s", (root, structure, deep[0]))
        leaf = conn.execute("SELECT h.node_id FROM dim_hierarchy h WHERE h.structure_id = %s AND h.node_id <> 'NEW' "
                            "AND h.parent_node_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM dim_hierarchy c "
                            "WHERE c.structure_id = h.structure_id AND c.parent_node_id = h.node_id) "
                            "AND NOT EXISTS (SELECT 1 FROM metadata_rules r WHERE r.use_case_id = %s "
                            "AND r.node_id = h.node_id) ORDER BY h.node_id LIMIT 1", (structure, uc)).fetchone()
        if leaf:
            conn.execute("DELETE FROM dim_hierarchy WHERE structure_id = %s AND node_id = %s", (structure, leaf[0]))
    with conn.transaction():
        conn.execute("SELECT replace_facts(%s, %s, NULL, 'after the run')", (uc, COB))
        _insert_facts(conn, [(uc, COB, "ACTUAL", root, Decimal("123.45"), Decimal(0), Decimal(0), {"region": "a"})])


@pytest.fixture
def conn(db_url):
    with psycopg.connect(db_url, autocommit=True) as connection:
        connection.execute("SET search_path TO pnl, public")
        yield connection


@SETTINGS
@given(case=loaded_cases())
def test_loads_and_replacements_feed_the_snapshot_its_current_facts(conn, case):
    uc, run, (nodes, current, rules) = _load_and_snapshot(conn, case)
    reporting, rates = case[7], case[8]
    expected = {(r["node_id"], r["scenario"]): r
                for r in reference.snapshot(nodes, current, rules, uc, COB, reporting, rates)}
    assert _stored(conn, run) == expected
    assert {(r["node_id"], r["scenario"]): r for r in reference.snapshot_from_database(conn, uc, COB)} == expected
    recorded = conn.execute("SELECT scenario, sum(facts), sum(daily_sum), sum(wtd_sum), sum(ytd_sum) "
                            "FROM calculation_run_inputs WHERE calculation_run_id = %s GROUP BY scenario",
                            (run,)).fetchall()
    assert {r[0]: tuple(r[1:]) for r in recorded} == {
        s: (len(of), *(sum((f[m] for f in of), Decimal(0)) for m in ("daily_amount", "wtd_amount", "ytd_amount")))
        for s in reference.SCENARIOS if (of := [f for f in current if f["scenario"] == s])}


@SETTINGS
@given(case=loaded_cases())
def test_explanations_agree_exactly_with_the_reference_and_add_up_to_the_run(conn, case):
    uc, run, (nodes, current, rules) = _load_and_snapshot(conn, case)
    explained, attribute = case[5], case[6]
    reporting, rates = case[7], case[8]
    explainer = reference.Explainer(nodes, current, rules, uc, COB, reporting, rates)
    one_currency = all((f["currency"] or reporting) == reporting for f in current)
    stored = _stored(conn, run)
    if reference.UNMAPPED in explainer.node_ids:
        explained = [*explained, reference.UNMAPPED]
    expected = _expected(explainer, explained, attribute)
    got = _explanations(conn, run, explained, attribute)
    for key, rows in expected.items():
        assert got[key] == rows, key

    # the sums are the run's stored values, exactly
    for node in explained:
        for scenario in reference.SCENARIOS:
            row, facts, plug = stored[(node, scenario)], got[("node", node, scenario)], got[("plug", node, scenario)]
            for m in reference.MEASURES:
                # grouped by (mapped node, currency, included), each group converted (contract §6, §8)
                groups: dict = {}
                for f in facts:
                    key = (f["mapped_node_id"], f["currency"] or reporting, f["included"], f["rate"])
                    groups[key] = groups.get(key, Decimal(0)) + f[f"{m}_amount"]
                converted = {k: total if k[1] == reporting else (total * k[3]).quantize(Decimal("0.01"), ROUND_HALF_UP)
                             for k, total in groups.items()}
                assert sum(converted.values(), Decimal(0)) == row[f"{m}_natural"]
                assert sum((v for k, v in converted.items() if k[2]), Decimal(0)) == row[f"{m}_adjusted"]
                assert sum((v for k, v in converted.items() if not k[2]), Decimal(0)) == row[f"{m}_plug"]
                assert sum((r[f"{m}_excluded"] for r in plug), Decimal(0)) == row[f"{m}_plug"]
        for m in reference.MEASURES:
            # by category_code or an attribute, converted per key, the rows add up exactly in one currency
            for by in ("child", "category_code", attribute) if one_currency else ("child",):
                assert sum((r["variance"] for r in got[("variance", node, m, by)]), Decimal(0)) == \
                    stored[(node, "VARIANCE")][f"{m}_adjusted"], (node, m, by)
    root = nodes[0][0]
    stats = got[("rule_stats",)]
    assert [{k: v for k, v in r.items() if k != "missing_fields"} for r in stats] == got[("plug", root, "ACTUAL")]
    assert {r["rule_id"] for r in stats} == {rule_id for _, _, rule_id, _ in rules}
    for r in stats:
        if any(c == MISSPELT for c in explainer_rule(rules, r["rule_id"])["conditions"]) and r["facts_governed"]:
            assert "regoin" in r["missing_fields"]

    # the run is explained as it was, whatever changes since
    _edit_everything(conn, uc, nodes, rules)
    assert _explanations(conn, run, explained, attribute) == got


def explainer_rule(rules, rule_id) -> dict:
    return next(predicate for _, predicate, rid, _ in rules if rid == rule_id)
