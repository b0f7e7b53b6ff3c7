"""Loaders: hierarchy and facts from CSV, rules from JSON; through the CLI and the Python functions."""
from __future__ import annotations

import datetime as dt
import io
import json
import random
from decimal import Decimal
from pathlib import Path

import pytest
from builders import error_line
from click.testing import CliRunner

from pnldb import api
from pnldb import format as fmt
from pnldb.cli import main
from pnldb.errors import PnlError
from pnldb.loaders.reading import quoted

DATA = Path(__file__).parent / "data"
HEADER = "use_case_id,pnl_date,category_code,daily_amount,wtd_amount,ytd_amount,scenario"
COB = "2025-12-24"


def cli(db_url, *args):
    return CliRunner().invoke(main, ["--dsn", db_url, *map(str, args)])


def write(tmp_path, name, text) -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def table(conn, name):
    """Every row of a table, without generated ids and timestamps, in a stable order."""
    columns = {
        "dim_hierarchy": "structure_id, node_id, parent_node_id, node_name",
        "hierarchy_structures": "structure_id, name",
        "fact_pnl_entries": "use_case_id, pnl_date, scenario, category_code, daily_amount, wtd_amount, "
                            "ytd_amount, amount, attributes::text",
        "metadata_rules": "use_case_id, node_id, predicate_json::text, logic_en",
    }[name]
    return conn.execute(f"SELECT {columns} FROM {name} ORDER BY {columns}").fetchall()


@pytest.fixture
def sterling(conn, db_url):
    """Structure STERLING from tests/data/hierarchy.csv and use case 'Project Sterling' on it."""
    result = cli(db_url, "load", "hierarchy", DATA / "hierarchy.csv", "--structure", "STERLING")
    assert result.exit_code == 0, result.stderr
    uc = api.create_use_case(conn, "Project Sterling", "STERLING")
    return uc["use_case_id"]


# --------------------------------------------------------------------------------------------------
# hierarchy

def test_load_hierarchy_in_any_row_order(conn, db_url):
    result = cli(db_url, "load", "hierarchy", DATA / "hierarchy.csv", "--structure", "STERLING",
                 "--name", "Sterling reporting", "--json")
    assert result.exit_code == 0, result.stderr
    assert "created structure STERLING" in result.stderr and "9 nodes" in result.stderr
    summary = json.loads(result.stdout)
    assert summary["nodes_loaded"] == 9 and summary["root"] == "FIRM" and summary["replaced"] is False
    assert table(conn, "hierarchy_structures") == [("STERLING", "Sterling reporting")]
    depths = dict(conn.execute("SELECT node_id, depth FROM v_hierarchy_nodes WHERE structure_id = 'STERLING'"))
    assert depths == {"FIRM": 0, "AMER": 1, "EMEA": 1, "DESK_RATES": 2, "DESK_FX": 2,
                      "BOOK_RATES_1": 3, "BOOK_RATES_2": 3, "BOOK_FX_1": 3, "BOOK_FX_2": 3}
    assert conn.execute("SELECT parent_node_id, node_name FROM dim_hierarchy WHERE node_id = 'FIRM'"
                        ).fetchone() == (None, "Global Markets")


def test_reload_replaces_the_nodes_and_keeps_the_name(conn, tmp_path):
    api.load_hierarchy(conn, DATA / "hierarchy.csv", "STERLING", name="Sterling reporting")
    smaller = write(tmp_path, "h.csv", "node_id,parent_node_id,node_name\nFIRM,,Firm\nEMEA,FIRM,Europe\n")
    summary = api.load_hierarchy(conn, smaller, "STERLING")
    assert summary["replaced"] is True and summary["nodes_removed"] == 9
    assert table(conn, "dim_hierarchy") == [("STERLING", "EMEA", "FIRM", "Europe"), ("STERLING", "FIRM", None, "Firm")]
    assert table(conn, "hierarchy_structures") == [("STERLING", "Sterling reporting")]


def test_a_new_structure_is_named_after_its_id(conn):
    api.load_hierarchy(conn, DATA / "hierarchy.csv", "ATLAS")
    assert table(conn, "hierarchy_structures") == [("ATLAS", "ATLAS")]


def test_hierarchy_cells_are_trimmed_and_a_bom_is_ignored(conn, tmp_path):
    path = write(tmp_path, "h.csv", b"\xef\xbb\xbfnode_id,parent_node_id,node_name\r\n"
                                    b" FIRM ,  ,Firm\r\nEMEA, FIRM,Europe \r\n\r\n")
    api.load_hierarchy(conn, path, "S")
    assert table(conn, "dim_hierarchy") == [("S", "EMEA", "FIRM", "Europe"), ("S", "FIRM", None, "Firm")]


BAD_HIERARCHIES = {
    "cycle": ("FIRM,,Firm\nA,C,A\nB,A,B\nC,B,C\n",
              ["cycle", "'A' (line 3)", "'B' (line 4)", "'C' (line 5)"]),
    "self parent": ("FIRM,,Firm\nA,A,A\n", ["cycle", "'A' (line 3) -> 'A'"]),
    "unknown parent": ("FIRM,,Firm\nA,FIRM,A\nB,NOPE,B\n", ["line 4", "parent_node_id 'NOPE'", "node 'B'"]),
    "second root": ("FIRM,,Firm\nA,FIRM,A\nOTHER,,Other\n", ["line 4", "'OTHER' has no parent", "'FIRM' (line 2)"]),
    "duplicate node": ("FIRM,,Firm\nA,FIRM,A\nA,FIRM,Again\n", ["line 4", "'A' already defined on line 3"]),
    "blank node_id": ("FIRM,,Firm\n  ,FIRM,Nameless\n", ["line 3", "node_id is blank"]),
    "reserved id": ("FIRM,,Firm\n__UNMAPPED__,FIRM,Unmapped\n", ["line 3", "__UNMAPPED__ is reserved"]),
    "wrong cell count": ("FIRM,,Firm\nA,FIRM\n", ["line 3", "2 cells, expected 3"]),
    "blank name": ("FIRM,,Firm\nA,FIRM,\n", ["line 3", "node_name of node 'A' is blank"]),
    "nul byte": ("FIRM,,Firm\nA,FIRM,A\x00\n", ["line 3, column node_name", "NUL"]),
    "no nodes": ("", ["no nodes"]),
}


