"""Finished means finished, and tamper evidence (issue 18, items 2 and 3): rows are added to a run only by
the transaction that opened it, while it runs; a run is never inserted finished; delete_use_case's purge
path opens for no setting; DDL on the protected tables is refused outside pnldb's installer; every
COMPLETED run carries a digest chained to the previous run of its use case, which verify checks, naming
the run that was changed, also across purge_runs."""
from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import psycopg
import pytest
from builders import COB, EARLIER, cond, open_conn, rule, snapshot, trading_use_case
from click.testing import CliRunner

from pnldb import api, schema
from pnldb.cli import main

FORGED = psycopg.errors.ObjectNotInPrerequisiteState
DENIED = psycopg.errors.InsufficientPrivilege
ADDED_ONLY_BY = "rows of a run are added only by the snapshot that opened it, while it runs"


def digest(conn, run) -> str:
    return conn.execute("SELECT encode(digest, 'hex') FROM calculation_runs WHERE id = %s", (run,)).fetchone()[0]


def around_the_triggers(conn, statement: str, args=()) -> None:
    """As the superuser, with the row triggers silenced (what the owner cannot do)."""
    with conn.transaction():
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute(statement, args)


def cli(conn, *args):
    return CliRunner().invoke(main, ["--dsn", conn.info.dsn, *args])


# --- finished means finished ---------------------------------------------------------------------------

ROW_OF_A_RUN = {
    "fact_calculated_results": "INSERT INTO fact_calculated_results (calculation_run_id, node_id, scenario, "
                               "daily_natural, daily_adjusted, daily_plug) VALUES (%s, 'FIRM', 'ACTUAL', 1e9, 1e9, 0)",
    "calculation_run_rules": "INSERT INTO calculation_run_rules (calculation_run_id, rule_id, node_id, predicate_json, "
                             "sql_where) VALUES (%s, 999, 'FIRM', '{}', 'true')",
    "calculation_run_inputs": "INSERT INTO calculation_run_inputs (calculation_run_id, load_id, scenario, facts, "
                              "daily_sum, wtd_sum, ytd_sum) "
                              "SELECT %s, max(load_id) + 1, 'ACTUAL', 1, 1, 1, 1 FROM fact_loads",
    "calculation_run_fx": "INSERT INTO calculation_run_fx (calculation_run_id, currency, rate) VALUES (%s, 'XXX', 2)",
}


@pytest.mark.parametrize("table", ROW_OF_A_RUN)
def test_the_owner_cannot_add_a_row_to_a_completed_run_nor_can_an_admin(conn, login, table):
    uc = trading_use_case(conn)
    run = snapshot(conn, uc)
    root = api.run_root(conn, run)
    with pytest.raises(FORGED) as refused:
        conn.execute(ROW_OF_A_RUN[table], (run,))
    assert str(refused.value).startswith(f"{ADDED_ONLY_BY}: INSERT into pnl.{table} for run {run} (COMPLETED)")
    assert refused.value.diag.message_hint == "a finished run is history: take a new snapshot instead"
    admin = login("admin")
    with pytest.raises((DENIED, FORGED)):
        admin.execute(ROW_OF_A_RUN[table], (run,))
    assert api.run_root(conn, run) == root  # one root row per scenario, the real one
    assert conn.execute("SELECT count(*) FROM fact_calculated_results WHERE calculation_run_id = %s AND node_id = "
                        "'FIRM'", (run,)).fetchone() == (3,)
    assert api.verify_run(conn, run)["digest_ok"] is True


def test_a_run_cannot_be_inserted_finished_nor_chained(conn, login):
    uc = trading_use_case(conn)
    for status in ("COMPLETED", "FAILED"):
        with pytest.raises(FORGED, match=f"a run is inserted IN_PROGRESS, without a digest, not {status}"):
            conn.execute("INSERT INTO calculation_runs (pnl_date, use_case_id, run_name, status, executed_by, "
                         "executed_at) VALUES (%s, %s, 'forged', %s, 'ceo', '2020-01-01')", (COB, uc, status))
    with pytest.raises(FORGED, match="without a digest"):
        conn.execute("INSERT INTO calculation_runs (pnl_date, use_case_id, run_name, digest) "
                     "VALUES (%s, %s, 'forged', '\\x00')", (COB, uc))
    with pytest.raises(DENIED):
        login("admin").execute("INSERT INTO calculation_runs (pnl_date, use_case_id, run_name, status) "
                               "VALUES (%s, %s, 'forged', 'COMPLETED')", (COB, uc))
    assert conn.execute("SELECT count(*) FROM calculation_runs").fetchone() == (0,)


