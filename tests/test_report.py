"""`pnldb report`: the text tree, --depth, --json, the self-contained HTML page, failed runs and errors."""
from __future__ import annotations

import datetime as dt
import importlib
import json
import os
import re
import subprocess
import sys
import uuid
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from click.testing import CliRunner

from pnldb import report as report_mod
from pnldb.api import fetch_report
from pnldb.cli import main
from tests.builders import cond, facts, load_sample, read_hierarchy, rule, snapshot, structure, use_case

D = Decimal
MEASURES = ("daily", "wtd", "ytd")
SCENARIOS = ("ACTUAL", "PRIOR", "VARIANCE")
TREE = [
    ("FIRM", None),
    ("EMEA", "FIRM"), ("RATES", "EMEA"), ("RATES_1", "RATES"), ("RATES_2", "RATES"), ("FX", "EMEA"), ("FX_1", "FX"),
    ("AMER", "FIRM"), ("EQ", "AMER"), ("EQ_1", "EQ"),
]
LEGEND = ("* a rule sits on the node    ~ plug is non-zero (adjusted differs from natural in ACTUAL or PRIOR)    "
          "values are adjusted")
TREE_ORDER = ["FIRM", "AMER", "EQ", "EQ_1", "EMEA", "FX", "FX_1", "RATES", "RATES_1", "RATES_2", "__UNMAPPED__"]
DEPTH = {"FIRM": 0, "AMER": 1, "EMEA": 1, "__UNMAPPED__": 1, "EQ": 2, "FX": 2, "RATES": 2,
         "EQ_1": 3, "FX_1": 3, "RATES_1": 3, "RATES_2": 3}
# (scenario, category_code, daily, wtd, ytd, attributes); the rule on RATES keeps strategy FLOW only
FACTS = [
    ("ACTUAL", "RATES_1", "1000000.00", "2000000.00", "30000000.00", {"strategy": "FLOW"}),
    ("ACTUAL", "RATES_1", "234567.89", "1.00", "2.00", {"strategy": "MACRO"}),
    ("ACTUAL", "RATES_2", "-0.10", "-0.20", "-0.30", {"strategy": "FLOW"}),
    ("ACTUAL", "FX_1", "10.01", "20.02", "30.03", {}),
    ("ACTUAL", "EQ_1", "-1000.50", "5.00", "6.00", {"strategy": "MACRO"}),
    ("ACTUAL", "NO_SUCH_BOOK", "7.00", "7.00", "7.00", {}),
    ("PRIOR", "RATES_1", "900000.00", "1900000.00", "29000000.00", {"strategy": "FLOW"}),
    ("PRIOR", "RATES_1", "-50.00", "-50.00", "-50.00", {"strategy": "MACRO"}),
    ("PRIOR", "EQ_1", "500.00", "500.00", "500.00", {}),
]
PARENT = dict(TREE) | {"__UNMAPPED__": "FIRM"}


def expected(natural: bool = False) -> dict:
    """{(node, scenario, measure): adjusted} from FACTS by hand: sums over the subtree, MACRO under RATES out
    (kept with `natural`: the values before the rules)."""
    values = {(n, s, m): D(0) for n in TREE_ORDER for s in SCENARIOS for m in MEASURES}
    for scenario, code, *amounts, attrs in FACTS:
        node = code if code in PARENT else "__UNMAPPED__"
        chain = [node]
        while PARENT[chain[-1]] is not None:
            chain.append(PARENT[chain[-1]])
        if not natural and "RATES" in chain and attrs.get("strategy") != "FLOW":
            continue
        for n in chain:
            for m, amount in zip(MEASURES, amounts):
                values[(n, scenario, m)] += D(amount)
                values[(n, "VARIANCE", m)] += D(amount) if scenario == "ACTUAL" else -D(amount)
    return values


def money(d: Decimal) -> str:
    return f"{d:,.2f}"


def invoke(db_url, *args, columns: int | None = None):
    """The CLI as in a pipe (no terminal), COLUMNS set only when `columns` is given."""
    return CliRunner(env={"COLUMNS": None if columns is None else str(columns)}).invoke(main, ["--dsn", db_url, *args])


@pytest.fixture
def run_id(conn):
    structure(conn, "TRADING", TREE)
    uc = use_case(conn, "Project Sterling", "TRADING")
    facts(conn, uc, FACTS)
    rule(conn, uc, "RATES", cond("strategy", "in", ["FLOW"]), "Rates: FLOW only")
    return snapshot(conn, uc, name="Initial Run", by="user123")


def tree_lines(stdout: str) -> dict[str, str]:
    """{node_id: line} of the tree part of the text report."""
    lines = {}
    for line in stdout.splitlines():
        m = re.match(r"^[ *~]{3}\s*(\S+)", line)
        if m and m.group(1) in PARENT:
            lines[m.group(1)] = line
    return lines


def text_header(stdout: str) -> dict[str, str]:
    """{label: value} of the header of the text report (label and value are two or more blanks apart)."""
    return dict(re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in stdout.split("\n\n")[0].splitlines())


