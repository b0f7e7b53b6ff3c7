"""`pnldb runs list|show|diff` and `pnldb use-case delete`: human and --json output, every error path."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest
from builders import ok
from click.testing import CliRunner

from pnldb import format as fmt
from pnldb.cli import main
from tests.builders import (
    COB,
    EARLIER,
    NO_SUCH,
    cond,
    header,
    rule,
    snapshot,
    sql_json,
    table_counts,
    trading_use_case,
)

D = Decimal
UUID_LEN = 36


@pytest.fixture
def cli(db_url):
    def invoke(*args, input=None):
        return CliRunner().invoke(main, ["--dsn", db_url, *args], input=input)
    return invoke


@pytest.fixture
def book(conn):
    """Sterling: run 'before' (no rules) and 'after' (a rule on FX_1) on COB, one run the day before;
    Other: one run on COB."""
    sterling = trading_use_case(conn)
    other = trading_use_case(conn, "Other Book")
    runs = {"before": snapshot(conn, sterling, name="before", by="user123")}
    rule(conn, sterling, "FX_1", cond("book", "equals", "a"))
    runs["after"] = snapshot(conn, sterling, name="after")
    runs["earlier"] = snapshot(conn, sterling, EARLIER, name="earlier")
    runs["other_run"] = snapshot(conn, other, name="elsewhere")
    return {"sterling": sterling, "other": other, **runs}


def one_error_line(result, status: int = 1) -> str:
    assert result.exit_code == status, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("pnldb: error: ")
    assert result.stdout == ""
    return lines[0]


# --- formatting helpers -------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, shown", [
    (D("1234567.89"), "1,234,567.89"), (D("-1234"), "-1,234.00"), (D("0"), "0.00"), (D("-0.00"), "0.00"),
    (D("0.005"), "0.01"), (D("-0.004"), "0.00"), (D("12345678901234567890123456789012345.67"),
                                                   "12,345,678,901,234,567,890,123,456,789,012,345.67"),
    (None, "-"), (7, "7.00"),
])
def test_money_has_thousands_separators_and_two_decimals(value, shown):
    assert fmt.money(value) == shown


@pytest.mark.parametrize("ms, shown", [(0, "0 ms"), (999, "999 ms"), (1000, "1.00 s"), (1250, "1.25 s"),
                                       (1234567, "1,234.57 s"), (None, "-")])
def test_durations_in_ms_or_s(ms, shown):
    assert fmt.duration(ms) == shown


def test_table_aligns_columns_left_or_right():
    assert fmt.table(["NAME", "AMOUNT"], [["a", "1.00"], ["longer", "-1,234.00"], ["c", None]], align="lr") == [
        "NAME       AMOUNT",
        "a            1.00",
        "longer  -1,234.00",
        "c               -",
    ]


def test_table_can_rule_its_header_off():
    assert fmt.table(["N", "AMOUNT"], [["a", "1.00"]], align="lr", rule=True) == [
        "N  AMOUNT",
        "-  ------",
        "a    1.00",
    ]


def test_key_values_align_keys_and_values():
    assert fmt.key_values([("rules", "1"), ("calculation runs", "1,234")], indent="  ", align="r") == [
        "  rules                 1",
        "  calculation runs  1,234",
    ]
    assert fmt.key_values([("id", "x"), ("use case", None)]) == ["id        x", "use case  -"]


def test_timestamps_in_utc():
    assert fmt.timestamp("2025-12-24T09:00:01.123456+00:00") == "2025-12-24 09:00:01"
    assert fmt.timestamp("2025-12-24T10:00:01+01:00") == "2025-12-24 09:00:01"


def test_json_text_keeps_numbers_exact():
    assert json.loads(fmt.json_text('{"a": 12345678901234567890.10, "b": [1, "2025-12-24"]}'),
                      parse_float=D) == {"a": D("12345678901234567890.10"), "b": [1, "2025-12-24"]}
    assert "12345678901234567890.10" in fmt.json_text('{"a": 12345678901234567890.10}')


# --- runs list ----------------------------------------------------------------------------------------------

def test_runs_list_is_a_table_newest_first(cli, conn, book):
    lines = ok(cli("runs", "list")).splitlines()
    assert lines[0].split() == ["RUN", "ID", "COB", "DATE", "USE", "CASE", "RUN", "NAME", "STATUS", "CLOSE",
                                "EXECUTED", "(UTC)", "DURATION", "BY"]
    body = lines[1:-1]
    runs = [header(conn, book[k]) for k in ("other_run", "earlier", "after", "before")]
    assert [line.split() for line in body] == [
        [str(h["id"]), h["pnl_date"].isoformat(), *use_case.split(), h["run_name"], "COMPLETED",
         *fmt.timestamp(h["executed_at"].isoformat()).split(), *fmt.duration(h["calculation_duration_ms"]).split(),
         h["triggered_by"]]
        for h, use_case in zip(runs, ["Other Book", "Project Sterling", "Project Sterling", "Project Sterling"])]
    assert body[3].endswith("user123")
    assert lines[-1] == "4 of 4 run(s)"
    # columns line up: COB DATE starts, DURATION ends (right-aligned) and BY starts where the header says
    date_at, by_at = lines[0].index("COB DATE"), lines[0].index("  BY") + 2
    assert [line[date_at:date_at + 10] for line in body] == ["2025-12-24", "2025-12-23", "2025-12-24", "2025-12-24"]
    for line, h in zip(body, runs):
        assert line[:by_at].endswith(fmt.duration(h["calculation_duration_ms"]) + "  ")
        assert line[by_at:] == h["triggered_by"]


@pytest.mark.parametrize("args, expected", [
    (["--date", "2025-12-23"], ["earlier"]),
    (["--use-case", "Other Book"], ["other_run"]),
    (["--use-case", "Project Sterling", "--date", "2025-12-24"], ["after", "before"]),
])
def test_runs_list_filters(cli, book, args, expected):
    lines = ok(cli("runs", "list", *args)).splitlines()
    assert [line[:UUID_LEN] for line in lines[1:-1]] == [str(book[k]) for k in expected]


def test_runs_list_by_use_case_id_and_limit(cli, book):
    lines = ok(cli("runs", "list", "--use-case", str(book["sterling"]), "--limit", "1")).splitlines()
    assert [line[:UUID_LEN] for line in lines[1:-1]] == [str(book["earlier"])]
    assert lines[-1] == "1 of 3 run(s) (newest first; --limit 3 to see all)"


def test_runs_list_json_is_exactly_list_runs(cli, conn, book):
    out = ok(cli("runs", "list", "--json", "--date", "2025-12-24", "--use-case", "Project Sterling", "--limit", "1"))
    expected = sql_json(conn, "SELECT list_runs(%s, %s, 1)::text", (COB, book["sterling"]))
    assert json.loads(out, parse_float=D) == expected
    assert json.loads(out)["total"] == 2


def test_runs_list_with_no_runs(cli, conn):
    assert ok(cli("runs", "list")) == "no runs\n"
    assert json.loads(ok(cli("runs", "list", "--json"))) == {
        "runs": [], "total": 0, "filters": {"pnl_date": None, "use_case_id": None}}


@pytest.mark.parametrize("args, status, message", [
    (["--use-case", "Nope"], 1, "pnldb: error: unknown use case 'Nope'"),
    (["--use-case", NO_SUCH], 1, f"pnldb: error: unknown use case '{NO_SUCH}'"),
    (["--date", "2025-13-01"], 2, "'2025-13-01' is not a valid date: month must be in 1..12"),
    (["--date", "24/12/2025"], 2, "'24/12/2025' is not a date written YYYY-MM-DD"),
    (["--limit", "0"], 2, "Invalid value for '--limit'"),
    (["--limit", "many"], 2, "Invalid value for '--limit'"),
    (["--bogus"], 2, "No such option"),
])
def test_runs_list_errors_are_one_line(cli, book, args, status, message):
    assert message in one_error_line(cli("runs", "list", *args), status)


# --- runs show ----------------------------------------------------------------------------------------------

def test_runs_show_is_one_run_with_its_results_count_in_the_words_of_the_report(cli, conn, book):
    out = ok(cli("runs", "show", str(book["after"])))
    executed_at, duration = conn.execute(
        "SELECT to_char(executed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), (get_run(id) ->> 'duration_ms')::int "
        "FROM calculation_runs WHERE id = %s", (book["after"],)).fetchone()
    assert out.splitlines() == [
        f"run            {book['after']}  after",
        f"use case       Project Sterling  ({book['sterling']})",
        "COB date       2025-12-24",
        "currency       USD (every value)",  # contract §8
        "status         COMPLETED",
        f"triggered by   {conn.execute('SELECT session_user').fetchone()[0]}",
        f"executed at    {executed_at} UTC",
        f"duration       {duration:,} ms",
        "rules applied  1",
        "result rows    30",
    ]
    report_labels = [line[:14].strip() for line in ok(cli("report", str(book["after"]))).splitlines()[:10]]
    assert [line[:13].strip() for line in out.splitlines()] == report_labels


def test_runs_show_json_is_exactly_get_run(cli, conn, book):
    out = ok(cli("runs", "show", "--json", str(book["before"])))
    assert json.loads(out, parse_float=D) == sql_json(conn, "SELECT get_run(%s)::text", (book["before"],))


def test_runs_show_errors_are_one_line(cli, book):
    line = one_error_line(cli("runs", "show", NO_SUCH))
    assert line.startswith(f"pnldb: error: unknown run {NO_SUCH}")
    assert "'xyz' is not a valid UUID" in one_error_line(cli("runs", "show", "xyz"), 2)
    assert "Missing argument 'RUN_ID'" in one_error_line(cli("runs", "show"), 2)


# --- runs diff ----------------------------------------------------------------------------------------------

def test_runs_diff_prints_a_header_and_a_money_table(cli, book):
    lines = ok(cli("runs", "diff", str(book["before"]), str(book["after"]))).splitlines()
    assert lines[0] == f"run A  before (2025-12-24, {book['before']})"
    assert lines[1] == f"run B  after (2025-12-24, {book['after']})"
    assert lines[2] == "use case Project Sterling; adjusted values; difference = B - A; shown where |difference| > 0"
    assert lines[3] == ""
    assert lines[4].split() == ["NODE", "SCENARIO", "MEASURE", "A", "B", "DIFFERENCE"]
    assert lines[5].split() == ["FIRM", "ACTUAL", "daily", "1,000,097.25", "1,000,089.75", "-7.50"]
    assert lines[-1] == "36 difference(s)"
    assert {line.split()[0] for line in lines[5:-1]} == {"FIRM", "EMEA", "FX", "FX_1"}
    assert len({len(line) for line in lines[4:-1]}) == 1  # right-aligned numbers: every row as wide


def test_runs_diff_tolerance_and_nothing_to_report(cli, book):
    assert ok(cli("runs", "diff", str(book["before"]), str(book["after"]), "--tolerance", "5")).splitlines()[-1] == \
        "12 difference(s)"
    out = ok(cli("runs", "diff", str(book["after"]), str(book["after"])))
    assert out.splitlines()[-1] == "no differences"


def test_runs_diff_json_is_the_compare_runs_rows(cli, conn, book):
    out = ok(cli("runs", "diff", "--json", "--tolerance", "5.00", str(book["before"]), str(book["after"])))
    got = json.loads(out, parse_float=D)
    cur = conn.execute("SELECT * FROM compare_runs(%s, %s, 5.00)", (book["before"], book["after"]))
    names = [c.name for c in cur.description]
    assert got == [dict(zip(names, row)) for row in cur.fetchall()]
    assert got[0] == {"node_id": "FIRM", "scenario": "ACTUAL", "measure": "daily", "value_a": D("1000097.25"),
                      "value_b": D("1000089.75"), "difference": D("-7.50")}
    assert '"value_a": 1000097.25' in out  # exact digits, no float rounding
    assert json.loads(ok(cli("runs", "diff", "--json", str(book["after"]), str(book["after"])))) == []


def test_runs_diff_of_different_dates_says_so(cli, book):
    result = cli("runs", "diff", str(book["earlier"]), str(book["after"]))
    lines = ok(result).splitlines()
    assert lines[2] == "note: comparing runs of different dates: 2025-12-23 vs 2025-12-24"
    assert result.stderr == ""
    as_json = cli("runs", "diff", "--json", str(book["earlier"]), str(book["after"]))
    assert as_json.stderr == "pnldb: note: comparing runs of different dates: 2025-12-23 vs 2025-12-24\n"
    assert json.loads(ok(as_json))[0]["node_id"] == "FIRM"


@pytest.mark.parametrize("which, extra, status, message", [
    (("before", "other_run"), [], 1, "belong to different use cases"),
    (("before", "after"), ["--tolerance", "-1"], 1, "tolerance must be zero or positive, got -1"),
    (("before", "after"), ["--tolerance", "lots"], 2, "'lots' is not a number"),
    (("before", "after"), ["--tolerance", "NaN"], 2, "'NaN' is not a finite number"),
    (("before", None), [], 1, f"unknown run {NO_SUCH}"),
    ((None, None), [], 1, f"unknown run {NO_SUCH}"),
    (("before", "bad"), [], 2, "Invalid value for 'RUN_B': 'bad' is not a valid UUID"),
])
def test_runs_diff_errors_are_one_line(cli, book, which, extra, status, message):
    ids = [str(book[w]) if w in book else (w if w == "bad" else NO_SUCH) for w in which]
    assert message in one_error_line(cli("runs", "diff", *ids, *extra), status)


# --- every table the CLI prints ----------------------------------------------------------------------------

def test_every_table_the_cli_prints_has_its_header_in_capitals(cli, book):
    headers = {
        "runs list": ok(cli("runs", "list")).splitlines()[0],
        "runs diff": ok(cli("runs", "diff", str(book["before"]), str(book["after"]))).splitlines()[4],
        "use-case list": ok(cli("use-case", "list")).splitlines()[0],
        "snapshot": ok(cli("snapshot", "--use-case", "Other Book", "--date", "2025-12-24")).splitlines()[4],
    }
    assert {k: v.split() for k, v in headers.items()} == {
        "runs list": ["RUN", "ID", "COB", "DATE", "USE", "CASE", "RUN", "NAME", "STATUS", "CLOSE", "EXECUTED",
                      "(UTC)", "DURATION", "BY"],
        "runs diff": ["NODE", "SCENARIO", "MEASURE", "A", "B", "DIFFERENCE"],
        "use-case list": ["USE", "CASE", "ID", "NAME", "STRUCTURE", "STATUS", "FACTS", "RULES", "RUNS"],
        "snapshot": ["ROOT", "(ADJUSTED)", "ACTUAL", "PRIOR", "VARIANCE"],
    }


def test_snapshot_names_the_date_as_the_report_does(cli, book):
    lines = ok(cli("snapshot", "--use-case", "Other Book", "--date", "2025-12-24", "--name", "again")).splitlines()
    assert lines[2] == "COB date   2025-12-24"


# --- use-case delete ----------------------------------------------------------------------------------------

def test_use_case_delete_dry_run_shows_the_counts_and_deletes_nothing(cli, conn, book):
    before = table_counts(conn)
    result = cli("use-case", "delete", "Project Sterling", "--dry-run")
    lines = ok(result).splitlines()
    assert lines[0] == f"would delete use case 'Project Sterling' ({book['sterling']}):"
    assert [line.split() for line in lines[1:]] == [
        ["rules", "1"], ["legacy", "runs", "0"], ["calculation", "runs", "3"], ["facts", "10"],
        ["total", "items", "14"], ["results", "90"]]
    assert result.stderr == "dry run: nothing deleted\n"
    as_json = ok(cli("use-case", "delete", str(book["sterling"]), "--dry-run", "--json"))
    assert json.loads(as_json) == {
        "deleted_use_case": str(book["sterling"]), "rules_purged": 1, "legacy_runs_purged": 0,
        "calculation_runs_purged": 3, "facts_purged": 10, "total_items_deleted": 14, "results_purged": 90,
        "message": "Use case 'Project Sterling' and all related data would be deleted (dry run: nothing deleted)"}
    assert table_counts(conn) == before
    real = ok(cli("use-case", "delete", str(book["sterling"]), "--yes", "--json"))
    assert list(json.loads(as_json)) == list(json.loads(real))  # the same keys, in the same order
    assert {k: v for k, v in json.loads(real).items() if k != "message"} == {
        k: v for k, v in json.loads(as_json).items() if k != "message"}


def test_use_case_delete_without_a_terminal_needs_yes(cli, conn, book):
    before = table_counts(conn)
    line = one_error_line(cli("use-case", "delete", "Project Sterling"))
    assert "stdin is not a terminal; pass --yes" in line
    assert table_counts(conn) == before


def test_use_case_delete_yes_prints_the_summary(cli, conn, book):
    lines = ok(cli("use-case", "delete", "Project Sterling", "--yes")).splitlines()
    assert lines[0] == f"Use case 'Project Sterling' and all related data deleted ({book['sterling']}):"
    assert [line.split() for line in lines[1:]] == [
        ["rules", "1"], ["legacy", "runs", "0"], ["calculation", "runs", "3"], ["facts", "10"],
        ["total", "items", "14"], ["results", "90"]]
    assert conn.execute("SELECT name FROM use_cases").fetchall() == [("Other Book",)]


def test_use_case_delete_json_is_exactly_delete_use_case(cli, conn, book):
    out = ok(cli("use-case", "delete", str(book["other"]), "--yes", "--json"))
    assert json.loads(out) == {
        "deleted_use_case": str(book["other"]), "rules_purged": 0, "legacy_runs_purged": 0,
        "calculation_runs_purged": 1, "facts_purged": 10, "total_items_deleted": 11, "results_purged": 30,
        "message": "Use case 'Other Book' and all related data deleted"}


@pytest.mark.parametrize("answer, deleted", [("y\n", True), ("n\n", False), ("\n", False)])
def test_use_case_delete_asks_on_a_terminal(cli, conn, book, monkeypatch, answer, deleted):
    monkeypatch.setattr("pnldb.cli.common.stdin_is_a_terminal", lambda: True)
    result = cli("use-case", "delete", "Project Sterling", input=answer)
    assert "Delete use case 'Project Sterling' and all of this? [y/N]" in result.stderr
    assert "  calculation runs   3\n" in result.stderr
    remaining = {r[0] for r in conn.execute("SELECT name FROM use_cases")}
    if deleted:
        assert ok(result).startswith("Use case 'Project Sterling' and all related data deleted")
        assert remaining == {"Other Book"}
    else:
        assert result.exit_code == 1 and result.stdout == ""
        assert result.stderr.splitlines()[-1] == "pnldb: error: not confirmed: nothing deleted"
        assert remaining == {"Project Sterling", "Other Book"}


@pytest.mark.parametrize("args, status, message", [
    (["Nope", "--yes"], 1, "pnldb: error: unknown use case 'Nope'"),
    ([NO_SUCH, "--yes"], 1, f"pnldb: error: unknown use case '{NO_SUCH}'"),
    (["Nope", "--dry-run"], 1, "pnldb: error: unknown use case 'Nope'"),
    ([], 2, "Missing argument 'ID_OR_NAME'"),
])
def test_use_case_delete_errors_are_one_line(cli, conn, book, args, status, message):
    before = table_counts(conn)
    assert message in one_error_line(cli("use-case", "delete", *args), status)
    assert table_counts(conn) == before
