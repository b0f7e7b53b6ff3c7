"""`pnldb load fx`, the facts CSV's currency column and `pnldb use-case create --currency` (contract §8):
all rows or none, every error one line naming its line and column, --replace for a date's rates, the
messages on stderr and the summary on stdout with --json."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest
from builders import error_line, ok
from click.testing import CliRunner

from pnldb.cli import main
from tests.builders import COB, EARLIER, TRADING_TREE, structure, use_case


@pytest.fixture
def cli(db_url):
    def invoke(*args):
        return CliRunner().invoke(main, ["--dsn", db_url, *map(str, args)])
    return invoke


def write(tmp_path, name, text) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def all_rates(conn):
    return conn.execute("SELECT pnl_date, currency, reporting_currency, rate FROM fx_rates ORDER BY 1, 2, 3").fetchall()


RATES = f"""pnl_date,currency,reporting_currency,rate
{COB},EUR,USD,1.0825
{COB},gbp,USD,1.27
{EARLIER},EUR,USD,1.08
"""


def test_load_fx_loads_every_rate_and_reports_on_stderr(cli, conn, tmp_path):
    result = cli("load", "fx", write(tmp_path, "fx.csv", RATES), "--json")
    summary = json.loads(ok(result))
    assert summary == {"rates_in_file": 3, "added": 3, "replaced": 0, "removed": 0, "unchanged": 0,
                       "replace": False, "dates": [str(EARLIER), str(COB)]}
    assert result.stderr == f"loaded 3 rates for 2 dates ({EARLIER}, {COB}): 3 added, 0 replaced, 0 unchanged\n"
    assert all_rates(conn) == [(EARLIER, "EUR", "USD", Decimal("1.08")), (COB, "EUR", "USD", Decimal("1.0825")),
                               (COB, "GBP", "USD", Decimal("1.27"))]
    # the same file again changes nothing
    assert json.loads(ok(cli("load", "fx", write(tmp_path, "fx.csv", RATES), "--json")))["unchanged"] == 3


@pytest.mark.parametrize("row, message", [
    (f"{COB},EURO,USD,1.1", "line 3, column currency: 'EURO' is not a currency code (three letters, such as EUR)"),
    (f"{COB},EUR,US1,1.1",
     "line 3, column reporting_currency: 'US1' is not a currency code (three letters, such as EUR)"),
    (f"{COB},EUR,EUR,1.1", "line 3, column reporting_currency: is EUR, the same as currency; a currency needs no rate "
                           "into itself"),
    (f"{COB},EUR,USD,0", "line 3, column rate: '0' is not positive; a rate is the value of one unit of currency in the "
                         "reporting currency"),
    (f"{COB},EUR,USD,1e3", "line 3, column rate: '1e3' is not a rate (a plain decimal number such as 1.0825)"),
    ("2025-02-30,EUR,USD,1.1", "line 3, column pnl_date: '2025-02-30' is not a valid date"),
    (f"{COB},CHF,USD,1.1,extra", "line 3: 5 cells, expected 4 (as in the header)"),
    (f"{COB},JPY,USD,0.0065",
     "line 3, column currency: the rate of JPY into USD on 2025-12-24 is already on line 2"),
])
def test_a_bad_row_is_refused_with_its_line_and_column_and_nothing_is_loaded(cli, conn, tmp_path, row, message):
    text = f"pnl_date,currency,reporting_currency,rate\n{COB},JPY,USD,0.0064\n{row}\n"
    assert error_line(cli("load", "fx", write(tmp_path, "fx.csv", text))) == (
        f"pnldb: error: {tmp_path / 'fx.csv'}: {message}; nothing loaded")
    assert all_rates(conn) == []


def test_a_changed_rate_needs_replace_which_replaces_the_dates_rates(cli, conn, tmp_path):
    ok(cli("load", "fx", write(tmp_path, "fx.csv", RATES)))
    changed = f"pnl_date,currency,reporting_currency,rate\n{COB},EUR,USD,1.09\n"
    assert error_line(cli("load", "fx", write(tmp_path, "new.csv", changed))) == (
        f"pnldb: error: {tmp_path / 'new.csv'}: line 2, column rate: the rate of EUR into USD on {COB} is already "
        f"1.0825, "
        f"not 1.09; use --replace to replace the rates of that date; nothing loaded")
    result = cli("load", "fx", write(tmp_path, "new.csv", changed), "--replace", "--json")
    assert json.loads(ok(result))["removed"] == 1
    assert result.stderr == f"loaded 1 rate for 1 date ({COB}): 0 added, 1 replaced, 0 unchanged, 1 removed\n"
    # GBP of COB is gone, EARLIER untouched
    assert all_rates(conn) == [(EARLIER, "EUR", "USD", Decimal("1.08")), (COB, "EUR", "USD", Decimal("1.09"))]


def test_a_missing_column_is_refused(cli, conn, tmp_path):
    assert error_line(cli("load", "fx", write(tmp_path, "fx.csv", "pnl_date,currency,rate\n"))) == (
        f"pnldb: error: {tmp_path / 'fx.csv'}: line 1: missing required column reporting_currency in the header "
        f"(found: pnl_date, currency, rate)")


def test_use_case_create_with_a_currency(cli, conn):
    structure(conn, "TRADING", TRADING_TREE)
    result = cli("use-case", "create", "Euro Book", "--structure", "TRADING", "--currency", "eur")
    assert "currency     EUR\n" in ok(result)
    assert conn.execute("SELECT reporting_currency FROM use_cases WHERE name = 'Euro Book'").fetchone() == ("EUR",)
    assert "currency     USD\n" in ok(cli("use-case", "create", "Dollar Book", "--structure", "TRADING"))
    assert error_line(cli("use-case", "create", "Bad", "--structure", "TRADING", "--currency", "EURO")) == (
        "pnldb: error: reporting currency 'EURO' is not a currency code: three letters, such as EUR")


FACTS = f"""pnl_date,category_code,daily_amount,wtd_amount,ytd_amount,scenario,currency,book
{COB},RATES_1,10.00,10.00,10.00,ACTUAL,EUR,a
{COB},RATES_1,5.00,5.00,5.00,ACTUAL,,a
{COB},FX_1,1.00,1.00,1.00,ACTUAL,gbp,b
"""


def test_facts_carry_their_currency_and_a_missing_rate_is_warned(cli, conn, tmp_path):
    structure(conn, "TRADING", TRADING_TREE)
    uc = use_case(conn, "Sterling", "TRADING")
    ok(cli("load", "fx", write(tmp_path, "fx.csv", f"pnl_date,currency,reporting_currency,rate\n{COB},EUR,USD,1.5\n")))
    result = cli("load", "facts", write(tmp_path, "facts.csv", FACTS), "--use-case", "Sterling", "--json")
    summary = json.loads(ok(result))
    assert summary["missing_rates"] == [{"pnl_date": str(COB), "currencies": ["GBP"]}]
    assert summary["dimensions"] == ["book"]
    assert (f"warning: no rate into the reporting currency for GBP on {COB}: snapshots of that date are refused "
            f"until `pnldb load fx` loads them") in result.stderr
    assert conn.execute("SELECT category_code, currency, attributes FROM fact_pnl_entries ORDER BY id"
                        ).fetchall() == [("RATES_1", "EUR", {"book": "a"}), ("RATES_1", None, {"book": "a"}),
                                         ("FX_1", "GBP", {"book": "b"})]
    refused = error_line(cli("snapshot", "--use-case", uc, "--date", COB))
    assert "no rate into it is loaded for (GBP, 2025-12-24)" in refused
    gbp = write(tmp_path, "gbp.csv", f"pnl_date,currency,reporting_currency,rate\n{COB},GBP,USD,1.25\n")
    ok(cli("load", "fx", gbp))
    ok(cli("snapshot", "--use-case", uc, "--date", COB))
    # 10 EUR x 1.5 + 5 USD + 1 GBP x 1.25
    assert conn.execute("SELECT daily_natural FROM fact_calculated_results "
                        "WHERE node_id = 'FIRM' AND scenario = 'ACTUAL'").fetchone() == (Decimal("21.25"),)


def test_a_bad_currency_cell_is_refused_with_line_and_column(cli, conn, tmp_path):
    structure(conn, "TRADING", TRADING_TREE)
    use_case(conn, "Sterling", "TRADING")
    text = FACTS + f"{COB},FX_1,1.00,1.00,1.00,ACTUAL,E1R,b\n"
    assert error_line(cli("load", "facts", write(tmp_path, "facts.csv", text), "--use-case", "Sterling")) == (
        f"pnldb: error: {tmp_path / 'facts.csv'}: line 5, column currency: 'E1R' is not a currency code "
        f"(three letters, such as EUR; blank for the use case's reporting currency); nothing loaded")
    assert conn.execute("SELECT count(*) FROM fact_pnl_entries").fetchone() == (0,)


def test_the_same_rows_in_another_currency_are_no_duplicate(cli, conn, tmp_path):
    structure(conn, "TRADING", TRADING_TREE)
    use_case(conn, "Sterling", "TRADING")
    ok(cli("load", "facts", write(tmp_path, "a.csv", FACTS), "--use-case", "Sterling"))
    assert "already loaded" in error_line(cli("load", "facts", write(tmp_path, "a.csv", FACTS), "--use-case",
                                              "Sterling", "--append"))
    ok(cli("load", "facts", write(tmp_path, "b.csv", FACTS.replace(",EUR,", ",CHF,")), "--use-case", "Sterling",
           "--append"))
