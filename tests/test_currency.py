"""Currency (contract §8): facts in their own currencies, one reporting currency per use case, rates per
COB. Worked examples of the rounding rule (per scenario, mapped node, currency and included flag) with the
tree still adding up; reporting-currency facts never rounded; a missing rate refused before anything is
written; `currency` and native amounts in rule predicates; what a run records and how verify_run and the
explain functions use it, never today's rates; the rate freeze; the migration and its rollback."""
from __future__ import annotations

import contextlib
import json
from decimal import ROUND_HALF_UP
from decimal import Decimal as D

import psycopg
import pytest
from builders import COB, EARLIER, cond, header, results, rule, snapshot, structure, table_counts, use_case
from click.testing import CliRunner

from pnldb import api, schema
from pnldb.cli import main

TREE = [("ROOT", None), ("A", "ROOT"), ("C", "A"), ("B", "ROOT")]


def fx_facts(conn, uc, rows, date=COB) -> None:
    """rows: (scenario, category_code, currency or None, daily, attributes dict), one load; wtd = 2 x daily,
    ytd = 10 x daily."""
    with conn.transaction() if conn.autocommit else contextlib.nullcontext(), conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO fact_pnl_entries (use_case_id, pnl_date, scenario, category_code, currency, daily_amount, "
            "wtd_amount, ytd_amount, amount, attributes) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb)",
            [(uc, date, s, code, cur_, D(d), 2 * D(d), 10 * D(d), D(d), json.dumps(attrs))
             for s, code, cur_, d, attrs in rows])


def rates(conn, date, rows, reporting="USD") -> None:
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO fx_rates (pnl_date, currency, reporting_currency, rate) VALUES (%s, %s, %s, %s)",
                        [(date, c, reporting, D(r)) for c, r in rows])


def book(conn, currency="USD"):
    if not conn.execute("SELECT count(*) FROM hierarchy_structures WHERE structure_id = 'FXTREE'").fetchone()[0]:
        structure(conn, "FXTREE", TREE)
    uc = use_case(conn, f"FX book {currency}", "FXTREE")
    conn.execute("UPDATE use_cases SET reporting_currency = %s WHERE use_case_id = %s", (currency, uc))
    return uc


def daily(out, node, scenario="ACTUAL"):
    r = out[(node, scenario)]
    return r["daily_natural"], r["daily_adjusted"], r["daily_plug"]


def assert_tree_adds_up(out):
    """natural = adjusted + plug in every row and measure."""
    for (node, scenario), r in out.items():
        for m in ("daily", "wtd", "ytd"):
            assert r[f"{m}_natural"] == r[f"{m}_adjusted"] + r[f"{m}_plug"], (node, scenario, m)


# Rates of COB: 1 EUR = 1.5 USD, 1 GBP = 1.25 USD.
WORKED = [
    # node A: three EUR cents kept (0.03 x 1.5 = 0.045 -> 0.05; fact by fact it would be 0.06), one
    # excluded (0.015 -> 0.02, its own group), three GBP cents (0.0375 -> 0.04) and USD 1.23 exact
    ("ACTUAL", "A", "EUR", "0.01", {"desk": "K"}),
    ("ACTUAL", "A", "EUR", "0.01", {"desk": "K"}),
    ("ACTUAL", "A", "EUR", "0.01", {"desk": "K"}),
    ("ACTUAL", "A", "EUR", "0.01", {"desk": "X"}),
    ("ACTUAL", "A", "GBP", "0.03", {"desk": "K"}),
    ("ACTUAL", "A", None, "1.23", {"desk": "K"}),
    # node C, below A: -0.015 rounds half away from zero to -0.02
    ("ACTUAL", "C", "EUR", "-0.01", {"desk": "K"}),
    # two codes of no node: rounded together as __UNMAPPED__ (0.02 x 1.5 = 0.03), not 0.02 + 0.02
    ("ACTUAL", "ZZ1", "EUR", "0.01", {"desk": "K"}),
    ("ACTUAL", "ZZ2", "EUR", "0.01", {"desk": "K"}),
    ("PRIOR", "A", "EUR", "0.01", {"desk": "K"}),
    ("PRIOR", "B", "GBP", "0.01", {"desk": "K"}),
]


@pytest.fixture
def worked(conn):
    uc = book(conn)
    rates(conn, COB, [("EUR", "1.5"), ("GBP", "1.25")])
    rule(conn, uc, "A", cond("desk", "not_equals", "X"))
    fx_facts(conn, uc, WORKED)
    return uc


