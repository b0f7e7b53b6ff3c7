"""`pnldb demo` on a database it did not create: it touches nothing that exists, and says what it creates."""
import builders
import psycopg
from click.testing import CliRunner

from pnldb.cli import main

REFUSAL_TAIL = (
    "; nothing changed. If they are a previous demo's, remove them ({removal}); or run the demo elsewhere: "
    "on another database, in another schema (pnldb --dsn URL --schema pnl_demo demo), or on a throw-away "
    "server (pnldb demo with no --dsn and no PNLDB_DSN)\n")
DELETE_USE_CASE = 'pnldb use-case delete "Global Markets (demo)" --yes'
DELETE_STRUCTURE = "in psql DELETE FROM pnl.hierarchy_structures WHERE structure_id = 'GLOBAL_MARKETS'"


def state(db_url) -> list:
    """Everything the demo could change, as rows."""
    with psycopg.connect(db_url) as conn:
        return [conn.execute(q).fetchall() for q in (
            "SELECT * FROM pnl.hierarchy_structures ORDER BY 1",
            "SELECT * FROM pnl.dim_hierarchy ORDER BY 1, 2",
            "SELECT * FROM pnl.use_cases ORDER BY 1",
            "SELECT count(*), sum(daily_amount) FROM pnl.fact_pnl_entries",
            "SELECT * FROM pnl.metadata_rules ORDER BY 1",
            "SELECT id FROM pnl.calculation_runs ORDER BY 1")]


def demo(db_url):
    return CliRunner().invoke(main, ["--dsn", db_url, "demo"])


def test_demo_refuses_when_its_use_case_and_structure_exist(conn, db_url):
    builders.structure(conn, "GLOBAL_MARKETS", [("GLOBAL_MARKETS", None), ("EMEA", "GLOBAL_MARKETS")])
    use_case_id = builders.use_case(conn, "Global Markets (demo)", "GLOBAL_MARKETS")
    builders.facts(conn, use_case_id, [("ACTUAL", "EMEA", "1", "1", "1", {}), ("PRIOR", "EMEA", "2", "2", "2", {})])
    before = state(db_url)
    result = demo(db_url)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == (
        "pnldb: error: not running the demo: it would replace what schema pnl of this database already has: "
        "use case 'Global Markets (demo)' (2 facts, 0 rules, 0 runs) and structure GLOBAL_MARKETS (2 nodes; "
        "use cases on it: 'Global Markets (demo)')"
        + REFUSAL_TAIL.format(removal=f"{DELETE_USE_CASE}, then {DELETE_STRUCTURE}"))
    assert state(db_url) == before


def test_demo_refuses_to_replace_a_structure_of_the_same_id_that_is_in_use(conn, db_url):
    builders.structure(conn, "GLOBAL_MARKETS", [("GLOBAL_MARKETS", None), ("APAC", "GLOBAL_MARKETS")])
    builders.use_case(conn, "Project Sterling", "GLOBAL_MARKETS")
    before = state(db_url)
    result = demo(db_url)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == (
        "pnldb: error: not running the demo: it would replace what schema pnl of this database already has: "
        "structure GLOBAL_MARKETS (2 nodes; use cases on it: 'Project Sterling')"
        + REFUSAL_TAIL.format(removal=DELETE_STRUCTURE))
    assert state(db_url) == before


def test_demo_refuses_when_only_its_use_case_exists_on_another_structure(conn, db_url):
    builders.structure(conn, "TRADING", [("FIRM", None)])
    builders.use_case(conn, "Global Markets (demo)", "TRADING")
    before = state(db_url)
    result = demo(db_url)
    assert result.exit_code == 1
    assert result.stderr == (
        "pnldb: error: not running the demo: it would replace what schema pnl of this database already has: "
        "use case 'Global Markets (demo)' (0 facts, 0 rules, 0 runs)"
        + REFUSAL_TAIL.format(removal=DELETE_USE_CASE))
    assert state(db_url) == before


def test_demo_on_an_empty_database_says_what_it_creates_first_and_ends_with_what_to_try_next(empty_db_url):
    result = demo(empty_db_url)
    assert result.exit_code == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines[:3] == [
        "== on this database the demo creates, schema pnl itself with its roles as pnldb roles create does "
        "(pnl_owner, pnl_reader, pnl_operator, pnl_admin, pnl_approver, those missing), and in schema pnl: "
        "structure GLOBAL_MARKETS (69 nodes) and use case 'Global Markets (demo)' with 5,256 facts, 5 rules and 2 "
        "runs of 2025-12-24; it changes nothing else of yours",
        "== setting schema pnl up (as pnldb roles create does, a DBA's step)",
        "== migrating schema pnl (as pnldb migrate does)"]
    with psycopg.connect(empty_db_url) as conn:
        first, second = (str(r[0]) for r in conn.execute(
            "SELECT id FROM pnl.calculation_runs ORDER BY run_name = 'Adjusted v2'").fetchall())
    assert lines[-2:] == [
        f"next (on the same database): pnldb report {second} --html run.html, "
        f"pnldb runs diff {first} {second} --tolerance 1000",
        'then your own data: README.md, "Using it with your own data"; remove the demo\'s use case with '
        'pnldb close reopen --use-case "Global Markets (demo)" --date 2025-12-24 --reason "remove the demo", '
        'then pnldb use-case delete "Global Markets (demo)" --yes']  # its COB is signed off (contract §7)



def test_on_its_own_throw_away_server_the_demo_just_runs_and_ends_with_what_to_try_next():
    result = CliRunner(env={"PNLDB_DSN": None}).invoke(main, ["demo"])
    assert result.exit_code == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines[:3] == ["== starting an embedded PostgreSQL", "== setting schema pnl up (as pnldb roles create does, "
                         "a DBA's step)", "== migrating schema pnl (as pnldb migrate does)"]
    assert lines[-3:] == [
        "== stopped and removed the embedded PostgreSQL",
        "next: keep the runs to explore them: pnldb --dsn URL demo on a database of yours (it creates only its "
        "own structure and use case)",
        'then your own data: README.md, "Using it with your own data"']