@pytest.mark.parametrize("case", sorted(BAD_HIERARCHIES))
def test_bad_hierarchy_names_the_rows_and_changes_nothing(conn, db_url, tmp_path, case):
    api.load_hierarchy(conn, DATA / "hierarchy.csv", "STERLING")
    before = table(conn, "dim_hierarchy"), table(conn, "hierarchy_structures")
    rows, expected = BAD_HIERARCHIES[case]
    path = write(tmp_path, "bad.csv", "node_id,parent_node_id,node_name\n" + rows)
    for structure in ("STERLING", "NEW"):
        message = error_line(cli(db_url, "load", "hierarchy", path, "--structure", structure))
        for fragment in expected:
            assert fragment in message, message
        assert (table(conn, "dim_hierarchy"), table(conn, "hierarchy_structures")) == before


def test_several_hierarchy_problems_are_reported_together(conn, tmp_path):
    path = write(tmp_path, "bad.csv", "node_id,parent_node_id,node_name\nFIRM,,Firm\nA,X,A\nB,Y,B\n")
    with pytest.raises(PnlError) as info:
        api.load_hierarchy(conn, path, "S")
    assert str(info.value).splitlines() == [f"{path}: 2 problems, nothing loaded",
                                            "  line 3: parent_node_id 'X' of node 'A' is not a node of the file",
                                            "  line 4: parent_node_id 'Y' of node 'B' is not a node of the file"]


@pytest.mark.parametrize("header, message", [
    ("node_id,node_name", "line 1: missing required column parent_node_id in the header (found: node_id, node_name)"),
    ("node_id,parent_node_id,node_name,level",
     "line 1: unexpected column level; the header is node_id,parent_node_id,node_name"),
    ("", "the file is empty; expected a header line"),
])
def test_hierarchy_header_must_be_the_three_columns(conn, tmp_path, header, message):
    path = write(tmp_path, "bad.csv", header + ("\n" if header else ""))
    with pytest.raises(PnlError) as caught:
        api.load_hierarchy(conn, path, "S")
    assert str(caught.value) == f"{path}: {message}"


def test_replacing_refuses_to_orphan_a_rule(conn, db_url, sterling, tmp_path):
    conn.execute("""INSERT INTO metadata_rules (use_case_id, node_id, predicate_json) VALUES
                    (%s, 'DESK_FX', '{"conditions": [{"field": "book", "operator": "equals", "value": "FX_1"}]}')""",
                 (sterling,))
    before = table(conn, "dim_hierarchy")
    path = write(tmp_path, "h.csv", "node_id,parent_node_id,node_name\nFIRM,,Firm\nAMER,FIRM,Americas\n")
    message = error_line(cli(db_url, "load", "hierarchy", path, "--structure", "STERLING"))
    assert "node 'DESK_FX' (use case 'Project Sterling')" in message
    assert table(conn, "dim_hierarchy") == before
    # keeping the node is fine
    path = write(tmp_path, "h2.csv", "node_id,parent_node_id,node_name\nFIRM,,Firm\nDESK_FX,FIRM,FX\n")
    assert cli(db_url, "load", "hierarchy", path, "--structure", "STERLING").exit_code == 0


# --------------------------------------------------------------------------------------------------
# facts

def test_load_facts_in_the_pnl_export_layout(conn, db_url, sterling):
    result = cli(db_url, "load", "facts", DATA / "facts.csv", "--use-case", "Project Sterling", "--json")
    assert result.exit_code == 0, result.stderr
    assert "loaded 12 rows into use case 'Project Sterling'" in result.stderr
    assert "2025-12-24 ACTUAL, 2025-12-24 PRIOR" in result.stderr
    assert ("warning: 1 row has a category_code that is no node of the structure (SUSPENSE); snapshots report it "
            "under __UNMAPPED__\n") in result.stderr
    summary = json.loads(result.stdout, parse_float=Decimal)
    assert summary["rows_loaded"] == 12 and summary["use_case_id"] == str(sterling)
    assert summary["slices"] == [{"pnl_date": "2025-12-24", "scenario": "ACTUAL", "rows": 7},
                                 {"pnl_date": "2025-12-24", "scenario": "PRIOR", "rows": 5}]
    assert summary["dimensions"] == ["legal_entity", "region", "strategy", "risk_officer", "book"]
    assert summary["unmapped_rows"] == 1 and summary["unmapped_codes"] == ["SUSPENSE"]

    rows = conn.execute("""SELECT daily_amount, wtd_amount, ytd_amount, amount, attributes FROM fact_pnl_entries
                           WHERE category_code = 'BOOK_RATES_1' AND scenario = 'ACTUAL'
                           ORDER BY daily_amount""").fetchall()
    assert rows[0][:4] == (Decimal("-250.25"), Decimal("-100.00"), Decimal("-5000.75"), Decimal("-250.25"))
    assert rows[0][4] == {"legal_entity": "LE_US", "region": "AMER", "strategy": "Hedge",
                          "risk_officer": "Alice", "book": "RATES_1"}
    # empty cells are left out of attributes
    attrs = conn.execute("SELECT attributes FROM fact_pnl_entries WHERE category_code = 'DESK_FX'").fetchone()[0]
    assert attrs == {"legal_entity": "LE_UK", "region": "EMEA", "risk_officer": "Bob"}
    sums = conn.execute("""SELECT scenario, sum(daily_amount), sum(ytd_amount) FROM fact_pnl_entries
                           GROUP BY scenario ORDER BY scenario""").fetchall()
    assert sums == [("ACTUAL", Decimal("1035.04"), Decimal("168059.14")),
                    ("PRIOR", Decimal("970.00"), Decimal("166979.50"))]
    assert conn.execute("SELECT count(*) FROM fact_pnl_entries WHERE amount <> daily_amount").fetchone()[0] == 0


