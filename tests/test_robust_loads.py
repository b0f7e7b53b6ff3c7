"""Issue 19, the loads' part: limits on a rule's size (refused when written), deeply nested rules JSON,
ANALYZE after a large fact load, `--replace --date`, running WTD/YTD sums for legacy writers over the
current facts, and the loaders' line-and-column errors for unicode digits and over-long ids."""
from __future__ import annotations

import datetime as dt
import json
import time
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from pnldb import api
from pnldb.cli import main
from pnldb.errors import PnlError
from pnldb.loaders import facts as facts_loader
from tests.builders import COB, load_sample, snapshot, structure, use_case

DATA = Path(__file__).parent / "data"
HEADER = "pnl_date,category_code,daily_amount,wtd_amount,ytd_amount,scenario"


def cli(db_url, *args):
    return CliRunner().invoke(main, ["--dsn", db_url, *map(str, args)])


def write(tmp_path, name, text) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_lines(result) -> list[str]:
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    return result.stderr.strip().splitlines()


@pytest.fixture
def sterling(conn):
    api.load_hierarchy(conn, DATA / "hierarchy.csv", "STERLING")
    return api.create_use_case(conn, "Project Sterling", "STERLING")["use_case_id"]


def conditions(n: int) -> dict:
    return {"conditions": [{"field": "book", "operator": "not_equals", "value": f"B{i}"} for i in range(n)]}


def in_list(n: int, *before: dict) -> dict:
    return {"conditions": [*before, {"field": "book", "operator": "in", "value": [f"B{i}" for i in range(n)]}]}


def write_rule(conn, uc, node: str, predicate: dict) -> None:
    conn.execute("INSERT INTO metadata_rules (use_case_id, node_id, predicate_json) VALUES (%s, %s, %s::jsonb)",
                 (uc, node, json.dumps(predicate)))


# --------------------------------------------------------------------------------------------------
# item 4: a rule's size

def test_the_rule_limits_are_rows_of_limits_with_their_defaults(conn):
    rows = conn.execute("SELECT name, value FROM limits WHERE name IN ('max_rule_conditions', 'max_in_list') "
                        "ORDER BY name").fetchall()
    assert rows == [("max_in_list", 1000), ("max_rule_conditions", 100)]


def test_a_rule_with_more_conditions_than_the_limit_is_refused_when_written(conn, sterling, login):
    admin = login("admin")
    write_rule(admin, sterling, "DESK_FX", conditions(100))  # at the limit: accepted
    with pytest.raises(psycopg.errors.ProgramLimitExceeded) as info:
        write_rule(admin, sterling, "DESK_RATES", conditions(101))
    assert info.value.diag.message_primary == (
        "rule on node 'DESK_RATES': predicate has 101 conditions; at most 100 are allowed (limit max_rule_conditions)")
    assert "UPDATE pnl.limits SET value = ... WHERE name = 'max_rule_conditions'" in info.value.diag.message_hint
    with pytest.raises(psycopg.errors.ProgramLimitExceeded):  # an UPDATE is a write too
        admin.execute("UPDATE metadata_rules SET predicate_json = %s::jsonb WHERE node_id = 'DESK_FX'",
                      (json.dumps(conditions(101)),))
    conn.execute("UPDATE limits SET value = 3 WHERE name = 'max_rule_conditions'")
    with pytest.raises(psycopg.errors.ProgramLimitExceeded, match="has 4 conditions; at most 3 are allowed"):
        write_rule(admin, sterling, "DESK_RATES", conditions(4))
    assert conn.execute("SELECT node_id FROM metadata_rules").fetchall() == [("DESK_FX",)]


def test_an_in_list_longer_than_the_limit_is_refused_naming_its_condition(conn, sterling, login):
    admin = login("admin")
    write_rule(admin, sterling, "DESK_FX", in_list(1000))
    first = {"field": "region", "operator": "in", "value": ["EMEA", "AMER"]}
    with pytest.raises(psycopg.errors.ProgramLimitExceeded) as info:
        write_rule(admin, sterling, "DESK_RATES", in_list(1001, first))
    assert info.value.diag.message_primary == (
        "rule on node 'DESK_RATES': predicate condition 2: its list has 1001 values; at most 1000 are allowed "
        "(limit max_in_list)")
    assert conn.execute("SELECT count(*) FROM metadata_rules").fetchone() == (1,)