def expected_header(conn, run_id) -> dict[str, str]:
    """The header of the report of the `run_id` fixture's run, from the database."""
    use_case_id, executed_at, duration_ms = conn.execute(
        "SELECT use_case_id, executed_at, calculation_duration_ms FROM calculation_runs WHERE id = %s",
        (run_id,)).fetchone()
    return {"run": f"{run_id}  Initial Run", "use case": f"Project Sterling  ({use_case_id})",
            "COB date": "2025-12-24", "currency": "USD (every value)", "status": "COMPLETED", "triggered by": "user123",
            "executed at": executed_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
            "duration": f"{duration_ms:,} ms", "rules applied": "1", "result rows": "33"}


# ---------------------------------------------------------------------------------------------- text

def test_text_report_prints_the_header_and_the_tree_in_order(conn, db_url, run_id):
    result = invoke(db_url, "report", str(run_id))
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert result.stderr == ""
    assert text_header(out) == expected_header(conn, run_id)
    lines = tree_lines(out)
    assert list(lines) == TREE_ORDER  # children by node_id, __UNMAPPED__ last
    for node, line in lines.items():
        assert line[3:].index(node) == 2 * DEPTH[node], line  # indented two spaces per level
    assert out.splitlines()[-1] == LEGEND


def test_text_values_are_the_adjusted_amounts_exactly_formatted(conn, db_url, run_id):
    out = invoke(db_url, "report", str(run_id)).stdout
    want = expected()
    for node, line in tree_lines(out).items():
        numbers = line.split()[-9:]
        assert numbers == [money(want[(node, s, m)]) for m in MEASURES for s in SCENARIOS], (node, line)
    firm = tree_lines(out)["FIRM"].split()[-9:]
    # root ties out to the included facts: 1,000,000.00 - 0.10 + 10.01 - 1,000.50 + 7.00
    assert firm[:3] == ["999,016.41", "900,500.00", "98,516.41"]
    assert firm[6] == "30,000,042.73"  # ytd: 30,000,000.00 - 0.30 + 30.03 + 6.00 + 7.00


def test_markers_show_rules_and_plugs(conn, db_url, run_id):
    lines = tree_lines(invoke(db_url, "report", str(run_id)).stdout)
    marks = {node: line[:2] for node, line in lines.items()}
    assert marks["RATES"] == "*~"
    assert marks["RATES_1"] == " ~"  # the MACRO fact is cut in both scenarios
    assert marks["FIRM"] == " ~" and marks["EMEA"] == " ~"
    for node in ("AMER", "EQ", "EQ_1", "FX", "FX_1", "RATES_2", "__UNMAPPED__"):
        assert marks[node] == "  ", node


def test_columns_are_aligned_and_fit_160_columns(conn, db_url, run_id):
    out = invoke(db_url, "report", str(run_id)).stdout
    lines = list(tree_lines(out).values())
    assert len({len(line) for line in lines}) == 1  # every value right-aligned to the same edge
    assert all(len(line) <= 160 for line in out.splitlines())
    all_lines = out.splitlines()
    columns = next(i for i, line in enumerate(all_lines) if line.split()[:1] == ["node"])
    assert re.findall(r"[a-z]+", all_lines[columns - 1]) == ["daily", "wtd", "ytd"]  # group headers
    assert all_lines[columns].split()[1:] == ["actual", "prior", "variance"] * 3


def test_depth_cuts_the_tree(conn, db_url, run_id):
    out = invoke(db_url, "report", str(run_id), "--depth", "1").stdout
    assert list(tree_lines(out)) == ["FIRM", "AMER", "EMEA", "__UNMAPPED__"]
    assert out.splitlines()[-1] == LEGEND + "    tree cut below depth 1"
    assert list(tree_lines(invoke(db_url, "report", str(run_id), "--depth", "0").stdout)) == ["FIRM"]
    bad = invoke(db_url, "report", str(run_id), "--depth", "-1")
    assert bad.exit_code == 2


FIGURE = re.compile(r"-?\d{1,3}(?:,\d{3})*\.\d\d")


def width_rows(out: str, nodes: list[str]) -> dict[str, list[str]]:
    """{node_id: its figures, in order, over every block} of a text report; checks on each tree row that every
    figure stands whole with two or more blanks before it."""
    figures: dict[str, list[str]] = {n: [] for n in nodes}
    for line in out.split("\n\n", 1)[1].splitlines():
        m = re.match(r"^[ *~]{3}\s*(\S+)", line)
        if not m or m.group(1) not in figures:
            continue
        found = list(FIGURE.finditer(line))
        assert found, line
        for figure in found:
            assert line[figure.start() - 2:figure.start()] == "  ", line  # two or more blanks before it
            assert figure.end() == len(line) or line[figure.end()] == " ", line  # and nothing glued after
        figures[m.group(1)].extend(f.group() for f in found)
    return figures