def test_replace_is_idempotent_and_touches_only_the_slices_in_the_file(conn, db_url, sterling, tmp_path):
    other = write(tmp_path, "other.csv", f"{HEADER}\n,2025-12-23,BOOK_FX_1,1.00,1.00,1.00,ACTUAL\n")
    assert cli(db_url, "load", "facts", other, "--use-case", sterling).exit_code == 0
    first = cli(db_url, "load", "facts", DATA / "facts.csv", "--use-case", sterling, "--replace", "--date", COB)
    assert first.exit_code == 0, first.stderr
    assert "replaced 0 slices: 0 previous rows superseded (kept for the runs that read them)\n" in first.stderr
    after_first = current_facts(conn)
    second = cli(db_url, "load", "facts", DATA / "facts.csv", "--use-case", sterling, "--replace", "--date", COB,
                 "--json")
    assert second.exit_code == 0, second.stderr
    assert "replaced 2 slices: 12 previous rows superseded (kept for the runs that read them)\n" in second.stderr
    summary = json.loads(second.stdout)
    assert (summary["slices_replaced"], summary["rows_superseded"], summary["rows_loaded"]) == (2, 12, 12)
    assert current_facts(conn) == after_first
    assert len(after_first) == 13
    assert conn.execute("SELECT count(*) FROM fact_pnl_entries").fetchone()[0] == 25  # the superseded 12 are kept
    assert conn.execute("SELECT count(*) FROM fact_pnl_entries WHERE pnl_date = '2025-12-23'").fetchone()[0] == 1


def fact_loads(conn):
    return conn.execute("SELECT load_id, source, rows FROM fact_loads ORDER BY load_id").fetchall()


def test_loading_twice_is_refused_and_changes_nothing(conn, db_url, sterling):
    assert cli(db_url, "load", "facts", DATA / "facts.csv", "--use-case", sterling).exit_code == 0
    before = table(conn, "fact_pnl_entries"), fact_loads(conn)
    (first, _, _), = before[1]
    message = error_line(cli(db_url, "load", "facts", DATA / "facts.csv", "--use-case", sterling))
    assert message == (f"pnldb: error: {DATA / 'facts.csv'}: use case 'Project Sterling' already has current facts "
                       f"for 2 slices of the file: 2025-12-24 ACTUAL (load {first}), 2025-12-24 PRIOR (load {first}); "
                       "nothing loaded. Use --replace to supersede them with this file, or --append to add it as "
                       "another load beside them")
    assert (table(conn, "fact_pnl_entries"), fact_loads(conn)) == before
    assert len(before[0]) == 12


def test_a_file_touching_one_loaded_slice_is_refused_naming_only_that_slice(conn, sterling, tmp_path):
    api.load_facts(conn, DATA / "facts.csv", sterling)
    both = write(tmp_path, "both.csv", f"{HEADER}\n,2025-12-23,BOOK_FX_1,1,1,1,ACTUAL\n"
                                       ",2025-12-24,BOOK_FX_1,1,1,1,PRIOR\n")
    before = table(conn, "fact_pnl_entries")
    with pytest.raises(PnlError) as info:
        api.load_facts(conn, both, sterling)
    assert "already has current facts for 1 slice of the file: 2025-12-24 PRIOR (load 1); nothing loaded" in str(
        info.value)
    assert table(conn, "fact_pnl_entries") == before


def test_append_adds_a_second_load_beside_the_first(conn, db_url, sterling, tmp_path):
    assert cli(db_url, "load", "facts", DATA / "facts.csv", "--use-case", sterling).exit_code == 0
    extra = write(tmp_path, "late.csv", f"{HEADER},book\n,2025-12-24,BOOK_FX_1,10.00,20.00,30.00,ACTUAL,LATE\n"
                                        ",2025-12-25,BOOK_FX_1,1.00,1.00,1.00,ACTUAL,LATE\n")
    result = cli(db_url, "load", "facts", extra, "--use-case", sterling, "--append", "--json")
    assert result.exit_code == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0].startswith("loaded 2 rows into use case 'Project Sterling' (2 slices: 2025-12-24 ACTUAL, "
                               "2025-12-25 ACTUAL) in ") and lines[0].endswith("s as load 2")
    assert lines[1:] == ["appended: 1 slice already had current facts; this load adds to them "
                         "(see `pnldb loads list`)"]
    summary = json.loads(result.stdout)
    assert {k: summary[k] for k in ("load_id", "rows_loaded", "replace", "append", "slices_replaced",
                                    "rows_superseded", "superseded_loads", "slices_added_to")} == {
        "load_id": 2, "rows_loaded": 2, "replace": False, "append": True, "slices_replaced": 0,
        "rows_superseded": 0, "superseded_loads": [], "slices_added_to": 1}
    assert fact_loads(conn) == [(1, str(DATA / "facts.csv"), 12), (2, str(extra), 2)]
    assert len(current_facts(conn)) == 14
    sums = conn.execute("SELECT sum(daily_amount) FROM fact_pnl_entries WHERE pnl_date = '2025-12-24' "
                        "AND scenario = 'ACTUAL'").fetchone()[0]
    assert sums == Decimal("1045.04")  # 1035.04 of the first load, 10.00 of the second


