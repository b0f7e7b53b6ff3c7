"""Loaders: hierarchy and facts from CSV, rules from JSON; through the CLI and the Python functions."""
from __future__ import annotations

import json
import random
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from pnldb import loaders
from pnldb.cli import main
from pnldb.errors import PnlError

DATA = Path(__file__).parent / "data"
HEADER = "use_case_id,pnl_date,category_code,daily_amount,wtd_amount,ytd_amount,scenario"


def cli(db_url, *args):
    return CliRunner().invoke(main, ["--dsn", db_url, *map(str, args)])


def write(tmp_path, name, text) -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def error_line(result) -> str:
    """The CLI's error: exit 1, one line on stderr, nothing on stdout."""
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("pnldb: error: ")
    return lines[0]


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
    uc = loaders.create_use_case(conn, "Project Sterling", "STERLING")
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
    loaders.load_hierarchy(conn, DATA / "hierarchy.csv", "STERLING", name="Sterling reporting")
    smaller = write(tmp_path, "h.csv", "node_id,parent_node_id,node_name\nFIRM,,Firm\nEMEA,FIRM,Europe\n")
    summary = loaders.load_hierarchy(conn, smaller, "STERLING")
    assert summary["replaced"] is True and summary["nodes_removed"] == 9
    assert table(conn, "dim_hierarchy") == [("STERLING", "EMEA", "FIRM", "Europe"), ("STERLING", "FIRM", None, "Firm")]
    assert table(conn, "hierarchy_structures") == [("STERLING", "Sterling reporting")]


def test_a_new_structure_is_named_after_its_id(conn):
    loaders.load_hierarchy(conn, DATA / "hierarchy.csv", "ATLAS")
    assert table(conn, "hierarchy_structures") == [("ATLAS", "ATLAS")]


def test_hierarchy_cells_are_trimmed_and_a_bom_is_ignored(conn, tmp_path):
    path = write(tmp_path, "h.csv", b"\xef\xbb\xbfnode_id,parent_node_id,node_name\r\n"
                                    b" FIRM ,  ,Firm\r\nEMEA, FIRM,Europe \r\n\r\n")
    loaders.load_hierarchy(conn, path, "S")
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
    loaders.load_hierarchy(conn, DATA / "hierarchy.csv", "STERLING")
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
    with pytest.raises(PnlError, match=r"2 problems, nothing loaded: line 3: .*'X'.*; line 4: .*'Y'"):
        loaders.load_hierarchy(conn, path, "S")


@pytest.mark.parametrize("header", ["node_id,node_name", "node_id,parent_node_id,node_name,level", ""])
def test_hierarchy_header_must_be_the_three_columns(conn, tmp_path, header):
    path = write(tmp_path, "bad.csv", header + ("\n" if header else ""))
    with pytest.raises(PnlError, match="line 1|empty"):
        loaders.load_hierarchy(conn, path, "S")


def test_replacing_refuses_to_orphan_a_rule(conn, db_url, sterling, tmp_path):
    conn.execute("""INSERT INTO metadata_rules (use_case_id, node_id, predicate_json)
                    VALUES (%s, 'DESK_FX', '{"conditions": [{"field": "book", "operator": "equals", "value": "FX_1"}]}')""",
                 (sterling,))
    before = table(conn, "dim_hierarchy")
    path = write(tmp_path, "h.csv", "node_id,parent_node_id,node_name\nFIRM,,Firm\nAMER,FIRM,Americas\n")
    message = error_line(cli(db_url, "load", "hierarchy", path, "--structure", "STERLING"))
    assert "node 'DESK_FX' (use case 'Project Sterling')" in message
    assert table(conn, "dim_hierarchy") == before
    # keeping the node is fine
    path = write(tmp_path, "h2.csv", "node_id,parent_node_id,node_name\nFIRM,,Firm\nDESK_FX,FIRM,FX\n")
    assert cli(db_url, "load", "hierarchy", path, "--structure", "STERLING").exit_code == 0
