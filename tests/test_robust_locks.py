"""Issue 19 item 3 and the DateStyle hole of item 7: no login outside pnldb's roles can block a snapshot;
a wait for a lock another session holds is bounded (the limit lock_wait_ms) and ends in one error naming
the holder (role, pid, since when); the per-date run lock does not depend on DateStyle."""
from __future__ import annotations

import io
import time
import uuid

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from pnldb import api
from tests.builders import (
    COB,
    cond,
    in_thread,
    open_conn,
    rule,
    snapshot,
    trading_use_case,
    wait_until_blocked,
)


@pytest.fixture
def stranger(conn, db_url):
    """A login with no pnl role at all (it may connect to the database, as PUBLIC may)."""
    name = f"t_stranger_{uuid.uuid4().hex[:8]}"
    conn.execute(f"CREATE ROLE {name} LOGIN PASSWORD 'pw'")
    with psycopg.connect(make_conninfo(db_url, user=name, password="pw"), autocommit=True) as connection:
        yield connection
    conn.execute(f"DROP ROLE {name}")


def _low_limit(conn, ms: int) -> None:
    conn.execute("UPDATE limits SET value = %s WHERE name = 'lock_wait_ms'", (ms,))


def _load(c, uc):
    csv_text = f"pnl_date,category_code,daily_amount,wtd_amount,ytd_amount,scenario\n{COB},EQ_1,1,1,1,ACTUAL\n"
    return api.load_facts(c, io.BytesIO(csv_text.encode()), uc, append=True)


def test_a_login_without_a_pnl_role_cannot_block_a_snapshot(conn, stranger):
    uc = trading_use_case(conn)
    # the advisory keys the locks had; any login may take any advisory lock, and read the keys from pg_locks
    old_keys = [f"pnldb.use_case:{uc}", "pnldb.structure:TRADING"] + [
        f"pnldb.create_snapshot:{uc}:{date_text}" for date_text in (COB.isoformat(), COB.strftime("%m/%d/%Y"))]
    # and the markers the holders of the lock rows take to be named (lock_marker): taken, they block nothing
    old_keys += [f"pnldb.lock_rows:use case:{uc}:{stage}" for stage in ("gate", "version")]
    for key in old_keys:
        stranger.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (key,))
    # and the lock rows are out of its reach: no privilege on the schema, the table or the functions
    for attempt in ("SELECT * FROM pnl.lock_rows FOR SHARE", "LOCK TABLE pnl.lock_rows IN ACCESS EXCLUSIVE MODE",
                    f"SELECT pnl.lock_use_case('{uc}', false)", "SELECT pnl.lock_structure('TRADING', false)",
                    "SELECT * FROM pnl.use_cases FOR SHARE"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege), stranger.transaction():
            stranger.execute(attempt)
    conn.execute("SET lock_timeout = '2s'")  # waiting on the stranger would fail here
    run = snapshot(conn, uc)
    rule(conn, uc, "FX_1", cond("book", "equals", "a"))  # and a rule write (exclusive) does not wait either
    _load(conn, uc)
    assert conn.execute("SELECT status FROM calculation_runs WHERE id = %s", (run,)).fetchone()[0] == "COMPLETED"


