"""The use-case lock, step by step: snapshots of a use case share it; rule writes, fact loads (and
delete_use_case, see test_delete_use_case.py) take it exclusively; and it is queued fairly."""
from __future__ import annotations

import io
import json
from decimal import Decimal

import psycopg
import pytest

from pnldb import api
from tests.builders import (
    COB,
    EARLIER,
    cond,
    header,
    in_thread,
    open_conn,
    rule,
    snapshot,
    table_counts,
    trading_use_case,
    wait_until_blocked,
)


def _snapshot_held_open(db_url, uc, date=COB) -> psycopg.Connection:
    """A session that took a snapshot and keeps its transaction, and so its share of the lock, open."""
    holder = open_conn(db_url, autocommit=False)
    snapshot(holder, uc, date)
    return holder


def test_snapshots_of_a_use_case_run_side_by_side(db_url, conn):
    uc = trading_use_case(conn)
    with _snapshot_held_open(db_url, uc) as holder, open_conn(db_url, autocommit=True) as other:
        other.execute("SET lock_timeout = '2s'")  # waiting on the holder would fail here
        run = snapshot(other, uc, EARLIER)  # another date: the per-date run numbering does not serialize it
        holder.rollback()
    assert header(conn, run)["status"] == "COMPLETED"


def _load_facts(c, uc):
    csv_text = f"pnl_date,category_code,daily_amount,wtd_amount,ytd_amount,scenario\n{COB},EQ_1,1,1,1,ACTUAL\n"
    api.load_facts(c, io.BytesIO(csv_text.encode()), uc, append=True)  # beside the facts the use case has


EXCLUSIVE_WRITERS = {
    "rule insert": lambda c, uc: rule(c, uc, "RATES", cond("book", "equals", "b")),
    "rule update": lambda c, uc: c.execute("UPDATE metadata_rules SET logic_en = 'edited' WHERE use_case_id = %s",
                                           (uc,)),
    "rule delete": lambda c, uc: c.execute("DELETE FROM metadata_rules WHERE use_case_id = %s", (uc,)),
    "fact load": _load_facts,
}


@pytest.mark.parametrize("writer", EXCLUSIVE_WRITERS)
def test_rule_writes_and_fact_loads_wait_for_a_running_snapshot(db_url, conn, writer):
    uc = trading_use_case(conn)
    rule(conn, uc, "FX_1", cond("book", "equals", "a"))
    before = table_counts(conn)
    # the holder is released first on the way out, so a failing test cannot leave a session waiting on it
    with open_conn(db_url, autocommit=True) as writer_conn, _snapshot_held_open(db_url, uc) as holder:
        thread, outcome = in_thread(lambda: EXCLUSIVE_WRITERS[writer](writer_conn, uc))
        wait_until_blocked(conn, writer_conn.info.backend_pid, thread)
        assert table_counts(conn) == before  # nothing written while it waits
        holder.commit()
        thread.join(timeout=30)
        assert not thread.is_alive() and "error" not in outcome, outcome.get("error")


def test_a_snapshot_waits_for_a_rule_write_and_applies_the_new_rule(db_url, conn):
    uc = trading_use_case(conn)
    rule(conn, uc, "FX_1", cond("book", "equals", "a"))
    new = cond("book", "equals", "b")
    with open_conn(db_url, autocommit=True) as snapshotter, open_conn(db_url, autocommit=False) as editor:
        editor.execute("UPDATE metadata_rules SET predicate_json = %s::jsonb WHERE use_case_id = %s",
                       (json.dumps(new), uc))
        thread, outcome = in_thread(lambda: snapshot(snapshotter, uc))
        wait_until_blocked(conn, snapshotter.info.backend_pid, thread)
        editor.commit()
        thread.join(timeout=30)
    run = outcome["value"]
    assert conn.execute("SELECT predicate_json FROM calculation_run_rules WHERE calculation_run_id = %s",
                        (run,)).fetchall() == [(new,)]
    fx = conn.execute("SELECT daily_adjusted FROM fact_calculated_results WHERE calculation_run_id = %s "
                      "AND node_id = 'FX_1' AND scenario = 'ACTUAL'", (run,)).fetchone()[0]
    assert fx == Decimal("7.50")  # book b only


def test_a_snapshot_waits_for_a_fact_load_and_sees_its_facts(db_url, conn):
    uc = trading_use_case(conn)
    with open_conn(db_url, autocommit=True) as snapshotter, open_conn(db_url, autocommit=False) as loader:
        _load_facts(loader, uc)  # one more ACTUAL fact of 1.00 on EQ_1; the transaction stays open
        thread, outcome = in_thread(lambda: snapshot(snapshotter, uc))
        wait_until_blocked(conn, snapshotter.info.backend_pid, thread)
        loader.commit()
        thread.join(timeout=30)
    eq = conn.execute("SELECT daily_natural FROM fact_calculated_results WHERE calculation_run_id = %s "
                      "AND node_id = 'EQ_1' AND scenario = 'ACTUAL'", (outcome["value"],)).fetchone()[0]
    assert eq == Decimal("1000001.00")


def test_a_waiting_writer_is_not_overtaken_by_later_snapshots(db_url, conn):
    """The lock is queued fairly: a snapshot that arrives while a rule write waits for a running snapshot
    waits behind the write, so a stream of snapshots cannot starve it."""
    uc = trading_use_case(conn)
    rule(conn, uc, "FX_1", cond("book", "equals", "a"))
    new = cond("book", "equals", "b")
    with open_conn(db_url, autocommit=True) as editor, open_conn(db_url, autocommit=True) as late, \
            _snapshot_held_open(db_url, uc, EARLIER) as holder:
        edit, edited = in_thread(lambda: editor.execute(
            "UPDATE metadata_rules SET predicate_json = %s::jsonb WHERE use_case_id = %s", (json.dumps(new), uc)))
        wait_until_blocked(conn, editor.info.backend_pid, edit)
        take, taken = in_thread(lambda: snapshot(late, uc))
        wait_until_blocked(conn, late.info.backend_pid, take)
        holder.commit()
        edit.join(timeout=30)
        take.join(timeout=30)
    assert "error" not in edited and "error" not in taken, (edited.get("error"), taken.get("error"))
    # the late snapshot ran after the write: it applied the new rule
    assert conn.execute("SELECT predicate_json FROM calculation_run_rules WHERE calculation_run_id = %s",
                        (taken["value"],)).fetchall() == [(new,)]