def test_the_same_file_with_append_is_refused_naming_the_first_load(conn, db_url, sterling):
    assert cli(db_url, "load", "facts", DATA / "facts.csv", "--use-case", sterling).exit_code == 0
    loaded_at, loaded_by = conn.execute("SELECT loaded_at, loaded_by FROM fact_loads").fetchone()
    before = table(conn, "fact_pnl_entries"), fact_loads(conn)
    message = error_line(cli(db_url, "load", "facts", DATA / "facts.csv", "--use-case", sterling, "--append"))
    assert message == (
        f"pnldb: error: {DATA / 'facts.csv'}: already loaded: its rows for 2025-12-24 ACTUAL, 2025-12-24 PRIOR are "
        f"exactly those of current load 1 (loaded {fmt.timestamp(loaded_at)} UTC by {loaded_by}, source "
        f"{quoted(str(DATA / 'facts.csv'))}); nothing loaded, not even with --append. Use --replace to supersede "
        "load 1 with this file")
    assert (table(conn, "fact_pnl_entries"), fact_loads(conn)) == before
    # the same rows in another order, under another name, are the same rows
    lines = (DATA / "facts.csv").read_text().splitlines()
    shuffled = [lines[0], *reversed(lines[1:])]
    with pytest.raises(PnlError) as info:
        api.load_facts(conn, io.BytesIO("\n".join(shuffled).encode()), sterling, append=True)
    assert "exactly those of current load 1" in str(info.value)
    assert (table(conn, "fact_pnl_entries"), fact_loads(conn)) == before


def test_append_is_refused_for_the_duplicated_slice_even_when_others_are_new(conn, sterling, tmp_path):
    first = write(tmp_path, "first.csv", f"{HEADER}\n,2025-12-24,BOOK_FX_1,1,2,3,ACTUAL\n")
    api.load_facts(conn, first, sterling)
    second = write(tmp_path, "second.csv", f"{HEADER}\n,2025-12-24,BOOK_FX_1,1,2,3,ACTUAL\n"
                                           ",2025-12-24,BOOK_FX_1,1,2,3,PRIOR\n")
    with pytest.raises(PnlError) as info:
        api.load_facts(conn, second, sterling, append=True)
    assert "its rows for 2025-12-24 ACTUAL are exactly those of current load 1 (" in str(info.value)
    assert fact_loads(conn) == [(1, str(first), 1)]


def test_replace_supersedes_and_a_snapshot_sees_only_the_new_facts(conn, db_url, sterling, tmp_path):
    api.load_facts(conn, DATA / "facts.csv", sterling)
    old_run = api.create_snapshot(conn, sterling, dt.date(2025, 12, 24))
    corrected = write(tmp_path, "corrected.csv", f"{HEADER}\n,2025-12-24,BOOK_FX_1,5.00,6.00,7.00,ACTUAL\n")
    result = cli(db_url, "load", "facts", corrected, "--use-case", sterling, "--replace", "--date", COB, "--json")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines()[1] == (
        "replaced 1 slice: 7 previous rows superseded (kept for the runs that read them)")
    summary = json.loads(result.stdout)
    assert (summary["load_id"], summary["superseded_loads"], summary["rows_superseded"]) == (2, [1], 7)
    # the old facts stay in the table, no longer current
    assert conn.execute("SELECT count(*) FROM fact_pnl_entries").fetchone()[0] == 13
    assert conn.execute("SELECT superseded_by FROM fact_load_slices WHERE load_id = 1 ORDER BY scenario").fetchall() \
        == [(2,), (None,)]
    new_run = api.create_snapshot(conn, sterling, dt.date(2025, 12, 24))
    root = api.run_root(conn, new_run["id"])
    assert (root["ACTUAL"]["daily_natural"], root["ACTUAL"]["ytd_natural"]) == (Decimal("5.00"), Decimal("7.00"))
    assert root["PRIOR"]["daily_natural"] == Decimal("970.00")  # the PRIOR slice was not in the file
    assert api.run_root(conn, old_run["id"])["ACTUAL"]["daily_natural"] == Decimal("1035.04")
    assert conn.execute("SELECT calculation_run_id = %s, load_id, scenario FROM calculation_run_inputs "
                        "ORDER BY 1, 3", (new_run["id"],)).fetchall() == [
        (False, 1, "ACTUAL"), (False, 1, "PRIOR"), (True, 2, "ACTUAL"), (True, 1, "PRIOR")]


def test_replace_and_append_together_are_a_usage_error(conn, db_url, sterling):
    result = cli(db_url, "load", "facts", DATA / "facts.csv", "--use-case", sterling, "--replace", "--append")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == ("pnldb: error: --replace and --append exclude each other: --replace supersedes the "
                             "current facts of the file's slices, --append adds the file beside them\n")
    with pytest.raises(PnlError) as info:
        api.load_facts(conn, DATA / "facts.csv", sterling, replace=True, append=True)
    assert str(info.value).startswith("replace and append exclude each other")
    assert table(conn, "fact_pnl_entries") == [] and fact_loads(conn) == []


