"""`pnldb explain`: each --by mode, --limit, --json, --csv, the reconciling summary and the errors; and the
warning of `pnldb snapshot` about a rule that excluded everything it governs for want of a field."""
from __future__ import annotations

import csv
import json
import re
from decimal import Decimal

import pytest
from builders import ok
from click.testing import CliRunner

from pnldb import format as fmt
from pnldb.cli import main
from tests.builders import NO_SUCH, cond, facts, header, results, rule, snapshot, structure, trading_use_case, use_case

D = Decimal


@pytest.fixture
def cli(db_url):
    def invoke(*args):
        return CliRunner().invoke(main, ["--dsn", db_url, *args])
    return invoke


@pytest.fixture
def book(conn):
    """The TRADING book with a rule on EMEA (book a only) and facts on FX_1 that lack the book."""
    uc = trading_use_case(conn)
    facts(conn, uc, [("ACTUAL", "FX_1", "-3.00", "1.00", "1.00", {"desk": "spot"}),
                     ("ACTUAL", "NOWHERE", "2.00", "2.00", "2.00", {"book": "a"})])
    emea = rule(conn, uc, "EMEA", cond("book", "equals", "a"), "book a only")
    return {"uc": uc, "run": snapshot(conn, uc), "emea": emea}


def summary(result) -> str:
    [line] = result.stderr.strip().splitlines()
    return line


def table(stdout: str) -> list[list[str]]:
    """The rows under the header, split on runs of two or more blanks."""
    return [re.split(r"\s{2,}", line.strip()) for line in stdout.strip().splitlines()[1:]]


def test_facts_are_the_default_with_a_summary_that_reconciles_with_the_run(cli, conn, book):
    run = book["run"]
    result = cli("explain", str(run), "EMEA")
    out = ok(result)
    assert out.splitlines()[0].split() == ["FACT", "CATEGORY", "NODE", "DAILY", "WTD", "YTD", "INCLUDED", "RULE",
                                           "RULE", "NODE", "ATTRIBUTES"]
    rows = table(out)
    assert [r[1:4] for r in rows] == [["RATES_1", "RATES_1", "100.00"], ["RATES_2", "RATES_2", "-50.25"],
                                      ["FX_1", "FX_1", "40.00"], ["FX_1", "FX_1", "7.50"], ["FX_1", "FX_1", "-3.00"]]
    assert rows[0][4:] == ["300.00", "1,000.00", "yes", str(book["emea"]), "EMEA", "book=a"]
    assert rows[-1][6:] == ["no", str(book["emea"]), "EMEA", "desk=spot"]
    emea = results(conn, run)[("EMEA", "ACTUAL")]
    assert summary(result) == (
        f"node EMEA in run {run}, ACTUAL daily: natural {fmt.money(emea['daily_natural'])} = adjusted "
        f"{fmt.money(emea['daily_adjusted'])} + plug {fmt.money(emea['daily_plug'])}; 5 fact(s), 3 excluded, showing 5")
    assert summary(result) == (f"node EMEA in run {run}, ACTUAL daily: natural 94.25 = adjusted 140.00 + plug -45.75; "
                               "5 fact(s), 3 excluded, showing 5")


def test_limit_shows_the_largest_rows_and_the_summary_still_adds_up_all(cli, book):
    run = book["run"]
    result = cli("explain", str(run), "FIRM", "--limit", "2", "--scenario", "PRIOR", "--measure", "ytd")
    assert [r[1] for r in table(ok(result))] == ["RATES_1", "EQ_1"]
    assert summary(result) == (f"node FIRM in run {run}, PRIOR ytd: natural 915.00 = adjusted 910.00 + plug 5.00; "
                               "3 fact(s), 1 excluded, showing 2")


def test_json_prints_the_sql_rows_exactly_with_limit(cli, conn, book):
    run = book["run"]
    result = cli("explain", str(run), "FIRM", "--limit", "3", "--json")
    printed = json.loads(ok(result), parse_float=Decimal)
    sql = conn.execute("SELECT coalesce(json_agg(e), '[]')::text FROM explain_node(%s, 'FIRM', 'ACTUAL', 3) e",
                       (run,)).fetchone()[0]
    assert printed == json.loads(sql, parse_float=Decimal)
    assert [r["daily_amount"] for r in printed] == [D("1000000.00"), D("100.00"), D("-50.25")]
    assert '"daily_amount": 1000000.00' in result.stdout  # the digits as SQL wrote them
    assert summary(result).endswith("7 fact(s), 3 excluded, showing 3")


