"""delete_use_case (contract §3): exact summary, nothing left behind, and safe against concurrent writers."""
from __future__ import annotations

import json

import psycopg
import pytest

from tests.builders import (
    COB,
    NO_SUCH,
    TABLE_COUNTS,
    cond,
    facts,
    in_thread,
    open_conn,
    rule,
    snapshot,
    sql_json,
    table_counts,
    trading_use_case,
    wait_until_blocked,
)


def removed(before: dict, after: dict) -> dict:
    return {name: before[name] - after[name] for name in before}


def summary_as_removed(summary: dict) -> dict:
    """The summary's counts in TABLE_COUNTS terms (the run rules go with their runs, uncounted)."""
    return {"rules": summary["rules_purged"], "legacy_runs": summary["legacy_runs_purged"],
            "calculation_runs": summary["calculation_runs_purged"], "facts": summary["facts_purged"],
            "results": summary["results_purged"]}


def legacy_run(conn, use_case_id, n_results: int = 2):
    """A pre-4.2 run header with result rows hanging off it by run_id."""
    run = conn.execute("INSERT INTO use_case_runs (use_case_id, pnl_date) VALUES (%s, %s) RETURNING run_id",
                       (use_case_id, COB)).fetchone()[0]
    for i in range(n_results):
        conn.execute("INSERT INTO fact_calculated_results (run_id, node_id, scenario, daily_natural, daily_adjusted, "
                     "daily_plug) VALUES (%s, %s, 'ACTUAL', 1, 1, 0)", (run, f"LEGACY_{i}"))
    return run


def assert_nothing_left_of(conn, use_case_id) -> None:
    for table in ("use_cases", "metadata_rules", "fact_pnl_entries", "use_case_runs", "calculation_runs"):
        left = conn.execute(f"SELECT count(*) FROM {table} WHERE use_case_id = %s", (use_case_id,)).fetchone()[0]
        assert left == 0, table
    orphans = {
        "results without a run": """SELECT count(*) FROM fact_calculated_results x
            WHERE NOT EXISTS (SELECT 1 FROM calculation_runs r WHERE r.id = x.calculation_run_id)
              AND NOT EXISTS (SELECT 1 FROM use_case_runs l WHERE l.run_id = x.run_id)""",
        "run rules without a run": """SELECT count(*) FROM calculation_run_rules rr
            WHERE NOT EXISTS (SELECT 1 FROM calculation_runs r WHERE r.id = rr.calculation_run_id)""",
        "results of a deleted run": """SELECT count(*) FROM fact_calculated_results x
            WHERE x.calculation_run_id IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM calculation_runs r WHERE r.id = x.calculation_run_id)""",
    }
    for what, query in orphans.items():
        assert conn.execute(query).fetchone()[0] == 0, what


@pytest.fixture
def sterling(conn):
    uc = trading_use_case(conn)
    rule(conn, uc, "FX_1", cond("book", "equals", "a"))
    rule(conn, uc, "EQ", cond("book", "in", ["a", "b"]))
    snapshot(conn, uc)
    snapshot(conn, uc)
    legacy_run(conn, uc)
    return uc


@pytest.fixture
def bystander(conn, sterling):
    """Another use case on the same structure, with a rule, facts, a run and a legacy run: must survive."""
    uc = trading_use_case(conn, "Bystander")
    rule(conn, uc, "FX_1", cond("book", "equals", "a"))
    snapshot(conn, uc)
    legacy_run(conn, uc, 1)
    return uc


def delete(conn, use_case_id) -> dict:
    return sql_json(conn, "SELECT delete_use_case(%s)::text", (use_case_id,))


BYSTANDER = {"rules": 1, "legacy_runs": 1, "calculation_runs": 1, "facts": 10, "results": 31, "run_rules": 1}


