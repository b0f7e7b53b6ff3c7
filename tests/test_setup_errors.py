"""Set-up mistakes a new user makes (no database set, a database never migrated, an older schema) get one
line saying what to do, not PostgreSQL's raw error."""
from __future__ import annotations

import os

import psycopg
import pytest
from builders import error_line
from click.testing import CliRunner

from pnldb import api, schema
from pnldb.api.connection import SCHEMA_MISMATCH_ERRORS, schema_problem
from pnldb.cli import main
from pnldb.errors import PnlError, describe_db_error
from pnldb.schema import migration_ids


def cli(db_url, *args):
    return CliRunner().invoke(main, ["--dsn", db_url, *map(str, args)])


def dbname(url: str) -> str:
    with psycopg.connect(url) as conn:
        return conn.info.dbname


@pytest.mark.parametrize("args", [
    ["runs", "list"],
    ["snapshot", "--use-case", "Project Sterling", "--date", "2025-12-24"],
    ["use-case", "create", "Project Sterling", "--structure", "STERLING"],
])
def test_a_database_never_set_up_says_to_run_roles_create_then_migrate(empty_db_url, args):
    message = error_line(cli(empty_db_url, *args))
    assert message == (f"pnldb: error: schema pnl is not installed in {dbname(empty_db_url)}; a DBA runs "
                       "`pnldb roles create` once (README, \"Setting up a database\"), then run `pnldb migrate`")


def test_a_database_set_up_but_never_migrated_says_to_run_migrate(empty_db_url):
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        schema.create_roles(conn)
    message = error_line(cli(empty_db_url, "runs", "list"))
    assert message == f"pnldb: error: schema pnl is not installed in {dbname(empty_db_url)}; run `pnldb migrate`"


def test_loading_into_a_database_never_migrated_says_to_run_migrate(empty_db_url, tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("node_id,parent_node_id,node_name\nFIRM,,Firm\n")
    message = error_line(cli(empty_db_url, "load", "hierarchy", path, "--structure", "S"))
    assert message == (f"pnldb: error: schema pnl is not installed in {dbname(empty_db_url)}; a DBA runs "
                       "`pnldb roles create` once (README, \"Setting up a database\"), then run `pnldb migrate`")


def test_a_schema_mistyped_in_schema_names_the_one_installed(db_url):
    message = error_line(cli(db_url, "--schema", "pnl_x", "runs", "list"))
    assert message == (f"pnldb: error: schema pnl_x is not installed in {dbname(db_url)}; a DBA runs `pnldb roles "
                       "create` once (README, \"Setting up a database\"), then run `pnldb migrate`, or, to use the "
                       "pnldb installed in schema pnl, pass --schema pnl")


def test_several_installed_schemas_are_all_named_and_other_apps_yoyo_is_not(db_url):
    with psycopg.connect(db_url, autocommit=True) as conn:
        schema.create_roles(conn, "pnl_b")
        schema.migrate(conn, "pnl_b")
        conn.execute("CREATE TABLE public._yoyo_migration (migration_id text)")  # another application's
    message = error_line(cli(db_url, "--schema", "pnl_x", "runs", "list"))
    assert message == (f"pnldb: error: schema pnl_x is not installed in {dbname(db_url)}; a DBA runs `pnldb roles "
                       "create` once (README, \"Setting up a database\"), then run `pnldb migrate`, or, to use a "
                       "pnldb installed in schemas pnl, pnl_b, pass --schema with one of them")


def test_an_older_schema_says_which_migration_it_is_at_and_to_upgrade(empty_db_url):
    old = migration_ids()[2]
    assert old == "0003_run_rules"
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        schema.create_roles(conn)
        schema.migrate(conn, to=old)
    message = error_line(cli(empty_db_url, "runs", "list"))
    assert message == (f"pnldb: error: schema pnl in {dbname(empty_db_url)} is at migration 0003_run_rules, "
                       f"this pnldb needs {migration_ids()[-1]}; run `pnldb migrate` to upgrade")
    # and the advice works
    assert cli(empty_db_url, "migrate").exit_code == 0
    result = cli(empty_db_url, "runs", "list")
    assert result.exit_code == 0, result.stderr


def test_a_schema_rolled_back_says_which_migration_it_is_at(db_url):
    with psycopg.connect(db_url, autocommit=True) as conn:
        schema.rollback(conn, to="0002_step_4_2")
    message = error_line(cli(db_url, "runs", "show", "6f1c1a64-4a7e-4a55-9c1e-0d7f2e9d3a11"))
    assert message == (f"pnldb: error: schema pnl in {dbname(db_url)} is at migration 0002_step_4_2, "
                       f"this pnldb needs {migration_ids()[-1]}; run `pnldb migrate` to upgrade")


def test_migrations_without_the_sql_layer_say_to_run_migrate(empty_db_url):
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        schema.create_roles(conn)
        schema.migrate(conn, to=migration_ids()[-1])
    message = error_line(cli(empty_db_url, "runs", "list"))
    assert message == (f"pnldb: error: schema pnl in {dbname(empty_db_url)} has its tables but not pnldb's "
                       f"functions and views; run `pnldb migrate`")


def test_a_schema_newer_than_this_pnldb_says_to_upgrade_pnldb(db_url):
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO pnl._yoyo_migration (migration_hash, migration_id, applied_at_utc) "
                     "VALUES ('x', '9999_from_the_future', now())")
        conn.execute("DROP FUNCTION pnl.list_runs")
    message = error_line(cli(db_url, "runs", "list"))
    assert message == (f"pnldb: error: schema pnl in {dbname(db_url)} is at migration 9999_from_the_future, "
                       f"newer than this pnldb knows (it needs {migration_ids()[-1]}); upgrade pnldb")