def test_replace_leaves_other_use_cases_alone(conn, sterling):
    other = api.create_use_case(conn, "Other", "STERLING")["use_case_id"]
    api.load_facts(conn, DATA / "facts.csv", other)
    api.load_facts(conn, DATA / "facts.csv", sterling)  # the same file into another use case: no duplicate
    api.load_facts(conn, DATA / "facts.csv", sterling, replace=True)
    counts = dict(conn.execute(
        "SELECT f.use_case_id, count(*) FROM fact_pnl_entries f JOIN fact_load_slices s USING (load_id, pnl_date, "
        "scenario) WHERE s.superseded_at IS NULL GROUP BY 1"))
    assert counts == {other: 12, sterling: 12}


def test_columns_in_any_order_without_use_case_id_with_legacy_amount(conn, sterling, tmp_path):
    path = write(tmp_path, "f.csv",
                 "scenario,book,category_code,pnl_date,ytd_amount,wtd_amount,daily_amount,amount\n"
                 "ACTUAL,B1,BOOK_FX_1,2025-12-24,3.00,2.00,1.50,1.50\n"
                 "PRIOR, B2 ,BOOK_FX_1,2025-12-24,3,2,1.5,\n"
                 "ACTUAL,,BOOK_FX_2,2025-12-24,+3.000,2e1,.5,0.50\n")
    summary = api.load_facts(conn, path, "Project Sterling")
    assert summary["rows_loaded"] == 3
    rows = conn.execute("""SELECT scenario, category_code, daily_amount, wtd_amount, ytd_amount, amount, attributes
                           FROM fact_pnl_entries ORDER BY category_code, scenario""").fetchall()
    assert rows == [
        ("ACTUAL", "BOOK_FX_1", Decimal("1.50"), Decimal("2.00"), Decimal("3.00"), Decimal("1.50"), {"book": "B1"}),
        ("PRIOR", "BOOK_FX_1", Decimal("1.50"), Decimal("2.00"), Decimal("3.00"), Decimal("1.50"), {"book": "B2"}),
        ("ACTUAL", "BOOK_FX_2", Decimal("0.50"), Decimal("20.00"), Decimal("3.00"), Decimal("0.50"), {}),
    ]


def test_use_case_id_cells_may_name_the_use_case(conn, sterling, tmp_path):
    path = write(tmp_path, "f.csv", f"{HEADER}\n{sterling},2025-12-24,BOOK_FX_1,1,1,1,ACTUAL\n"
                                    f"{str(sterling).upper()},2025-12-24,BOOK_FX_1,1,1,1,ACTUAL\n"
                                    f",2025-12-24,BOOK_FX_1,1,1,1,ACTUAL\n")
    assert api.load_facts(conn, path, sterling)["rows_loaded"] == 3


def test_amounts_are_exact_at_the_limits_of_numeric_18_2(conn, sterling, tmp_path):
    path = write(tmp_path, "f.csv", f"{HEADER}\n"
                                    ",2025-12-24,BOOK_FX_1,9999999999999999.99,-9999999999999999.99,0.01,ACTUAL\n"
                                    ",2025-12-24,BOOK_FX_1,0.10,0.20,-0.30,ACTUAL\n")
    api.load_facts(conn, path, sterling)
    sums = conn.execute("SELECT sum(daily_amount), sum(wtd_amount), sum(ytd_amount) FROM fact_pnl_entries").fetchone()
    assert sums == (Decimal("10000000000000000.09"), Decimal("-9999999999999999.79"), Decimal("-0.29"))


GOOD_ROW = ",2025-12-24,BOOK_FX_1,1.00,2.00,3.00,ACTUAL,LE_UK"
BAD_FACTS = {
    "unparseable date": (",24/12/2025,BOOK_FX_1,1,2,3,ACTUAL,X", "line 3, column pnl_date", "'24/12/2025'"),
    "impossible date": (",2025-02-30,BOOK_FX_1,1,2,3,ACTUAL,X", "line 3, column pnl_date", "not a valid date"),
    "unparseable amount": (",2025-12-24,BOOK_FX_1,1,\"2,5\",3,ACTUAL,X", "line 3, column wtd_amount", "not a number"),
    "blank amount": (",2025-12-24,BOOK_FX_1,,2,3,ACTUAL,X", "line 3, column daily_amount", "empty"),
    "not a finite amount": (",2025-12-24,BOOK_FX_1,1,2,NaN,ACTUAL,X", "line 3, column ytd_amount", "not a number"),
    "three decimals": (",2025-12-24,BOOK_FX_1,1.234,2,3,ACTUAL,X", "line 3, column daily_amount",
                       "more than 2 decimal"),
    "too large": (",2025-12-24,BOOK_FX_1,1,2,10000000000000000,ACTUAL,X", "line 3, column ytd_amount", "out of range"),
    "too large negative": (",2025-12-24,BOOK_FX_1,-1e16,2,3,ACTUAL,X", "line 3, column daily_amount", "out of range"),
    "unknown scenario": (",2025-12-24,BOOK_FX_1,1,2,3,BUDGET,X", "line 3, column scenario", "'BUDGET'"),
    "blank category": (",2025-12-24, ,1,2,3,ACTUAL,X", "line 3, column category_code", "blank"),
    "too few cells": (",2025-12-24,BOOK_FX_1,1,2,3,ACTUAL", "line 3", "7 cells, expected 8"),
    "too many cells": (",2025-12-24,BOOK_FX_1,1,2,3,ACTUAL,X,Y", "line 3", "9 cells, expected 8"),
    "nul byte": (",2025-12-24,BOOK_FX_1,1,2,3,ACTUAL,LE\x00UK", "line 3, column legal_entity", "NUL"),
    "other use case": ("6f1c1a64-4a7e-4a55-9c1e-0d7f2e9d3a11,2025-12-24,BOOK_FX_1,1,2,3,ACTUAL,X",
                       "line 3, column use_case_id", "not the use case being loaded"),
    "use case not a uuid": ("Project Sterling,2025-12-24,BOOK_FX_1,1,2,3,ACTUAL,X",
                            "line 3, column use_case_id", "not a use case id"),
    "invalid utf-8": (b",2025-12-24,BOOK_FX_1,1,2,3,ACTUAL,\xff", "line 3", "not valid UTF-8"),
}