def test_an_open_run_takes_rows_only_from_the_transaction_that_opened_it(conn):
    """A header left IN_PROGRESS by another (committed) transaction cannot be filled in or completed later,
    whatever txid the caller sends: the header's is its inserting top-level transaction's."""
    uc = trading_use_case(conn)
    with conn.transaction():
        run, txid, mine = conn.execute(
            "INSERT INTO calculation_runs (pnl_date, use_case_id, run_name, txid) VALUES (%s, %s, 'open', '1') "
            "RETURNING id, txid::text, pg_current_xact_id()::text", (COB, uc)).fetchone()
    assert txid == mine != "1"
    with pytest.raises(FORGED, match=f"for run {run} \\(IN_PROGRESS in another transaction\\)"):
        conn.execute(ROW_OF_A_RUN["fact_calculated_results"], (run,))
    for change in ("status = 'COMPLETED'", "status = 'FAILED'", "txid = pg_current_xact_id()"):
        with pytest.raises(FORGED, match="calculation runs are immutable: UPDATE"):
            conn.execute(f"UPDATE calculation_runs SET {change} WHERE id = %s", (run,))
    # the snapshot's own EXCEPTION block is a subtransaction: it still completes its run
    done = snapshot(conn, uc, name="real")
    assert conn.execute("SELECT status, chain_seq FROM calculation_runs WHERE id = %s", (done,)).fetchone() == (
        "COMPLETED", 1)


def test_a_set_purge_setting_no_longer_opens_the_use_case_delete(conn, login):
    uc = trading_use_case(conn)
    snapshot(conn, uc)
    for statement in ("DELETE FROM use_cases", "DELETE FROM fact_pnl_entries", "DELETE FROM calculation_runs"):
        with conn.transaction():
            conn.execute("SELECT set_config('pnl.purging_use_case', %s, true)", (str(uc),))  # as 0440 once did
            with pytest.raises(FORGED, match=r"(are immutable|are history)"), conn.transaction():
                conn.execute(statement)
    assert conn.execute("SELECT count(*) FROM use_cases").fetchone() == (1,)
    admin = login("admin")
    with pytest.raises(DENIED):
        admin.execute("INSERT INTO use_cases_being_deleted (use_case_id) VALUES (%s)", (uc,))
    # the marker is delete_use_case's: written and emptied inside it
    assert api.delete_use_case(admin, uc)["calculation_runs_purged"] == 1
    assert conn.execute("SELECT count(*) FROM use_cases_being_deleted").fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM calculation_runs").fetchone() == (0,)


# --- the DDL guard ------------------------------------------------------------------------------------------

REFUSED_DDL = [
    "ALTER TABLE calculation_runs DISABLE TRIGGER calculation_runs_are_immutable",
    "ALTER TABLE fact_calculated_results DISABLE TRIGGER ALL",
    "ALTER TABLE calculation_run_fx ALTER COLUMN rate TYPE numeric USING rate * 2",
    "ALTER TABLE fact_pnl_entries ADD COLUMN doubled numeric",
    "DROP TRIGGER close_events_are_append_only ON close_events",
    "DROP TABLE calculation_run_inputs",
    "DROP TABLE close_events CASCADE",
    "CREATE TRIGGER sneak BEFORE INSERT ON calculation_runs FOR EACH ROW EXECUTE FUNCTION runs_are_chained()",
    "CREATE RULE sneak AS ON INSERT TO fact_load_slices DO INSTEAD NOTHING",
    "CREATE OR REPLACE FUNCTION runs_are_immutable() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END'",
    "CREATE OR REPLACE FUNCTION facts_are_immutable() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN OLD; END'",
    "ALTER FUNCTION fact_loads_are_history() RENAME TO gone",
    "DROP FUNCTION run_digest(calculation_runs) CASCADE",
    "ALTER TABLE fact_loads RENAME TO fact_loads_old",
    "ALTER SCHEMA pnl RENAME TO pnl_old",
    "ALTER FUNCTION pnl_guard.refuse_protected_ddl() RENAME TO gone",
]