def test_the_rounding_rule_worked_out_node_by_node(conn, worked):
    run = snapshot(conn, worked)
    out = results(conn, run)
    assert daily(out, "C") == (D("-0.02"), D("-0.02"), D("0.00"))
    # A own: adjusted 0.05 + 0.04 + 1.23 = 1.32, natural + 0.02 excluded = 1.34; with C: 1.32 / 1.30
    assert daily(out, "A") == (D("1.32"), D("1.30"), D("0.02"))
    assert daily(out, "__UNMAPPED__") == (D("0.03"), D("0.03"), D("0.00"))
    assert daily(out, "B") == (D("0"), D("0"), D("0"))
    assert daily(out, "ROOT") == (D("1.35"), D("1.33"), D("0.02"))
    # wtd is 2 x daily in native terms: 0.06 x 1.5 = 0.09 (not 2 x 0.05), 0.02 x 1.5 = 0.03, 0.06 x 1.25 = 0.075 -> 0.08
    assert (out[("A", "ACTUAL")]["wtd_adjusted"], out[("A", "ACTUAL")]["wtd_natural"]) == (
        D("0.09") + D("0.08") + D("2.46") - D("0.03"), D("0.09") + D("0.08") + D("2.46") - D("0.03") + D("0.03"))
    # PRIOR: 0.015 -> 0.02 at A, 0.0125 -> 0.01 at B; VARIANCE = ACTUAL - PRIOR of the rounded values
    assert daily(out, "A", "PRIOR") == (D("0.02"), D("0.02"), D("0.00"))
    assert daily(out, "B", "PRIOR") == (D("0.01"), D("0.01"), D("0.00"))
    assert daily(out, "ROOT", "VARIANCE") == (D("1.32"), D("1.30"), D("0.02"))
    assert_tree_adds_up(out)
    for scenario in ("ACTUAL", "PRIOR", "VARIANCE"):
        for m in ("daily", "wtd", "ytd"):
            for k in ("natural", "adjusted"):
                column = f"{m}_{k}"
                assert out[("ROOT", scenario)][column] == (out[("A", scenario)][column] + out[("B", scenario)][column]
                                                           + out[("__UNMAPPED__", scenario)][column])
    assert header(conn, run)["reporting_currency"] == "USD"
    assert conn.execute("SELECT currency, rate FROM calculation_run_fx WHERE calculation_run_id = %s ORDER BY 1",
                        (run,)).fetchall() == [("EUR", D("1.5")), ("GBP", D("1.25"))]
    assert conn.execute("SELECT DISTINCT reporting_currency FROM v_run_results WHERE calculation_run_id = %s",
                        (run,)).fetchall() == [("USD",)]
    assert conn.execute("SELECT reporting_currency FROM v_calculation_runs WHERE id = %s",
                        (run,)).fetchone() == ("USD",)


def test_explain_node_shows_native_amounts_and_rates_and_reconciles_by_group(conn, worked):
    run = snapshot(conn, worked)
    rows = api.explain_node(conn, str(run), "A", max_rows=None)
    assert {(r["mapped_node_id"], r["currency"], r["rate"], r["daily_amount"]) for r in rows} == {
        ("A", "EUR", D("1.5"), D("0.01")), ("A", "GBP", D("1.25"), D("0.03")), ("A", None, D("1"), D("1.23")),
        ("C", "EUR", D("1.5"), D("-0.01"))}
    groups: dict = {}
    for r in rows:
        key = (r["mapped_node_id"], r["currency"], r["included"])
        groups[key] = (groups.get(key, (0, r["rate"]))[0] + r["daily_amount"], r["rate"])
    converted = {k: (total * rate).quantize(D("0.01"), ROUND_HALF_UP) for k, (total, rate) in groups.items()}
    natural, adjusted, plug = daily(results(conn, run), "A")
    assert sum(converted.values()) == natural
    assert sum(v for k, v in converted.items() if k[2]) == adjusted
    plug_rows = api.explain_plug(conn, str(run), "A")
    assert [(r["facts_excluded"], r["daily_excluded"]) for r in plug_rows] == [(1, D("0.02"))]
    assert sum(r["daily_excluded"] for r in plug_rows) == plug
    by_child = api.explain_variance(conn, str(run), "ROOT")
    assert sum(r["variance"] for r in by_child) == daily(results(conn, run), "ROOT", "VARIANCE")[1]
    assert {r["key"]: r["actual"] for r in by_child} == {"A": D("1.30"), "B": D("0"), "__UNMAPPED__": D("0.03")}