@pytest.mark.parametrize("columns", [80, 100, 160])
def test_text_fits_the_width_in_columns_with_whole_figures(conn, db_url, run_id, columns):
    result = invoke(db_url, "report", str(run_id), columns=columns)
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert max(report_mod.display_width(line) for line in out.splitlines()) <= columns
    want = expected()
    assert width_rows(out, TREE_ORDER) == {n: [money(want[(n, s, m)]) for m in MEASURES for s in SCENARIOS]
                                           for n in TREE_ORDER}
    measures = [re.findall(r"- ([a-z]+) -", line) for line in out.splitlines() if re.search(r"-- [a-z]+ --", line)]
    assert measures == {80: [["daily"], ["wtd"], ["ytd"]], 100: [["daily", "wtd"], ["ytd"]],
                        160: [["daily", "wtd", "ytd"]]}[columns]  # side by side while they fit
    assert text_header(out) == expected_header(conn, run_id)
    assert LEGEND.split("    ")[0] in out and "plug is non-zero" in out


@pytest.mark.parametrize("columns", [80, 100, 160])
def test_the_sample_text_fits_the_width_names_cut_not_figures(conn, db_url, columns):
    run = snapshot(conn, load_sample(conn), dt.date(2025, 12, 24), name="Adjusted v1", by="demo")
    out = invoke(db_url, "report", str(run), columns=columns).stdout
    lines = out.splitlines()
    assert max(report_mod.display_width(line) for line in lines) <= columns
    rows = conn.execute("SELECT node_id, scenario, daily_adjusted, wtd_adjusted, ytd_adjusted "
                        "FROM fact_calculated_results WHERE calculation_run_id = %s", (run,)).fetchall()
    values = {(node, scenario): amounts for node, scenario, *amounts in rows}
    nodes = [r["node_id"] for r in read_hierarchy()] + ["__UNMAPPED__"]
    assert width_rows(out, nodes) == {n: [money(values[(n, s)][i]) for i in range(3) for s in SCENARIOS]
                                      for n in nodes}
    labels = [line[:re.search(r"\s+-?\d", line).start()] for line in lines
              if re.match(r"^[ *~]{3}\s*(EMEA|CHI_CM_AGS) ", line)]
    assert labels == {  # a name cut to what the block leaves it, or left out when under 12 columns would show
        80: [" ~       CHI_CM_AGS  Chicago Commo…", "*~   EMEA  Europe, Middle East & A…",
             " ~       CHI_CM_AGS  Chicago Comm…", "*~   EMEA  Europe, Middle East & …",
             " ~       CHI_CM_AGS", "*~   EMEA  Europe, Middle East…"],
        100: [" ~       CHI_CM_AGS  Chicago Commodities Agriculturals", "*~   EMEA  Europe, Middle East & Africa"] * 2
        + [" ~       CHI_CM_AGS  Chicago Commodities Agricultu…", "*~   EMEA  Europe, Middle East & Africa"],
        160: [" ~       CHI_CM_AGS", "*~   EMEA  Europe, Mid…"]}[columns]
    legend = lines[lines.index("", len(lines) - 6):]
    assert all(report_mod.display_width(line) <= columns for line in legend)


def test_too_narrow_for_the_node_ids_cuts_them_not_the_figures(conn, db_url, run_id):
    out = invoke(db_url, "report", str(run_id), columns=56).stdout
    lines = out.splitlines()
    assert max(report_mod.display_width(line) for line in lines) <= 56
    tree = out.split("\n\n", 1)[1].rsplit("\n\n", 1)[0]
    blocks = [block.splitlines()[2:] for block in tree.split("\n\n")]
    want = expected()
    assert len(blocks) == 3
    for m, rows in zip(MEASURES, blocks):
        assert [FIGURE.findall(row) for row in rows] == [[money(want[(n, s, m)]) for s in SCENARIOS]
                                                         for n in TREE_ORDER]
        assert [row[:3] for row in rows] == [" ~ ", "   ", "   ", "   ", " ~ ", "   ", "   ", "*~ ", " ~ ", "   ",
                                             "   "]
    # each block's label column is what its figures leave: the ytd one cuts the id, keeping mark and indent
    labels = [block[7][:FIGURE.search(block[7]).start()].rstrip() for block in blocks]
    assert labels == ["*~     RATES", "*~     RATES", "*~     RAT…"]


def test_long_header_values_wrap_under_their_column(conn, db_url):
    structure(conn, "S", [("ROOT", None)])
    uc = use_case(conn, " ".join(["word"] * 30), "S")
    facts(conn, uc, [("ACTUAL", "ROOT", "1", "2", "3", {})])
    run = snapshot(conn, uc, name="x" * 120)
    out = invoke(db_url, "report", str(run), columns=80).stdout
    header = out.split("\n\n")[0].splitlines()
    assert max(len(line) for line in header) <= 80
    # words wrap into column 16; a word longer than the line starts a line of its own and is split
    assert header[:6] == [f"run            {run}", " " * 15 + "x" * 65, " " * 15 + "x" * 55,
                          "use case       " + " ".join(["word"] * 13), " " * 15 + " ".join(["word"] * 13),
                          " " * 15 + " ".join(["word"] * 4) + f"  ({uc})"]
    assert header[6] == "COB date       2025-12-24"


