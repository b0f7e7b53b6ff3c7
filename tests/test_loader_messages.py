"""What a new user's first files meet: the exact messages of the loaders and the files they accept as
they come out of Excel or the original system."""
from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from pnldb import api
from pnldb.cli import main
from pnldb.errors import PnlError

DATA = Path(__file__).parent / "data"
HEADER = "use_case_id,pnl_date,category_code,daily_amount,wtd_amount,ytd_amount,scenario"


def cli(db_url, *args):
    return CliRunner().invoke(main, ["--dsn", db_url, *map(str, args)])


def write(tmp_path, name, text: str) -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def stderr_lines(result) -> list[str]:
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert result.stdout == ""
    return result.stderr.splitlines()


def facts(conn):
    return conn.execute("""SELECT pnl_date::text, scenario, category_code, daily_amount, wtd_amount, ytd_amount,
                                  amount, attributes FROM fact_pnl_entries
                           ORDER BY pnl_date, scenario, category_code, daily_amount""").fetchall()


@pytest.fixture
def sterling(conn, db_url):
    api.load_hierarchy(conn, DATA / "hierarchy.csv", "STERLING")
    return api.create_use_case(conn, "Project Sterling", "STERLING")["use_case_id"]


# --------------------------------------------------------------------------------------------------
# several problems: a summary line, then a line each, at most 20

def test_many_bad_rows_through_the_cli_are_a_summary_and_a_line_each(conn, db_url, sterling, tmp_path):
    rows = "".join(f",2025-12-24,BOOK_FX_1,{i}.5,1,1,BUDGET\n" for i in range(23))
    path = write(tmp_path, "facts.csv", f"{HEADER}\n,2025-12-24,BOOK_FX_1,1,1,1,ACTUAL\n{rows}")
    assert stderr_lines(cli(db_url, "load", "facts", path, "--use-case", sterling)) == [
        f"pnldb: error: {path}: 23 bad rows, nothing loaded",
        *(f"  line {i + 3}, column scenario: 'BUDGET' is not a scenario (expected ACTUAL or PRIOR)" for i in range(20)),
        "  and 3 more"]
    assert facts(conn) == []


def test_exactly_twenty_problems_are_all_listed_without_and_more(conn, sterling, tmp_path):
    rows = "".join(f",2025-12-24,BOOK_FX_1,1,1,1,ACTUAL,x{i}\n" for i in range(20))
    path = write(tmp_path, "facts.csv", f"{HEADER}\n{rows}")
    with pytest.raises(PnlError) as info:
        api.load_facts(conn, path, sterling)
    assert str(info.value).splitlines() == [
        f"{path}: 20 bad rows, nothing loaded",
        *(f"  line {i + 2}: 8 cells, expected 7 (as in the header)" for i in range(20))]


def test_one_bad_row_is_one_line(db_url, sterling, tmp_path):
    path = write(tmp_path, "facts.csv", f"{HEADER}\n,2025-12-24,BOOK_FX_1,1,1,1,ACTUAL\n,2025-12-24,BOOK_FX_1\n")
    assert stderr_lines(cli(db_url, "load", "facts", path, "--use-case", sterling)) == [
        f"pnldb: error: {path}: line 3: 3 cells, expected 7 (as in the header); nothing loaded"]


def test_a_one_cell_row_says_1_cell(db_url, sterling, tmp_path):
    path = write(tmp_path, "facts.csv", f"{HEADER}\nBOOK_FX_1\n")
    assert stderr_lines(cli(db_url, "load", "facts", path, "--use-case", sterling)) == [
        f"pnldb: error: {path}: line 2: 1 cell, expected 7 (as in the header); nothing loaded"]


def test_several_hierarchy_problems_through_the_cli(db_url, tmp_path):
    path = write(tmp_path, "h.csv", "node_id,parent_node_id,node_name\nFIRM,,Firm\nA,X,A\nB\nFIRM,,Again\n")
    assert stderr_lines(cli(db_url, "load", "hierarchy", path, "--structure", "S")) == [
        f"pnldb: error: {path}: 2 problems, nothing loaded",
        "  line 4: 1 cell, expected 3",
        "  line 5: node 'FIRM' already defined on line 2"]