def test_facts_in_the_reporting_currency_are_never_rounded_and_need_no_rate(conn):
    uc = book(conn, "EUR")
    # A EUR use case: NULL and 'EUR' are both its reporting currency, summed exactly, with no rate at all
    fx_facts(conn, uc, [("ACTUAL", "A", None, "0.01", {}), ("ACTUAL", "A", "EUR", "0.01", {}),
                        ("ACTUAL", "A", "EUR", "0.01", {}), ("ACTUAL", "B", None, "123456789.99", {})])
    run = snapshot(conn, uc)
    out = results(conn, run)
    assert daily(out, "A") == (D("0.03"), D("0.03"), D("0.00"))
    assert daily(out, "ROOT")[0] == D("123456790.02")
    assert header(conn, run)["reporting_currency"] == "EUR"
    assert conn.execute("SELECT count(*) FROM calculation_run_fx WHERE calculation_run_id = %s",
                        (run,)).fetchone() == (0,)
    assert {r["rate"] for r in api.explain_node(conn, str(run), "ROOT", max_rows=None)} == {D("1")}


def test_a_missing_rate_is_refused_naming_every_currency_and_nothing_is_written(conn):
    uc = book(conn)
    rates(conn, COB, [("GBP", "1.25")])
    rates(conn, COB, [("JPY", "0.0065")], reporting="EUR")  # into another currency: no use here
    rates(conn, EARLIER, [("JPY", "0.0066")])  # another date: no use either
    fx_facts(conn, uc, [("ACTUAL", "A", "GBP", "1.00", {}), ("ACTUAL", "A", "JPY", "100.00", {}),
                        ("PRIOR", "B", "EUR", "1.00", {}), ("ACTUAL", "B", None, "1.00", {})])
    before = table_counts(conn)
    runs_fx = conn.execute("SELECT count(*) FROM calculation_run_fx").fetchone()
    with pytest.raises(psycopg.errors.NoDataFound) as refused:
        snapshot(conn, uc)
    assert str(refused.value).splitlines()[0] == (
        f'use case "FX book USD" reports in USD, and no rate into it is loaded for (EUR, {COB}), (JPY, {COB})')
    assert table_counts(conn) == before
    assert conn.execute("SELECT count(*) FROM calculation_run_fx").fetchone() == runs_fx
    assert conn.execute("SELECT missing_fx_rates(%s, %s)", (uc, COB)).fetchone() == (["EUR", "JPY"],)
    rates(conn, COB, [("EUR", "1.1"), ("JPY", "0.0065")])
    out = results(conn, snapshot(conn, uc))
    assert daily(out, "ROOT") == (D("1.25") + D("0.65") + D("1.00"),) * 2 + (D("0.00"),)
    assert daily(out, "ROOT", "PRIOR")[0] == D("1.10")


def test_a_superseded_load_in_a_currency_needs_no_rate(conn):
    uc = book(conn)
    fx_facts(conn, uc, [("ACTUAL", "A", "CHF", "1.00", {})])
    with conn.transaction():
        conn.execute("SELECT replace_facts(%s, %s, 'ACTUAL')", (uc, COB))
        fx_facts(conn, uc, [("ACTUAL", "A", None, "2.00", {})])
    assert daily(results(conn, snapshot(conn, uc)), "ROOT")[0] == D("2.00")


def test_currency_is_a_predicate_field_and_rules_compare_native_amounts(conn):
    uc = book(conn)
    rates(conn, COB, [("EUR", "1.5")])
    fx_facts(conn, uc, [("ACTUAL", "A", "EUR", "8.00", {}), ("ACTUAL", "A", None, "3.00", {}),
                        ("ACTUAL", "A", "USD", "4.00", {}), ("ACTUAL", "B", "EUR", "20.00", {}),
                        ("ACTUAL", "B", None, "30.00", {})])
    # NULL is the reporting currency: a rule keeping USD keeps the NULL facts and the explicit USD one
    rule(conn, uc, "A", cond("currency", "equals", "USD"))
    # native amounts: EUR 20 is 30 USD, but the rule sees 20
    rule(conn, uc, "B", cond("daily_amount", "greater_than", 25))
    out = results(conn, snapshot(conn, uc))
    assert daily(out, "A") == (D("19.00"), D("7.00"), D("12.00"))
    assert daily(out, "B") == (D("60.00"), D("30.00"), D("30.00"))
    assert conn.execute("SELECT sql_where FROM metadata_rules WHERE node_id = 'A'").fetchone() == (
        "(currency = 'USD')",)
    assert conn.execute("SELECT rule_attribute_fields(predicate_json) FROM metadata_rules WHERE node_id = 'A'"
                        ).fetchone() == ([],)
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="applies to measures only"):
        rule(conn, uc, "C", cond("currency", "greater_than", 1))


