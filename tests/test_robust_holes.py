"""Issue 19 item 7, the small holes of the CLI and the API: terminal escapes in names never reach the
terminal; compare_runs refuses a tolerance that would hide every difference; `use-case list` works for
readers; `pnldb migrate` waits a bounded time for a lock and names who holds it."""
from __future__ import annotations

import json
import time
import unicodedata
import uuid
from decimal import Decimal

import psycopg
import pytest
from builders import ok
from click.testing import CliRunner
from psycopg.conninfo import make_conninfo

import pnldb.report.text as report_text
from pnldb import api, schema, terminal
from pnldb import format as fmt
from pnldb.cli import main
from pnldb.errors import PnlError
from pnldb.report import render_text
from tests.builders import cond, in_thread, open_conn, rule, snapshot, trading_use_case, wait_until_blocked

D = Decimal

# ESC sequences (clear the screen, set the window title), BEL, a C1 CSI, a bidi override, a zero-width
# space, a line separator and a tab: what a hostile name carries to a terminal
HOSTILE = "evil\x1b[2J\x1b]0;pwned\x07\x9b31m\u202egnp.exe\u200b\u2028\tend"
SHOWN = "evil\ufffd[2J\ufffd]0;pwned\ufffd\ufffd31m\ufffdgnp.exe\ufffd\ufffd\ufffdend"  # each one U+FFFD


