"""Fact loads in SQL (contract §6): the rows a transaction inserts form one load, counted per slice; facts are
immutable for everyone, owner included; replace_facts supersedes in the caller's transaction;
purge_superseded_facts removes only what no run read; duplicate_fact_loads and list_loads."""
from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import psycopg
import pytest

from tests.builders import COB, EARLIER, TRADING_TREE, header, snapshot, sql_json, structure, use_case

D = Decimal


def insert(conn, uc, rows, pnl_date=COB):
    """rows: (scenario, category_code, daily, wtd, ytd[, attributes]) as a DBA's plain INSERT, no load_id."""
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO fact_pnl_entries (use_case_id, pnl_date, scenario, category_code, daily_amount, wtd_amount, "
            "ytd_amount, attributes) VALUES (%s, %s, %s, %s, %s, %s, %s, %s::jsonb)",
            [(uc, pnl_date, r[0], r[1], D(r[2]), D(r[3]), D(r[4]), json.dumps(r[5] if len(r) > 5 else {}))
             for r in rows])


def load(conn, uc, rows, pnl_date=COB):
    """One transaction of plain INSERTs: one load; returns its id."""
    with conn.transaction():
        insert(conn, uc, rows, pnl_date)
        return conn.execute("SELECT load_id FROM fact_loads WHERE txid = pg_current_xact_id() AND use_case_id = %s",
                            (uc,)).fetchone()[0]


def loads(conn):
    return conn.execute("SELECT load_id, use_case_id, rows FROM fact_loads ORDER BY load_id").fetchall()


def slices(conn, uc=None):
    """{(load_id, pnl_date, scenario): (rows, daily, wtd, ytd, current, purged)}"""
    return {(r[0], r[1], r[2]): r[3:] for r in conn.execute(
        """SELECT load_id, pnl_date, scenario, rows, daily_sum, wtd_sum, ytd_sum, superseded_at IS NULL,
                  purged_at IS NOT NULL
           FROM fact_load_slices WHERE %(uc)s::uuid IS NULL OR use_case_id = %(uc)s""", {"uc": uc})}


def current_sums(conn, uc, pnl_date=COB):
    """{scenario: (count, sum daily)} over the current facts, read from the facts themselves."""
    return {r[0]: r[1:] for r in conn.execute(
        """SELECT f.scenario, count(*), sum(f.daily_amount) FROM fact_pnl_entries f
           JOIN fact_load_slices s USING (load_id, pnl_date, scenario)
           WHERE f.use_case_id = %s AND f.pnl_date = %s AND s.superseded_at IS NULL GROUP BY 1""", (uc, pnl_date))}


@pytest.fixture
def uc(conn):
    structure(conn, "TRADING", TRADING_TREE)
    return use_case(conn, "Project Sterling", "TRADING")


FIRST = [("ACTUAL", "RATES_1", "100.00", "300.00", "1000.00", {"book": "a"}),
         ("ACTUAL", "FX_1", "-40.25", "80.00", "400.10", {"book": "b"}),
         ("PRIOR", "RATES_1", "90.00", "200.00", "900.00", {"book": "a"})]


# --------------------------------------------------------------------------------------------------
# a DBA's INSERTs form loads

def test_the_rows_one_transaction_inserts_form_one_load_counted_per_slice(conn, uc):
    with conn.transaction():
        insert(conn, uc, FIRST[:2])
        insert(conn, uc, FIRST[2:])
        insert(conn, uc, [("ACTUAL", "EQ_1", "1.01", "2.02", "3.03")], pnl_date=EARLIER)
    assert conn.execute("SELECT count(DISTINCT load_id) FROM fact_pnl_entries").fetchone()[0] == 1
    (load_id, owner, rows), = loads(conn)
    assert (owner, rows) == (uc, 4)
    assert conn.execute("SELECT loaded_by, source FROM fact_loads").fetchone() == (conn.info.user, None)
    assert slices(conn) == {
        (load_id, COB, "ACTUAL"): (2, D("59.75"), D("380.00"), D("1400.10"), True, False),
        (load_id, COB, "PRIOR"): (1, D("90.00"), D("200.00"), D("900.00"), True, False),
        (load_id, EARLIER, "ACTUAL"): (1, D("1.01"), D("2.02"), D("3.03"), True, False),
    }