@pytest.mark.parametrize("statement", REFUSED_DDL)
def test_ddl_on_the_protected_tables_is_refused_outside_the_installer(conn, statement):
    """As the superuser that ran migrate (the test's connection), also with the row triggers silenced."""
    for replica in (False, True):
        with conn.transaction():
            if replica:
                conn.execute("SET LOCAL session_replication_role = replica")
            with pytest.raises(DENIED) as refused, conn.transaction():
                conn.execute(statement)
        assert "refused: pnldb's DDL guard protects the history of schema pnl" in str(refused.value)
    assert conn.execute("SELECT count(*) FROM pg_trigger WHERE tgname = 'calculation_runs_are_immutable' "
                        "AND tgenabled = 'O'").fetchone() == (1,)


def test_the_installer_and_other_tables_pass_the_guard(conn):
    conn.execute("ALTER TABLE metadata_rules DISABLE TRIGGER rule_is_valid")  # not a protected table
    conn.execute("ALTER TABLE metadata_rules ENABLE TRIGGER rule_is_valid")
    conn.execute("CREATE TABLE public.mine (x int)")
    conn.execute("DROP TABLE public.mine")
    assert schema.migrate(conn) == []  # the installer re-creates the triggers of the protected tables
    assert schema.install_sql(conn) == []  # nothing dropped: the deferred chain trigger is kept, not stale
    assert conn.execute("SELECT tgdeferrable, tginitdeferred FROM pg_trigger "
                        "WHERE tgname = 'calculation_runs_are_chained'").fetchall() == [(True, True)]
    guard = conn.execute("SELECT evtname, evtenabled FROM pg_event_trigger ORDER BY 1").fetchall()
    assert guard == [("pnl_guard_ddl", "A"), ("pnl_guard_drop", "A")]  # A: also in replica mode
    owner = conn.execute("SELECT p.proowner::regrole::text FROM pg_proc p "
                         "WHERE p.oid = 'pnl_guard.refuse_protected_ddl'::regproc").fetchone()[0]
    assert owner == conn.execute("SELECT current_user").fetchone()[0]  # a superuser's, as it runs for everyone


def test_dropping_the_whole_schema_is_let_through_and_leaves_the_guard_inert(conn):
    """Destruction, not forgery: nothing of the history is left to be believed."""
    snapshot(conn, trading_use_case(conn))
    conn.execute("DROP SCHEMA pnl CASCADE")
    conn.execute("CREATE TABLE public.after (x int)")
    conn.execute("DROP TABLE public.after")
    schema.create_roles(conn)  # the DBA sets the schema up again: a new schema of that name is guarded again
    schema.migrate(conn)
    conn.execute("SET search_path TO pnl, public")
    with pytest.raises(DENIED, match="DDL guard"):
        conn.execute("ALTER TABLE calculation_runs DISABLE TRIGGER ALL")


# --- tamper evidence -----------------------------------------------------------------------------------------

def test_completed_runs_are_chained_per_use_case_and_failed_runs_are_not(conn):
    uc, other = trading_use_case(conn), trading_use_case(conn, "Other")
    first = snapshot(conn, uc, EARLIER)
    elsewhere = snapshot(conn, other)
    second = snapshot(conn, uc)
    # a stored predicate that no longer validates, written behind the rule trigger's back, fails a snapshot
    conn.execute("ALTER TABLE metadata_rules DISABLE TRIGGER rule_is_valid")
    bad = rule(conn, uc, "RATES", cond("book", "contains", "x"))
    conn.execute("ALTER TABLE metadata_rules ENABLE TRIGGER rule_is_valid")
    failed = snapshot(conn, uc, name="fails")
    conn.execute("DELETE FROM metadata_rules WHERE rule_id = %s", (bad,))
    links = conn.execute("SELECT id, status, chain_seq, previous_run_id, encode(previous_digest, 'hex') "
                         "FROM calculation_runs WHERE use_case_id = %s ORDER BY executed_at", (uc,)).fetchall()
    assert links == [(first, "COMPLETED", 1, None, None), (second, "COMPLETED", 2, first, digest(conn, first)),
                     (failed, "FAILED", None, None, None)]
    assert conn.execute("SELECT chain_seq, previous_run_id FROM calculation_runs WHERE id = %s",
                        (elsewhere,)).fetchone() == (1, None)
    # the digest is the same bytes in any session: its text forms are pinned
    conn.execute("SET TimeZone = 'Asia/Tokyo'")
    conn.execute("SET DateStyle = 'German, DMY'")
    conn.execute("SET bytea_output = 'escape'")
    assert conn.execute("SELECT encode(run_digest(r), 'hex') FROM calculation_runs r WHERE id = %s",
                        (second,)).fetchone()[0] == digest(conn, second)
    chain = api.verify_chain(conn, uc)
    assert chain == {"use_case_id": str(uc), "intact": True, "links_checked": 2, "runs_checked": 2,
                     "unlinked_runs": 0, "head": {"run_id": str(second), "chain_seq": 2,
                                                  "digest": digest(conn, second)},
                     "first_broken": None, "problems": []}


