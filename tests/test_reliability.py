"""Runs that die or are still running: a killed backend or a crashed server leaves no run behind, and
no other session ever sees a run before it is finished."""
from __future__ import annotations

import psycopg

from pnldb import schema
from pnldb.embedded import EmbeddedPostgres
from tests.builders import (
    cond,
    facts,
    header,
    in_thread,
    open_conn,
    rule,
    snapshot,
    structure,
    use_case,
    wait_until_blocked,
)

RUN_TABLES = ("calculation_runs", "fact_calculated_results", "calculation_run_rules")


def _prepare(conn):
    """A use case with a rule and one completed run, Run 1."""
    structure(conn, "S", [("ROOT", None), ("A", "ROOT")])
    uc = use_case(conn, "U", "S")
    facts(conn, uc, [("ACTUAL", "A", "1", "1", "1", {"book": "x"})])
    rule(conn, uc, "A", cond("book", "equals", "x"))
    snapshot(conn, uc)
    return uc


def _counts(conn) -> dict:
    return {table: conn.execute(f"SELECT count(*) FROM pnl.{table}").fetchone()[0] for table in RUN_TABLES}


AFTER_RUN_1 = {"calculation_runs": 1, "fact_calculated_results": 2 * 3, "calculation_run_rules": 1}


def _start_blocked_snapshot(url, uc):
    """A snapshot in its own session, blocked mid-computation: another session holds a lock on the
    results table, so the snapshot has written its header and recorded rules but not its results.
    Returns (thread, outcome, victim, blocker); the blocker's transaction holds the lock."""
    blocker = open_conn(url, autocommit=False)
    blocker.execute("LOCK TABLE pnl.fact_calculated_results IN SHARE MODE")
    victim = open_conn(url, autocommit=True)
    pid = victim.info.backend_pid
    thread, outcome = in_thread(lambda: snapshot(victim, uc))
    with psycopg.connect(url, autocommit=True) as watcher:
        wait_until_blocked(watcher, pid, thread)
        written = {r[0] for r in watcher.execute(
            "SELECT relation::regclass::text FROM pg_locks WHERE pid = %s AND mode = 'RowExclusiveLock' AND granted",
            (pid,))}
    assert {"pnl.calculation_runs", "pnl.calculation_run_rules"} <= written, written
    return thread, outcome, victim, blocker


def test_a_run_in_progress_is_invisible_to_other_sessions(conn, db_url):
    uc = _prepare(conn)
    thread, outcome, victim, blocker = _start_blocked_snapshot(db_url, uc)
    try:
        with open_conn(db_url, autocommit=True) as reader:
            assert _counts(reader) == AFTER_RUN_1
            visible = reader.execute("SELECT run_name, status FROM calculation_runs").fetchall()
            assert visible == [("Run 1", "COMPLETED")]
            assert reader.execute("SELECT list_runs() -> 'total'").fetchone()[0] == 1
    finally:
        blocker.rollback()
        thread.join(timeout=30)
        blocker.close()
        victim.close()
    assert "error" not in outcome, outcome.get("error")
    assert header(conn, outcome["value"])["status"] == "COMPLETED"
    assert _counts(conn) == {table: 2 * count for table, count in AFTER_RUN_1.items()}


def test_a_snapshot_whose_backend_is_killed_leaves_no_run_and_no_results(conn, db_url):
    uc = _prepare(conn)
    thread, outcome, victim, blocker = _start_blocked_snapshot(db_url, uc)
    try:
        assert conn.execute("SELECT pg_terminate_backend(%s)", (victim.info.backend_pid,)).fetchone()[0] is True
        thread.join(timeout=30)
        assert isinstance(outcome.get("error"), psycopg.OperationalError)
    finally:
        blocker.rollback()
        blocker.close()
        victim.close()
    assert _counts(conn) == AFTER_RUN_1
    # and the next snapshot is simply the next run: the dead one took no name
    assert header(conn, snapshot(conn, uc))["run_name"] == "Run 2"


def test_a_snapshot_cut_by_a_server_crash_leaves_nothing_after_restart():
    with EmbeddedPostgres() as pg:
        with psycopg.connect(pg.url, autocommit=True) as setup:
            schema.create_roles(setup)
            schema.migrate(setup)
            setup.execute("SET search_path TO pnl")
            uc = _prepare(setup)
        thread, outcome, victim, blocker = _start_blocked_snapshot(pg.url, uc)
        pg.restart()
        thread.join(timeout=30)
        blocker.close()
        victim.close()
        assert isinstance(outcome.get("error"), psycopg.OperationalError)
        with open_conn(pg.url, autocommit=True) as after:
            assert _counts(after) == AFTER_RUN_1
            run = header(after, snapshot(after, uc))
            assert (run["run_name"], run["status"]) == ("Run 2", "COMPLETED")