def test_two_use_cases_in_one_transaction_are_two_loads_and_two_transactions_are_two_loads(conn, uc):
    other = use_case(conn, "Other", "TRADING")
    with conn.transaction():
        insert(conn, uc, FIRST)
        insert(conn, other, FIRST[:1])
    first = loads(conn)
    assert [(u, rows) for _, u, rows in first] == [(uc, 3), (other, 1)]
    load(conn, uc, FIRST[:1], pnl_date=EARLIER)
    assert [(u, rows) for _, u, rows in loads(conn)] == [(uc, 3), (other, 1), (uc, 1)]
    # each fact belongs to the load of its own use case
    assert conn.execute("SELECT count(*) FROM fact_pnl_entries f JOIN fact_loads l USING (load_id) "
                        "WHERE l.use_case_id <> f.use_case_id").fetchone()[0] == 0


def test_facts_are_immutable_for_the_owner_too(conn, uc):
    load(conn, uc, FIRST)
    before = conn.execute("SELECT * FROM fact_pnl_entries ORDER BY id").fetchall()
    for statement in ("UPDATE fact_pnl_entries SET daily_amount = 0",
                      "UPDATE fact_pnl_entries SET attributes = '{}' WHERE category_code = 'FX_1'",
                      "DELETE FROM fact_pnl_entries WHERE category_code = 'FX_1'",
                      "TRUNCATE fact_pnl_entries"):
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState) as info:
            conn.execute(statement)
        assert "facts are immutable" in str(info.value)
        assert "--replace" in info.value.diag.message_hint
    assert conn.execute("SELECT * FROM fact_pnl_entries ORDER BY id").fetchall() == before


def test_adding_to_a_committed_load_is_refused(conn, uc):
    first = load(conn, uc, FIRST)
    before = slices(conn)
    for pnl_date in (EARLIER, COB):  # a slice the load does not have yet, and one it has
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState) as info:
            conn.execute("INSERT INTO fact_pnl_entries (use_case_id, load_id, pnl_date, scenario, category_code, "
                         "daily_amount, wtd_amount, ytd_amount) VALUES (%s, %s, %s, 'ACTUAL', 'FX_1', 1, 1, 1)",
                         (uc, first, pnl_date))
        assert str(info.value).startswith(f"fact load {first} is closed")
    assert loads(conn) == [(first, uc, 3)] and slices(conn) == before
    assert conn.execute("SELECT count(*) FROM fact_pnl_entries").fetchone()[0] == 3


def test_a_forged_load_setting_gains_nothing(conn, uc):
    """The trigger keeps the transaction's load in a setting; naming a committed load in it is refused."""
    first = load(conn, uc, FIRST)
    before = slices(conn)
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match=f"fact load {first} is closed"), \
            conn.transaction():
        conn.execute("SELECT set_config('pnl.transaction_fact_load', pg_current_xact_id()::text || '/' || %s || '/' "
                     "|| %s, true)", (str(uc), first))
        insert(conn, uc, FIRST)
    assert slices(conn) == before and loads(conn) == [(first, uc, 3)]


# --------------------------------------------------------------------------------------------------
# replace_facts

def test_replace_facts_supersedes_the_slice_in_the_callers_transaction(conn, uc):
    first = load(conn, uc, FIRST)
    with conn.transaction():
        done = sql_json(conn, "SELECT replace_facts(%s, %s, 'ACTUAL', 'corrected feed')::text", (uc, COB))
        insert(conn, uc, [("ACTUAL", "RATES_1", "5.00", "5.00", "5.00")])
    second = done["load_id"]
    assert done == {"load_id": second, "use_case_id": str(uc), "pnl_date": str(COB), "scenarios": ["ACTUAL"],
                    "superseded": [{"load_id": first, "scenario": "ACTUAL", "rows": 2}], "facts_superseded": 2}
    assert second != first
    assert conn.execute("SELECT source, rows FROM fact_loads WHERE load_id = %s", (second,)).fetchone() == (
        "corrected feed", 1)
    state = slices(conn)
    assert state[first, COB, "ACTUAL"][4:] == (False, False)
    assert state[first, COB, "PRIOR"][4:] == (True, False)  # the other scenario stays current
    assert state[second, COB, "ACTUAL"] == (1, D("5.00"), D("5.00"), D("5.00"), True, False)
    assert conn.execute("SELECT superseded_by FROM fact_load_slices WHERE load_id = %s AND scenario = 'ACTUAL'",
                        (first,)).fetchone()[0] == second
    assert conn.execute("SELECT count(*) FROM fact_pnl_entries").fetchone()[0] == 4  # nothing deleted
    assert current_sums(conn, uc) == {"ACTUAL": (1, D("5.00")), "PRIOR": (1, D("90.00"))}