def controls(text: str) -> list[str]:
    """The characters of `text` that a terminal acts on or hides, newlines apart."""
    return [c for c in text if c != "\n" and unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")]


@pytest.fixture
def cli(db_url):
    def invoke(*args, input=None, dsn=None):
        return CliRunner().invoke(main, ["--dsn", dsn or db_url, *args], input=input)
    return invoke


@pytest.fixture
def hostile(conn):
    """A use case and two runs whose names carry terminal escapes. Run names are set by the owner past
    the runs' immutability (as a run named before any check of names would be)."""
    uc = trading_use_case(conn, HOSTILE)
    a = snapshot(conn, uc, name="a")
    rule(conn, uc, "FX_1", cond("book", "equals", "a"))
    b = snapshot(conn, uc, name="b")
    with conn.transaction():
        conn.execute("SET LOCAL session_replication_role = replica")  # the test user is the superuser
        conn.execute("UPDATE calculation_runs SET run_name = %s || ' ' || run_name, triggered_by = %s "
                     "WHERE id IN (%s, %s)", (HOSTILE, HOSTILE, a, b))
    return {"use_case": uc, "a": a, "b": b}


# --- 1. terminal escapes ------------------------------------------------------------------------------------

def test_clean_is_the_one_cleaning_of_the_report_and_the_cli():
    assert fmt.clean(HOSTILE) == SHOWN
    assert fmt.clean("Zürich 東京 e\u0301") == "Zürich 東京 e\u0301"  # letters, wide and combining: kept
    assert report_text.clean is fmt.clean is terminal.clean  # one function, not two


@pytest.mark.parametrize("args", [
    ("runs", "list"),
    ("runs", "list", "--use-case", HOSTILE),
    ("use-case", "list"),
    ("use-case", "delete", HOSTILE, "--dry-run"),
])
def test_names_with_escapes_never_reach_the_terminal(cli, hostile, args):
    result = cli(*args)
    out = ok(result)
    assert controls(out + result.stderr) == []
    assert SHOWN in out


def test_runs_show_and_diff_clean_names(cli, hostile):
    for args in (("runs", "show", str(hostile["a"])), ("runs", "diff", str(hostile["a"]), str(hostile["b"]))):
        out = ok(cli(*args))
        assert controls(out) == []
        assert SHOWN in out
    lines = ok(cli("runs", "diff", str(hostile["a"]), str(hostile["b"]))).splitlines()
    assert lines[0] == f"run A  {SHOWN} a (2025-12-24, {hostile['a']})"
    assert lines[2].startswith(f"use case {SHOWN}; adjusted values")


def test_the_delete_prompt_and_summary_clean_the_name(cli, hostile, monkeypatch):
    monkeypatch.setattr("pnldb.cli.common.stdin_is_a_terminal", lambda: True)
    refused = cli("use-case", "delete", str(hostile["use_case"]), input="n\n")
    assert refused.exit_code == 1
    assert f"Delete use case '{SHOWN}' and all of this? [y/N]" in refused.stderr
    assert controls(refused.stdout + refused.stderr) == []
    deleted = cli("use-case", "delete", str(hostile["use_case"]), input="y\n")
    assert ok(deleted).startswith(f"Use case '{SHOWN}' and all related data deleted")
    assert controls(deleted.stdout + deleted.stderr) == []


def test_errors_naming_a_hostile_value_are_clean(cli, hostile):
    refused = cli("use-case", "delete", HOSTILE)  # stdin is no terminal: refused, naming the use case
    assert refused.exit_code == 1
    assert controls(refused.stderr) == []
    assert f"not deleting use case '{SHOWN}'" in refused.stderr
    unknown = cli("runs", "list", "--use-case", HOSTILE + "?")
    assert unknown.exit_code == 1 and controls(unknown.stderr) == []


def test_json_keeps_the_exact_names(cli, hostile):
    runs = json.loads(ok(cli("runs", "list", "--json")))["runs"]
    assert {r["run_name"] for r in runs} == {f"{HOSTILE} a", f"{HOSTILE} b"}
    assert {r["triggered_by"] for r in runs} == {HOSTILE}
    assert json.loads(ok(cli("runs", "show", "--json", str(hostile["a"]))))["use_case_name"] == HOSTILE
    assert [u["name"] for u in json.loads(ok(cli("use-case", "list", "--json")))] == [HOSTILE]
    raw = ok(cli("use-case", "list", "--json"))
    assert controls(raw) == []  # JSON escapes them: \u001b, not ESC


def test_json_text_escapes_what_a_terminal_acts_on_and_keeps_the_values():
    from pnldb.jsonfmt import to_json
    value = {HOSTILE: [HOSTILE, "\U000e0001tag", "Zürich 東京"]}
    text = to_json(value)
    assert controls(text) == []
    assert json.loads(text) == value
    assert '"evil\\u001b[2J\\u001b]0;pwned\\u0007\\u009b31m\\u202egnp.exe\\u200b\\u2028\\tend"' in text
    assert '"\\udb40\\udc01tag"' in text and '"Zürich 東京"' in text  # letters stay readable


def test_the_report_still_cleans_through_the_shared_function(conn, hostile):
    text = render_text(api.fetch_report(conn, hostile["a"]))
    assert controls(text) == []
    assert f"{SHOWN} a" in text


# --- 2. compare_runs tolerance ------------------------------------------------------------------------------

@pytest.fixture
def two_runs(conn):
    uc = trading_use_case(conn)
    a = snapshot(conn, uc, name="a")
    rule(conn, uc, "FX_1", cond("book", "equals", "a"))
    return a, snapshot(conn, uc, name="b")


@pytest.mark.parametrize("tolerance, shown", [("NaN", "NaN"), ("Infinity", "Infinity")])
def test_compare_runs_refuses_a_tolerance_that_hides_every_difference(conn, two_runs, tolerance, shown):
    assert len(conn.execute("SELECT * FROM compare_runs(%s, %s, 0)", two_runs).fetchall()) == 36
    with pytest.raises(psycopg.errors.InvalidParameterValue) as caught:
        conn.execute("SELECT * FROM compare_runs(%s, %s, %s::numeric)", (*two_runs, tolerance))
    assert caught.value.diag.message_primary == f"tolerance must be a finite number, got {shown}"
    assert caught.value.diag.message_hint == ("give the largest difference to leave out, such as 0.01; "
                                              "0 shows every difference")


@pytest.mark.parametrize("tolerance, message", [
    (D("NaN"), "tolerance must be a finite number, got NaN"),
    (D("-Infinity"), "tolerance must be zero or positive, got -Infinity"),
    (D("-0.01"), "tolerance must be zero or positive, got -0.01"),
])
def test_the_api_refuses_them_too(conn, two_runs, tolerance, message):
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=message):
        api.compare_runs(conn, *two_runs, tolerance)
    assert len(api.compare_runs(conn, *two_runs, D("2.50"))) == 24  # a finite tolerance still filters