def test_the_rules_loader_reports_an_oversized_rule_like_its_other_rejections(conn, db_url, sterling, tmp_path):
    path = write(tmp_path, "rules.json", json.dumps([
        {"node_id": "DESK_FX", "predicate_json": conditions(100_000)},
        {"node_id": "DESK_RATES", "predicate_json": in_list(5000)},
        {"node_id": "AMER", "predicate_json": in_list(3)}]))
    started = time.monotonic()
    lines = error_lines(cli(db_url, "load", "rules", path, "--use-case", "Project Sterling"))
    assert time.monotonic() - started < 30  # refused before the 100,000 conditions are parsed
    assert lines == [
        f"pnldb: error: {path}: 2 of 3 rules rejected, nothing loaded",
        "  rule 1 (node 'DESK_FX'): predicate has 100000 conditions; at most 100 are allowed "
        "(limit max_rule_conditions)",
        "  rule 2 (node 'DESK_RATES'): predicate condition 1: its list has 5000 values; at most 1000 are allowed "
        "(limit max_in_list)"]
    assert conn.execute("SELECT count(*) FROM metadata_rules").fetchone() == (0,)


def test_a_snapshot_stays_fast_with_rules_at_the_limits(conn):
    """The sample's facts under two rules at the limits: 100 conditions, and 100 lists of 1,000 values."""
    uc = load_sample(conn, rules_file=None)
    write_rule(conn, uc, "EMEA_RATES", {"conditions": [
        {"field": "book", "operator": "not_equals", "value": f"B{i}"} for i in range(100)]})
    write_rule(conn, uc, "GLOBAL_MARKETS", {"conditions": [
        {"field": "book", "operator": "not_in", "value": [f"B{j}-{i}" for i in range(1000)]} for j in range(100)]})
    date = conn.execute("SELECT max(pnl_date) FROM fact_pnl_entries").fetchone()[0]
    started = time.monotonic()
    run = snapshot(conn, uc, date)
    elapsed = time.monotonic() - started
    assert conn.execute("SELECT status, rules_applied FROM calculation_runs WHERE id = %s", (run,)).fetchone() \
        == ("COMPLETED", 2)
    assert elapsed < 10, elapsed  # measured: well under a second on the sample data


@pytest.mark.parametrize("depth", [40, 100_000])
def test_deeply_nested_rules_json_is_one_clear_error(conn, db_url, sterling, tmp_path, depth):
    nested = "[" * depth + "]" * depth
    path = write(tmp_path, "deep.json", f'[{{"node_id": "DESK_FX", "predicate_json": {{"conditions": {nested}}}}}]')
    lines = error_lines(cli(db_url, "load", "rules", path, "--use-case", "Project Sterling"))
    assert lines == [f"pnldb: error: {path}: lists and objects nested more than 32 levels deep; a rules file needs 6 "
                     f"(the list, a rule, its predicate_json, the conditions, a condition, an in list)"]


def test_a_rules_file_at_the_nesting_it_needs_loads(conn, sterling, tmp_path):
    path = write(tmp_path, "rules.json", json.dumps([{"node_id": "DESK_FX", "predicate_json": in_list(2)}]))
    assert api.load_rules(conn, path, "Project Sterling")["inserted"] == 1


# --------------------------------------------------------------------------------------------------
# item 4: ANALYZE after a large fact load

def big_facts(tmp_path, rows: int, date: str = "2025-12-24") -> Path:
    books = ["BOOK_RATES_1", "BOOK_RATES_2", "BOOK_FX_1", "BOOK_FX_2"]
    body = "".join(f"{date},{books[i % 4]},1.00,2.00,3.00,ACTUAL,T{i}\n" for i in range(rows))
    return write(tmp_path, "big.csv", f"{HEADER},trade\n{body}")


