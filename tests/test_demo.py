"""`pnldb demo` end to end: the runs it lists, the report's totals against the facts it loaded, the diff."""
import csv
import datetime as dt
from decimal import Decimal
from importlib import resources

import psycopg
from click.testing import CliRunner

from pnldb import reference
from pnldb.cli import main


def _sample_actual_daily_total(date: str) -> Decimal:
    with resources.as_file(resources.files("pnldb") / "data" / "facts.csv") as path, open(path, newline="") as f:
        return sum((Decimal(row["daily_amount"]) for row in csv.DictReader(f)
                    if row["pnl_date"] == date and row["scenario"] == "ACTUAL"), Decimal(0))


def test_demo_lists_both_runs_reports_the_loaded_totals_and_a_non_empty_diff(empty_db_url):
    result = CliRunner().invoke(main, ["--dsn", empty_db_url, "demo"])
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    runs_section = out.split("Report of")[0]
    assert "Initial Run" in runs_section and "Adjusted v2" in runs_section and "2 of 2 run(s)" in runs_section

    with psycopg.connect(empty_db_url) as conn:
        run_id, natural, adjusted = conn.execute(
            """SELECT r.id, x.daily_natural, x.daily_adjusted FROM pnl.calculation_runs r
               JOIN pnl.fact_calculated_results x ON x.calculation_run_id = r.id
               WHERE r.run_name = 'Adjusted v2' AND x.depth = 0 AND x.scenario = 'ACTUAL'""").fetchone()
        assert conn.execute("SELECT count(*) FROM pnl.calculation_runs WHERE status = 'COMPLETED'").fetchone()[0] == 2
        use_case_id = conn.execute("SELECT use_case_id FROM pnl.use_cases").fetchone()[0]
        translated = {(r["node_id"], r["scenario"]): r for r in reference.snapshot_from_database(
            conn, use_case_id, dt.date(2025, 12, 24))}[("GLOBAL_MARKETS", "ACTUAL")]
        differences = conn.execute(
            """SELECT count(*) FROM pnl.compare_runs(
                   (SELECT id FROM pnl.calculation_runs WHERE run_name = 'Initial Run'),
                   (SELECT id FROM pnl.calculation_runs WHERE run_name = 'Adjusted v2'))""").fetchone()[0]
    assert natural == translated["daily_natural"]  # the facts in USD, the London and Frankfurt books translated
    assert abs(natural - _sample_actual_daily_total("2025-12-24")) > 1000  # GBP and EUR are not added at face value
    root_line = next(line for line in out.split("Report of")[1].splitlines() if "GLOBAL_MARKETS" in line)
    assert f"{adjusted:,.2f}" in root_line.split()
    assert str(run_id) in out

    diff = out.split("What changed from 'Initial Run' to 'Adjusted v2'")[1].split("Close status of")[0]
    assert "EMEA_RATES" in diff and "GLOBAL_MARKETS" in diff
    assert differences > 0
    assert diff.strip().splitlines()[-1] == f"{differences:,} difference(s)"
    assert "APAC" not in diff  # only EMEA_RATES' rule changed: nothing outside EMEA moves
    close = out.split("Close status of 'Global Markets (demo)'")[1]
    assert "2025-12-24  SIGNED_OFF" in close and str(run_id) in close


def test_a_second_demo_on_the_same_database_refuses_and_changes_nothing(empty_db_url):
    assert CliRunner().invoke(main, ["--dsn", empty_db_url, "demo"]).exit_code == 0
    with psycopg.connect(empty_db_url) as conn:
        runs_before = conn.execute("SELECT id, status FROM pnl.calculation_runs ORDER BY id").fetchall()
    result = CliRunner().invoke(main, ["--dsn", empty_db_url, "demo"])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == (
        "pnldb: error: not running the demo: it would replace what schema pnl of this database already has: "
        "use case 'Global Markets (demo)' (5,256 facts, 5 rules, 2 runs) and structure GLOBAL_MARKETS "
        "(69 nodes; use cases on it: 'Global Markets (demo)'); nothing changed. If they are a previous demo's, "
        "remove them (pnldb close reopen --use-case \"Global Markets (demo)\" --date 2025-12-24 --reason \"remove "
        "the demo\", then pnldb use-case delete \"Global Markets (demo)\" --yes, then in psql DELETE FROM "
        "pnl.hierarchy_structures WHERE structure_id = 'GLOBAL_MARKETS'); or run the demo elsewhere: on another "
        "database, in another schema (pnldb --dsn URL --schema pnl_demo demo), or on a throw-away server "
        "(pnldb demo with no --dsn and no PNLDB_DSN)\n")
    with psycopg.connect(empty_db_url) as conn:
        assert conn.execute("SELECT id, status FROM pnl.calculation_runs ORDER BY id").fetchall() == runs_before


def test_the_removal_the_refusal_names_lets_the_demo_run_again(empty_db_url):
    assert CliRunner().invoke(main, ["--dsn", empty_db_url, "demo"]).exit_code == 0
    # its signed-off date is reopened first: delete_use_case refuses a use case in the close (contract §7)
    reopened = CliRunner().invoke(main, ["--dsn", empty_db_url, "close", "reopen", "--use-case",
                                         "Global Markets (demo)", "--date", "2025-12-24", "--reason", "remove it"])
    assert reopened.exit_code == 0, reopened.stderr
    deleted = CliRunner().invoke(main, ["--dsn", empty_db_url, "use-case", "delete", "Global Markets (demo)", "--yes"])
    assert deleted.exit_code == 0, deleted.stderr
    with psycopg.connect(empty_db_url) as conn:
        conn.execute("DELETE FROM pnl.hierarchy_structures WHERE structure_id = 'GLOBAL_MARKETS'")
    again = CliRunner().invoke(main, ["--dsn", empty_db_url, "demo"])
    assert again.exit_code == 0, again.stderr