def test_a_replacement_that_inserts_nothing_empties_the_slice(conn, uc):
    load(conn, uc, FIRST)
    with conn.transaction():
        done = sql_json(conn, "SELECT replace_facts(%s, %s)::text", (uc, COB))
    assert done["scenarios"] == ["ACTUAL", "PRIOR"] and done["facts_superseded"] == 3
    assert current_sums(conn, uc) == {}
    assert conn.execute("SELECT count(*) FROM fact_pnl_entries").fetchone()[0] == 3  # kept, not current
    with pytest.raises(psycopg.errors.NoDataFound) as info:
        snapshot(conn, uc)
    assert "has no ACTUAL facts for 2025-12-24" in str(info.value)


def test_a_rolled_back_replacement_leaves_the_slice_as_it_was(conn, uc):
    first = load(conn, uc, FIRST)
    before = slices(conn)
    with pytest.raises(psycopg.errors.CheckViolation), conn.transaction():
        conn.execute("SELECT replace_facts(%s, %s, 'ACTUAL')", (uc, COB))
        insert(conn, uc, [("BUDGET", "RATES_1", "5.00", "5.00", "5.00")])
    assert slices(conn) == before and loads(conn) == [(first, uc, 3)]


# --------------------------------------------------------------------------------------------------
# purge_superseded_facts

def test_purge_removes_only_superseded_slices_that_no_run_read(conn, uc):
    first = load(conn, uc, FIRST)  # COB ACTUAL and PRIOR
    early = load(conn, uc, FIRST[:1], pnl_date=EARLIER)
    run = snapshot(conn, uc)  # reads the first load's COB slices
    with conn.transaction():
        conn.execute("SELECT replace_facts(%s, %s)", (uc, COB))
        conn.execute("SELECT replace_facts(%s, %s)", (uc, EARLIER))
        insert(conn, uc, FIRST[2:])
        insert(conn, uc, FIRST[:1], pnl_date=EARLIER)
    total = conn.execute("SELECT count(*) FROM fact_pnl_entries").fetchone()[0]
    assert total == 6

    # superseded just now: nothing is older than an hour ago
    hour_ago = conn.execute("SELECT now() - interval '1 hour'").fetchone()[0]
    counts = sql_json(conn, "SELECT purge_superseded_facts(%s)::text", (hour_ago,))
    assert dt.datetime.fromisoformat(counts.pop("older_than")) == hour_ago
    assert counts == {"slices_purged": 0, "facts_purged": 0, "slices_kept_for_runs": 0,
                      "slices_kept_frozen": 0}

    counts = sql_json(conn, "SELECT purge_superseded_facts(now() + interval '1 minute')::text")
    assert {k: v for k, v in counts.items() if k != "older_than"} == {
        "slices_purged": 1, "facts_purged": 1, "slices_kept_for_runs": 2, "slices_kept_frozen": 0}
    state = slices(conn, uc)
    assert state[early, EARLIER, "ACTUAL"][4:] == (False, True)  # superseded, no run read it: purged
    assert state[first, COB, "ACTUAL"][4:] == (False, False)  # read by the run: kept
    assert state[first, COB, "PRIOR"][4:] == (False, False)
    assert state[early, EARLIER, "ACTUAL"][:4] == (1, D("100.00"), D("300.00"), D("1000.00"))  # the record stays
    assert conn.execute("SELECT count(*) FROM fact_pnl_entries WHERE load_id = %s", (early,)).fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM fact_pnl_entries WHERE load_id = %s", (first,)).fetchone()[0] == 3
    assert conn.execute("SELECT count(*) FROM fact_pnl_entries").fetchone()[0] == total - 1
    # the run still finds, counts and sums what it read
    assert conn.execute(
        """SELECT i.facts = count(f.id) AND i.daily_sum = sum(f.daily_amount)
           FROM calculation_run_inputs i JOIN fact_pnl_entries f ON f.load_id = i.load_id
            AND f.scenario = i.scenario AND f.pnl_date = %s
           WHERE i.calculation_run_id = %s GROUP BY i.load_id, i.scenario, i.facts, i.daily_sum""",
        (COB, run)).fetchall() == [(True,), (True,)]
    assert header(conn, run)["status"] == "COMPLETED"

    # purging again finds nothing new; a purged slice cannot be revived nor its record changed
    again = sql_json(conn, "SELECT purge_superseded_facts(now() + interval '1 minute')::text")
    assert (again["slices_purged"], again["facts_purged"], again["slices_kept_for_runs"]) == (0, 0, 2)
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
        conn.execute("UPDATE fact_load_slices SET purged_at = NULL WHERE load_id = %s", (early,))


def test_purge_needs_older_than(conn):
    with pytest.raises(psycopg.errors.NullValueNotAllowed):
        conn.execute("SELECT purge_superseded_facts(NULL)")