def reltuples(conn) -> float:
    return conn.execute("SELECT reltuples FROM pg_class WHERE oid = 'fact_pnl_entries'::regclass").fetchone()[0]


def test_a_large_fact_load_analyzes_the_facts_a_small_one_does_not(conn, db_url, sterling, tmp_path, login):
    small = write(tmp_path, "small.csv", f"{HEADER}\n2025-12-23,BOOK_FX_1,1.00,1.00,1.00,ACTUAL\n")
    admin = login("admin")
    assert api.load_facts(admin, small, "Project Sterling")["analyzed"] is False
    assert reltuples(conn) == -1  # never analysed
    summary = api.load_facts(admin, big_facts(tmp_path, 12_000), "Project Sterling")  # as an admin, not the owner
    assert summary["analyzed"] is True
    assert reltuples(conn) == 12_001
    assert (facts_loader.ANALYZE_MIN_ROWS, facts_loader.ANALYZE_FRACTION) == (10_000, 0.1)


def test_no_analyze_when_the_load_is_small_against_the_facts_already_there(conn, sterling, tmp_path, monkeypatch):
    monkeypatch.setattr(facts_loader, "ANALYZE_MIN_ROWS", 100)
    api.load_facts(conn, big_facts(tmp_path, 1_000, "2025-12-22"), "Project Sterling")
    assert reltuples(conn) == 1_000
    summary = api.load_facts(conn, big_facts(tmp_path, 99, "2025-12-23"), "Project Sterling")
    assert summary["analyzed"] is False  # under ANALYZE_MIN_ROWS
    summary = api.load_facts(conn, big_facts(tmp_path, 120, "2025-12-24"), "Project Sterling")
    assert summary["analyzed"] is True  # 120 >= 10% of 1,000
    assert reltuples(conn) == 1_219
    summary = api.load_facts(conn, big_facts(tmp_path, 120, "2025-12-25"), "Project Sterling")
    assert summary["analyzed"] is False  # 120 < 10% of 1,219


# --------------------------------------------------------------------------------------------------
# item 6: --replace --date

DAY_FILE = (f"{HEADER}\n2025-12-24,BOOK_RATES_1,100.00,200.00,300.00,ACTUAL\n"
            "2025-12-24,BOOK_FX_1,-40.50,10.00,20.00,ACTUAL\n"
            "2025-12-24,BOOK_FX_1,5.00,6.00,7.00,PRIOR\n"
            "2025-12-23,BOOK_FX_2,1.00,1.00,1.00,ACTUAL\n")


def current(conn) -> list[tuple]:
    return conn.execute(
        """SELECT f.pnl_date, f.scenario, count(*), sum(f.daily_amount) FROM fact_pnl_entries f
           JOIN fact_load_slices s USING (load_id, pnl_date, scenario) WHERE s.superseded_at IS NULL
           GROUP BY 1, 2 ORDER BY 1, 2""").fetchall()


def test_replace_needs_date(conn, db_url, sterling, tmp_path):
    path = write(tmp_path, "f.csv", DAY_FILE)
    result = cli(db_url, "load", "facts", path, "--use-case", "Project Sterling", "--replace")
    assert result.exit_code == 2
    assert "--replace needs --date D (repeatable): the COB dates the file replaces; a row of any other date is then " \
           "refused, nothing loaded" in result.stderr
    assert current(conn) == []


def test_replace_refuses_a_row_of_another_date_with_its_line_and_column(conn, db_url, sterling, tmp_path):
    path = write(tmp_path, "f.csv", DAY_FILE)
    assert cli(db_url, "load", "facts", path, "--use-case", "Project Sterling").exit_code == 0
    before = current(conn)
    result = cli(db_url, "load", "facts", path, "--use-case", "Project Sterling", "--replace", "--date", "2025-12-24")
    assert error_lines(result) == [
        f"pnldb: error: {path}: line 5, column pnl_date: 2025-12-23 is not a date given with --date (2025-12-24); "
        f"remove the row or give its date too; nothing loaded"]
    assert current(conn) == before