def test_bad_currency_codes_are_refused_by_the_tables(conn):
    uc = book(conn)
    with pytest.raises(psycopg.errors.CheckViolation, match="fact_pnl_entries_currency_valid"):
        fx_facts(conn, uc, [("ACTUAL", "A", "eur", "1.00", {})])
    with pytest.raises(psycopg.errors.CheckViolation, match="use_cases_reporting_currency_valid"):
        conn.execute("UPDATE use_cases SET reporting_currency = 'EURO' WHERE use_case_id = %s", (uc,))
    with pytest.raises(psycopg.errors.CheckViolation, match="fx_rates_rate_positive"):
        rates(conn, COB, [("EUR", "0")])
    assert conn.execute("SELECT reporting_currency FROM use_cases WHERE use_case_id = %s", (uc,)).fetchone() == ("USD",)


def test_verify_run_and_explain_use_the_recorded_rates_after_todays_changed(conn, worked):
    run = snapshot(conn, worked)
    stored = results(conn, run)
    conn.execute("UPDATE fx_rates SET rate = 2 WHERE pnl_date = %s AND currency = 'EUR'", (COB,))  # an open date
    assert api.verify_run(conn, run)["reproduced"] is True
    assert {r["rate"] for r in api.explain_node(conn, str(run), "C", max_rows=None)} == {D("1.5")}
    assert sum(r["daily_excluded"] for r in api.explain_plug(conn, str(run), "ROOT")) == daily(stored, "ROOT")[2]
    again = results(conn, snapshot(conn, worked))
    assert daily(again, "C") == (D("-0.02"), D("-0.02"), D("0.00"))  # -0.01 x 2
    assert daily(again, "A")[1] == D("0.06") + D("0.04") + D("1.23") - D("0.02")
    # a tampered recorded rate is a mismatch: verify_run reads calculation_run_fx, nothing else
    with conn.transaction():  # the superuser around the triggers (DDL on the runs is refused: issue 18)
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute("UPDATE calculation_run_fx SET rate = 2 WHERE calculation_run_id = %s AND currency = 'EUR'",
                     (run,))
    verdict = api.verify_run(conn, run)
    assert verdict["reproduced"] is False and verdict["digest_ok"] is False
    assert {"node_id": "C", "scenario": "ACTUAL", "column": "daily_natural", "stored": "-0.02",
            "recomputed": "-0.02"} not in verdict["mismatches"]
    assert any(m["node_id"] == "A" and m["column"] == "daily_adjusted" for m in verdict["mismatches"])


def test_recorded_rates_are_immutable(conn, worked):
    run = snapshot(conn, worked)
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="calculation runs are immutable"):
        conn.execute("UPDATE calculation_run_fx SET rate = 3 WHERE calculation_run_id = %s", (run,))


def _sign_off(conn, use_case) -> None:
    conn.execute("SELECT set_signoff_policy(%s, 'SIMPLE')", (use_case,))
    conn.execute("SELECT set_check(%s, 'NO_UNMAPPED', 'WARNING')", (use_case,))
    conn.execute("SELECT sign_off_run(%s, 'rates checked', '{\"NO_UNMAPPED\": \"known codes\"}')",
                 (snapshot(conn, use_case),))


