"""`pnldb close ...`, `pnldb report --use-case --date` and the marks of `pnldb runs list` (contract §7)."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from pnldb.cli import main
from tests.builders import COB, facts, snapshot, trading_use_case


@pytest.fixture
def cli(db_url):
    def run(*args):
        return CliRunner().invoke(main, ["--dsn", db_url, *args])
    return run


@pytest.fixture
def uc(conn):
    return trading_use_case(conn)


def test_a_refused_submit_prints_each_failing_check_on_its_own_line_and_exits_1(cli, conn, uc):
    facts(conn, uc, [("ACTUAL", "NO_SUCH_BOOK", "-12.34", "0", "0", {})])
    run = snapshot(conn, uc)
    conn.execute("INSERT INTO metadata_rules (use_case_id, node_id, predicate_json) VALUES "
                 """(%s, 'FX', '{"conditions": [{"field": "book", "operator": "equals", "value": "a"}]}')""", (uc,))
    result = cli("close", "submit", str(run))
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.splitlines() == [
        f"pnldb: error: submit_run: run {run} refused: 2 check(s) fail",
        "  NO_UNMAPPED (ERROR): unmapped facts of -12.34 (ACTUAL daily), above the tolerance 0: "
        "map their category codes",
        "  RULES_UNCHANGED (WARNING): the rules in force differ from those the run applied on FX "
        "[acknowledge it with a reason]"]
    checked = cli("close", "check", str(run), "--json")
    assert checked.exit_code == 1 and json.loads(checked.stdout)["passed"] is False


def test_signoff_status_report_runs_list_and_history(cli, conn, uc):
    trial, official = snapshot(conn, uc, name="trial"), snapshot(conn, uc, name="official")
    conn.execute("SELECT set_signoff_policy(%s, 'SIMPLE')", (uc,))
    signed = cli("close", "signoff", str(official), "--comment", "ok", "--json")
    assert signed.exit_code == 0, signed.stderr
    assert json.loads(signed.stdout)["official_run_id"] == str(official)
    table = cli("close", "status", "--use-case", "Project Sterling").stdout.splitlines()
    assert table[0].split()[:5] == ["USE", "CASE", "COB", "DATE", "STATUS"]
    assert [line.split()[2:5] for line in table[1:]] == [["2025-12-23", "OPEN", "-"],
                                                         ["2025-12-24", "SIGNED_OFF", str(official)]]
    report = cli("report", "--use-case", "Project Sterling", "--date", str(COB), "--json")
    assert report.exit_code == 0, report.stderr
    assert json.loads(report.stdout)["run"]["id"] == str(official)
    missing = cli("report", "--use-case", "Project Sterling", "--date", "2025-12-23")
    assert missing.exit_code == 1 and "has no official run for 2025-12-23 (status OPEN)" in missing.stderr
    runs = {line.split()[0]: line for line in cli("runs", "list").stdout.splitlines()[1:-1]}
    assert "OFFICIAL" in runs[str(official)] and "OFFICIAL" not in runs[str(trial)]
    listed = json.loads(cli("runs", "list", "--json").stdout)  # --json stays list_runs' JSON, no marks
    assert listed == json.loads(conn.execute("SELECT list_runs()::text").fetchone()[0])
    history = cli("close", "history", "--use-case", "Project Sterling", "--json")
    assert [e["action"] for e in json.loads(history.stdout)["events"]] == ["POLICY_SET", "SIGNED_OFF"]
    reopened = cli("close", "reopen", "--use-case", "Project Sterling", "--date", str(COB), "--reason", "late")
    assert reopened.exit_code == 0 and "status          OPEN" in reopened.stdout.replace(":", " ")


def test_submit_with_an_acknowledgement_then_withdraw_and_lock_refusals(cli, conn, uc):
    run = snapshot(conn, uc)
    conn.execute("INSERT INTO metadata_rules (use_case_id, node_id, predicate_json) VALUES "
                 """(%s, 'FX', '{"conditions": [{"field": "book", "operator": "equals", "value": "a"}]}')""", (uc,))
    submitted = cli("close", "submit", str(run), "--ack", "RULES_UNCHANGED=reviewed", "--json")
    assert submitted.exit_code == 0, submitted.stderr
    assert json.loads(submitted.stdout)["status"] == "PENDING"
    assert cli("runs", "list").stdout.splitlines()[1].split()[7] == "PENDING"
    assert cli("close", "withdraw", str(run)).exit_code == 0
    bad = cli("close", "submit", str(run), "--ack", "nonsense")
    assert bad.exit_code == 2 and "is not CODE=REASON" in bad.stderr
    locked = cli("close", "lock", "--use-case", "Project Sterling", "--through", "2999-01-01", "--reason", "x")
    assert locked.exit_code == 1 and "is not before today" in locked.stderr