@pytest.mark.parametrize("case", sorted(BAD_FACTS))
def test_bad_fact_row_names_line_and_column_and_loads_nothing(conn, db_url, sterling, tmp_path, case):
    api.load_facts(conn, DATA / "facts.csv", sterling)
    before = table(conn, "fact_pnl_entries")
    row, where, what = BAD_FACTS[case]
    head = f"{HEADER},legal_entity\n{GOOD_ROW}\n".encode()
    path = write(tmp_path, "bad.csv", head + (row if isinstance(row, bytes) else row.encode()) + b"\n" +
                 GOOD_ROW.encode() + b"\n")
    for extra in ([], ["--replace", "--date", COB]):
        message = error_line(cli(db_url, "load", "facts", path, "--use-case", "Project Sterling", *extra))
        assert f"bad.csv: {where}" in message and what in message, message
        assert "nothing loaded" in message
        assert table(conn, "fact_pnl_entries") == before


def test_legacy_amount_is_stored_as_the_file_gives_it(conn, sterling, tmp_path):
    path = write(tmp_path, "f.csv", f"{HEADER},amount\n,2025-12-24,BOOK_FX_1,1.00,2,3,ACTUAL,1\n"
                                    f",2025-12-24,BOOK_FX_1,1.00,2,3,ACTUAL,1.01\n"
                                    f",2025-12-24,BOOK_FX_1,1.00,2,3,ACTUAL,\n")
    assert api.load_facts(conn, path, sterling)["amount_differs_rows"] == 1
    assert conn.execute("SELECT daily_amount, amount FROM fact_pnl_entries ORDER BY amount").fetchall() == [
        (Decimal("1.00"), Decimal("1.00")), (Decimal("1.00"), Decimal("1.00")), (Decimal("1.00"), Decimal("1.01"))]


def test_legacy_amount_must_still_be_an_amount(conn, sterling, tmp_path):
    path = write(tmp_path, "f.csv", f"{HEADER},amount\n,2025-12-24,BOOK_FX_1,1.00,2,3,ACTUAL,1\n"
                                    f",2025-12-24,BOOK_FX_1,1.00,2,3,ACTUAL,1.001\n")
    with pytest.raises(PnlError) as info:
        api.load_facts(conn, path, sterling)
    assert str(info.value) == f"{path}: line 3, column amount: '1.001' has more than 2 decimal places; nothing loaded"
    assert table(conn, "fact_pnl_entries") == []


@pytest.mark.parametrize("header, expected", [
    ("use_case_id,pnl_date,category_code,daily_amount,wtd_amount,scenario", "missing required column ytd_amount"),
    ("pnl_date,category_code,scenario", "missing required columns daily_amount, wtd_amount, ytd_amount"),
    (f"{HEADER},book,book", "column 'book' appears twice"),
    (f"{HEADER},,book", "column 8 of the header has no name"),
])
def test_bad_fact_header(db_url, sterling, tmp_path, header, expected):
    path = write(tmp_path, "bad.csv", header + "\n")
    message = error_line(cli(db_url, "load", "facts", path, "--use-case", sterling))
    assert "bad.csv: line 1" in message and expected in message, message


def test_many_bad_rows_are_counted_and_the_first_ones_shown(conn, sterling, tmp_path):
    rows = "".join(f",2025-12-24,BOOK_FX_1,{i}.123,1,1,ACTUAL\n" for i in range(25))
    path = write(tmp_path, "bad.csv", f"{HEADER}\n{rows}")
    with pytest.raises(PnlError) as info:
        api.load_facts(conn, path, sterling)
    assert str(info.value).splitlines() == [
        f"{path}: 25 bad rows, nothing loaded",
        *(f"  line {i + 2}, column daily_amount: '{i}.123' has more than 2 decimal places" for i in range(20)),
        "  and 5 more"]


def test_header_only_file_loads_nothing(conn, sterling, tmp_path):
    path = write(tmp_path, "f.csv", HEADER + "\n")
    summary = api.load_facts(conn, path, sterling, replace=True)
    assert summary["rows_loaded"] == 0 and summary["slices"] == [] and summary["load_id"] is None
    assert conn.execute("SELECT count(*) FROM fact_loads").fetchone()[0] == 0  # no empty load in the history


def test_unknown_use_case(db_url, sterling):
    message = error_line(cli(db_url, "load", "facts", DATA / "facts.csv", "--use-case", "Nope"))
    assert "unknown use case 'Nope'" in message and "pnldb use-case list" in message