def test_the_freeze_protects_rates_a_frozen_unit_concerns_and_no_other(conn, worked):
    other = book(conn, "EUR")
    fx_facts(conn, other, [("ACTUAL", "A", "GBP", "1.00", {})])
    rates(conn, COB, [("GBP", "0.85")], reporting="EUR")
    rates(conn, COB, [("CHF", "1.1")])  # no fact of the worked book in CHF
    rates(conn, EARLIER, [("EUR", "1.4")])  # no fact on that date
    _sign_off(conn, worked)
    _sign_off(conn, other)
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState) as refused:
        conn.execute("UPDATE fx_rates SET rate = rate * 2 WHERE reporting_currency = 'USD'")
    assert str(refused.value).splitlines()[0] == (
        f'rates of closed units cannot be changed or removed: EUR into USD on {COB} (use case "FX book USD": '
        f'SIGNED_OFF), GBP into USD on {COB} (use case "FX book USD": SIGNED_OFF)')
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="GBP into EUR"):
        conn.execute("DELETE FROM fx_rates WHERE reporting_currency = 'EUR'")
    assert conn.execute("SELECT count(*) FROM fx_rates").fetchone() == (5,)
    conn.execute("UPDATE fx_rates SET rate = rate WHERE currency = 'EUR'")  # unchanged: allowed
    conn.execute("UPDATE fx_rates SET rate = 1.2 WHERE currency = 'CHF'")
    conn.execute("DELETE FROM fx_rates WHERE pnl_date = %s", (EARLIER,))
    rates(conn, COB, [("JPY", "0.0065")])  # a new rate changes no closed unit
    conn.execute("SELECT reopen_cob(%s, %s, 'rates corrected')", (worked, COB))
    conn.execute("UPDATE fx_rates SET rate = 2 WHERE currency = 'EUR'")
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="GBP into EUR"):
        conn.execute("UPDATE fx_rates SET rate = 0.9 WHERE currency = 'GBP'")  # the other book is still closed


def test_a_rate_used_by_a_signed_off_unit_cannot_be_changed(conn):
    uc = book(conn)
    rates(conn, COB, [("EUR", "1.5")])
    fx_facts(conn, uc, [("ACTUAL", "A", "EUR", "1.00", {})])
    run = snapshot(conn, uc)
    conn.execute("SELECT set_signoff_policy(%s, 'SIMPLE')", (uc,))
    conn.execute("SELECT sign_off_run(%s)", (run,))
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="rates of closed units"):
        conn.execute("UPDATE fx_rates SET rate = 2 WHERE currency = 'EUR'")
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="rates of closed units"):
        conn.execute("DELETE FROM fx_rates")
    assert conn.execute("SELECT rate FROM fx_rates").fetchall() == [(D("1.5"),)]
    assert api.verify_run(conn, run)["reproduced"] is True


def test_existing_data_keeps_its_numbers_through_the_migration_and_its_rollback(conn):
    uc = book(conn)
    fx_facts(conn, uc, [("ACTUAL", "A", None, "10.25", {}), ("PRIOR", "B", None, "-3.10", {})])
    run = snapshot(conn, uc)
    stored = results(conn, run)
    facts_before = conn.execute("SELECT id, daily_amount, wtd_amount, ytd_amount FROM fact_pnl_entries ORDER BY id"
                                ).fetchall()
    assert "0007_currency" in schema.rollback(conn, to="0005_fact_loads", force=True)
    assert conn.execute("SELECT to_regclass('pnl.fx_rates')").fetchone() == (None,)
    assert conn.execute("SELECT id, daily_amount, wtd_amount, ytd_amount FROM pnl.fact_pnl_entries ORDER BY id"
                        ).fetchall() == facts_before
    schema.migrate(conn)
    conn.execute("SET search_path TO pnl, public")
    assert conn.execute("SELECT DISTINCT currency FROM fact_pnl_entries").fetchall() == [(None,)]
    assert conn.execute("SELECT reporting_currency FROM use_cases").fetchall() == [("USD",)]
    assert header(conn, run)["reporting_currency"] == "USD"
    assert api.verify_run(conn, run)["reproduced"] is True
    again = results(conn, snapshot(conn, uc))
    assert {k: daily(again, *k) for k in again} == {k: daily(stored, *k) for k in stored}


def test_the_rollback_is_refused_while_facts_are_in_another_currency(conn, worked):
    with pytest.raises(Exception, match="some facts are in another currency than their use case reports in"):
        schema.rollback(conn, to="0005_fact_loads", force=True)
    assert conn.execute("SELECT to_regclass('pnl.fx_rates') IS NOT NULL").fetchone() == (True,)


CHF_RATE = "INSERT INTO fx_rates (pnl_date, currency, reporting_currency, rate) VALUES (%s, 'CHF', 'USD', 1)"


