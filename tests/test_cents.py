"""Integer cents (migration 0016, issue 15): the snapshot's fact pipeline sums each measure as its stored
integer cents and turns the sum back into numeric. These tests fail if that arithmetic ever differs from
plain numeric sums, at the edges of numeric(18,2): the largest and smallest amounts, a cent, zero, mixes
summing to zero, and many largest amounts in one node (a sum far beyond numeric(18,2)'s range), in
another currency too; in a snapshot, in verify_run and in the explanations, against plain numeric sums
computed in SQL and against the Python reference. And what the cents columns are: derived, never
written, filled for legacy rows whose measures a trigger fills, and for facts already there when an
installation migrates."""
from __future__ import annotations

import json
import random
from decimal import Decimal

import psycopg
import pytest
from builders import COB, cond, rule, snapshot, structure, use_case

from pnldb import api, reference, schema
from pnldb.vocabulary import MEASURES

MAX = Decimal("9999999999999999.99")  # the largest numeric(18,2)
CENT = Decimal("0.01")
TREE = [("FIRM", None), ("A", "FIRM"), ("A_1", "A"), ("A_2", "A"), ("B", "FIRM"), ("B_1", "B"), ("C", "FIRM"),
        ("C_1", "C")]
RATE = Decimal("1.2345678901")
MANY = 60  # largest amounts in one node: 6 * 10^17, beyond numeric(18,2) (10^16) and far inside bigint cents

