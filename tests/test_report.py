"""`pnldb report`: the text tree, --depth, --json, the self-contained HTML page, failed runs and errors."""
from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from click.testing import CliRunner

from pnldb import report as report_mod
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


def expected() -> dict:
    """{(node, scenario, measure): adjusted} from FACTS by hand: sums over the subtree, MACRO under RATES out."""
    values = {(n, s, m): D(0) for n in TREE_ORDER for s in SCENARIOS for m in MEASURES}
    for scenario, code, *amounts, attrs in FACTS:
        node = code if code in PARENT else "__UNMAPPED__"
        chain = [node]
        while PARENT[chain[-1]] is not None:
            chain.append(PARENT[chain[-1]])
        if "RATES" in chain and attrs.get("strategy") != "FLOW":
            continue
        for n in chain:
            for m, amount in zip(MEASURES, amounts):
                values[(n, scenario, m)] += D(amount)
                values[(n, "VARIANCE", m)] += D(amount) if scenario == "ACTUAL" else -D(amount)
    return values


def money(d: Decimal) -> str:
    return f"{d:,.2f}"


def invoke(db_url, *args):
    return CliRunner().invoke(main, ["--dsn", db_url, *args])


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


# ---------------------------------------------------------------------------------------------- text

def test_text_report_prints_the_header_and_the_tree_in_order(conn, db_url, run_id):
    result = invoke(db_url, "report", str(run_id))
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert result.stderr == ""
    header = dict(re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in out.split("\n\n")[0].splitlines())
    assert header["run"].startswith(str(run_id)) and header["run"].endswith("Initial Run")
    assert header["use case"].startswith("Project Sterling")
    assert header["COB date"] == "2025-12-24" and header["status"] == "COMPLETED"
    assert header["triggered by"] == "user123" and header["rules applied"] == "1"
    assert header["duration"].endswith(" ms") and header["executed at"].endswith(" UTC")
    assert header["result rows"] == "33"
    lines = tree_lines(out)
    assert list(lines) == TREE_ORDER  # children by node_id, __UNMAPPED__ last
    for node, line in lines.items():
        assert line[3:].index(node) == 2 * DEPTH[node], line  # indented two spaces per level
    assert "* a rule sits on the node" in out and "~ plug is non-zero" in out


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
    assert "tree cut below depth 1" in out
    assert list(tree_lines(invoke(db_url, "report", str(run_id), "--depth", "0").stdout)) == ["FIRM"]
    bad = invoke(db_url, "report", str(run_id), "--depth", "-1")
    assert bad.exit_code == 2


def test_hostile_and_unicode_names_are_safe_on_a_terminal_and_stay_aligned(conn, db_url):
    structure(conn, "S", [("ROOT", None), ("TOKYO", "ROOT"), ("EVIL", "ROOT")])
    conn.execute("UPDATE dim_hierarchy SET node_name = '東京 Rates ✓' WHERE node_id = 'TOKYO'")
    conn.execute("UPDATE dim_hierarchy SET node_name = E'red\\x1b[31m bell\\x07 \\u202Eevil' WHERE node_id = 'EVIL'")
    uc = use_case(conn, "U", "S")
    facts(conn, uc, [("ACTUAL", "TOKYO", "1", "2", "3", {}), ("ACTUAL", "EVIL", "4", "5", "6", {})])
    out = invoke(db_url, "report", str(snapshot(conn, uc))).stdout
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert "東京 Rates ✓" in out
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
            assert set(row) == {f"{m}_{k}" for m in MEASURES for k in ("natural", "adjusted", "plug")} | {"is_reconciled"}
            for m in MEASURES:
                assert row[f"{m}_adjusted"] == want[(node["node_id"], s, m)]
                assert row[f"{m}_natural"] - row[f"{m}_adjusted"] == row[f"{m}_plug"]
    rates = next(n for n in data["nodes"] if n["node_id"] == "RATES")
    assert rates["ACTUAL"]["daily_plug"] == D("234567.89") and rates["PRIOR"]["daily_plug"] == D("-50.00")
    assert rates["ACTUAL"]["is_reconciled"] is False and data["nodes"][1]["ACTUAL"]["is_reconciled"] is True
    [r] = data["rules"]
    assert r["node_id"] == "RATES" and r["logic_en"] == "Rates: FLOW only"
    assert r["predicate_json"] == cond("strategy", "in", ["FLOW"]) and "strategy" in r["sql_where"]
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
        report = report_mod.fetch_report(conn, run_id)
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
        self.rows: list[dict] = []  # tree rows: {"id", "nid", "name", "cells": [text], "marks": [text]}
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
                         "marks": [], "titles": []}
            self.rows.append(self._row)
        elif self._row is not None and tag == "td" and "num" in classes:
            self._cell = [("adjusted", "")]
            self._row["titles"].append(attrs.get("title"))
        elif self._row is not None and tag == "small" and self._cell is not None:
            self._cell.append(("plug", ""))
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
    rates = next(r for r in page.rows if r["nid"] == "RATES")
    assert rates["marks"] == ["rule", "plug"]
    assert rates["cells"][0]["plug"] == "plug 234,567.89" and rates["cells"][1]["plug"] == "plug -50.00"
    assert "natural 1,234,567.79, adjusted 999,999.90, plug 234,567.89" in rates["titles"][0]
    assert "plug" not in next(r for r in page.rows if r["nid"] == "AMER")["marks"]
    assert next(r for r in page.rows if r["nid"] == "FIRM")["cells"][0]["adjusted"] == "999,016.41"
    # the run header, the rules table, the toggles
    body = "".join(page.text)
    assert "Initial Run" in body and "Project Sterling" in body and "COMPLETED" in body and "user123" in body
    assert "Rates: FLOW only" in body and "strategy" in body
    assert sum(1 for tag, attrs in page.tags if tag == "button" and "tog" in (attrs.get("class") or "")) == 6
    assert any("collapsed" in s for s in page.scripts)