def test_summary_is_exactly_the_contract_shape_and_counts(conn, sterling, bystander):
    before = table_counts(conn)
    summary = delete(conn, sterling)
    assert summary == {
        "deleted_use_case": str(sterling),
        "rules_purged": 2,
        "legacy_runs_purged": 1,
        "calculation_runs_purged": 2,
        "facts_purged": 10,
        "total_items_deleted": 2 + 1 + 2 + 10,
        "results_purged": 2 * 30 + 2,  # two calculation runs of 10 nodes x 3 scenarios, plus 2 legacy rows
        "message": "Use case 'Project Sterling' and all related data deleted",
    }
    after = table_counts(conn)
    assert removed(before, after) == {**summary_as_removed(summary), "run_rules": 2 * 2}
    assert_nothing_left_of(conn, sterling)
    # the bystander is whole
    assert after == BYSTANDER
    assert conn.execute("SELECT name FROM use_cases").fetchall() == [("Bystander",)]


def test_a_result_row_linked_to_both_kinds_of_run_counts_once(conn, sterling):
    run = conn.execute("SELECT id FROM calculation_runs LIMIT 1").fetchone()[0]
    legacy = conn.execute("SELECT run_id FROM use_case_runs").fetchone()[0]
    with conn.transaction():  # around the triggers, as a superuser: a finished run takes no rows (issue 18)
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute("INSERT INTO fact_calculated_results (run_id, calculation_run_id, node_id, scenario) "
                     "VALUES (%s, %s, 'BOTH', 'ACTUAL')", (legacy, run))
    before = table_counts(conn)
    summary = delete(conn, sterling)
    assert summary["results_purged"] == 63 == removed(before, table_counts(conn))["results"]


def test_a_use_case_with_nothing_under_it(conn, sterling):
    bare = conn.execute("INSERT INTO use_cases (name, structure_id) VALUES ('O''Brien''s book', 'TRADING') "
                        "RETURNING use_case_id").fetchone()[0]
    assert delete(conn, bare) == {
        "deleted_use_case": str(bare), "rules_purged": 0, "legacy_runs_purged": 0, "calculation_runs_purged": 0,
        "facts_purged": 0, "total_items_deleted": 0, "results_purged": 0,
        "message": "Use case 'O'Brien's book' and all related data deleted"}


def test_an_unknown_use_case_is_an_error_and_deletes_nothing(conn, sterling):
    before = table_counts(conn)
    with pytest.raises(psycopg.errors.NoDataFound) as caught:
        delete(conn, NO_SUCH)
    assert caught.value.diag.message_primary == f"unknown use case {NO_SUCH}"
    with pytest.raises(psycopg.errors.NullValueNotAllowed):
        conn.execute("SELECT delete_use_case(NULL)")
    assert table_counts(conn) == before


def test_footprint_counts_what_a_delete_would_remove_and_changes_nothing(conn, sterling, bystander):
    before = table_counts(conn)
    footprint = sql_json(conn, "SELECT use_case_footprint(%s)::text", (sterling,))
    assert footprint == {"use_case_id": str(sterling), "use_case_name": "Project Sterling", "rules": 2,
                         "legacy_runs": 1, "calculation_runs": 2, "facts": 10, "total_items": 15, "results": 62}
    assert table_counts(conn) == before
    summary = delete(conn, sterling)
    assert [summary[k] for k in ("rules_purged", "legacy_runs_purged", "calculation_runs_purged", "facts_purged",
                                 "total_items_deleted", "results_purged")] == \
        [footprint[k] for k in ("rules", "legacy_runs", "calculation_runs", "facts", "total_items", "results")]
    with pytest.raises(psycopg.errors.NoDataFound, match=f"unknown use case {NO_SUCH}"):
        conn.execute("SELECT use_case_footprint(%s)", (NO_SUCH,))


def test_the_contract_calls_delete_rows_of_immutable_runs_only_through_this_path(conn, sterling):
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
        conn.execute("DELETE FROM calculation_runs WHERE use_case_id = %s", (sterling,))
    delete(conn, sterling)
    assert_nothing_left_of(conn, sterling)


# --- concurrency --------------------------------------------------------------------------------------------

def add_calculation_result(c, use_case_id):
    # A finished run takes no rows (issue 18): a superuser around the triggers, holding the key share lock
    # on the run that the foreign key's check would take.
    run = c.execute("SELECT id FROM calculation_runs WHERE use_case_id = %s ORDER BY executed_at LIMIT 1 "
                    "FOR KEY SHARE", (use_case_id,)).fetchone()[0]
    c.execute("SET LOCAL session_replication_role = replica")
    c.execute("INSERT INTO fact_calculated_results (calculation_run_id, node_id, scenario) "
              "VALUES (%s, 'LATE', 'ACTUAL')", (run,))