def test_the_width_is_columns_else_the_terminal_else_160(monkeypatch):
    report_cli = importlib.import_module("pnldb.cli.report")  # the module; pnldb.cli.report is the command

    class Stdout:
        def __init__(self, tty):
            self.tty = tty

        def isatty(self):
            return self.tty

    monkeypatch.setattr(report_cli.shutil, "get_terminal_size", lambda fallback: os.terminal_size((117, 40)))
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.setattr(report_cli.sys, "stdout", Stdout(True))
    assert report_cli.text_width() == 117
    monkeypatch.setattr(report_cli.sys, "stdout", Stdout(False))
    assert report_cli.text_width() == 160  # a pipe or a file: today's width
    monkeypatch.setenv("COLUMNS", "90")
    assert report_cli.text_width() == 90
    monkeypatch.setenv("COLUMNS", "wide")
    assert report_cli.text_width() == 160


def test_hostile_and_unicode_names_are_safe_on_a_terminal_and_stay_aligned(conn, db_url):
    structure(conn, "S", [("ROOT", None), ("TOKYO", "ROOT"), ("EVIL", "ROOT")])
    conn.execute("UPDATE dim_hierarchy SET node_name = '東京 Rates ✓' WHERE node_id = 'TOKYO'")
    conn.execute("UPDATE dim_hierarchy SET node_name = E'red\\x1b[31m bell\\x07 \\u202Eevil' WHERE node_id = 'EVIL'")
    uc = use_case(conn, "U", "S")
    facts(conn, uc, [("ACTUAL", "TOKYO", "1", "2", "3", {}), ("ACTUAL", "EVIL", "4", "5", "6", {})])
    out = invoke(db_url, "report", str(snapshot(conn, uc))).stdout
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert "東京 Rates ✓" in out
    assert "red\ufffd[31m bell\ufffd \ufffdevil" in out  # each control or format character shown as U+FFFD
    rows = [line for line in out.splitlines() if re.match(r"^[ *~]{3}\s*(ROOT|TOKYO|EVIL)\b", line)]
    assert len(rows) == 3
    assert len({report_mod.display_width(line) for line in rows}) == 1


# ---------------------------------------------------------------------------------------------- JSON

def test_json_is_the_run_the_nodes_and_the_rules_with_exact_money(conn, db_url, run_id):
    result = invoke(db_url, "report", str(run_id), "--json")
    assert result.exit_code == 0, result.stderr
    assert '"daily_natural": 1233584.30' in result.stdout  # exact digits, trailing zero kept
    data = json.loads(result.stdout, parse_float=Decimal)
    assert set(data) == {"run", "nodes", "rules"}
    assert data["run"] == json.loads(conn.execute("SELECT get_run(%s)::text", (run_id,)).fetchone()[0],
                                     parse_float=Decimal)
    assert [n["node_id"] for n in data["nodes"]] == TREE_ORDER
    want = expected()
    for node in data["nodes"]:
        assert node["depth"] == DEPTH[node["node_id"]] and node["parent_node_id"] == PARENT[node["node_id"]]
        assert node["is_override"] == (node["node_id"] == "RATES")
        for s in SCENARIOS:
            row = node[s]
            kinds = ("natural", "adjusted", "plug")
            assert set(row) == {f"{m}_{k}" for m in MEASURES for k in kinds} | {"is_reconciled"}
            for m in MEASURES:
                assert row[f"{m}_adjusted"] == want[(node["node_id"], s, m)]
                assert row[f"{m}_natural"] - row[f"{m}_adjusted"] == row[f"{m}_plug"]
    rates = next(n for n in data["nodes"] if n["node_id"] == "RATES")
    assert rates["ACTUAL"]["daily_plug"] == D("234567.89") and rates["PRIOR"]["daily_plug"] == D("-50.00")
    assert rates["ACTUAL"]["is_reconciled"] is False and data["nodes"][1]["ACTUAL"]["is_reconciled"] is True
    [r] = data["rules"]
    assert r["node_id"] == "RATES" and r["logic_en"] == "Rates: FLOW only"
    assert r["predicate_json"] == cond("strategy", "in", ["FLOW"])
    assert r["sql_where"] == conn.execute("SELECT sql_where FROM calculation_run_rules WHERE calculation_run_id = %s",
                                          (run_id,)).fetchone()[0]
    assert set(r) == {"rule_id", "node_id", "predicate_json", "sql_where", "logic_en"}


def test_json_with_depth_cuts_the_nodes(conn, db_url, run_id):
    data = json.loads(invoke(db_url, "report", str(run_id), "--json", "--depth", "2").stdout)
    assert [n["node_id"] for n in data["nodes"]] == [n for n in TREE_ORDER if DEPTH[n] <= 2]
    assert len(data["rules"]) == 1