def test_a_replace_that_orphans_several_rules_lists_them_a_line_each(conn, db_url, sterling, tmp_path):
    for node in ("DESK_FX", "DESK_RATES"):
        conn.execute("""INSERT INTO metadata_rules (use_case_id, node_id, predicate_json) VALUES (%s, %s,
                        '{"conditions": [{"field": "book", "operator": "equals", "value": "FX_1"}]}')""",
                     (sterling, node))
    path = write(tmp_path, "h.csv", "node_id,parent_node_id,node_name\nFIRM,,Firm\n")
    assert stderr_lines(cli(db_url, "load", "hierarchy", path, "--structure", "STERLING")) == [
        f"pnldb: error: {path}: cannot replace structure STERLING: 2 rules sit on nodes the file drops; delete "
        f"those rules (`pnldb rules delete --use-case U NODE...`) or keep the nodes; nothing loaded",
        "  node 'DESK_FX' (use case 'Project Sterling')",
        "  node 'DESK_RATES' (use case 'Project Sterling')"]


def test_a_replace_that_orphans_one_rule_is_one_line(conn, db_url, sterling, tmp_path):
    conn.execute("""INSERT INTO metadata_rules (use_case_id, node_id, predicate_json) VALUES (%s, 'DESK_FX',
                    '{"conditions": [{"field": "book", "operator": "equals", "value": "FX_1"}]}')""", (sterling,))
    path = write(tmp_path, "h.csv", "node_id,parent_node_id,node_name\nFIRM,,Firm\n")
    assert stderr_lines(cli(db_url, "load", "hierarchy", path, "--structure", "STERLING")) == [
        f"pnldb: error: {path}: cannot replace structure STERLING: a rule sits on node 'DESK_FX' (use case "
        f"'Project Sterling'), which the file drops; delete that rule "
        f"(`pnldb rules delete --use-case 'Project Sterling' DESK_FX`) or keep the node; nothing loaded"]


# --------------------------------------------------------------------------------------------------
# counts in the summaries

def test_one_row_one_slice_one_node_are_singular(db_url, tmp_path, conn):
    h = write(tmp_path, "h.csv", "node_id,parent_node_id,node_name\nFIRM,,Firm\n")
    result = cli(db_url, "load", "hierarchy", h, "--structure", "S")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == "created structure S (S): 1 node, root FIRM\n"
    result = cli(db_url, "load", "hierarchy", h, "--structure", "S")
    assert result.stderr == "replaced structure S (S): 1 node, root FIRM; 1 previous node removed\n"
    api.create_use_case(conn, "Tiny", "S")
    f = write(tmp_path, "f.csv", f"{HEADER}\n,2025-12-24,ELSEWHERE,1,1,1,ACTUAL\n")
    result = cli(db_url, "load", "facts", f, "--use-case", "Tiny")
    assert result.exit_code == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0].startswith("loaded 1 row into use case 'Tiny' (1 slice: 2025-12-24 ACTUAL) in ")
    assert lines[1:] == ["warning: 1 row has a category_code that is no node of the structure (ELSEWHERE); "
                         "snapshots report it under __UNMAPPED__"]
    result = cli(db_url, "load", "facts", f, "--use-case", "Tiny", "--replace", "--date", "2025-12-24")
    assert result.stderr.splitlines()[1] == (
        "replaced 1 slice: 1 previous row superseded (kept for the runs that read them)")
    assert stderr_lines(cli(db_url, "load", "facts", f, "--use-case", "Tiny")) == [
        f"pnldb: error: {f}: use case 'Tiny' already has current facts for 1 slice of the file: 2025-12-24 ACTUAL "
        "(load 2); nothing loaded. Use --replace to supersede them with this file, or --append to add it as another "
        "load beside them"]
    g = write(tmp_path, "g.csv", f"{HEADER}\n,2025-12-24,ELSEWHERE,2,2,2,ACTUAL\n")
    result = cli(db_url, "load", "facts", g, "--use-case", "Tiny", "--append")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines()[1:] == [
        "appended: 1 slice already had current facts; this load adds to them (see `pnldb loads list`)",
        "warning: 1 row has a category_code that is no node of the structure (ELSEWHERE); snapshots report it "
        "under __UNMAPPED__"]
    assert stderr_lines(cli(db_url, "load", "facts", f, "--use-case", "Tiny")) == [
        f"pnldb: error: {f}: use case 'Tiny' already has current facts for 1 slice of the file: 2025-12-24 ACTUAL "
        "(loads 2, 3); nothing loaded. Use --replace to supersede them with this file, or --append to add it as "
        "another load beside them"]


# --------------------------------------------------------------------------------------------------
# files as Excel and other tools write them

def test_a_semicolon_separated_file_says_the_separator_must_be_a_comma(db_url, sterling, tmp_path):
    path = write(tmp_path, "facts.csv", HEADER.replace(",", ";") + "\n;2025-12-24;BOOK_FX_1;1,5;1;1;ACTUAL\n")
    assert stderr_lines(cli(db_url, "load", "facts", path, "--use-case", sterling)) == [
        f"pnldb: error: {path}: line 1: the columns are separated by semicolons; the separator must be a comma "
        f"(in Excel: save as \"CSV UTF-8 (Comma delimited)\")"]