def test_a_reader_cannot_take_the_lock_rows(conn, login):
    uc = trading_use_case(conn)
    reader = login("reader")
    for attempt in ("SELECT * FROM lock_rows FOR SHARE", f"SELECT lock_use_case('{uc}', false)",
                    "SELECT take_lock('use case', 'x', false)"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            reader.execute(attempt)


def _role(c) -> str:
    return c.execute("SELECT session_user").fetchone()[0]


def test_a_loader_waits_the_bounded_time_and_is_told_who_holds_the_lock(conn, login):
    """An operator keeps its transaction open after create_snapshot; the admin's load gives up after
    lock_wait_ms with one error naming the operator's role, pid and since when; nothing is loaded."""
    uc = trading_use_case(conn)
    _low_limit(conn, 300)
    operator, admin = login("operator"), login("admin")
    admin.execute("SET lock_timeout = '20s'")  # longer than the limit: the limit bounds the wait
    loads_before = conn.execute("SELECT count(*) FROM fact_loads").fetchone()[0]
    with operator.transaction():
        snapshot(operator, uc)
        started = time.monotonic()
        with pytest.raises(psycopg.errors.LockNotAvailable) as refused:
            _load(admin, uc)
        waited = time.monotonic() - started
    message = refused.value.diag.message_primary
    assert message.startswith('use case "Project Sterling" is locked by another session: '
                              f"role {_role(operator)} (pid {operator.info.backend_pid}, idle in transaction since ")
    assert " UTC, " in message and message.endswith("gave up after 300 ms"), message
    assert "lock_wait_ms" in refused.value.diag.message_hint
    assert 0.3 <= waited < 10
    assert conn.execute("SELECT count(*) FROM fact_loads").fetchone()[0] == loads_before
    assert admin.execute("SHOW lock_timeout").fetchone()[0] == "20s"  # the caller's setting is back
    _load(admin, uc)  # the operator's transaction is over: the load goes through


def test_a_snapshot_waits_the_bounded_time_for_an_open_load(conn, login):
    """The load runs in a savepoint of the admin's transaction (psycopg nests transaction() so): the row
    lock is held under the savepoint's xid, and the admin is named from its marker."""
    uc = trading_use_case(conn)
    _low_limit(conn, 200)
    operator, admin = login("operator"), login("admin")
    operator.execute("SET lock_timeout = '20s'")  # longer than the limit: the limit bounds the wait
    with admin.transaction():
        _load(admin, uc)
        with pytest.raises(psycopg.errors.LockNotAvailable,
                           match=f"role {_role(admin)} \\(pid {admin.info.backend_pid}, idle in transaction since "):
            snapshot(operator, uc)
    assert conn.execute("SELECT count(*) FROM calculation_runs").fetchone()[0] == 0


def test_the_error_names_every_snapshot_that_holds_the_lock(conn, login, db_url):
    uc = trading_use_case(conn)
    _low_limit(conn, 200)
    first, second, admin = login("operator"), login("operator"), login("admin")
    admin.execute("SET lock_timeout = '20s'")
    with first.transaction(), second.transaction():
        snapshot(first, uc)
        snapshot(second, uc, COB.replace(day=23))
        with pytest.raises(psycopg.errors.LockNotAvailable) as refused:
            rule(admin, uc, "FX_1", cond("book", "equals", "a"))
    message = str(refused.value)
    for holder in (first, second):
        assert f"role {_role(holder)} (pid {holder.info.backend_pid}, idle in transaction since " in message, message


def test_a_shorter_lock_timeout_of_the_caller_bounds_the_wait(conn, login):
    uc = trading_use_case(conn)
    operator, admin = login("operator"), login("admin")
    admin.execute("SET lock_timeout = '150ms'")  # the limit is 10 s
    with operator.transaction():
        snapshot(operator, uc)
        with pytest.raises(psycopg.errors.LockNotAvailable, match="gave up after 150 ms"):
            _load(admin, uc)


def test_a_lock_taken_leaves_the_callers_lock_timeout_as_it_was(conn):
    uc = trading_use_case(conn)
    conn.execute("SET lock_timeout = '42s'")
    with conn.transaction():
        conn.execute("SELECT lock_use_case(%s, true), lock_use_case(%s, false), lock_structure('TRADING', false)",
                     (uc, uc))
        assert conn.execute("SHOW lock_timeout").fetchone()[0] == "42s"


def test_a_writer_locks_once_per_transaction(conn):
    """A rule trigger asks for the lock on every row; the version row is updated once per transaction."""
    uc = trading_use_case(conn)
    version = "SELECT version FROM lock_rows WHERE lock_kind = 'use case' AND lock_key = %s AND NOT gate"
    before = conn.execute(version, (str(uc),)).fetchone()[0]
    with conn.transaction():
        for node in ("FX_1", "EQ_1", "RATES_1"):
            rule(conn, uc, node, cond("book", "equals", "a"))
    assert conn.execute(version, (str(uc),)).fetchone()[0] == before + 1


def test_snapshots_of_one_date_serialise_whatever_their_datestyle(db_url, conn):
    """The per-date run lock's key once was the date's text in the session's DateStyle: two sessions with
    different settings were not serialised, and one got a raw unique-key error instead of "Run 2"."""
    uc = trading_use_case(conn)
    with open_conn(db_url, autocommit=False) as first, open_conn(db_url, autocommit=True) as second:
        first.execute("SET DateStyle = 'ISO, MDY'")
        second.execute("SET DateStyle = 'SQL, DMY'")
        held = snapshot(first, uc)
        thread, outcome = in_thread(lambda: snapshot(second, uc))
        wait_until_blocked(conn, second.info.backend_pid, thread)
        first.commit()
        thread.join(timeout=30)
    assert "error" not in outcome, outcome.get("error")
    names = dict(conn.execute("SELECT id, run_name FROM calculation_runs").fetchall())
    assert names == {held: "Run 1", outcome["value"]: "Run 2"}


def test_tree_edits_of_one_structure_take_turns_and_a_snapshot_waits_for_them(db_url, conn):
    uc = trading_use_case(conn)
    with open_conn(db_url, autocommit=False) as editor, open_conn(db_url, autocommit=True) as other, \
            open_conn(db_url, autocommit=True) as snapshotter:
        editor.execute("SELECT lock_structure('TRADING', true)")
        edit, edited = in_thread(lambda: other.execute("SELECT lock_structure('TRADING', true)"))
        wait_until_blocked(conn, other.info.backend_pid, edit)
        take, taken = in_thread(lambda: snapshot(snapshotter, uc))
        wait_until_blocked(conn, snapshotter.info.backend_pid, take)
        editor.commit()
        edit.join(timeout=30)
        take.join(timeout=30)
    assert "error" not in edited and "error" not in taken, (edited.get("error"), taken.get("error"))


def test_a_second_snapshot_in_a_transaction_does_not_queue_behind_a_writer_waiting_for_it(db_url, conn):
    """Readers queue behind a waiting writer (test_use_case_lock), except a reader that holds the lock
    already: queueing, it would wait for a writer that waits for it."""
    uc = trading_use_case(conn)
    with open_conn(db_url, autocommit=True) as editor, open_conn(db_url, autocommit=False) as holder:
        holder.execute("SET lock_timeout = '5s'")
        snapshot(holder, uc)
        edit, edited = in_thread(lambda: rule(editor, uc, "FX_1", cond("book", "equals", "a")))
        wait_until_blocked(conn, editor.info.backend_pid, edit)
        again = snapshot(holder, uc, COB.replace(day=23))
        holder.commit()
        edit.join(timeout=30)
    assert "error" not in edited, edited.get("error")
    assert conn.execute("SELECT status FROM calculation_runs WHERE id = %s", (again,)).fetchone()[0] == "COMPLETED"