TAMPERING = {
    "a result value": ("UPDATE fact_calculated_results SET daily_adjusted = daily_adjusted * 2 "
                       "WHERE calculation_run_id = %s AND node_id = 'FIRM' AND scenario = 'ACTUAL'", False),
    "a forged result row": ("INSERT INTO fact_calculated_results (calculation_run_id, node_id, parent_node_id, "
                            "scenario, daily_natural) VALUES (%s, 'FORGED', 'FIRM', 'ACTUAL', 1e9)", False),
    "a recorded rule's wording": ("UPDATE calculation_run_rules SET logic_en = 'nothing excluded' "
                                  "WHERE calculation_run_id = %s", True),
    "who took it": ("UPDATE calculation_runs SET executed_by = 'ceo', triggered_by = 'ceo' WHERE id = %s", True),
    "a recorded input": ("UPDATE calculation_run_inputs SET daily_sum = daily_sum + 1 "
                         "WHERE calculation_run_id = %s", True),
}


@pytest.mark.parametrize("what", TAMPERING)
def test_a_superuser_changing_a_run_around_the_triggers_is_named_by_verify(conn, what):
    statement, still_reproduced = TAMPERING[what]
    uc = trading_use_case(conn)
    rule(conn, uc, "EMEA", cond("book", "equals", "a"), "book a is excluded")
    before = snapshot(conn, uc, EARLIER)
    run = snapshot(conn, uc)
    after = snapshot(conn, uc, name="later")
    around_the_triggers(conn, statement, (run,))
    verdict = api.verify_run(conn, run)
    assert (verdict["digest_ok"], verdict["chain_ok"], verdict["reproduced"]) == (False, True, still_reproduced)
    assert api.verify_run(conn, before)["digest_ok"] is True and api.verify_run(conn, after)["digest_ok"] is True
    one = cli(conn, "runs", "verify", str(run))
    assert one.exit_code == 1
    assert (f"run {run}: TAMPERED: its digest is not that of its rows: changed after it completed"
            in one.stderr)
    every = cli(conn, "runs", "verify", "--all", "--use-case", "Project Sterling")
    assert every.exit_code == 1, every.stderr
    assert every.stderr.endswith(
        f"first broken link: run {run} (place 2 of the chain): its digest is not that of its rows: changed after "
        "it completed\n")
    chain = api.verify_chain(conn, uc)
    assert chain["intact"] is False and chain["first_broken"]["run_id"] == str(run)


def test_a_trigger_disabled_by_a_superuser_who_first_disables_the_guard_is_detected_too(conn):
    uc = trading_use_case(conn)
    run = snapshot(conn, uc)
    conn.execute("ALTER EVENT TRIGGER pnl_guard_ddl DISABLE")  # a superuser can: detected, not stopped
    conn.execute("ALTER TABLE fact_calculated_results DISABLE TRIGGER fact_calculated_results_are_immutable")
    conn.execute("UPDATE fact_calculated_results SET daily_natural = 1e9 WHERE calculation_run_id = %s "
                 "AND node_id = 'FIRM' AND scenario = 'ACTUAL'", (run,))
    conn.execute("ALTER TABLE fact_calculated_results ENABLE TRIGGER fact_calculated_results_are_immutable")
    conn.execute("ALTER EVENT TRIGGER pnl_guard_ddl ENABLE ALWAYS")
    verdict = api.verify_run(conn, run)
    assert verdict["digest_ok"] is False and verdict["reproduced"] is False
    assert api.verify_use_case(conn, uc)["first_broken"]["run_id"] == str(run)