def test_replace_lists_each_replaced_slice_with_old_and_new_rows_and_totals(conn, db_url, sterling, tmp_path):
    assert cli(db_url, "load", "facts", write(tmp_path, "f.csv", DAY_FILE), "--use-case", "Project Sterling"
               ).exit_code == 0
    corrected = write(tmp_path, "c.csv", f"{HEADER}\n2025-12-24,BOOK_RATES_1,1000.00,2000.00,3000.00,ACTUAL\n"
                                         "2025-12-22,BOOK_FX_2,9.00,9.00,9.00,ACTUAL\n")
    result = cli(db_url, "load", "facts", corrected, "--use-case", "Project Sterling", "--replace",
                 "--date", "2025-12-24", "--date", "2025-12-22", "--json")
    assert result.exit_code == 0, result.stderr
    assert ("replaced 1 slice: 2 previous rows superseded (kept for the runs that read them)\n"
            "  2025-12-24 ACTUAL: 2 rows -> 1 row; daily 59.50 -> 1,000.00, wtd 210.00 -> 2,000.00, "
            "ytd 320.00 -> 3,000.00\n") in result.stderr
    summary = json.loads(result.stdout)
    assert summary["replaced_slices"] == [
        {"pnl_date": "2025-12-24", "scenario": "ACTUAL", "old_rows": 2, "new_rows": 1,
         "old_daily_sum": 59.5, "new_daily_sum": 1000, "old_wtd_sum": 210, "new_wtd_sum": 2000,
         "old_ytd_sum": 320, "new_ytd_sum": 3000}]
    assert current(conn) == [(dt.date(2025, 12, 22), "ACTUAL", 1, Decimal("9.00")),
                             (dt.date(2025, 12, 23), "ACTUAL", 1, Decimal("1.00")),
                             (dt.date(2025, 12, 24), "ACTUAL", 1, Decimal("1000.00")),
                             (dt.date(2025, 12, 24), "PRIOR", 1, Decimal("5.00"))]


def test_a_date_given_without_rows_in_the_file_is_refused(conn, db_url, sterling, tmp_path):
    path = write(tmp_path, "f.csv", DAY_FILE)
    result = cli(db_url, "load", "facts", path, "--use-case", "Project Sterling", "--replace",
                 "--date", "2025-12-24", "--date", "2025-12-23", "--date", "2025-12-25")
    assert error_lines(result) == [
        f"pnldb: error: {path}: no row of 2025-12-25, given with --date; nothing loaded. Give only the dates the "
        f"file is for (a slice is replaced by the rows of the file, never emptied)"]
    assert current(conn) == []


def test_date_guards_a_plain_load_too(conn, sterling, tmp_path):
    path = write(tmp_path, "f.csv", DAY_FILE)
    with pytest.raises(PnlError, match="line 5, column pnl_date: 2025-12-23 is not a date given with --date"):
        api.load_facts(conn, path, "Project Sterling", dates=[dt.date(2025, 12, 24)])
    summary = api.load_facts(conn, path, "Project Sterling", dates=["2025-12-24", "2025-12-23"])
    assert summary["rows_loaded"] == 4


# --------------------------------------------------------------------------------------------------
# item 7: legacy writers' running sums; unicode digits and long ids in the facts loader