# (scenario, category_code, daily, wtd, ytd, attributes, currency)
EDGE_FACTS = [
    ("ACTUAL", "A_1", MAX, -MAX, CENT, {"book": "a"}, None),
    ("ACTUAL", "A_1", -MAX, MAX, -CENT, {"book": "b"}, None),
    ("ACTUAL", "A_1", CENT, Decimal(0), MAX, {"book": "a"}, None),
    ("ACTUAL", "A_1", -CENT, CENT, -MAX, {"book": "b"}, None),
    ("ACTUAL", "A_1", Decimal(0), -CENT, Decimal(0), {"book": "a"}, None),
    # a mix summing to zero, in each measure
    ("ACTUAL", "A_2", Decimal("1234.56"), MAX, Decimal("-0.99"), {"book": "a"}, None),
    ("ACTUAL", "A_2", Decimal("-1000.00"), -MAX + CENT, Decimal("0.98"), {"book": "b"}, None),
    ("ACTUAL", "A_2", Decimal("-234.56"), -CENT, CENT, {"book": "a"}, None),
    *[("ACTUAL", "B_1", MAX, -MAX if i % 2 else MAX, CENT * (i % 3 - 1), {"book": "ab"[i % 2]}, None)
      for i in range(MANY)],
    *[("ACTUAL", "C_1", MAX if i % 3 else -MAX, MAX, -CENT, {"book": "ab"[i % 2]}, "EUR") for i in range(MANY // 2)],
    ("ACTUAL", "C_1", CENT, -CENT, Decimal(0), {"book": "a"}, "EUR"),
    ("ACTUAL", "NOWHERE", -MAX, CENT, MAX, {"book": "a"}, None),
    ("ACTUAL", "NOWHERE", CENT, Decimal(0), -CENT, {"book": "b"}, "EUR"),
    ("PRIOR", "A_1", CENT, -CENT, Decimal(0), {"book": "a"}, None),
    *[("PRIOR", "B_1", -MAX, -MAX, MAX, {"book": "ab"[i % 2]}, None) for i in range(MANY)],
    ("PRIOR", "C_1", -MAX, CENT, -CENT, {"book": "b"}, "EUR"),
    ("PRIOR", "A_2", Decimal(0), Decimal(0), Decimal(0), {"book": "a"}, None),
]


def _insert(conn, uc, rows, pnl_date=COB):
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO fact_pnl_entries (use_case_id, pnl_date, scenario, category_code, daily_amount, wtd_amount, "
            "ytd_amount, amount, attributes, currency) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s)",
            [(uc, pnl_date, s, c, d, w, y, d, json.dumps(a), cur_) for s, c, d, w, y, a, cur_ in rows])


def _edge_use_case(conn):
    structure(conn, "EDGE", TREE)
    uc = use_case(conn, "Edges", "EDGE")
    conn.execute("INSERT INTO fx_rates (pnl_date, currency, reporting_currency, rate) VALUES (%s, 'EUR', 'USD', %s)",
                 (COB, RATE))
    _insert(conn, uc, EDGE_FACTS)
    rules = [("A", cond("daily_amount", "greater_than", 0)), ("B", cond("book", "equals", "a")),
             ("C_1", cond("ytd_amount", "less_than", 0)), ("FIRM", cond("wtd_amount", "greater_than", -1))]
    rule_ids = [rule(conn, uc, node, predicate) for node, predicate in rules]
    return uc, [(node, predicate, rule_id, None) for (node, predicate), rule_id in zip(rules, rule_ids)]


def _reference_facts(conn, uc):
    cur = conn.execute("SELECT id, use_case_id, pnl_date, scenario, category_code, daily_amount, wtd_amount, "
                       "ytd_amount, attributes, currency FROM fact_pnl_entries WHERE use_case_id = %s ORDER BY id",
                       (uc,))
    return [dict(zip([c.name for c in cur.description], row)) for row in cur.fetchall()]


def _subtrees():
    children: dict[str, list[str]] = {}
    for node, parent in TREE:
        children.setdefault(parent, []).append(node)

    def below(node):
        return [node, *(n for child in children.get(node, []) for n in below(child))]
    out = {node: below(node) for node, _ in TREE}
    out["FIRM"].append(reference.UNMAPPED)
    out[reference.UNMAPPED] = [reference.UNMAPPED]
    return out


def _numeric_naturals(conn, uc) -> dict:
    """{(node, scenario): [daily, wtd, ytd]}: plain numeric(18,2) sums in SQL, per mapped node and currency,
    converted and rounded as contract §8 says, then rolled up: no cents anywhere."""
    sums = {}
    for node, members in _subtrees().items():
        for scenario in reference.SCENARIOS:
            sums[(node, scenario)] = list(conn.execute(
                f"""WITH per AS (
                        SELECT coalesce(h.node_id, %(unmapped)s) AS node_id, f.currency,
                               {', '.join(f'sum(f.{m}_amount) AS {m}' for m in MEASURES)}
                        FROM fact_pnl_entries f
                        LEFT JOIN dim_hierarchy h ON h.structure_id = 'EDGE' AND h.node_id = f.category_code
                        WHERE f.use_case_id = %(uc)s AND f.pnl_date = %(cob)s AND f.scenario = %(scenario)s
                        GROUP BY 1, 2)
                    SELECT {', '.join(f'''coalesce(sum(CASE WHEN p.currency IS NULL THEN p.{m}
                                                  ELSE round(p.{m} * x.rate, 2) END), 0.00)''' for m in MEASURES)}
                    FROM per p
                    LEFT JOIN fx_rates x ON x.pnl_date = %(cob)s AND x.currency = p.currency
                                        AND x.reporting_currency = 'USD'
                    WHERE p.node_id = ANY (%(members)s)""",
                {"unmapped": reference.UNMAPPED, "uc": uc, "cob": COB, "scenario": scenario,
                 "members": members}).fetchone())
    return sums


def _stored(conn, run) -> dict:
    columns = [f"{m}_{k}" for m in MEASURES for k in ("natural", "adjusted", "plug")]
    cur = conn.execute(f"SELECT node_id, scenario, {', '.join(f'{c}::text' for c in columns)}, is_override, "
                       "is_reconciled FROM fact_calculated_results WHERE calculation_run_id = %s", (run,))
    return {(r[0], r[1]): list(r[2:]) for r in cur.fetchall()}


def _as_text(rows) -> dict:
    columns = [f"{m}_{k}" for m in MEASURES for k in ("natural", "adjusted", "plug")]
    return {(r["node_id"], r["scenario"]): [f"{r[c]:.2f}" for c in columns] + [r["is_override"], r["is_reconciled"]]
            for r in rows}


def test_the_cents_are_the_amounts_times_100_exactly_at_the_edges(conn):
    structure(conn, "EDGE", TREE)
    uc = use_case(conn, "Edges", "EDGE")
    _insert(conn, uc, EDGE_FACTS)
    # a legacy writer sets only `amount`: the BEFORE INSERT trigger fills the measures, the cents follow them
    conn.execute("INSERT INTO fact_pnl_entries (use_case_id, pnl_date, scenario, category_code, amount) "
                 "VALUES (%s, %s, 'ACTUAL', 'A_1', %s), (%s, %s, 'ACTUAL', 'A_1', %s)", (uc, COB, -MAX, uc, COB, CENT))
    rows = conn.execute(
        "SELECT count(*), count(*) FILTER (WHERE daily_cents * 0.01 = daily_amount AND wtd_cents * 0.01 = wtd_amount "
        "AND ytd_cents * 0.01 = ytd_amount AND daily_cents = daily_amount * 100 AND wtd_cents = wtd_amount * 100 "
        "AND ytd_cents = ytd_amount * 100), max(daily_cents), min(daily_cents) FROM fact_pnl_entries").fetchone()
    assert rows == (len(EDGE_FACTS) + 2, len(EDGE_FACTS) + 2, 999999999999999999, -999999999999999999)
    legacy = conn.execute("SELECT daily_cents, wtd_cents, ytd_cents FROM fact_pnl_entries WHERE amount = %s "
                          "AND attributes = '{}' ORDER BY id", (CENT,)).fetchone()
    wtd = conn.execute("SELECT sum(daily_amount) FROM fact_pnl_entries WHERE category_code = 'A_1' "
                       "AND scenario = 'ACTUAL'").fetchone()[0]
    assert legacy[0] == 1 and legacy[1] == legacy[2] == int(wtd * 100)  # the trigger's running sums, in cents


def test_nobody_writes_the_cents(conn):
    structure(conn, "EDGE", TREE)
    uc = use_case(conn, "Edges", "EDGE")
    with pytest.raises(psycopg.errors.GeneratedAlways,
                       match='cannot insert a non-DEFAULT value into column "daily_cents"'):
        conn.execute("INSERT INTO fact_pnl_entries (use_case_id, pnl_date, scenario, category_code, daily_amount, "
                     "wtd_amount, ytd_amount, daily_cents) VALUES (%s, %s, 'ACTUAL', 'A_1', 1, 1, 1, 7)", (uc, COB))
    _insert(conn, uc, EDGE_FACTS[:1])
    with pytest.raises(psycopg.errors.GeneratedAlways, match='column "ytd_cents" can only be updated to DEFAULT'):
        conn.execute("UPDATE fact_pnl_entries SET ytd_cents = 0")
    assert conn.execute("SELECT ytd_cents FROM fact_pnl_entries").fetchall() == [(1,)]


def test_integer_cent_sums_are_numeric_sums_digit_for_digit_also_combined_across_workers(conn):
    structure(conn, "EDGE", TREE)
    uc = use_case(conn, "Edges", "EDGE")
    rng = random.Random(15)
    edges = [MAX, -MAX, CENT, -CENT, Decimal(0), MAX - CENT, -MAX + CENT]
    rows = list(EDGE_FACTS)
    for i in range(3000):  # enough rows for the planner to plan parallel workers when they are free
        pick = [rng.choice(edges) if rng.random() < 0.5 else Decimal(rng.randint(-10**18 + 1, 10**18 - 1)) / 100
                for _ in range(3)]
        rows.append(("ACTUAL" if i % 2 else "PRIOR", rng.choice(["A_1", "A_2", "B_1", "NOWHERE"]), *pick, {}, None))
    _insert(conn, uc, rows)
    conn.execute("ANALYZE fact_pnl_entries")
    query = (f"SELECT scenario, category_code, {', '.join(f'(sum({m}_cents) * 0.01)::text' for m in MEASURES)}, "
             f"{', '.join(f'sum({m}_amount)::text' for m in MEASURES)} FROM fact_pnl_entries GROUP BY 1, 2")
    serial = conn.execute(query).fetchall()
    assert len(serial) == 10
    for row in serial:
        assert row[2:5] == row[5:8], row
    with conn.transaction():
        for setting in ("parallel_setup_cost", "parallel_tuple_cost", "min_parallel_table_scan_size"):
            conn.execute(f"SET LOCAL {setting} = 0")
        conn.execute("SET LOCAL max_parallel_workers_per_gather = 2")
        conn.execute("SET LOCAL enable_hashagg = off")  # a sorted Partial Aggregate: states serialized, combined
        plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + query).fetchall())
        assert "Partial" in plan and "Gather" in plan, plan
        assert sorted(conn.execute(query).fetchall()) == sorted(serial)