def test_roles_readers_see_rates_admins_load_them_operators_cannot(conn, login, worked):
    reader, operator, admin = login("reader"), login("operator"), login("admin")
    assert reader.execute("SELECT count(*) FROM fx_rates").fetchone() == (2,)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        operator.execute(CHF_RATE, (COB,))
    admin.execute(CHF_RATE, (COB,))
    run = operator.execute("SELECT create_snapshot(%s, %s)", (worked, COB)).fetchone()[0]
    assert reader.execute("SELECT count(*) FROM calculation_run_fx WHERE calculation_run_id = %s",
                          (run,)).fetchone() == (2,)
    assert operator.execute("SELECT (verify_run(%s)) ->> 'reproduced'", (run,)).fetchone() == ("true",)


def test_explain_variance_by_an_attribute_has_a_row_per_key_and_currency_in_native_amounts(conn, worked):
    run = snapshot(conn, worked)
    by_desk = [(r["key"], r["currency"], r["rate"], r["actual"], r["prior"], r["variance"], r["change"])
               for r in api.explain_variance(conn, str(run), "ROOT", by="desk")]
    # included only (desk X is excluded under A); largest variance in USD first: 1.23, 0.03 x 1.5, 0.02 x 1.25
    assert by_desk == [
        ("K", "USD", D("1"), D("1.23"), D("0"), D("1.23"), "NEW"),
        ("K", "EUR", D("1.5"), D("0.04"), D("0.01"), D("0.03"), "CHANGED"),  # A 0.03, C -0.01, unmapped 0.02
        ("K", "GBP", D("1.25"), D("0.03"), D("0.01"), D("0.02"), "CHANGED"),
        ("X", "EUR", D("1.5"), D("0"), D("0"), D("0"), "UNCHANGED"),
    ]
    # each currency adds up to the variance of its included facts, natively
    facts = {s: api.explain_node(conn, str(run), "ROOT", s, max_rows=None) for s in ("ACTUAL", "PRIOR")}
    for currency in ("USD", "EUR", "GBP"):
        native = {s: sum((r["daily_amount"] for r in rows if r["included"] and (r["currency"] or "USD") == currency),
                         start=D(0)) for s, rows in facts.items()}
        assert sum(row[5] for row in by_desk if row[1] == currency) == native["ACTUAL"] - native["PRIOR"]
    # by child in USD, rate 1, adding up to the root's variance exactly
    by_child = api.explain_variance(conn, str(run), "ROOT")
    assert {(r["currency"], r["rate"]) for r in by_child} == {("USD", D("1"))}
    assert sum(r["variance"] for r in by_child) == results(conn, run)[("ROOT", "VARIANCE")]["daily_adjusted"]


def test_the_explain_command_shows_currencies_and_rates_and_sums_per_currency(conn, db_url, worked):
    run = snapshot(conn, worked)
    result = CliRunner().invoke(main, ["--dsn", db_url, "explain", str(run), "ROOT", "--by", "desk"])
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["DESK", "CCY", "ACTUAL", "PRIOR", "VARIANCE", "RATE", "CHANGE"]
    assert lines[2].split() == ["K", "EUR", "0.04", "0.01", "0.03", "1.5", "CHANGED"]
    assert result.stderr.strip() == (
        f"node ROOT in run {run}, daily adjusted: USD variance 1.23 = actual 1.23 - prior 0.00; "
        "EUR variance 0.03 = actual 0.04 - prior 0.01; GBP variance 0.02 = actual 0.03 - prior 0.01 "
        "(native amounts, adding up per currency); by desk, 4 key(s), showing 4")
    facts = CliRunner().invoke(main, ["--dsn", db_url, "explain", str(run), "A"])
    assert facts.exit_code == 0, facts.stderr
    assert facts.stdout.splitlines()[0].split()[:5] == ["FACT", "CATEGORY", "NODE", "CCY", "RATE"]
    assert facts.stderr.strip() == (
        f"node A in run {run}, ACTUAL daily: USD natural 1.23 = adjusted 1.23 + plug 0.00; "
        "EUR natural 0.03 = adjusted 0.02 + plug 0.01; GBP natural 0.03 = adjusted 0.03 + plug 0.00 "
        "(native amounts; in USD each group of one node, currency and included flag is its sum times its rate "
        "rounded to cents, as the run converts); 7 fact(s), 1 excluded, showing 7")