def test_a_few_queries_whatever_the_size(conn, run_id):
    calls = []
    original = conn.execute

    def counting(*args, **kwargs):
        calls.append(args[0])
        return original(*args, **kwargs)

    conn.execute = counting
    try:
        report = fetch_report(conn, run_id)
    finally:
        del conn.execute
    assert len(report["nodes"]) == len(TREE_ORDER)
    assert len([c for c in calls if not str(c).startswith("SET TRANSACTION")]) == 3  # header, results, rules


# ---------------------------------------------------------------------------------------------- HTML

class Page(HTMLParser):
    """What the checks need: tags with attributes, text per tree row, style and script text."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        # tree rows: {"id", "nid", "name", "cells": [{"adjusted", "nat", "plug": text}], "marks": [text],
        # "hidden": bool, "classes": [text], "toggle": aria-expanded of its toggle or None}
        self.rows: list[dict] = []
        self.styles: list[str] = []
        self.scripts: list[str] = []
        self._stack: list[tuple[str, dict]] = []
        self._row = None
        self._cell = None
        self._raw = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        classes = (attrs.get("class") or "").split()
        if tag in ("style", "script"):
            self._raw = (tag, [])
        if tag == "tr" and "data-d" in attrs:
            self._row = {"id": attrs.get("id"), "depth": int(attrs["data-d"]), "nid": "", "name": "", "cells": [],
                         "marks": [], "titles": [], "hidden": "hidden" in attrs, "classes": classes, "toggle": None}
            self.rows.append(self._row)
        elif self._row is not None and tag == "td" and "num" in classes:
            self._cell = [("adjusted", "")]
            self._row["titles"].append(attrs.get("title"))
        elif self._row is not None and tag == "small" and self._cell is not None:
            self._cell.append((classes[0], ""))
        elif self._row is not None and tag == "button" and "tog" in classes:
            self._row["toggle"] = attrs.get("aria-expanded")
        elif self._row is not None and tag == "span" and classes:
            self._cell = None
            self._span = classes[-1] if classes[0] == "mark" else classes[0]
            if classes[0] == "mark":
                self._row["marks"].append(classes[1])
        if tag not in ("br", "meta", "img", "input", "link"):
            self._stack.append((tag, attrs))

    def handle_endtag(self, tag):
        if self._stack and self._stack[-1][0] == tag:
            self._stack.pop()
        if tag in ("style", "script") and self._raw:
            (self.styles if tag == "style" else self.scripts).append("".join(self._raw[1]))
            self._raw = None
        if tag == "td" and self._row is not None and self._cell is not None:
            self._row["cells"].append(dict(self._cell))
            self._cell = None
        if tag == "span":
            self._span = None
        if tag == "tr":
            self._row = None

    def handle_data(self, data):
        if self._raw:
            self._raw[1].append(data)
            return
        self.text.append(data)
        if self._row is not None:
            if self._cell is not None:
                kind, text = self._cell[-1]
                self._cell[-1] = (kind, text + data)
            elif getattr(self, "_span", None) == "nid":
                self._row["nid"] += data
            elif getattr(self, "_span", None) == "nname":
                self._row["name"] += data


def parse(text: str) -> Page:
    page = Page()
    page.feed(text)
    page.close()
    return page


class Elements(HTMLParser):
    """Every element as (tag, attrs, its text and its descendants', the classes of the tables it sits in)."""

    VOID = frozenset({"br", "meta", "img", "input", "link", "hr"})

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, dict, str, list]] = []
        self._open: list[tuple[str, dict, list[str]]] = []

    def handle_starttag(self, tag, attrs):
        if tag not in self.VOID:
            self._open.append((tag, dict(attrs), []))

    def handle_endtag(self, tag):
        if self._open and self._open[-1][0] == tag:
            _, attrs, chunks = self._open.pop()
            tables = [a.get("class") for t, a, _ in self._open if t == "table"]
            self.found.append((tag, attrs, "".join(chunks), tables))

    def handle_data(self, data):
        for _, _, chunks in self._open:
            chunks.append(data)


def elements(text: str) -> list[tuple[str, dict, str, list]]:
    parser = Elements()
    parser.feed(text)
    parser.close()
    return parser.found


def html_header(text: str) -> dict[str, str]:
    found = elements(text)
    return dict(zip([t for tag, _, t, _ in found if tag == "dt"], [t for tag, _, t, _ in found if tag == "dd"]))


def html_rules(text: str) -> list[list[str]]:
    """The text of each cell of each row of the rules table."""
    cells = [t for tag, _, t, tables in elements(text) if tag == "td" and "rules" in tables]
    return [cells[i:i + 5] for i in range(0, len(cells), 5)]


def html_notes(text: str) -> list[str]:
    """The texts that stand in for an empty tree or rules table."""
    return [t for tag, attrs, t, _ in elements(text) if tag == "p" and attrs.get("class") == "empty"]