WRITERS = {
    "snapshot": lambda c, uc: snapshot(c, uc, name="concurrent"),
    "rule": lambda c, uc: rule(c, uc, "RATES", cond("book", "not_equals", "b")),
    "facts": lambda c, uc: facts(c, uc, [("ACTUAL", "EQ_1", "1", "1", "1", {}), ("PRIOR", "EQ_1", "1", "1", "1", {})]),
    "legacy run": lambda c, uc: legacy_run(c, uc, 3),
    "result under an existing run": add_calculation_result,
}


@pytest.mark.parametrize("writer", WRITERS)
def test_delete_waits_for_a_concurrent_writer_and_counts_what_it_committed(db_url, conn, sterling, bystander, writer):
    """Connection 1 writes under the use case and holds its transaction open; connection 2's delete must
    wait for it, then remove and count everything, including what connection 1 committed."""
    with open_conn(db_url, autocommit=False) as writer_conn, open_conn(db_url, autocommit=True) as deleter:
        WRITERS[writer](writer_conn, sterling)
        at_commit = table_counts(writer_conn)  # what will exist once connection 1 commits
        thread, outcome = in_thread(lambda: delete(deleter, sterling))
        wait_until_blocked(conn, deleter.info.backend_pid, thread)
        writer_conn.commit()
        thread.join(timeout=30)
        assert not thread.is_alive()
    assert "error" not in outcome, outcome.get("error")
    summary = outcome["value"]
    after = table_counts(conn)
    really_removed = removed(at_commit, after)
    assert summary_as_removed(summary) == {k: v for k, v in really_removed.items() if k != "run_rules"}
    assert summary["total_items_deleted"] == sum(really_removed[k] for k in ("rules", "legacy_runs",
                                                                              "calculation_runs", "facts"))
    assert_nothing_left_of(conn, sterling)
    # only the bystander is left
    assert after == BYSTANDER
    if writer == "snapshot":
        assert summary["calculation_runs_purged"] == 3 and summary["results_purged"] == 3 * 30 + 2


def test_under_repeatable_read_the_race_is_a_serialization_failure_never_a_wrong_summary(db_url, conn, sterling):
    with open_conn(db_url, autocommit=False) as writer_conn, open_conn(db_url, autocommit=False) as deleter:
        snapshot(writer_conn, sterling, name="concurrent")
        deleter.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        thread, outcome = in_thread(lambda: delete(deleter, sterling))
        wait_until_blocked(conn, deleter.info.backend_pid, thread)
        writer_conn.commit()
        thread.join(timeout=30)
        deleter.rollback()
    assert isinstance(outcome.get("error"), psycopg.errors.SerializationFailure)
    assert table_counts(conn)["calculation_runs"] == 3  # nothing deleted; a retry sees and counts all three
    assert delete(conn, sterling)["calculation_runs_purged"] == 3


def test_a_snapshot_waiting_on_a_delete_fails_cleanly_once_the_use_case_is_gone(db_url, conn, sterling):
    with open_conn(db_url, autocommit=False) as deleter, open_conn(db_url, autocommit=True) as snapshotter:
        summary = delete(deleter, sterling)  # holds the use case row until commit
        thread, outcome = in_thread(lambda: snapshot(snapshotter, sterling, name="too late"))
        wait_until_blocked(conn, snapshotter.info.backend_pid, thread)
        deleter.commit()
        thread.join(timeout=30)
    assert summary["calculation_runs_purged"] == 2
    assert isinstance(outcome.get("error"), psycopg.errors.NoDataFound)
    assert f"unknown use case {sterling}" in str(outcome["error"])
    assert_nothing_left_of(conn, sterling)
    assert table_counts(conn) == {k: 0 for k in TABLE_COUNTS}


def test_summary_json_text_is_what_a_dba_sees(conn, sterling):
    text = conn.execute("SELECT delete_use_case(%s)::text", (sterling,)).fetchone()[0]
    assert json.loads(text)["message"] == "Use case 'Project Sterling' and all related data deleted"