def test_a_run_removed_or_rewritten_digest_and_all_breaks_the_link_of_the_next(conn):
    uc = trading_use_case(conn)
    first = snapshot(conn, uc, EARLIER)
    second = snapshot(conn, uc)
    third = snapshot(conn, uc, name="third")
    # rewritten, its own digest recomputed: its successor recorded the old one
    around_the_triggers(conn, "UPDATE calculation_runs SET triggered_by = 'ceo' WHERE id = %s", (second,))
    around_the_triggers(conn, "UPDATE calculation_runs r SET digest = run_digest(r) WHERE id = %s", (second,))
    assert api.verify_run(conn, second)["digest_ok"] is True
    verdict = api.verify_run(conn, third)
    assert (verdict["digest_ok"], verdict["chain_ok"]) == (True, False)
    assert verdict["chain_problem"] == (f"the digest it recorded of run {second} is not that run's digest now: "
                                        f"run {second} was rewritten")
    # removed outright: the place before the next is missing
    around_the_triggers(conn, "DELETE FROM calculation_runs WHERE id = %s", (first,))
    chain = api.verify_chain(conn, uc)
    assert chain["first_broken"] == {"run_id": str(second), "chain_seq": 2, "purged": False,
                                     "problem": "place 1 of the chain, before it, is missing: a run was removed "
                                                "other than by purge_runs"}
    # a COMPLETED header written around the triggers has no place in the chain
    around_the_triggers(conn, "INSERT INTO calculation_runs (pnl_date, use_case_id, run_name, status) "
                              "VALUES (%s, %s, 'forged', 'COMPLETED')", (COB, uc))
    problems = [p["problem"] for p in api.verify_chain(conn, uc)["problems"]]
    assert problems[-1] == ("COMPLETED without a place in the chain or a digest, taken after the chain began: "
                            "written around the triggers")


def test_the_chain_stays_verifiable_across_purge_runs(conn):
    uc = trading_use_case(conn)
    trial = snapshot(conn, uc, EARLIER)
    kept = snapshot(conn, uc)
    assert api.purge_runs(conn, uc, COB)["runs_purged"] == 1
    chain = api.verify_chain(conn, uc)
    assert (chain["intact"], chain["links_checked"], chain["runs_checked"]) == (True, 2, 1)
    assert conn.execute("SELECT previous_run_id FROM calculation_runs WHERE id = %s", (kept,)).fetchone() == (trial,)
    # the last link purged: the next run follows it
    assert api.purge_runs(conn, uc, COB + dt.timedelta(days=1))["runs_purged"] == 1
    after = snapshot(conn, uc)
    assert conn.execute("SELECT chain_seq, previous_run_id FROM calculation_runs WHERE id = %s",
                        (after,)).fetchone() == (3, kept)
    report = api.verify_use_case(conn, uc)
    assert report["intact"] is True and report["chain"]["links_checked"] == 3
    ok = cli(conn, "runs", "verify", "--all", "--use-case", str(uc))
    assert ok.exit_code == 0, ok.stderr
    assert ok.stderr == (f"use case 'Project Sterling': intact: 1 runs, 3 links of the chain; head: run {after} "
                         f"(place 3), digest {digest(conn, after)}\n")
    assert ok.stdout.splitlines()[0].split() == ["PLACE", "RUN", "ID", "COB", "DATE", "RUN", "NAME", "VERIFIED"]
    as_json = cli(conn, "runs", "verify", "--all", "--use-case", "Project Sterling", "--json")
    assert as_json.exit_code == 0
    got = json.loads(as_json.stdout)
    assert (got["intact"], got["first_broken"], [r["run_id"] for r in got["runs"]]) == (True, None, [str(after)])