def test_csv_gets_every_row_whatever_the_limit(cli, book, tmp_path):
    run, path = book["run"], tmp_path / "facts.csv"
    result = cli("explain", str(run), "EMEA", "--limit", "1", "--csv", str(path))
    assert len(table(ok(result))) == 1
    assert result.stderr.strip().splitlines()[1] == f"wrote 5 row(s) to {path}"
    with open(path, newline="", encoding="utf-8") as f:
        written = list(csv.DictReader(f))
    assert list(written[0]) == ["fact_id", "category_code", "mapped_node_id", "attributes", "currency", "daily_amount",
                                "wtd_amount", "ytd_amount", "rate", "included", "governing_rule_id",
                                "governing_node_id"]
    assert [r["daily_amount"] for r in written] == ["100.00", "-50.25", "40.00", "7.50", "-3.00"]
    assert written[0] | {"fact_id": ""} == {
        "fact_id": "", "category_code": "RATES_1", "mapped_node_id": "RATES_1", "attributes": '{"book": "a"}',
        "currency": "", "daily_amount": "100.00", "wtd_amount": "300.00", "ytd_amount": "1000.00", "rate": "1",
        "included": "true", "governing_rule_id": str(book["emea"]), "governing_node_id": "EMEA"}
    assert sum(D(r["daily_amount"]) for r in written if r["included"] == "false") == D("-45.75")

    variance = tmp_path / "variance.csv"
    ok(cli("explain", str(run), "FIRM", "--by", "book", "--csv", str(variance)))
    assert variance.read_text(encoding="utf-8").splitlines() == [
        "key,actual,prior,variance,change,currency,rate", "a,1000142.00,100.00,1000042.00,CHANGED,USD,1",
        "b,0,0,0,UNCHANGED,USD,1", ",0,0,0,UNCHANGED,USD,1"]


def test_by_rule_is_explain_plug(cli, book):
    run = book["run"]
    result = cli("explain", str(run), "FIRM", "--by", "rule")
    out = ok(result)
    assert out.splitlines()[0].split() == ["RULE", "RULE", "NODE", "GOVERNED", "EXCLUDED", "DAILY", "EXCLUDED", "WTD",
                                           "EXCLUDED", "YTD", "EXCLUDED", "LOGIC"]
    assert table(out) == [[str(book["emea"]), "EMEA", "5", "3", "-45.75", "18.50", "28.50", "book a only"]]
    assert summary(result) == (f"node FIRM in run {run}, ACTUAL daily: plug -45.75 = the exclusions of 1 rule(s); "
                               "3 of 5 governed fact(s) excluded, showing 1")


@pytest.mark.parametrize("by, first_column, rows", [
    ("child", "CHILD", [["AMER", "1,000,000.00", "10.00", "999,990.00", "CHANGED"],
                        ["EMEA", "140.00", "90.00", "50.00", "CHANGED"],
                        ["__UNMAPPED__", "2.00", "0.00", "2.00", "NEW"]]),
    ("category_code", "CATEGORY_CODE", [["EQ_1", "1,000,000.00", "10.00", "999,990.00", "CHANGED"],
                                        ["FX_1", "40.00", "0.00", "40.00", "NEW"],
                                        ["RATES_1", "100.00", "90.00", "10.00", "CHANGED"],
                                        ["NOWHERE", "2.00", "0.00", "2.00", "NEW"],
                                        ["RATES_2", "0.00", "0.00", "0.00", "UNCHANGED"]]),
    ("desk", "DESK", [["-", "1,000,142.00", "100.00", "1,000,042.00", "CHANGED"],
                      ["spot", "0.00", "0.00", "0.00", "UNCHANGED"]]),
])
def test_by_child_category_code_or_an_attribute_is_explain_variance(cli, conn, book, by, first_column, rows):
    run = book["run"]
    result = cli("explain", str(run), "FIRM", "--by", by)
    out = ok(result)
    assert out.splitlines()[0].split() == [first_column, "ACTUAL", "PRIOR", "VARIANCE", "CHANGE"]
    assert table(out) == rows
    firm = results(conn, run)[("FIRM", "VARIANCE")]
    assert firm["daily_adjusted"] == D("1000042.00")
    assert summary(result) == (f"node FIRM in run {run}, daily adjusted: variance 1,000,042.00 = actual 1,000,142.00 "
                               f"- prior 100.00; by {by}, {len(rows)} key(s), showing {len(rows)}")


def test_a_variance_of_another_measure_as_json(cli, conn, book):
    run = book["run"]
    result = cli("explain", str(run), "EMEA", "--by", "child", "--measure", "wtd", "--json")
    printed = json.loads(ok(result), parse_float=Decimal)
    assert printed == [{"key": "RATES", "actual": D("300.00"), "prior": D("200.00"), "variance": D("100.00"),
                        "change": "CHANGED", "currency": "USD", "rate": 1},
                       {"key": "FX", "actual": D("80.00"), "prior": D("0"), "variance": D("80.00"), "change": "NEW",
                        "currency": "USD", "rate": 1}]
    assert sum(r["variance"] for r in printed) == results(conn, run)[("EMEA", "VARIANCE")]["wtd_adjusted"]


# --- errors -------------------------------------------------------------------------------------------