def test_legacy_writers_get_running_sums_over_the_current_facts(conn):
    structure(conn, "S", [("R", None), ("A", "R")])
    uc = use_case(conn, "U", "S")
    monday, tuesday, wednesday = dt.date(2025, 12, 22), dt.date(2025, 12, 23), dt.date(2025, 12, 24)
    insert = ("INSERT INTO fact_pnl_entries (use_case_id, pnl_date, scenario, category_code, amount) "
              "VALUES (%s, %s, 'ACTUAL', 'A', %s)")
    with conn.transaction():
        conn.execute(insert, (uc, monday, 10))
        conn.execute(insert, (uc, tuesday, 20))
    with conn.transaction():  # Tuesday corrected: 25 replaces 20
        conn.execute("SELECT replace_facts(%s, %s, 'ACTUAL')", (uc, tuesday))
        conn.execute(insert, (uc, tuesday, 25))
    conn.execute(insert, (uc, wednesday, 1))
    rows = conn.execute("""SELECT f.pnl_date, f.daily_amount, f.wtd_amount, f.ytd_amount FROM fact_pnl_entries f
                           JOIN fact_load_slices s USING (load_id, pnl_date, scenario)
                           WHERE s.superseded_at IS NULL ORDER BY f.pnl_date""").fetchall()
    assert rows == [(monday, Decimal("10.00"), Decimal("10.00"), Decimal("10.00")),
                    (tuesday, Decimal("25.00"), Decimal("35.00"), Decimal("35.00")),
                    (wednesday, Decimal("1.00"), Decimal("36.00"), Decimal("36.00"))]


@pytest.mark.parametrize("amount", ["\u0661\u0662\u0663", "\uff11\uff12", "12.\u06634"])  # Arabic-Indic, fullwidth
def test_unicode_digits_in_an_amount_are_a_bad_cell(conn, sterling, tmp_path, amount):
    path = write(tmp_path, "f.csv", f"{HEADER}\n2025-12-24,BOOK_FX_1,1.00,{amount},1.00,ACTUAL\n")
    with pytest.raises(PnlError) as info:
        api.load_facts(conn, path, "Project Sterling")
    assert str(info.value) == f"{path}: line 2, column wtd_amount: '{amount}' is not a number; nothing loaded"
    assert current(conn) == []


def test_a_category_code_longer_than_an_id_may_be_is_a_bad_cell(conn, sterling, tmp_path):
    long_code = "é" * 501  # 1,002 bytes
    path = write(tmp_path, "f.csv", f"{HEADER}\n2025-12-24,BOOK_FX_1,1.00,1.00,1.00,ACTUAL\n"
                                    f"2025-12-24,{long_code},1.00,1.00,1.00,ACTUAL\n"
                                    f"2025-12-24,{'x' * 9000},1.00,1.00,1.00,ACTUAL\n")
    with pytest.raises(PnlError) as info:
        api.load_facts(conn, path, "Project Sterling")
    assert str(info.value).splitlines() == [
        f"{path}: 2 bad rows, nothing loaded",
        f"  line 3, column category_code: '{'é' * 40}...' is 1,002 bytes long; an id is at most 1,000 bytes (UTF-8)",
        f"  line 4, column category_code: '{'x' * 40}...' is 9,000 bytes long; an id is at most 1,000 bytes (UTF-8)"]
    at_limit = write(tmp_path, "ok.csv", f"{HEADER}\n2025-12-24,{'é' * 500},1.00,1.00,1.00,ACTUAL\n")
    assert api.load_facts(conn, at_limit, "Project Sterling")["unmapped_rows"] == 1


def test_replace_on_cob_snapshot_reads_the_new_facts(conn, db_url, sterling, tmp_path):
    """The whole path once: load, replace one date, snapshot that date."""
    assert cli(db_url, "load", "facts", write(tmp_path, "f.csv", DAY_FILE), "--use-case", "Project Sterling"
               ).exit_code == 0
    corrected = write(tmp_path, "c.csv", f"{HEADER}\n2025-12-24,BOOK_RATES_1,7.00,7.00,7.00,ACTUAL\n")
    assert cli(db_url, "load", "facts", corrected, "--use-case", "Project Sterling", "--replace",
               "--date", "2025-12-24").exit_code == 0
    run = snapshot(conn, sterling, COB)
    root = conn.execute("SELECT daily_natural FROM fact_calculated_results WHERE calculation_run_id = %s "
                        "AND node_id = 'FIRM' AND scenario = 'ACTUAL'", (run,)).fetchone()[0]
    assert root == Decimal("7.00")