# --- 3. use-case list for readers ---------------------------------------------------------------------------

@pytest.fixture
def reader_dsn(conn, db_url):
    name = f"t_reader_{uuid.uuid4().hex[:8]}"
    conn.execute(f"CREATE ROLE {name} LOGIN PASSWORD 'pw' IN ROLE pnl_reader")
    yield make_conninfo(db_url, user=name, password="pw")
    conn.execute(f"DROP ROLE {name}")


def test_use_case_list_works_for_readers(cli, conn, two_runs, reader_dsn):
    result = cli("use-case", "list", dsn=reader_dsn)
    lines = ok(result).splitlines()
    assert lines[0].split() == ["USE", "CASE", "ID", "NAME", "STRUCTURE", "STATUS", "FACTS", "RULES", "RUNS"]
    assert lines[1].split()[1:] == ["Project", "Sterling", "TRADING", "ACTIVE", "-", "-", "2"]
    assert result.stderr == "note: - where your role may not read the facts or rules (operators may)\n"
    rows = json.loads(ok(cli("use-case", "list", "--json", dsn=reader_dsn)))
    assert [(r["name"], r["facts"], r["rules"], r["runs"]) for r in rows] == [("Project Sterling", None, None, 2)]
    # an operator (and the owner) still sees every count, without the note
    full = cli("use-case", "list")
    assert ok(full).splitlines()[1].split()[1:] == ["Project", "Sterling", "TRADING", "ACTIVE", "10", "1", "2"]
    assert full.stderr == ""


def test_the_hint_that_sends_readers_to_use_case_list_leads_somewhere(cli, two_runs, reader_dsn):
    hint = cli("runs", "list", "--use-case", "Nope", dsn=reader_dsn)
    assert "(see `pnldb use-case list`)" in hint.stderr
    assert ok(cli("use-case", "list", dsn=reader_dsn)).count("Project Sterling") == 1


# --- 4. migrate's lock timeout ------------------------------------------------------------------------------

@pytest.fixture
def idle_reader(db_url, reader_dsn):
    """A reader's transaction left open after reading v_run_results: it holds a lock on the view."""
    c = psycopg.connect(reader_dsn)
    c.execute("SELECT count(*) FROM pnl.v_run_results")
    pid = c.info.backend_pid
    yield c, pid, c.info.user
    c.close()


def test_migrate_behind_an_idle_reader_fails_in_time_naming_it(conn, db_url, idle_reader):
    reader, pid, role = idle_reader
    before = conn.execute("SELECT pg_get_functiondef('pnl.compare_runs(uuid, uuid, numeric)'::regprocedure)").fetchone()
    migrator = psycopg.connect(db_url, autocommit=True)
    started = time.monotonic()
    with pytest.raises(PnlError) as caught:
        schema.migrate(migrator, lock_timeout="1s")
    took = time.monotonic() - started
    message = str(caught.value)
    assert 0.9 < took < 10
    assert message.startswith("pnldb migrate waited more than 1s for a lock while installing "
                              "sql/0470_view_run_results.sql; nothing was changed. Held by pid ")
    assert f"pid {pid} (role {role}, transaction open since " in message
    assert ("UTC, idle in transaction) on pnl.calculation_runs, pnl.fact_calculated_results, pnl.v_run_results. "
            "End that transaction (a DBA can: ") in message
    assert f"SELECT pg_terminate_backend({pid})) and run pnldb migrate again" in message
    assert message.endswith("or let it wait longer with --lock-timeout or PNLDB_MIGRATE_LOCK_TIMEOUT (0: no limit)")
    # nothing changed, the session's settings are its own again, and once the reader ends migrate passes
    assert conn.execute("SELECT pg_get_functiondef('pnl.compare_runs(uuid, uuid, numeric)'::regprocedure)"
                        ).fetchone() == before
    assert migrator.execute("SHOW lock_timeout").fetchone()[0] == "0"
    assert migrator.execute("SHOW search_path").fetchone()[0] == conn.execute(
        "SELECT boot_val FROM pg_settings WHERE name = 'search_path'").fetchone()[0]
    reader.rollback()
    assert schema.migrate(migrator, lock_timeout="1s") == []
    migrator.close()