def test_a_tab_separated_hierarchy_says_the_separator_must_be_a_comma(db_url, tmp_path):
    path = write(tmp_path, "h.tsv", "node_id\tparent_node_id\tnode_name\nFIRM\t\tFirm\n")
    assert stderr_lines(cli(db_url, "load", "hierarchy", path, "--structure", "S")) == [
        f"pnldb: error: {path}: line 1: the columns are separated by tabs; the separator must be a comma "
        f"(in Excel: save as \"CSV UTF-8 (Comma delimited)\")"]


def test_excels_empty_trailing_rows_are_skipped_like_blank_lines(conn, sterling, tmp_path):
    path = write(tmp_path, "facts.csv", f"{HEADER},book\r\n,2025-12-24,BOOK_FX_1,1.50,2,3,ACTUAL,B1\r\n"
                                        ",,,,,,,\r\n , ,,,,, ,\r\n,,,\r\n\r\n,2025-12-24,BOOK_FX_2,1,2,3,PRIOR,\r\n"
                                        ",,,,,,,\r\n,,,,,,,\r\n")
    assert api.load_facts(conn, path, sterling)["rows_loaded"] == 2
    assert facts(conn) == [
        ("2025-12-24", "ACTUAL", "BOOK_FX_1", Decimal("1.50"), Decimal("2.00"), Decimal("3.00"), Decimal("1.50"),
         {"book": "B1"}),
        ("2025-12-24", "PRIOR", "BOOK_FX_2", Decimal("1.00"), Decimal("2.00"), Decimal("3.00"), Decimal("1.00"), {})]


def test_excels_empty_trailing_rows_in_a_hierarchy_are_skipped(conn, tmp_path):
    path = write(tmp_path, "h.csv", "node_id,parent_node_id,node_name\r\nFIRM,,Firm\r\nA,FIRM,A\r\n,,\r\n,,\r\n")
    assert api.load_hierarchy(conn, path, "S")["nodes_loaded"] == 2


def test_header_names_match_in_any_case(conn, sterling, tmp_path):
    path = write(tmp_path, "facts.csv", "Use_Case_ID,PNL_Date,Category_Code,Daily_Amount,WTD_Amount,YTD_Amount,"
                                        "Scenario,Amount,Legal_Entity\n,2025-12-24,BOOK_FX_1,1,2,3,ACTUAL,1,LE_UK\n")
    summary = api.load_facts(conn, path, sterling)
    assert summary["dimensions"] == ["legal_entity"]
    assert facts(conn) == [("2025-12-24", "ACTUAL", "BOOK_FX_1", Decimal("1.00"), Decimal("2.00"), Decimal("3.00"),
                            Decimal("1.00"), {"legal_entity": "LE_UK"})]
    h = write(tmp_path, "h.csv", "NODE_ID,Parent_Node_Id,Node_Name\nFIRM,,Firm\n")
    assert api.load_hierarchy(conn, h, "S")["nodes_loaded"] == 1


def test_a_header_column_repeated_in_another_case_is_refused(db_url, sterling, tmp_path):
    path = write(tmp_path, "facts.csv", f"{HEADER},book,Book\n")
    assert stderr_lines(cli(db_url, "load", "facts", path, "--use-case", sterling)) == [
        f"pnldb: error: {path}: line 1: column 'Book' appears twice in the header"]


def test_scenario_in_any_case_is_stored_upper_case(conn, sterling, tmp_path):
    path = write(tmp_path, "facts.csv", f"{HEADER}\n,2025-12-24,BOOK_FX_1,1,1,1,actual\n"
                                        ",2025-12-24,BOOK_FX_1,2,2,2,Prior\n,2025-12-24,BOOK_FX_1,3,3,3, PRIOR \n"
                                        ",2025-12-24,BOOK_FX_1,4,4,4,ACTUAL\n,2025-12-24,BOOK_FX_1,5,5,5,actual\n")
    summary = api.load_facts(conn, path, sterling)
    assert summary["slices"] == [{"pnl_date": "2025-12-24", "scenario": "ACTUAL", "rows": 3},
                                 {"pnl_date": "2025-12-24", "scenario": "PRIOR", "rows": 2}]
    assert [(r[1], r[3]) for r in facts(conn)] == [("ACTUAL", Decimal("1.00")), ("ACTUAL", Decimal("4.00")),
                                                   ("ACTUAL", Decimal("5.00")), ("PRIOR", Decimal("2.00")),
                                                   ("PRIOR", Decimal("3.00"))]


# --------------------------------------------------------------------------------------------------
# the original system's export: amount is the legacy column and differs from daily_amount