def test_a_snapshot_at_the_edges_is_the_numeric_snapshot_and_the_references(conn):
    uc, rules = _edge_use_case(conn)
    run = snapshot(conn, uc)
    assert conn.execute("SELECT status, error_message FROM calculation_runs WHERE id = %s",
                        (run,)).fetchone() == ("COMPLETED", None)
    stored = _stored(conn, run)
    facts = _reference_facts(conn, uc)
    nodes = [(n, p, f"Name of {n}") for n, p in TREE]
    expected = _as_text(reference.snapshot(nodes, facts, rules, uc, COB, "USD", {"EUR": RATE}))
    assert stored == expected
    # the natural values, against plain numeric sums in SQL, as text: the same digits and scale
    naturals = _numeric_naturals(conn, uc)
    for (node, scenario), values in naturals.items():
        assert [stored[(node, scenario)][3 * i] for i in range(3)] == [f"{v:.2f}" for v in values]
        assert [stored[(node, scenario)][3 * i] for i in range(3)] == [str(v) for v in values]
    assert Decimal(stored[("B_1", "ACTUAL")][0]) == MANY * MAX  # beyond numeric(18,2), exact
    assert Decimal(stored[("B_1", "PRIOR")][0]) == -MANY * MAX
    # the same with the workers summing and the leader combining their int128 states
    with conn.transaction(force_rollback=True):
        for setting in ("parallel_setup_cost", "min_parallel_table_scan_size"):
            conn.execute(f"SET LOCAL {setting} = 0")
        again = snapshot(conn, uc, name="in parallel")
        assert _stored(conn, again) == stored