def test_html_escapes_hostile_text_from_the_database(conn, db_url, tmp_path):
    evil_name = """<script>alert("name")</script> & 'quotes' "double" Zürich ₿ ✓"""
    evil_id = """"><img src=x onerror=alert(1)>"""
    structure(conn, "S", [("ROOT", None), ("DESK", "ROOT")])
    conn.execute("INSERT INTO dim_hierarchy (structure_id, node_id, parent_node_id, node_name) VALUES ('S', %s, 'DESK', %s)",
                 (evil_id, evil_name))
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
    body = "".join(page.text)
    assert "<b>Use</b> case" in body and "<i>logic</i> \"&\"" in body and "</code><script>alert('v')</script>" in body
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
    assert [r["nid"] for r in parse(target.read_text(encoding="utf-8")).rows] == ["FIRM", "AMER", "EMEA", "__UNMAPPED__"]


def test_html_to_a_path_that_cannot_be_written_is_one_line(conn, db_url, run_id, tmp_path):
    result = invoke(db_url, "report", str(run_id), "--html", str(tmp_path / "missing" / "r.html"))
    assert result.exit_code == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("pnldb: error: cannot write ") and "missing" in line


# ---------------------------------------------------------------------------------------------- failed runs, errors

@pytest.fixture
def failed_run(conn):
    structure(conn, "S", [("FIRM", None), ("BOOK", "FIRM")])
    uc = use_case(conn, "Project Sterling", "S")
    facts(conn, uc, [("ACTUAL", "BOOK", "10", "0", "0", {"book": "x"})])
    rule(conn, uc, "BOOK", cond("book", "equals", "x"))
    conn.execute("ALTER TABLE metadata_rules DISABLE TRIGGER rule_is_valid")
    conn.execute("""UPDATE metadata_rules SET predicate_json = '{"conditions": [{"field": "book", "operator": "like", "value": "x"}]}'""")
    conn.execute("ALTER TABLE metadata_rules ENABLE TRIGGER rule_is_valid")
    run = snapshot(conn, uc)
    assert conn.execute("SELECT status FROM calculation_runs WHERE id = %s", (run,)).fetchone()[0] == "FAILED"
    return run


def test_a_failed_run_reports_its_header_and_error_and_exits_zero(conn, db_url, failed_run, tmp_path):
    result = invoke(db_url, "report", str(failed_run))
    assert result.exit_code == 0, result.stderr
    assert "FAILED" in result.stdout and "unknown operator" in result.stdout
    assert re.search(r"^error\s+.*unknown operator", result.stdout, re.M)
    assert "no results: the run failed" in result.stdout
    assert tree_lines(result.stdout) == {}
    data = json.loads(invoke(db_url, "report", str(failed_run), "--json").stdout)
    assert data["nodes"] == [] and data["rules"] == [] and data["run"]["status"] == "FAILED"
    target = tmp_path / "failed.html"
    assert invoke(db_url, "report", str(failed_run), "--html", str(target)).exit_code == 0
    page = parse(target.read_text(encoding="utf-8"))
    body = "".join(page.text)
    assert page.rows == [] and "unknown operator" in body and "the run failed" in body


def test_unknown_run_is_one_line_and_exit_1(conn, db_url):
    missing = uuid.uuid4()
    result = invoke(db_url, "report", str(missing))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [f"pnldb: error: unknown run {missing}; list runs with `pnldb runs list`"]


def test_a_run_id_that_is_no_uuid_is_one_line_and_exit_1(conn, db_url):
    result = invoke(db_url, "report", "last-tuesday")
    assert result.exit_code == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("pnldb: error: invalid run id 'last-tuesday'")


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
    root = conn.execute("SELECT daily_adjusted, ytd_adjusted FROM fact_calculated_results "
                        "WHERE calculation_run_id = %s AND depth = 0 AND scenario = 'ACTUAL'", (run,)).fetchone()
    assert page.rows[0]["nid"] == "GLOBAL_MARKETS"
    assert page.rows[0]["cells"][0]["adjusted"] == money(root[0]) and page.rows[0]["cells"][6]["adjusted"] == money(root[1])


def tree_lines_any(stdout: str) -> list[str]:
    ids = []
    rows = stdout.split("\n\n")[1].splitlines()[2:]
    for line in rows:
        ids.append(line[3:].split()[0])
    return ids