def test_concurrent_snapshots_of_one_use_case_run_side_by_side_and_chain_in_commit_order(db_url, conn):
    uc = trading_use_case(conn)
    with open_conn(db_url, autocommit=False) as one, open_conn(db_url, autocommit=False) as two:
        one.execute("SET lock_timeout = '2s'")
        two.execute("SET lock_timeout = '2s'")  # waiting on the other would fail here
        taken_first = snapshot(one, uc, EARLIER)
        taken_second = snapshot(two, uc, COB)
        assert one.execute("SELECT status, chain_seq FROM calculation_runs WHERE id = %s",
                           (taken_first,)).fetchone() == ("COMPLETED", None)  # linked as it commits
        two.commit()
        one.commit()
    links = conn.execute("SELECT id, chain_seq, previous_run_id FROM calculation_runs ORDER BY chain_seq").fetchall()
    assert links == [(taken_second, 1, None), (taken_first, 2, taken_second)]
    assert api.verify_chain(conn, uc)["intact"] is True
    # many runs in one transaction chain in the order they were taken
    with conn.transaction():
        runs = [snapshot(conn, uc, COB, name=f"batch {n}") for n in range(3)]
    assert [s for (s,) in conn.execute("SELECT chain_seq FROM calculation_runs WHERE id = ANY (%s) "
                                       "ORDER BY executed_at", (runs,))] == [3, 4, 5]


def test_verify_all_needs_a_use_case_and_no_run(conn):
    uc = trading_use_case(conn)
    run = snapshot(conn, uc)
    for args in (["--all"], ["--use-case", str(uc)], ["--all", "--use-case", str(uc), str(run)], []):
        result = cli(conn, "runs", "verify", *args)
        assert result.exit_code != 0
        assert "RUN_ID" in result.stderr
    assert Decimal(api.run_root(conn, run)["ACTUAL"]["daily_natural"]) is not None


def test_a_run_taken_before_digests_has_none_and_breaks_nothing(conn):
    """As migration 0011 leaves a run taken before it: no place, no digest; the chain begins after it."""
    uc = trading_use_case(conn)
    old = snapshot(conn, uc, EARLIER)
    first = snapshot(conn, uc)
    around_the_triggers(conn, "UPDATE calculation_runs SET chain_seq = NULL, digest = NULL WHERE id = %s", (old,))
    around_the_triggers(conn, "UPDATE calculation_runs SET chain_seq = 1, previous_run_id = NULL, "
                              "previous_digest = NULL WHERE id = %s", (first,))
    around_the_triggers(conn, "UPDATE calculation_runs r SET digest = run_digest(r) WHERE id = %s", (first,))
    verdict = api.verify_run(conn, old)
    assert (verdict["reproduced"], verdict["digest"], verdict["digest_ok"], verdict["chain_ok"]) == (
        True, None, None, None)
    chain = api.verify_chain(conn, uc)
    assert (chain["intact"], chain["unlinked_runs"], chain["links_checked"]) == (True, 1, 1)
    assert api.verify_use_case(conn, uc)["intact"] is True
    result = cli(conn, "runs", "verify", str(old))
    assert result.exit_code == 0
    assert result.stderr.endswith(f"run {old}: no digest (taken before digests were kept)\n")
    assert conn.execute("SELECT chain_seq, previous_run_id FROM calculation_runs WHERE id = %s",
                        (snapshot(conn, uc, name="next"),)).fetchone() == (2, first)


def test_an_operators_snapshot_is_chained_and_the_operator_verifies_it(conn, login):
    uc = trading_use_case(conn)
    operator = login("operator")
    run = snapshot(operator, uc)
    verdict = api.verify_run(operator, run)
    assert (verdict["reproduced"], verdict["digest_ok"], verdict["chain_ok"], verdict["chain_seq"]) == (
        True, True, True, 1)
    assert api.verify_chain(operator, uc)["head"] == {"run_id": str(run), "chain_seq": 1, "digest": digest(conn, run)}
    with pytest.raises(DENIED):
        operator.execute("SELECT * FROM use_cases_being_deleted")


def test_the_guard_lets_every_role_do_ddl_of_its_own(conn, login):
    """An event trigger runs for every role's DDL: an admin's temporary table and a reader's table in a
    schema of its own pass the guard, which refuses only DDL on pnldb's history."""
    admin, reader = login("admin"), login("reader")
    admin.execute("CREATE TEMP TABLE staging (x int)")
    admin.execute("DROP TABLE staging")
    conn.execute("CREATE SCHEMA reporting_sandbox")
    who = reader.execute("SELECT current_user").fetchone()[0]
    conn.execute(f"GRANT CREATE, USAGE ON SCHEMA reporting_sandbox TO {who}")
    reader.execute("CREATE TABLE reporting_sandbox.mine (x int)")
    reader.execute("DROP TABLE reporting_sandbox.mine")
    conn.execute("DROP SCHEMA reporting_sandbox CASCADE")