def test_an_up_to_date_schema_keeps_the_database_error_with_its_hint_as_a_sentence(db_url):
    # Not a set-up problem: the check finds the schema current and the database's own words stay.
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("DROP FUNCTION pnl.list_runs")
    message = error_line(cli(db_url, "runs", "list"))
    assert message == ("pnldb: error: function list_runs(date, uuid, integer) does not exist. Hint: No function "
                       "matches the given name and argument types. You might need to add explicit type casts.")


def test_the_python_api_reports_the_same_set_up_problem(empty_db_url):
    with api.connect(empty_db_url) as conn:
        with pytest.raises(SCHEMA_MISMATCH_ERRORS):
            api.list_runs(conn)
        assert schema_problem(conn) == (f"schema pnl is not installed in {conn.info.dbname}; a DBA runs `pnldb roles "
                                        "create` once (README, \"Setting up a database\"), then run `pnldb migrate`")


def test_the_happy_path_costs_no_set_up_query(db_url, monkeypatch):
    import pnldb.cli.common as common

    calls = []
    monkeypatch.setattr(common, "schema_problem", lambda *a: calls.append(a))
    assert cli(db_url, "runs", "list").exit_code == 0
    assert calls == []


def test_describe_db_error_sets_detail_and_hint_off_as_sentences(conn):
    with pytest.raises(psycopg.Error) as info:
        conn.execute("DO $$ BEGIN RAISE EXCEPTION 'use case   is locked' USING DETAIL = 'A close is under way.', "
                     "HINT = 'Wait for it, or ask the approver'; END $$")
    assert describe_db_error(info.value) == ("use case is locked. A close is under way. "
                                             "Hint: Wait for it, or ask the approver")


# --------------------------------------------------------------------------------------------------
# no database set at all

NO_DATABASE = ("pnldb: error: cannot connect: no database is set (no --dsn, PNLDB_DSN, DATABASE_URL or PG* "
               "variable), and libpq's default failed: connection to server on socket "
               "\"/var/run/postgresql/.s.PGSQL.5432\" failed: No such file or directory. Is the server running "
               "locally and accepting connections on that socket? Set the database with `--dsn URL` or "
               "PNLDB_DSN, e.g. postgresql://user@host:5432/dbname.")


@pytest.fixture
def no_database(monkeypatch):
    for name in list(os.environ):
        if name.startswith("PG") or name in ("PNLDB_DSN", "DATABASE_URL"):
            monkeypatch.delenv(name)
    if os.path.exists("/var/run/postgresql/.s.PGSQL.5432"):
        pytest.skip("a server listens on libpq's default socket")


def test_no_database_set_is_one_clean_line_saying_how_to_set_it(no_database):
    result = CliRunner().invoke(main, ["runs", "list"])
    assert error_line(result) == NO_DATABASE
    assert "\t" not in result.stderr


def test_no_database_set_through_the_python_api(no_database):
    with pytest.raises(PnlError) as info:
        api.connect().__enter__()
    assert f"pnldb: error: {info.value}" == NO_DATABASE


def test_a_connection_failure_is_one_line_with_libpqs_reason_and_its_hint(monkeypatch):
    monkeypatch.delenv("PNLDB_DSN", raising=False)
    result = CliRunner().invoke(main, ["--dsn", "postgresql://alice:s3cret@127.0.0.1:1/nowhere", "runs", "list"])
    assert error_line(result) == (
        "pnldb: error: cannot connect to postgresql://alice:***@127.0.0.1:1/nowhere: connection to server at "
        "\"127.0.0.1\", port 1 failed: Connection refused. Is the server running on that host and accepting "
        "TCP/IP connections?")