def test_delete_use_case_removes_its_facts_loads_and_slices(conn, uc):
    other = use_case(conn, "Other", "TRADING")
    load(conn, uc, FIRST)
    snapshot(conn, uc)
    with conn.transaction():
        conn.execute("SELECT replace_facts(%s, %s)", (uc, COB))
        insert(conn, uc, FIRST[:1])
    kept = load(conn, other, FIRST)
    summary = sql_json(conn, "SELECT delete_use_case(%s)::text", (uc,))
    assert summary["facts_purged"] == 4
    assert loads(conn) == [(kept, other, 3)]
    assert set(slices(conn)) == {(kept, COB, "ACTUAL"), (kept, COB, "PRIOR")}
    assert conn.execute("SELECT DISTINCT use_case_id FROM fact_pnl_entries").fetchall() == [(other,)]


# --------------------------------------------------------------------------------------------------
# duplicate_fact_loads

def duplicates(conn, load_id):
    return conn.execute("SELECT pnl_date, scenario, duplicate_of, loaded_by, source, rows "
                        "FROM duplicate_fact_loads(%s)", (load_id,)).fetchall()


def test_a_load_with_the_rows_of_a_current_load_is_a_duplicate_in_any_row_order(conn, uc):
    first = load(conn, uc, FIRST)
    second = load(conn, uc, list(reversed(FIRST)))
    assert duplicates(conn, second) == [(COB, "ACTUAL", first, conn.info.user, None, 2),
                                        (COB, "PRIOR", first, conn.info.user, None, 1)]
    assert duplicates(conn, first) == [(COB, "ACTUAL", second, conn.info.user, None, 2),
                                       (COB, "PRIOR", second, conn.info.user, None, 1)]


def test_equal_signatures_with_other_rows_are_no_duplicate(conn, uc):
    # same count and sums per slice, other facts: the exact compare tells them apart
    base = [("ACTUAL", "RATES_1", "1.00", "1.00", "1.00", {"book": "a"}),
            ("ACTUAL", "RATES_1", "1.00", "1.00", "1.00", {"book": "a"}),
            ("ACTUAL", "FX_1", "1.00", "1.00", "1.00", {"book": "b"})]
    first = load(conn, uc, base)
    others = {
        "multiplicity": [base[0], base[2], base[2]],
        "attributes": [base[0], base[0], ("ACTUAL", "FX_1", "1.00", "1.00", "1.00", {"book": "c"})],
        "category": [base[0], base[0], ("ACTUAL", "RATES_2", "1.00", "1.00", "1.00", {"book": "b"})],
        "measures swapped": [base[0], ("ACTUAL", "RATES_1", "0.50", "1.50", "1.00", {"book": "a"}),
                             ("ACTUAL", "FX_1", "1.50", "0.50", "1.00", {"book": "b"})],
    }
    for name, rows in others.items():
        with conn.transaction():
            insert(conn, uc, rows)
            mine = conn.execute("SELECT load_id FROM fact_loads WHERE txid = pg_current_xact_id()").fetchone()[0]
            # the signatures match: the same rows and sums as the first load's slice
            assert conn.execute(
                "SELECT (a.rows, a.daily_sum, a.wtd_sum, a.ytd_sum) = (b.rows, b.daily_sum, b.wtd_sum, b.ytd_sum) "
                "FROM fact_load_slices a, fact_load_slices b WHERE a.load_id = %s AND b.load_id = %s",
                (first, mine)).fetchone() == (True,), name
            assert duplicates(conn, mine) == [], name
            raise psycopg.Rollback()
    assert duplicates(conn, load(conn, uc, [base[2], base[0], base[1]])) == [
        (COB, "ACTUAL", first, conn.info.user, None, 3)]


def test_legacy_amount_counts_in_the_comparison(conn, uc):
    first = load(conn, uc, FIRST[:1])
    with conn.transaction():
        conn.execute("INSERT INTO fact_pnl_entries (use_case_id, pnl_date, scenario, category_code, daily_amount, "
                     "wtd_amount, ytd_amount, amount, attributes) VALUES (%s, %s, 'ACTUAL', 'RATES_1', 100, 300, "
                     "1000, 99, '{\"book\": \"a\"}')", (uc, COB))
        mine = conn.execute("SELECT load_id FROM fact_loads WHERE txid = pg_current_xact_id()").fetchone()[0]
        assert duplicates(conn, mine) == []
    assert duplicates(conn, load(conn, uc, FIRST[:1])) == [(COB, "ACTUAL", first, conn.info.user, None, 1)]