def test_a_migration_altering_a_table_an_idle_session_reads_fails_in_time(empty_conn, empty_db_url):
    schema.create_roles(empty_conn)
    schema.migrate(empty_conn, to="0006_close")
    idle = psycopg.connect(empty_db_url)
    idle.execute("SELECT count(*) FROM pnl.use_cases")  # 0007_currency alters use_cases
    with pytest.raises(PnlError) as caught:
        schema.migrate(empty_conn, lock_timeout="500ms")
    assert str(caught.value).startswith(
        "pnldb migrate waited more than 500ms for a lock while applying migration 0007_currency; nothing was "
        f"changed. Held by pid {idle.info.backend_pid} (role {idle.info.user}, transaction open since ")
    assert "idle in transaction) on pnl.use_cases. End that transaction" in str(caught.value)
    assert empty_conn.execute("SELECT migration_id FROM pnl._yoyo_migration ORDER BY 1 DESC LIMIT 1"
                              ).fetchone() == ("0006_close",)
    idle.rollback()
    ids = schema.migration_ids()
    assert schema.migrate(empty_conn, lock_timeout="500ms") == ids[ids.index("0007_currency"):]
    idle.close()


def test_rollback_behind_an_idle_reader_fails_in_time_and_changes_nothing(conn, db_url, idle_reader):
    _, pid, role = idle_reader
    applied = conn.execute("SELECT count(*) FROM pnl._yoyo_migration").fetchone()
    migrator = psycopg.connect(db_url, autocommit=True)
    with pytest.raises(PnlError) as caught:
        schema.rollback(migrator, to=schema.migration_ids()[0], lock_timeout="500ms")
    message = str(caught.value)
    assert message.startswith("pnldb rollback waited more than 500ms for a lock while dropping the SQL layer; "
                              f"nothing was changed. Held by pid {pid} (role {role}, ")
    assert message.endswith("or let it wait longer with rollback(..., lock_timeout=...) (0: no limit)")
    assert conn.execute("SELECT count(*) FROM pnl._yoyo_migration").fetchone() == applied
    assert conn.execute("SELECT to_regclass('pnl.v_run_results') IS NOT NULL").fetchone() == (True,)
    migrator.close()


def test_readers_queued_behind_a_waiting_migrate_wait_only_its_timeout(conn, db_url, idle_reader):
    migrator = psycopg.connect(db_url, autocommit=True)
    migrator_pid = migrator.info.backend_pid
    thread, outcome = in_thread(lambda: schema.migrate(migrator, lock_timeout="2s"))
    wait_until_blocked(conn, migrator_pid, thread)
    late = open_conn(db_url, autocommit=True)  # comes after: queues behind migrate's exclusive lock
    started = time.monotonic()
    assert late.execute("SELECT count(*) FROM v_run_results").fetchone() == (0,)
    assert time.monotonic() - started < 10
    thread.join(10)
    assert not thread.is_alive()
    assert isinstance(outcome.get("error"), PnlError)
    assert "Held by pid" in str(outcome["error"])
    assert f"pid {late.info.backend_pid} " not in str(outcome["error"])  # the late reader blocked nothing
    late.close()
    migrator.close()


def test_the_cli_takes_the_lock_timeout_from_option_or_environment(cli, db_url, idle_reader, monkeypatch):
    _, pid, _ = idle_reader
    result = cli("migrate", "--lock-timeout", "500ms")
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("pnldb: error: pnldb migrate waited more than 500ms for a lock")
    assert f"pid {pid} " in lines[0]
    monkeypatch.setenv("PNLDB_MIGRATE_LOCK_TIMEOUT", "300ms")
    assert "waited more than 300ms for a lock" in cli("migrate").stderr
    bad = cli("migrate", "--lock-timeout", "soon")
    assert bad.exit_code == 1
    assert bad.stderr == ("pnldb: error: lock timeout 'soon' is not a duration: give one such as 5s, 500ms or 1min "
                          "(0 waits without limit)\n")


def test_migrate_without_contention_is_unchanged(cli):
    result = cli("migrate")
    assert result.exit_code == 0, result.stderr
    assert "no pending migrations" in result.stderr
    assert schema.DEFAULT_LOCK_TIMEOUT == "5s"
