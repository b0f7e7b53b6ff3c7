"""The backbone: the SQL engine agrees exactly with the pure-Python reference of contract §2 on random
cases: ragged trees, facts on leaves, inner nodes and unmapped codes, attributes present and missing,
nested rules with AND/OR and every operator, negative amounts, an empty PRIOR side, facts of other
dates, scenarios and use cases that must not leak in; mixed currencies with the rounding rule of contract
§8, facts already in the reporting currency, rules on `currency` and on native amounts, and missing rates
refused by both with nothing written."""
from __future__ import annotations

import json
from decimal import Decimal

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings

from pnldb import reference
from tests.strategies import COB, OTHER_DATE, cases, money


def _insert(conn, nodes, in_scope, noise, rules, reporting="USD", rates=None):
    conn.execute("INSERT INTO hierarchy_structures VALUES ('S', 'S')")
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO dim_hierarchy (structure_id, node_id, parent_node_id, node_name) "
                        "VALUES ('S', %s, %s, %s)", nodes)
    uc, other = (conn.execute("INSERT INTO use_cases (name, structure_id, reporting_currency) VALUES (%s, 'S', %s) "
                              "RETURNING use_case_id", (name, reporting)).fetchone()[0] for name in ("U", "V"))
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO fx_rates (pnl_date, currency, reporting_currency, rate) VALUES (%s, %s, %s, %s)",
                        [(COB, c, reporting, r) for c, r in (rates or {}).items()])
    rows = [(uc, COB, *f) for f in in_scope]
    rows += [(other if kind == "other_use_case" else uc, COB if kind == "other_use_case" else OTHER_DATE, *f)
             for kind, f in noise]
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO fact_pnl_entries (use_case_id, pnl_date, scenario, category_code, daily_amount, wtd_amount, "
            "ytd_amount, amount, attributes, currency) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s)",
            [(u, d, s, c, a, w, y, a, json.dumps(attrs), cur_) for u, d, s, c, a, w, y, attrs, cur_ in rows])
        cur.executemany("INSERT INTO metadata_rules (use_case_id, node_id, predicate_json) VALUES (%s, %s, %s::jsonb)",
                        [(uc, node, json.dumps(p)) for node, p in rules])
    as_dicts = [{"use_case_id": u, "pnl_date": d, "scenario": s, "category_code": c, "daily_amount": a,
                 "wtd_amount": w, "ytd_amount": y, "attributes": attrs, "currency": cur_}
                for u, d, s, c, a, w, y, attrs, cur_ in rows]
    return uc, as_dicts


COLUMNS = ["node_id", "parent_node_id", "node_name", "depth", "scenario",
           *(f"{m}_{k}" for m in reference.MEASURES for k in ("natural", "adjusted", "plug")),
           "is_override", "is_reconciled"]


@pytest.fixture
def tx_conn(db_url):
    with psycopg.connect(db_url) as connection:
        connection.execute("SET search_path TO pnl")
        connection.commit()
        yield connection


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=cases(), fx=money(complete=False))
def test_engine_agrees_exactly_with_the_reference(tx_conn, case, fx):
    nodes, in_scope, noise, rules = case
    reporting, rates = fx
    exact_rules = [(node, json.loads(json.dumps(p), parse_float=Decimal)) for node, p in rules]
    with tx_conn.transaction(force_rollback=True):
        uc, facts = _insert(tx_conn, nodes, in_scope, noise, rules, reporting, rates)
        try:
            expected = {(r["node_id"], r["scenario"]): [r[c] for c in COLUMNS]
                        for r in reference.snapshot([(n, p, name) for n, p, name in nodes], facts, exact_rules, uc,
                                                    COB, reporting, rates)}
        except reference.MissingRateError as exc:
            runs = tx_conn.execute("SELECT count(*) FROM calculation_runs").fetchone()
            with pytest.raises(psycopg.errors.NoDataFound) as refused, tx_conn.transaction():
                tx_conn.execute("SELECT create_snapshot(%s, %s)", (uc, COB))
            # both name the same (currency, date) pairs, and nothing was written
            assert str(refused.value).splitlines()[0].endswith(str(exc).split(" for ", 1)[1])
            assert tx_conn.execute("SELECT count(*) FROM calculation_runs").fetchone() == runs
            return
        run = tx_conn.execute("SELECT create_snapshot(%s, %s)", (uc, COB)).fetchone()[0]
        status, error = tx_conn.execute("SELECT status, error_message FROM calculation_runs WHERE id = %s",
                                        (run,)).fetchone()
        assert status == "COMPLETED", error
        engine = {(r[0], r[4]): list(r) for r in tx_conn.execute(
            f"SELECT {', '.join(COLUMNS)} FROM fact_calculated_results WHERE calculation_run_id = %s", (run,))}
        assert tx_conn.execute("SELECT verify_run(%s) ->> 'reproduced'", (run,)).fetchone() == ("true",)
    assert engine == expected