def test_superseded_loads_other_slices_and_use_cases_are_no_duplicates(conn, uc):
    other = use_case(conn, "Other", "TRADING")
    load(conn, other, FIRST)  # another use case
    load(conn, uc, FIRST, pnl_date=EARLIER)  # another date
    old = load(conn, uc, FIRST)
    with conn.transaction():
        conn.execute("SELECT replace_facts(%s, %s)", (uc, COB))
        insert(conn, uc, FIRST)
        mine = conn.execute("SELECT load_id FROM fact_loads WHERE txid = pg_current_xact_id() AND use_case_id = %s",
                            (uc,)).fetchone()[0]
        assert mine != old and duplicates(conn, mine) == []  # the load it equals was superseded by it


# --------------------------------------------------------------------------------------------------
# list_loads

def test_list_loads_shows_current_and_superseded_slices_newest_first(conn, uc):
    first = load(conn, uc, FIRST)
    early = load(conn, uc, FIRST[:1], pnl_date=EARLIER)
    with conn.transaction():
        conn.execute("SELECT replace_facts(%s, %s, 'ACTUAL', 'fix.csv')", (uc, COB))
        insert(conn, uc, FIRST[:1])
        second = conn.execute("SELECT load_id FROM fact_loads WHERE txid = pg_current_xact_id()").fetchone()[0]
    stamp = {r[0]: r[1] for r in conn.execute(
        "SELECT load_id, to_char(loaded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US') || '+00:00' "
        "FROM fact_loads")}
    superseded_at = conn.execute(
        "SELECT to_char(superseded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US') || '+00:00' "
        "FROM fact_load_slices WHERE superseded_at IS NOT NULL").fetchone()[0]
    me = conn.info.user

    def slice_(date, scenario, rows, by=None, at=None):
        return {"pnl_date": str(date), "scenario": scenario, "rows": rows, "current": by is None,
                "superseded_at": at, "superseded_by": by, "purged_at": None}

    listed = sql_json(conn, "SELECT list_loads(%s)::text", (uc,))
    assert listed == {
        "use_case_id": str(uc), "use_case_name": "Project Sterling",
        "loads": [
            {"load_id": second, "loaded_at": stamp[second], "loaded_by": me, "source": "fix.csv", "rows": 1,
             "slices": [slice_(COB, "ACTUAL", 1)]},
            {"load_id": early, "loaded_at": stamp[early], "loaded_by": me, "source": None, "rows": 1,
             "slices": [slice_(EARLIER, "ACTUAL", 1)]},
            {"load_id": first, "loaded_at": stamp[first], "loaded_by": me, "source": None, "rows": 3,
             "slices": [slice_(COB, "ACTUAL", 2, second, superseded_at), slice_(COB, "PRIOR", 1)]},
        ],
        "filters": {"use_case_id": str(uc), "pnl_date": None}}

    of_earlier = sql_json(conn, "SELECT list_loads(%s, %s)::text", (uc, EARLIER))
    assert [x["load_id"] for x in of_earlier["loads"]] == [early]
    assert of_earlier["filters"] == {"use_case_id": str(uc), "pnl_date": str(EARLIER)}
    # a load that emptied a slice of the date is listed for it, without slices of its own
    with conn.transaction():
        conn.execute("SELECT replace_facts(%s, %s)", (uc, EARLIER))
        emptied = conn.execute("SELECT load_id FROM fact_loads WHERE txid = pg_current_xact_id()").fetchone()[0]
    of_earlier = sql_json(conn, "SELECT list_loads(%s, %s)::text", (uc, EARLIER))
    assert [(x["load_id"], x["rows"], len(x["slices"])) for x in of_earlier["loads"]] == [
        (emptied, 0, 0), (early, 1, 1)]
    assert of_earlier["loads"][1]["slices"][0]["superseded_by"] == emptied
    assert sql_json(conn, "SELECT list_loads(%s, %s)::text", (uc, COB - dt.timedelta(days=9)))["loads"] == []


def test_list_loads_of_an_unknown_use_case_is_an_error(conn):
    with pytest.raises(psycopg.errors.NoDataFound):
        conn.execute("SELECT list_loads('00000000-0000-0000-0000-000000000000')")


def test_operators_list_loads_and_readers_do_not(conn, uc, login):
    load(conn, uc, FIRST)
    operator = login("operator")
    assert len(sql_json(operator, "SELECT list_loads(%s)::text", (uc,))["loads"]) == 1
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        login("reader").execute("SELECT list_loads(%s)", (uc,))
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        operator.execute("SELECT purge_superseded_facts(now())")