def test_a_200k_row_generated_file_loads(conn, sterling, tmp_path):
    rng = random.Random(42)
    books = ["BOOK_RATES_1", "BOOK_RATES_2", "BOOK_FX_1", "BOOK_FX_2", "DESK_FX"]
    regions = ["AMER", "EMEA", "APAC"]
    expected = Decimal(0)
    lines = [f"{HEADER},legal_entity,region,strategy,risk_officer,book\n"]
    for i in range(200_000):
        cents = rng.randint(-10**9, 10**9)
        expected += Decimal(cents).scaleb(-2)
        amount = f"{Decimal(cents).scaleb(-2):f}"
        scenario = "ACTUAL" if i % 2 else "PRIOR"
        lines.append(f",2025-12-{1 + i % 23:02d},{books[i % 5]},{amount},{amount},{amount},{scenario},"
                     f"LE{i % 7},{regions[i % 3]},S{i % 11},RO{i % 13},B{i % 101}\n")
    path = write(tmp_path, "big.csv", "".join(lines))
    summary = api.load_facts(conn, path, sterling)
    assert summary["rows_loaded"] == 200_000 and len(summary["slices"]) == 46
    assert conn.execute("SELECT count(*), sum(daily_amount), sum(amount) FROM fact_pnl_entries").fetchone() == (
        200_000, expected, expected)
    first = conn.execute("SELECT pnl_date::text, category_code, scenario, attributes FROM fact_pnl_entries "
                         "WHERE daily_amount = %s", (Decimal(lines[1].split(",")[3]),)).fetchall()
    assert first == [("2025-12-01", "BOOK_RATES_1", "PRIOR",
                      {"legal_entity": "LE0", "region": "AMER", "strategy": "S0", "risk_officer": "RO0", "book": "B0"})]


# --------------------------------------------------------------------------------------------------
# rules

