"""Issue 19 item 1: create_snapshot refuses a transaction whose snapshot predates the latest committed
change of its use case's facts, rules or structure (REPEATABLE READ or SERIALIZABLE opened earlier, or an
old exported snapshot), with one clear error and nothing written; READ COMMITTED sees the latest."""
from __future__ import annotations

import io
from decimal import Decimal

import psycopg
import pytest
from psycopg import IsolationLevel

from pnldb import api
from tests.builders import (
    COB,
    EARLIER,
    cond,
    header,
    open_conn,
    results,
    rule,
    snapshot,
    table_counts,
    trading_use_case,
)

STALE = "changed after this transaction's snapshot was taken"


def _replace_load(c, uc, eq_daily="5.00"):
    """A --replace load of COB's ACTUAL facts: one fact of eq_daily on EQ_1 (the root's daily total)."""
    csv_text = (f"pnl_date,category_code,daily_amount,wtd_amount,ytd_amount,scenario,book\n"
                f"{COB},EQ_1,{eq_daily},1,1,ACTUAL,a\n")
    api.load_facts(c, io.BytesIO(csv_text.encode()), uc, replace=True)


def _root_daily(conn, run) -> Decimal:
    return results(conn, run)[("FIRM", "ACTUAL")]["daily_natural"]


def _edit_rule(c, uc):
    rule(c, uc, "RATES", cond("book", "equals", "b"))


def _edit_tree(c, uc):
    # a tree edit as the hierarchy trigger makes it: under the structure's lock, taken exclusive
    with c.transaction():
        c.execute("UPDATE dim_hierarchy SET node_name = 'Foreign exchange' WHERE structure_id = 'TRADING' "
                  "AND node_id = 'FX'")
        c.execute("SELECT lock_structure('TRADING', true)")


def _other_run_of_the_date(c, uc):
    snapshot(c, uc)


CHANGES = {
    "a --replace fact load": (_replace_load, "use case \"Project Sterling\" changed", "facts, rules or close"),
    "a rule write": (_edit_rule, "use case \"Project Sterling\" changed", "facts, rules or close"),
    "a tree edit": (_edit_tree, "structure 'TRADING' changed", "an edit of its hierarchy"),
    "a run of the same date": (_other_run_of_the_date, "the runs of use case \"Project Sterling\" for 2025-12-24",
                               "another run"),
}


@pytest.mark.parametrize("level", [IsolationLevel.REPEATABLE_READ, IsolationLevel.SERIALIZABLE],
                         ids=["repeatable read", "serializable"])
@pytest.mark.parametrize("change", CHANGES)
def test_a_snapshot_in_a_transaction_older_than_a_change_is_refused(db_url, conn, change, level):
    uc = trading_use_case(conn)
    make_change, subject, what = CHANGES[change]
    with open_conn(db_url, autocommit=False) as old:
        old.isolation_level = level
        old.execute("SELECT count(*) FROM fact_pnl_entries")  # the transaction's snapshot is taken here
        make_change(conn, uc)
        before = table_counts(conn)
        with pytest.raises(psycopg.errors.SerializationFailure) as refused:
            snapshot(old, uc)
        old.rollback()
        assert table_counts(conn) == before  # nothing written
        message = str(refused.value)
        assert subject in message and what in message and STALE in message, message
        assert "Start a new transaction and try again" in refused.value.diag.message_hint
        run = snapshot(old, uc)  # a new transaction: a snapshot taken after the change
        old.commit()
    assert conn.execute("SELECT status FROM calculation_runs WHERE id = %s", (run,)).fetchone()[0] == "COMPLETED"


def test_the_replaced_facts_are_not_reported_as_fresh(db_url, conn):
    """The reproduction of the issue: a REPEATABLE READ run after a --replace load would be COMPLETED on
    the superseded facts; it is refused, and the next transaction's run reports the new total."""
    uc = trading_use_case(conn)
    with open_conn(db_url, autocommit=False) as old:
        old.isolation_level = IsolationLevel.REPEATABLE_READ
        assert old.execute("SELECT sum(daily_amount) FROM fact_pnl_entries WHERE pnl_date = %s AND "
                           "scenario = 'ACTUAL'", (COB,)).fetchone()[0] == Decimal("1000097.25")
        _replace_load(conn, uc, "-3389423.26")
        with pytest.raises(psycopg.errors.SerializationFailure, match=STALE):
            snapshot(old, uc)
        old.rollback()
        run = snapshot(old, uc)
        old.commit()
    assert _root_daily(conn, run) == Decimal("-3389423.26")
    assert conn.execute("SELECT count(*) FROM calculation_runs").fetchone()[0] == 1


def test_a_snapshot_on_an_old_exported_snapshot_is_refused(db_url, conn):
    uc = trading_use_case(conn)
    with open_conn(db_url, autocommit=False) as exporter, open_conn(db_url, autocommit=False) as importer:
        exporter.isolation_level = importer.isolation_level = IsolationLevel.REPEATABLE_READ
        exported = exporter.execute("SELECT pg_export_snapshot()").fetchone()[0]
        _replace_load(conn, uc)
        importer.execute(f"SET TRANSACTION SNAPSHOT '{exported}'")
        with pytest.raises(psycopg.errors.SerializationFailure, match=STALE):
            snapshot(importer, uc)
        importer.rollback()
        exporter.rollback()
    assert conn.execute("SELECT count(*) FROM calculation_runs").fetchone()[0] == 0


def test_an_exported_snapshot_newer_than_the_changes_is_accepted(db_url, conn):
    uc = trading_use_case(conn)
    _replace_load(conn, uc, "12.00")
    with open_conn(db_url, autocommit=False) as exporter, open_conn(db_url, autocommit=False) as importer:
        exporter.isolation_level = importer.isolation_level = IsolationLevel.REPEATABLE_READ
        exported = exporter.execute("SELECT pg_export_snapshot()").fetchone()[0]
        importer.execute(f"SET TRANSACTION SNAPSHOT '{exported}'")
        run = snapshot(importer, uc)
        importer.commit()
        exporter.rollback()
    assert _root_daily(conn, run) == Decimal("12.00")


def test_read_committed_sees_the_latest_change(db_url, conn):
    """READ COMMITTED takes a snapshot per statement: a transaction older than the load is not stale."""
    uc = trading_use_case(conn)
    with open_conn(db_url, autocommit=False) as mine:
        mine.execute("SELECT count(*) FROM fact_pnl_entries")
        _replace_load(conn, uc, "7.00")
        _edit_rule(conn, uc)
        run = snapshot(mine, uc)
        other = snapshot(mine, uc, EARLIER)  # a second snapshot in the same transaction
        mine.commit()
    assert _root_daily(conn, run) == Decimal("7.00")
    assert header(conn, other)["status"] == "COMPLETED"


def test_changes_of_another_use_case_do_not_make_a_snapshot_stale(db_url, conn):
    uc = trading_use_case(conn)
    another = trading_use_case(conn, name="Another")
    with open_conn(db_url, autocommit=False) as old:
        old.isolation_level = IsolationLevel.REPEATABLE_READ
        old.execute("SELECT 1")
        _replace_load(conn, another)
        _edit_rule(conn, another)
        run = snapshot(old, uc)
        old.commit()
    assert _root_daily(conn, run) == Decimal("1000097.25")