def assert_self_contained(text: str, page: Page) -> None:
    for tag, attrs in page.tags:
        for name, value in attrs.items():
            if name in ("src", "href", "action", "data", "poster", "srcset", "background") and value:
                assert not re.match(r"^\s*(https?:|//|[a-z]+:)", value, re.I), (tag, name, value)
        assert tag not in ("link", "iframe", "img", "object", "embed"), tag
        if tag == "script":
            assert "src" not in attrs
    for css in page.styles:
        assert "@import" not in css and "url(" not in css
    assert "http://" not in text and "https://" not in text and "//fonts" not in text


def test_html_is_a_self_contained_collapsible_tree_with_correct_totals(conn, db_url, run_id, tmp_path):
    target = tmp_path / "report.html"
    result = invoke(db_url, "report", str(run_id), "--html", str(target))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [f"wrote {target}"]
    text = target.read_text(encoding="utf-8")
    page = parse(text)
    assert_self_contained(text, page)
    assert [r["nid"] for r in page.rows] == TREE_ORDER
    assert [r["depth"] for r in page.rows] == [DEPTH[n] for n in TREE_ORDER]
    want = expected()
    for row in page.rows:
        node = row["nid"]
        assert [c["adjusted"] for c in row["cells"]] == [money(want[(node, s, m)]) for m in MEASURES for s in SCENARIOS]
    natural = expected(natural=True)
    for row in page.rows:  # the natural value of every cell is in the page, beneath the adjusted one
        node = row["nid"]
        assert [c["nat"] for c in row["cells"]] == [money(natural[(node, s, m)]) for m in MEASURES for s in SCENARIOS]
        assert not row["hidden"] and "collapsed" not in row["classes"]
    rates = next(r for r in page.rows if r["nid"] == "RATES")
    assert rates["marks"] == ["rule", "plug"]
    assert rates["cells"][0] == {"adjusted": "999,999.90", "nat": "1,234,567.79", "plug": "234,567.89"}
    assert rates["cells"][1] == {"adjusted": "900,000.00", "nat": "899,950.00", "plug": "-50.00"}
    assert "plug" not in next(r for r in page.rows if r["nid"] == "FX_1")["cells"][0]  # a zero plug is not shown
    page_text = " ".join(page.text)
    assert "1,234,567.79" in page_text and "899,950.00" in page_text
    assert "natural 1,234,567.79, adjusted 999,999.90, plug 234,567.89" in rates["titles"][0]
    assert "plug" not in next(r for r in page.rows if r["nid"] == "AMER")["marks"]
    assert next(r for r in page.rows if r["nid"] == "FIRM")["cells"][0]["adjusted"] == "999,016.41"
    # the run header, the rules table, the toggles
    assert html_header(text) == expected_header(conn, run_id)
    rule_id, sql_where = conn.execute("SELECT rule_id, sql_where FROM calculation_run_rules "
                                      "WHERE calculation_run_id = %s", (run_id,)).fetchone()
    [[number, node, logic, where, predicate]] = html_rules(text)
    assert [number, node, logic, where] == [str(rule_id), "RATESName of RATES", "Rates: FLOW only", sql_where]
    assert json.loads(predicate) == cond("strategy", "in", ["FLOW"])
    links = [a["href"] for tag, a, t, _ in elements(text) if tag == "a"]
    plugged = [r["id"] for r in page.rows if "plug" in r["marks"]]
    # each plug mark links to its node's plugs by rule, which link back to the node and to the rule's node
    assert [h for h in links if h.startswith("#p")] == [f"#p{i[1:]}" for i in plugged]
    assert all(f'id="p{i[1:]}"' in text for i in plugged)
    assert {h for h in links if h.startswith("#n")} == {f"#{i}" for i in plugged} | {f"#{rates['id']}"}
    assert '<td class="num">234,567.89</td>' in text  # RATES' ACTUAL daily plug, all excluded by its rule
    assert sum(1 for tag, attrs in page.tags if tag == "button" and "tog" in (attrs.get("class") or "")) == 6
    assert any("collapsed" in s for s in page.scripts)
    [detail] = [attrs for tag, attrs in page.tags if tag == "input"]
    assert detail["type"] == "checkbox" and "checked" in detail  # natural and plug show unless switched off