def test_load_rules_and_upsert_them(conn, db_url, sterling, tmp_path):
    result = cli(db_url, "load", "rules", DATA / "rules.json", "--use-case", "Project Sterling", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["inserted"] == 2
    rules = {r[0]: r for r in conn.execute("SELECT node_id, predicate_json, logic_en FROM metadata_rules")}
    assert set(rules) == {"DESK_RATES", "DESK_FX"}
    stored = json.loads(conn.execute("SELECT predicate_json::text FROM metadata_rules WHERE node_id = 'DESK_FX'")
                        .fetchone()[0], parse_float=Decimal)
    assert stored["conditions"][1] == {"field": "daily_amount", "operator": "greater_than",
                                       "value": Decimal("-1000000.50")}
    assert conn.execute("SELECT predicate_json #>> '{conditions,1,value}' FROM metadata_rules "
                        "WHERE node_id = 'DESK_FX'").fetchone()[0] == "-1000000.50"

    changed = write(tmp_path, "r.json", json.dumps([
        {"node_id": "DESK_RATES", "logic_en": "hedges too",
         "predicate_json": {"conditions": [{"field": "strategy", "operator": "in", "value": ["Carry", "Hedge"]}]}},
        {"node_id": "AMER",
         "predicate_json": {"conditions": [{"field": "region", "operator": "equals", "value": "AMER"}]}},
        {"node_id": "DESK_FX",
         "predicate_json": {"conditions": [{"field": "book", "operator": "equals", "value": "FX_1"}]}},
    ]))
    result = cli(db_url, "load", "rules", changed, "--use-case", sterling)
    assert result.exit_code == 0, result.stderr
    assert "loaded 3 rules" in result.stderr and "(1 new, 2 updated)" in result.stderr
    rows = {r[0]: r[1:] for r in conn.execute("SELECT node_id, logic_en, predicate_json #>> '{conditions,0,value}' "
                                              "FROM metadata_rules")}
    # a rule without logic_en keeps its text
    assert rows == {"DESK_RATES": ("hedges too", '["Carry", "Hedge"]'),
                    "DESK_FX": ("FX desk: named books, no large losses", "FX_1"),
                    "AMER": (None, "AMER")}


def test_a_misspelt_field_is_warned_about_naming_the_node_and_the_load_still_succeeds(conn, db_url, sterling,
                                                                                      tmp_path):
    api.load_facts(conn, DATA / "facts.csv", sterling)
    path = write(tmp_path, "r.json", json.dumps([
        {"node_id": "DESK_RATES", "predicate_json": {"conditions": [
            {"field": "Strategy", "operator": "equals", "value": "Carry"},
            {"field": "strategy", "operator": "not_equals", "value": "Hedge"}]}},
        {"node_id": "DESK_FX", "predicate_json": {"conditions": [
            {"field": "regoin", "operator": "equals", "value": "EMEA"},
            {"field": "category_code", "operator": "equals", "value": "BOOK_FX_1"},
            {"field": "daily_amount", "operator": "greater_than", "value": 0},
            {"field": "regoin", "operator": "not_equals", "value": "AMER"}], "conjunction": "OR"}},
        {"node_id": "EMEA", "predicate_json": {"conditions": [{"field": "book", "operator": "equals", "value": "x"}]}},
    ]))
    result = cli(db_url, "load", "rules", path, "--use-case", "Project Sterling", "--json")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines() == [
        "loaded 3 rules into use case 'Project Sterling' (3 new, 0 updated)",
        "warning: rule on node 'DESK_RATES': field 'Strategy' is on no current fact of use case 'Project Sterling'; "
        "did you mean 'strategy'? (the rule treats every fact as lacking it)",
        "warning: rule on node 'DESK_FX': field 'regoin' is on no current fact of use case 'Project Sterling' "
        "(the rule treats every fact as lacking it)",
    ]
    assert json.loads(result.stdout)["unknown_fields"] == [
        {"node_id": "DESK_RATES", "field": "Strategy", "suggestion": "strategy"},
        {"node_id": "DESK_FX", "field": "regoin", "suggestion": None}]
    assert conn.execute("SELECT count(*) FROM metadata_rules").fetchone()[0] == 3


def test_only_current_facts_count_for_the_field_check(conn, sterling, tmp_path):
    with_desk = write(tmp_path, "a.csv", f"{HEADER},desk\n,2025-12-24,BOOK_FX_1,1,1,1,ACTUAL,D1\n")
    api.load_facts(conn, with_desk, sterling)
    rules = write(tmp_path, "r.json", json.dumps([{"node_id": "DESK_FX", "predicate_json": {
        "conditions": [{"field": "desk", "operator": "equals", "value": "D1"}]}}]))
    assert api.load_rules(conn, rules, sterling)["unknown_fields"] == []
    without = write(tmp_path, "b.csv", f"{HEADER},Desk_Name\n,2025-12-24,BOOK_FX_1,1,1,1,ACTUAL,D1\n")
    api.load_facts(conn, without, sterling, replace=True)  # desk now only on superseded facts
    assert api.load_rules(conn, rules, sterling)["unknown_fields"] == [
        {"node_id": "DESK_FX", "field": "desk", "suggestion": None}]


def test_rules_loaded_before_any_fact_are_not_checked(conn, db_url, sterling):
    result = cli(db_url, "load", "rules", DATA / "rules.json", "--use-case", sterling, "--json")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == "loaded 2 rules into use case 'Project Sterling' (2 new, 0 updated)\n"
    assert json.loads(result.stdout)["unknown_fields"] == []


BAD_RULE_FILES = {
    "not json": ("[{", "not valid JSON: line 1"),
    "not a list": ('{"node_id": "A"}', "expected a JSON list of rules"),
    "not an object": ('[["A"]]', "rule 1: expected an object, got a list"),
    "no predicate": ('[{"node_id": "A"}]', "rule 1: predicate_json must be an object, got nothing"),
    "predicate not an object": ('[{"node_id": "A", "predicate_json": "x = 1"}]', "predicate_json must be an object"),
    "blank node": ('[{"node_id": " ", "predicate_json": {}}]', "rule 1: node_id must be a non-blank string"),
    "unknown key": ('[{"node_id": "A", "predicate_json": {}, "predicate": {}}]', "rule 1: unknown key predicate"),
    "logic not text": ('[{"node_id": "A", "predicate_json": {}, "logic_en": 5}]', "logic_en must be a string"),
    "same node twice": ('[{"node_id": "A", "predicate_json": {}}, {"node_id": "A", "predicate_json": {}}]',
                        "rule 2: node 'A' already has rule 1"),
}


@pytest.mark.parametrize("case", sorted(BAD_RULE_FILES))
def test_bad_rule_file_shape_loads_nothing(conn, db_url, sterling, tmp_path, case):
    api.load_rules(conn, DATA / "rules.json", sterling)
    before = table(conn, "metadata_rules")
    text, expected = BAD_RULE_FILES[case]
    message = error_line(cli(db_url, "load", "rules", write(tmp_path, "bad.json", text), "--use-case", sterling))
    assert expected in message, message
    assert table(conn, "metadata_rules") == before


def test_every_rule_the_database_rejects_is_reported_and_nothing_is_written(conn, db_url, sterling, tmp_path):
    api.load_rules(conn, DATA / "rules.json", sterling)
    before = table(conn, "metadata_rules")
    contains = {"conditions": [{"field": "book", "operator": "contains", "value": "FX"}]}
    good = {"conditions": [{"field": "book", "operator": "equals", "value": "FX_1"}]}
    path = write(tmp_path, "r.json", json.dumps([
        {"node_id": "DESK_FX", "predicate_json": contains},
        {"node_id": "AMER", "predicate_json": good},
        {"node_id": "NOT_A_NODE", "predicate_json": good},
    ]))
    result = cli(db_url, "load", "rules", path, "--use-case", sterling)
    assert result.exit_code == 1 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert lines[0] == "pnldb: error: " + f"{path}: 2 of 3 rules rejected, nothing loaded"
    # each rule named once: not "rule 1 (node 'DESK_FX'): rule on node 'DESK_FX': rule predicate ..."
    assert lines[1:] == [
        "  rule 1 (node 'DESK_FX'): predicate condition 1: unknown operator \"contains\"; "
        "use one of equals, not_equals, in, not_in, greater_than, less_than",
        "  rule 3 (node 'NOT_A_NODE'): no such node in structure STERLING of the use case",
    ]
    assert table(conn, "metadata_rules") == before


def test_a_savepoint_per_rule_keeps_collecting_after_any_database_error(conn, sterling, tmp_path):
    # Whatever the database raises (here a stand-in trigger), each rule is tried and reported.
    conn.execute("""CREATE FUNCTION refuse_emea() RETURNS trigger LANGUAGE plpgsql AS $$
                    BEGIN
                        IF NEW.node_id = 'EMEA' THEN RAISE EXCEPTION 'EMEA is frozen'; END IF;
                        RETURN NEW;
                    END $$""")
    conn.execute("CREATE TRIGGER refuse_emea BEFORE INSERT OR UPDATE ON metadata_rules "
                 "FOR EACH ROW EXECUTE FUNCTION refuse_emea()")
    good = {"conditions": [{"field": "region", "operator": "equals", "value": "EMEA"}]}
    path = write(tmp_path, "r.json",
                 json.dumps([{"node_id": n, "predicate_json": good} for n in ("AMER", "EMEA", "FIRM")]))
    with pytest.raises(PnlError) as info:
        api.load_rules(conn, path, sterling)
    assert str(info.value).splitlines()[1:] == ["  rule 2 (node 'EMEA'): EMEA is frozen"]
    assert table(conn, "metadata_rules") == []


def current_facts(conn):
    """The current facts (those of slices no load superseded), without their ids and loads."""
    return conn.execute(
        "SELECT f.use_case_id, f.pnl_date, f.scenario, f.category_code, f.daily_amount, f.wtd_amount, f.ytd_amount, "
        "f.amount, f.attributes FROM fact_pnl_entries f JOIN fact_load_slices s USING (load_id, pnl_date, scenario) "
        "WHERE s.superseded_at IS NULL ORDER BY 1, 2, 3, 4, 5, 6, 7, 8, 9::text").fetchall()