def test_an_unknown_node_or_run_is_one_line_and_exit_1(cli, book):
    run = book["run"]
    for by in ("facts", "rule", "child"):
        result = cli("explain", str(run), "NOPE", "--by", by)
        assert result.exit_code == 1 and result.stdout == ""
        function = {"facts": "explain_node", "rule": "explain_plug", "child": "explain_variance"}[by]
        assert result.stderr.splitlines() == [f"pnldb: error: {function}: run {run} has no node 'NOPE'. "
                                              "Hint: the nodes of a run are those of its result rows"]
    result = cli("explain", NO_SUCH, "FIRM")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [f"pnldb: error: unknown run {NO_SUCH}. "
                                          "Hint: run_id must be a pnl.calculation_runs.id"]


def test_a_failed_run_is_one_line_and_exit_1(cli, conn):
    structure(conn, "S", [("FIRM", None), ("BOOK", "FIRM")])
    uc = use_case(conn, "Broken", "S")
    facts(conn, uc, [("ACTUAL", "BOOK", "1", "1", "1", {})])
    conn.execute("ALTER TABLE metadata_rules DISABLE TRIGGER rule_is_valid")
    conn.execute("""INSERT INTO metadata_rules (use_case_id, node_id, predicate_json) VALUES
                    (%s, 'BOOK', '{"conditions": [{"field": "book", "operator": "contains", "value": "x"}]}')""",
                 (uc,))
    conn.execute("ALTER TABLE metadata_rules ENABLE TRIGGER rule_is_valid")
    run = snapshot(conn, uc, name="broken")
    assert header(conn, run)["status"] == "FAILED"
    result = cli("explain", str(run), "FIRM")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [f"pnldb: error: explain_node: run {run} (broken) is FAILED, not COMPLETED; "
                                          "only a completed run has results to read"]


def test_option_mistakes_are_usage_errors(cli, book, tmp_path):
    run = str(book["run"])
    result = cli("explain", run, "FIRM", "--by", "child", "--scenario", "PRIOR")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == ["pnldb: error: --scenario applies to --by facts and rule; a variance is "
                                          "ACTUAL - PRIOR"]
    for args in (["--scenario", "actual"], ["--measure", "monthly"], ["--limit", "0"]):
        result = cli("explain", run, "FIRM", *args)
        assert result.exit_code == 2 and len(result.stderr.splitlines()) == 1, args
    result = cli("explain", run, "FIRM", "--csv", str(tmp_path / "no" / "such" / "dir.csv"))
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1].startswith(f"pnldb: error: cannot write {tmp_path / 'no' / 'such'}")


# --- pnldb snapshot's warning -------------------------------------------------------------------------

def misspelt_book(conn):
    structure(conn, "S", [("FIRM", None), ("EMEA", "FIRM"), ("AMER", "FIRM")])
    uc = use_case(conn, "Spelling", "S")
    facts(conn, uc, [("ACTUAL", "EMEA", "10.00", "1.00", "1.00", {"strategy": "FLOW"}),
                     ("ACTUAL", "EMEA", "5.00", "1.00", "1.00", {"strategy": "HEDGE"}),
                     ("ACTUAL", "AMER", "7.00", "1.00", "1.00", {"strategy": "FLOW"})])
    rule(conn, uc, "AMER", cond("strategy", "equals", "FLOW"))
    return uc


def test_snapshot_warns_of_a_rule_that_excluded_all_it_governs_for_want_of_a_field(cli, conn):
    uc = misspelt_book(conn)
    misspelt = rule(conn, uc, "EMEA", cond("Strategy", "equals", "FLOW"))
    warning = f"warning: rule {misspelt} on node EMEA excluded all 2 facts it governs: none carries field 'Strategy'"
    result = cli("snapshot", "--use-case", "Spelling", "--date", "2025-12-24")
    assert "COMPLETED" in ok(result)
    assert result.stderr.splitlines() == [warning]
    result = cli("snapshot", "--use-case", "Spelling", "--date", "2025-12-24", "--json")
    run = json.loads(ok(result))
    assert run == conn.execute("SELECT get_run(%s)", (run["id"],)).fetchone()[0]  # --json unchanged
    assert result.stderr.splitlines() == [warning]


def test_snapshot_does_not_warn_when_the_fields_are_there_or_some_fact_is_kept(cli, conn):
    uc = misspelt_book(conn)
    rule(conn, uc, "EMEA", cond("strategy", "equals", "NONE"))  # excludes all, but the field is carried
    result = cli("snapshot", "--use-case", "Spelling", "--date", "2025-12-24")
    assert ok(result) and result.stderr == ""
    conn.execute("UPDATE metadata_rules SET predicate_json = %s::jsonb WHERE node_id = 'EMEA'",
                 (json.dumps({"conditions": [{"field": "Strategy", "operator": "not_equals", "value": "X"}]}),))
    result = cli("snapshot", "--use-case", "Spelling", "--date", "2025-12-24")  # missing field, facts kept
    assert ok(result) and result.stderr == ""
