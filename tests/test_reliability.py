"""Runs that die: a killed backend or a stopped server leaves no run and no results behind."""
from __future__ import annotations

import threading
import time

import psycopg
import pytest

from pnldb import schema
from pnldb.embedded import EmbeddedPostgres
from tests.builders import facts, structure, use_case


def _prepare(conn):
    structure(conn, "S", [("ROOT", None), ("A", "ROOT")])
    uc = use_case(conn, "U", "S")
    facts(conn, uc, [("ACTUAL", "A", "1", "1", "1", {})])
    return uc


def _start_blocked_snapshot(url, uc):
    """A snapshot in its own session that blocks mid-computation: its header is written, its results
    are not, because another session holds a lock on the results table. Returns (thread, outcome, pid)."""
    blocker = psycopg.connect(url)
    blocker.execute("LOCK TABLE pnl.fact_calculated_results IN SHARE MODE")
    outcome = {}
    victim = psycopg.connect(url, autocommit=True)
    pid = victim.info.backend_pid

    def run():
        try:
            victim.execute("SELECT pnl.create_snapshot(%s, '2025-12-24')", (uc,))
            outcome["result"] = "returned"
        except psycopg.Error as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    with psycopg.connect(url, autocommit=True) as watcher:
        for _ in range(200):
            waiting = watcher.execute(
                "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
            if waiting and waiting[0] == "Lock":
                break
            time.sleep(0.05)
        else:
            pytest.fail("the snapshot never reached the results insert")
    return thread, outcome, pid, blocker, victim


def _nothing_left(conn):
    for table in ("calculation_runs", "fact_calculated_results", "calculation_run_rules"):
        assert conn.execute(f"SELECT count(*) FROM pnl.{table}").fetchone()[0] == 0, table


def test_a_snapshot_whose_backend_is_killed_leaves_no_run_and_no_results(conn, db_url):
    uc = _prepare(conn)
    thread, outcome, pid, blocker, victim = _start_blocked_snapshot(db_url, uc)
    try:
        assert conn.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0] is True
        thread.join(timeout=30)
        assert isinstance(outcome.get("error"), psycopg.OperationalError)
    finally:
        blocker.rollback()
        blocker.close()
        victim.close()
    _nothing_left(conn)
    # and the next snapshot is simply Run 1
    run = conn.execute("SELECT pnl.create_snapshot(%s, '2025-12-24')", (uc,)).fetchone()[0]
    assert conn.execute("SELECT run_name FROM pnl.calculation_runs WHERE id = %s", (run,)).fetchone()[0] == "Run 1"


def test_a_snapshot_cut_by_a_server_crash_leaves_nothing_after_restart():
    with EmbeddedPostgres() as pg:
        with psycopg.connect(pg.url, autocommit=True) as setup:
            schema.migrate(setup)
            setup.execute("SET search_path TO pnl")
            uc = _prepare(setup)
        thread, outcome, _, blocker, victim = _start_blocked_snapshot(pg.url, uc)
        pg.restart()
        thread.join(timeout=30)
        blocker.close()
        victim.close()
        assert isinstance(outcome.get("error"), psycopg.OperationalError)
        with psycopg.connect(pg.url, autocommit=True) as after:
            _nothing_left(after)
            run = after.execute("SELECT pnl.create_snapshot(%s, '2025-12-24')", (uc,)).fetchone()[0]
            assert after.execute("SELECT status FROM pnl.calculation_runs WHERE id = %s", (run,)).fetchone()[0] == "COMPLETED"