def test_verify_run_and_the_explanations_at_the_edges_agree_with_numeric_sums_and_the_reference(conn):
    uc, rules = _edge_use_case(conn)
    run = snapshot(conn, uc)
    verdict = api.verify_run(conn, run)
    assert (verdict["reproduced"], verdict["mismatch_count"], verdict["rows_checked"]) == (True, 0, 27)
    facts = _reference_facts(conn, uc)
    nodes = [(n, p, f"Name of {n}") for n, p in TREE]
    explainer = reference.Explainer(nodes, facts, rules, uc, COB, "USD", {"EUR": RATE})
    stored = _stored(conn, run)
    for node in [n for n, _ in TREE] + [reference.UNMAPPED]:
        for scenario in reference.SCENARIOS:
            explained = api.explain_node(conn, run, node, scenario, None)
            assert explained == explainer.explain_node(node, scenario, None)
            plug = api.explain_plug(conn, run, node, scenario)
            assert plug == explainer.explain_plug(node, scenario)
            # a node's excluded amounts are its plug, in every measure
            for i, m in enumerate(MEASURES):
                excluded = sum((r[f"{m}_excluded"] for r in plug if r[f"{m}_excluded"] is not None), Decimal(0))
                assert f"{excluded:.2f}" == stored[(node, scenario)][3 * i + 2], (node, scenario, m)
        for m in MEASURES:
            assert api.explain_variance(conn, run, node, m, "child") == explainer.explain_variance(node, m, "child")


def test_migrating_a_populated_installation_fills_the_cents_and_its_runs_still_verify(conn):
    """A populated installation at 0015: facts (a legacy one among them, its measures filled by the trigger)
    and a run, with 0016 rolled back (the layer goes with it); migrating again rewrites the table with
    the cents of every fact, and the run is reproduced row by row from them."""
    uc, _ = _edge_use_case(conn)
    conn.execute("INSERT INTO fact_pnl_entries (use_case_id, pnl_date, scenario, category_code, amount) "
                 "VALUES (%s, %s, 'ACTUAL', 'A_2', %s)", (uc, COB, MAX))
    before = snapshot(conn, uc)
    stored = _stored(conn, before)
    assert schema.rollback(conn, to="0015_entitlements") == ["0019_fact_slice_statistics", "0018_cluster",
                                                               "0017_fast_loads", "0016_fact_cents"]
    assert conn.execute("SELECT count(*) FROM information_schema.columns WHERE table_schema = 'pnl' "
                        "AND table_name = 'fact_pnl_entries' AND column_name LIKE '%%cents'").fetchone() == (0,)
    amounts = conn.execute("SELECT id, daily_amount, wtd_amount, ytd_amount FROM fact_pnl_entries ORDER BY id"
                           ).fetchall()
    assert len(amounts) == len(EDGE_FACTS) + 1
    assert schema.migrate(conn) == ["0016_fact_cents", "0017_fast_loads", "0018_cluster",
                                   "0019_fact_slice_statistics"]
    assert conn.execute("SELECT id, daily_cents * 0.01, wtd_cents * 0.01, ytd_cents * 0.01 FROM fact_pnl_entries "
                        "ORDER BY id").fetchall() == amounts
    verdict = api.verify_run(conn, before)
    assert (verdict["reproduced"], verdict["mismatch_count"], verdict["digest_ok"]) == (True, 0, True)
    assert _stored(conn, snapshot(conn, uc)) == stored