LEGACY_HEADER = f"{HEADER},amount,legal_entity,book"
BOOKS = ["BOOK_RATES_1", "BOOK_RATES_2", "BOOK_FX_1", "BOOK_FX_2", "DESK_FX"]


def legacy_row(i: int) -> tuple[str, str, str, Decimal, Decimal, Decimal, Decimal]:
    """Row i of 60: (scenario, category_code, book, daily, wtd, ytd, amount); amount equals daily_amount
    only in rows 0, 20 and 40, as in the export."""
    daily = Decimal(i * 1025 - 30000).scaleb(-2)
    amount = daily if i % 20 == 0 else daily + Decimal(i * 7 + 3).scaleb(-2)
    return ("ACTUAL" if i % 2 else "PRIOR", BOOKS[i % 5], f"B{i % 4}", daily, daily * 3, daily * 40, amount)


@pytest.fixture
def legacy_export(tmp_path) -> Path:
    lines = [LEGACY_HEADER]
    for i in range(60):
        scenario, code, book, daily, wtd, ytd, amount = legacy_row(i)
        lines.append(f",2025-12-24,{code},{daily},{wtd},{ytd},{scenario},{amount},LE_UK,{book}")
    return write(tmp_path, "legacy_export.csv", "\n".join(lines) + "\n")


def test_the_legacy_export_fixture_has_the_shape_of_the_original(legacy_export):
    rows = [line.split(",") for line in legacy_export.read_text().splitlines()[1:]]
    assert len(rows) == 60
    assert sum(Decimal(r[7]) != Decimal(r[3]) for r in rows) == 57


def test_the_legacy_export_is_stored_as_given_with_one_notice(conn, db_url, sterling, legacy_export):
    result = cli(db_url, "load", "facts", legacy_export, "--use-case", "Project Sterling")
    assert result.exit_code == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0].startswith("loaded 60 rows into use case 'Project Sterling' (2 slices: 2025-12-24 ACTUAL, "
                               "2025-12-24 PRIOR) in ")
    assert lines[1:] == ["note: amount differs from daily_amount in 57 of 60 rows; stored as the file gives it "
                         "(amount is the legacy column; snapshots use daily_amount, wtd_amount and ytd_amount)"]
    stored = conn.execute("""SELECT scenario, category_code, attributes->>'book', daily_amount, wtd_amount,
                                    ytd_amount, amount FROM fact_pnl_entries""").fetchall()
    assert sorted(stored) == sorted(legacy_row(i) for i in range(60))
    assert conn.execute("SELECT count(*) FROM fact_pnl_entries WHERE amount <> daily_amount").fetchone()[0] == 57


def test_the_legacy_export_through_the_python_api_counts_the_rows(conn, sterling, legacy_export):
    summary = api.load_facts(conn, legacy_export, sterling)
    assert (summary["rows_loaded"], summary["amount_differs_rows"]) == (60, 57)


def test_a_file_without_amount_or_with_amount_equal_gives_no_notice(db_url, sterling, tmp_path):
    path = write(tmp_path, "f.csv", f"{HEADER},amount\n,2025-12-24,BOOK_FX_1,1.5,1,1,ACTUAL,1.50\n"
                                    ",2025-12-24,BOOK_FX_1,2,1,1,ACTUAL,\n")
    result = cli(db_url, "load", "facts", path, "--use-case", sterling, "--json")
    assert result.exit_code == 0, result.stderr
    assert len(result.stderr.splitlines()) == 1 and "note:" not in result.stderr
    assert '"amount_differs_rows": 0' in result.stdout


def test_the_table_keeps_both_when_a_dba_inserts_amount_and_daily_amount(conn, sterling):
    # The trigger fills whichever of amount and daily_amount is missing and never overwrites a given one.
    conn.execute("""INSERT INTO fact_pnl_entries (use_case_id, pnl_date, scenario, category_code, daily_amount,
                                                  wtd_amount, ytd_amount, amount)
                    VALUES (%s, '2025-12-24', 'ACTUAL', 'BOOK_FX_1', 10, 20, 30, 7),
                           (%s, '2025-12-24', 'ACTUAL', 'BOOK_FX_2', 10, NULL, NULL, 7)""", (sterling, sterling))
    assert conn.execute("SELECT category_code, daily_amount, wtd_amount, ytd_amount, amount FROM fact_pnl_entries "
                        "ORDER BY category_code").fetchall() == [
        ("BOOK_FX_1", Decimal("10.00"), Decimal("20.00"), Decimal("30.00"), Decimal("7.00")),
        ("BOOK_FX_2", Decimal("10.00"), Decimal("10.00"), Decimal("10.00"), Decimal("7.00"))]