def test_html_escapes_hostile_text_from_the_database(conn, db_url, tmp_path):
    evil_name = """<script>alert("name")</script> & 'quotes' "double" Zürich ₿ ✓"""
    evil_id = """"><img src=x onerror=alert(1)>"""
    structure(conn, "S", [("ROOT", None), ("DESK", "ROOT")])
    conn.execute("INSERT INTO dim_hierarchy (structure_id, node_id, parent_node_id, node_name) "
                 "VALUES ('S', %s, 'DESK', %s)", (evil_id, evil_name))
    uc = use_case(conn, "<b>Use</b> case", "S")
    facts(conn, uc, [("ACTUAL", evil_id, "1.00", "2.00", "3.00", {"book": "x"}),
                     ("ACTUAL", evil_id, "5.00", "5.00", "5.00", {"book": "y"})])
    rule(conn, uc, evil_id, cond("book", "equals", "</code><script>alert('v')</script>"), "<i>logic</i> \"&\"")
    run = snapshot(conn, uc, name="<script>run</script>", by="o'brien")
    target = tmp_path / "evil.html"
    result = invoke(db_url, "report", str(run), "--html", str(target))
    assert result.exit_code == 0, result.stderr
    text = target.read_text(encoding="utf-8")
    page = parse(text)
    assert_self_contained(text, page)
    assert "<script>alert" not in text and "<img" not in text and "<b>Use" not in text and "<i>logic" not in text
    assert "<script>run" not in text
    assert [tag for tag, _ in page.tags].count("script") == 1  # only the page's own
    assert not [t for t, _ in page.tags if t in ("img", "b", "i")]
    evil_row = next(r for r in page.rows if r["depth"] == 2)
    assert evil_row["nid"] == evil_id and evil_row["name"] == evil_name  # shown as text, intact
    header = html_header(text)
    assert header["use case"] == f"<b>Use</b> case  ({uc})" and header["run"] == f"{run}  <script>run</script>"
    assert header["triggered by"] == "o'brien"
    [[_, node, logic, _, predicate]] = html_rules(text)
    assert node == evil_id + evil_name and logic == "<i>logic</i> \"&\""
    assert json.loads(predicate) == cond("book", "equals", "</code><script>alert('v')</script>")
    rule_marks = [a for t, a in page.tags if t == "span" and "rule" in (a.get("class") or "")]
    assert any(a.get("title") == "<i>logic</i> \"&\"" for a in rule_marks)
    # and in the text report
    out = invoke(db_url, "report", str(run)).stdout
    assert evil_id in out


def test_html_and_json_together(conn, db_url, run_id, tmp_path):
    target = tmp_path / "r.html"
    result = invoke(db_url, "report", str(run_id), "--html", str(target), "--json", "--depth", "1")
    assert result.exit_code == 0, result.stderr
    assert [n["node_id"] for n in json.loads(result.stdout)["nodes"]] == ["FIRM", "AMER", "EMEA", "__UNMAPPED__"]
    html_rows = parse(target.read_text(encoding="utf-8")).rows
    assert [r["nid"] for r in html_rows] == TREE_ORDER  # the page has every node; deeper ones start collapsed
    assert [r["nid"] for r in html_rows if not r["hidden"]] == ["FIRM", "AMER", "EMEA", "__UNMAPPED__"]


@pytest.mark.parametrize("depth", [0, 1, 2, 3])
def test_html_depth_keeps_every_node_and_starts_deeper_levels_collapsed(conn, db_url, run_id, tmp_path, depth):
    target = tmp_path / "r.html"
    assert invoke(db_url, "report", str(run_id), "--html", str(target), "--depth", str(depth)).exit_code == 0
    page = parse(target.read_text(encoding="utf-8"))
    assert [r["nid"] for r in page.rows] == TREE_ORDER
    want = expected()
    for row in page.rows:
        node = row["nid"]
        assert [c["adjusted"] for c in row["cells"]] == [money(want[(node, s, m)]) for m in MEASURES for s in SCENARIOS]
        assert row["hidden"] == (DEPTH[node] > depth), node
        has_children = node in PARENT.values()
        assert ("collapsed" in row["classes"]) == (has_children and DEPTH[node] >= depth), node
        assert row["toggle"] == (None if not has_children else "false" if DEPTH[node] >= depth else "true"), node


def test_html_to_a_path_that_cannot_be_written_is_one_line(conn, db_url, run_id, tmp_path):
    result = invoke(db_url, "report", str(run_id), "--html", str(tmp_path / "missing" / "r.html"))
    assert result.exit_code == 1
    assert result.stderr == f"pnldb: error: cannot write {tmp_path / 'missing' / 'r.html'}: No such file or directory\n"


# ---------------------------------------------------------------------------------------------- failed runs, errors

def test_a_reader_gets_the_page_without_the_plugs_by_rule_and_is_told_why(conn, login, run_id):
    from pnldb.api import fetch_report
    from pnldb.report import render_html

    reader = login("reader")
    report = fetch_report(reader, run_id, plugs=True)
    assert report["plug_rules"] == []
    assert report["plugs_note"] == "the plugs by rule read the run's facts, which only operators may"
    text = render_html(report)
    assert "Not shown: the plugs by rule read the run&#39;s facts, which only operators may." in text
    assert len(fetch_report(login("operator"), run_id, plugs=True)["plug_rules"]) > 0


@pytest.fixture
def failed_run(conn):
    structure(conn, "S", [("FIRM", None), ("BOOK", "FIRM")])
    uc = use_case(conn, "Project Sterling", "S")
    facts(conn, uc, [("ACTUAL", "BOOK", "10", "0", "0", {"book": "x"})])
    rule(conn, uc, "BOOK", cond("book", "equals", "x"))
    conn.execute("ALTER TABLE metadata_rules DISABLE TRIGGER rule_is_valid")
    conn.execute("""UPDATE metadata_rules
                    SET predicate_json = '{"conditions": [{"field": "book", "operator": "like", "value": "x"}]}'""")
    conn.execute("ALTER TABLE metadata_rules ENABLE TRIGGER rule_is_valid")
    run = snapshot(conn, uc)
    assert conn.execute("SELECT status FROM calculation_runs WHERE id = %s", (run,)).fetchone()[0] == "FAILED"
    return run


