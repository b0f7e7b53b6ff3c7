"""CLI plumbing: DSN resolution, error lines, render, migrate."""
import socket

import psycopg
from click.testing import CliRunner

from pnldb.cli import main
from pnldb.schema import migration_ids


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_database_is_one_line_naming_the_dsn_without_password():
    dsn = f"postgresql://alice:s3cret@127.0.0.1:{_closed_port()}/nowhere"
    result = CliRunner().invoke(main, ["--dsn", dsn, "migrate"])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("pnldb: error: cannot connect to postgresql://alice:***@127.0.0.1:")
    assert "s3cret" not in result.stderr
    assert result.stdout == ""


def test_dsn_comes_from_the_environment_when_not_given(monkeypatch):
    monkeypatch.setenv("PNLDB_DSN", f"host=127.0.0.1 port={_closed_port()} dbname=envdb password=hidden")
    result = CliRunner().invoke(main, ["migrate"])
    assert result.exit_code == 1
    assert "dbname=envdb" in result.stderr and "hidden" not in result.stderr


def test_render_prints_every_sql_file_for_the_chosen_schema():
    result = CliRunner().invoke(main, ["--schema", "pnl_x", "render"])
    assert result.exit_code == 0
    assert "CREATE OR REPLACE VIEW pnl_x.v_hierarchy_nodes" in result.stdout
    assert "{{" not in result.stdout and " pnl." not in result.stdout


def test_migrate_twice_through_the_cli(empty_db_url):
    runner = CliRunner()
    assert runner.invoke(main, ["--dsn", empty_db_url, "roles", "create"]).exit_code == 0  # the DBA's step
    first = runner.invoke(main, ["--dsn", empty_db_url, "migrate"])
    assert first.exit_code == 0, first.stderr
    assert "0002_step_4_2" in first.stderr
    second = runner.invoke(main, ["--dsn", empty_db_url, "migrate"])
    assert second.exit_code == 0 and "no pending migrations" in second.stderr
    with psycopg.connect(empty_db_url) as conn:
        assert conn.execute("SELECT count(*) FROM pnl._yoyo_migration").fetchone()[0] == len(migration_ids())
