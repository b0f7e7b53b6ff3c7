"""`pnldb snapshot`: human and JSON output, errors as one line with a non-zero exit."""
import json

from click.testing import CliRunner

from pnldb.cli import main
from tests.builders import cond, facts, rule, structure, use_case


def invoke(db_url, *args):
    return CliRunner().invoke(main, ["--dsn", db_url, *args])


def setup_firm(conn):
    structure(conn, "S", [("FIRM", None), ("BOOK", "FIRM")])
    uc = use_case(conn, "Project Sterling", "S")
    facts(conn, uc, [("ACTUAL", "BOOK", "1234567.89", "2", "3", {"book": "x"}),
                     ("ACTUAL", "BOOK", "10", "0", "0", {"book": "y"}),
                     ("PRIOR", "BOOK", "1000000", "1", "1", {"book": "x"})])
    rule(conn, uc, "BOOK", cond("book", "equals", "x"))
    return uc


def test_snapshot_by_use_case_name_prints_the_run_and_the_root(conn, db_url):
    setup_firm(conn)
    result = invoke(db_url, "snapshot", "--use-case", "Project Sterling", "--date", "2025-12-24",
                    "--name", "Initial Run", "--by", "user123")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "Initial Run" in out and "COMPLETED" in out and "1 rule(s) applied" in out
    daily = next(line for line in out.splitlines() if line.startswith("daily "))
    assert daily.split()[1:] == ["1,234,567.89", "1,000,000.00", "234,567.89"]
    assert "daily plug" in out


def test_snapshot_json_is_get_run(conn, db_url):
    uc = setup_firm(conn)
    result = invoke(db_url, "snapshot", "--use-case", str(uc), "--date", "2025-12-24", "--json")
    assert result.exit_code == 0, result.stderr
    run = json.loads(result.stdout)
    assert run["run_name"] == "Run 1" and run["status"] == "COMPLETED" and run["pnl_date"] == "2025-12-24"
    assert run["results_count"] == 6 and run["rules_applied"] == 1 and run["use_case_name"] == "Project Sterling"
    assert run == conn.execute("SELECT get_run(%s)", (run["id"],)).fetchone()[0]


def test_unknown_use_case_is_one_line(conn, db_url):
    setup_firm(conn)
    result = invoke(db_url, "snapshot", "--use-case", "Nope", "--date", "2025-12-24")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "pnldb: error: unknown use case 'Nope'; give a use-case id or exact name (see `pnldb use-case list`)"]


def test_no_facts_for_the_date_is_one_line(conn, db_url):
    setup_firm(conn)
    result = invoke(db_url, "snapshot", "--use-case", "Project Sterling", "--date", "2025-12-25")
    assert result.exit_code == 1
    [line] = result.stderr.strip().splitlines()
    assert "nothing to snapshot" in line and "2025-12-25" in line


def test_malformed_date_is_refused(conn, db_url):
    result = invoke(db_url, "snapshot", "--use-case", "x", "--date", "2025-02-30")
    assert result.exit_code == 2
    assert "2025-02-30" in result.stderr


def test_a_failed_run_prints_its_error_and_exits_non_zero(conn, db_url):
    uc = setup_firm(conn)
    conn.execute("ALTER TABLE metadata_rules DISABLE TRIGGER rule_is_valid")
    conn.execute("""UPDATE metadata_rules
                    SET predicate_json = '{"conditions": [{"field": "book", "operator": "like", "value": "x"}]}'""")
    conn.execute("ALTER TABLE metadata_rules ENABLE TRIGGER rule_is_valid")
    result = invoke(db_url, "snapshot", "--use-case", str(uc), "--date", "2025-12-24")
    assert result.exit_code == 1
    assert "FAILED" in result.stdout
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("pnldb: error: snapshot ") and "FAILED" in line and "unknown operator" in line