def test_a_failed_run_reports_its_header_and_error_and_exits_zero(conn, db_url, failed_run, tmp_path):
    result = invoke(db_url, "report", str(failed_run))
    assert result.exit_code == 0, result.stderr
    error = conn.execute("SELECT error_message FROM calculation_runs WHERE id = %s", (failed_run,)).fetchone()[0]
    assert "unknown operator" in error
    header = text_header(result.stdout)
    assert header["status"] == "FAILED" and header["error"] == error and header["result rows"] == "0"
    assert list(header)[-1] == "error"
    assert result.stdout.splitlines()[-1] == "no results: the run failed"
    assert tree_lines(result.stdout) == {}
    data = json.loads(invoke(db_url, "report", str(failed_run), "--json").stdout)
    assert data["nodes"] == [] and data["rules"] == [] and data["run"]["status"] == "FAILED"
    target = tmp_path / "failed.html"
    assert invoke(db_url, "report", str(failed_run), "--html", str(target)).exit_code == 0
    text = target.read_text(encoding="utf-8")
    assert parse(text).rows == []
    assert html_header(text)["error"] == error and html_header(text)["status"] == "FAILED"
    assert html_notes(text) == ["No results: the run failed.", "No rules were applied."]


def test_unknown_run_is_one_line_and_exit_1(conn, db_url):
    missing = uuid.uuid4()
    result = invoke(db_url, "report", str(missing))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == f"pnldb: error: unknown run {missing}; list runs with `pnldb runs list`\n"


def test_a_run_id_that_is_no_uuid_is_one_line_and_exit_1(conn, db_url):
    result = invoke(db_url, "report", "last-tuesday")
    assert result.exit_code == 1
    assert result.stderr == ("pnldb: error: invalid run id 'last-tuesday': expected a UUID; list runs with "
                             "`pnldb runs list`\n")


# ---------------------------------------------------------------------------------------------- the sample

def test_the_sample_reports_in_160_columns_and_html(conn, db_url, tmp_path):
    use_case_id = load_sample(conn)
    run = snapshot(conn, use_case_id, dt.date(2025, 12, 24), name="Adjusted v1", by="demo")
    out = invoke(db_url, "report", str(run)).stdout
    assert max(report_mod.display_width(line) for line in out.splitlines()) <= 160
    nodes = [r["node_id"] for r in read_hierarchy()] + ["__UNMAPPED__"]
    assert set(tree_lines_any(out)) == set(nodes)
    target = tmp_path / "sample.html"
    assert invoke(db_url, "report", str(run), "--html", str(target)).exit_code == 0
    text = target.read_text(encoding="utf-8")
    page = parse(text)
    assert_self_contained(text, page)
    assert sorted(r["nid"] for r in page.rows) == sorted(nodes)
    root = conn.execute("SELECT daily_adjusted, ytd_adjusted, daily_natural, ytd_natural FROM fact_calculated_results "
                        "WHERE calculation_run_id = %s AND depth = 0 AND scenario = 'ACTUAL'", (run,)).fetchone()
    assert page.rows[0]["nid"] == "GLOBAL_MARKETS"
    assert page.rows[0]["cells"][0]["adjusted"] == money(root[0])
    assert page.rows[0]["cells"][6]["adjusted"] == money(root[1])
    assert page.rows[0]["cells"][0]["nat"] == money(root[2]) and page.rows[0]["cells"][6]["nat"] == money(root[3])
    naturals = conn.execute("SELECT node_id, scenario, daily_natural, wtd_natural, ytd_natural "
                            "FROM fact_calculated_results WHERE calculation_run_id = %s", (run,)).fetchall()
    by_node = {(node, scenario): amounts for node, scenario, *amounts in naturals}
    for row in page.rows:
        want = [money(by_node[(row["nid"], s)][i]) for i in range(3) for s in SCENARIOS]
        assert [c["nat"] for c in row["cells"]] == want, row["nid"]


def tree_lines_any(stdout: str) -> list[str]:
    ids = []
    rows = stdout.split("\n\n")[1].splitlines()[2:]
    for line in rows:
        ids.append(line[3:].split()[0])
    return ids


def test_the_report_needs_neither_the_cli_nor_a_page_outside_the_package():
    """pnldb.report is library code: it imports no CLI, and its page is a template file of the pnldb package."""
    code = ("import sys, pnldb.report; from pnldb.report.html import _ENV; _ENV.get_template('report.html.j2'); "
            "print('pnldb.cli' in sys.modules)")
    imported = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert imported.stdout.strip() == "False", imported.stderr
