"""Runs under abuse (issue 19, item 5 and the run inputs of item 7): default names that always find a free
name, FAILED runs that do not hold their name, the cap on runs per use case and date, purge_runs (trial
and FAILED runs only, recorded in close_events, admins only, the one way past the runs' immutability),
and run names, triggered_by and COB dates that are refused."""
from __future__ import annotations

import datetime as dt
import json

import psycopg
import pytest
from click.testing import CliRunner

from pnldb import api
from pnldb.cli import main
from tests.builders import COB, EARLIER, NO_SUCH, facts, header, open_conn, snapshot, sql_json, trading_use_case

LATER = COB + dt.timedelta(days=1)
REFUSED = psycopg.errors.ObjectNotInPrerequisiteState


@pytest.fixture
def uc(conn):
    return trading_use_case(conn)


def set_limit(conn, value: int) -> None:
    conn.execute("UPDATE limits SET value = %s WHERE name = 'max_runs_per_date'", (value,))


def run_count(conn, uc=None) -> int:
    return conn.execute("SELECT count(*) FROM calculation_runs WHERE %s::uuid IS NULL OR use_case_id = %s",
                        (uc, uc)).fetchone()[0]


def names(conn, uc, date=COB) -> list[tuple[str, str]]:
    return conn.execute("SELECT run_name, status FROM calculation_runs WHERE use_case_id = %s AND pnl_date = %s "
                        "ORDER BY executed_at, run_name", (uc, date)).fetchall()


def headers_named(conn, uc, names_: list[str], status: str = "COMPLETED") -> None:
    """Run headers with these names, written straight into the table (fast, no results): by the superuser
    around the triggers, as a run is inserted IN_PROGRESS only (issue 18)."""
    with conn.transaction():
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute("INSERT INTO calculation_runs (pnl_date, use_case_id, run_name, status, error_message) "
                     "SELECT %s, %s, n, %s, CASE WHEN %s = 'FAILED' THEN 'failed' END FROM unnest(%s::text[]) n",
                     (COB, uc, status, status, names_))


def failed_by_lock_timeout(db_url, uc, name=None, date=COB):
    """A run that FAILED on a transient lock_timeout: another session holds the results table."""
    with open_conn(db_url, autocommit=False) as blocker, open_conn(db_url, autocommit=True) as snapshotter:
        blocker.execute("LOCK TABLE fact_calculated_results IN SHARE MODE")
        snapshotter.execute("SET lock_timeout = '100ms'")
        run = snapshot(snapshotter, uc, date, name=name)
        blocker.rollback()
    return run


# --- default names ---------------------------------------------------------------------------------------

def test_default_names_find_a_free_name_after_runs_named_run_1002_to_run_2002(conn, uc):
    set_limit(conn, 5000)
    headers_named(conn, uc, [f"Run {n}" for n in range(1002, 2003)])  # 1,001 runs, as the operator named them
    assert header(conn, snapshot(conn, uc))["run_name"] == "Run 2003"
    headers_named(conn, uc, ["Run 2004", "Run 999999999999999999", "Run 99999999999999999999", "Run 007"])
    # 1,006 runs: Run 1007 to Run 2004 are taken ("Run 007" is not "Run 7"); the huge numbers do not overflow
    assert header(conn, snapshot(conn, uc))["run_name"] == "Run 2005"
    assert run_count(conn, uc) == 1007


def test_default_names_count_from_the_runs_of_the_date_and_skip_a_name_taken(conn, uc):
    first = snapshot(conn, uc)
    snapshot(conn, uc, name="Run 3")
    assert [header(conn, r)["run_name"] for r in (first, snapshot(conn, uc), snapshot(conn, uc))] == [
        "Run 1", "Run 4", "Run 5"]
    assert header(conn, snapshot(conn, uc, EARLIER))["run_name"] == "Run 1"  # per date


# --- FAILED runs do not hold their name ------------------------------------------------------------------

def test_a_run_failed_on_a_lock_timeout_does_not_keep_its_name_from_the_retry(db_url, conn, uc):
    failed = failed_by_lock_timeout(db_url, uc, name="Month-end")
    assert header(conn, failed)["status"] == "FAILED" and "lock timeout" in header(conn, failed)["error_message"]
    retry = snapshot(conn, uc, name="Month-end")
    assert (header(conn, retry)["run_name"], header(conn, retry)["status"]) == ("Month-end", "COMPLETED")
    with pytest.raises(psycopg.errors.UniqueViolation, match="already has a run named 'Month-end' for 2025-12-24"):
        snapshot(conn, uc, name="Month-end")  # a completed run still holds it
    with pytest.raises(psycopg.errors.UniqueViolation, match="calculation_runs_unique_name"):
        headers_named(conn, uc, ["Month-end"])  # and the table says so too
    headers_named(conn, uc, ["Month-end"], status="FAILED")  # FAILED runs may share it
    assert sorted(names(conn, uc)) == [("Month-end", "COMPLETED"), ("Month-end", "FAILED"), ("Month-end", "FAILED")]


def test_a_default_named_run_that_failed_is_retried_under_the_same_name(db_url, conn, uc):
    assert header(conn, snapshot(conn, uc))["run_name"] == "Run 1"
    failed = failed_by_lock_timeout(db_url, uc)
    assert header(conn, failed)["run_name"] == "Run 2"
    retry = snapshot(conn, uc)
    assert names(conn, uc) == [("Run 1", "COMPLETED"), ("Run 2", "FAILED"), ("Run 2", "COMPLETED")]
    assert header(conn, snapshot(conn, uc))["run_name"] == "Run 3" and retry != failed


# --- the cap ---------------------------------------------------------------------------------------------

def test_the_runs_per_date_default_to_at_most_200(conn):
    assert conn.execute("SELECT limit_value('max_runs_per_date')").fetchone() == (200,)


def test_a_date_at_its_cap_is_refused_naming_the_cap_and_the_purge_and_writes_nothing(db_url, conn, uc):
    set_limit(conn, 3)
    snapshot(conn, uc)
    failed_by_lock_timeout(db_url, uc)  # a FAILED run counts: it is a run of the date
    snapshot(conn, uc, EARLIER)  # another date has its own count
    snapshot(conn, uc)
    with pytest.raises(psycopg.errors.ProgramLimitExceeded) as caught:
        snapshot(conn, uc, name="one more")
    assert caught.value.diag.message_primary == (
        'use case "Project Sterling" has 3 runs for 2025-12-24 already, the most one date may have '
        '(limit max_runs_per_date)')
    assert caught.value.diag.message_hint == (
        f"remove its trial and FAILED runs: pnldb runs purge --use-case {uc} --before 2025-12-25 (purge_runs); or "
        "an admin raises the limit: UPDATE pnl.limits SET value = 6 WHERE name = 'max_runs_per_date'")
    assert run_count(conn, uc) == 4
    purged = sql_json(conn, "SELECT purge_runs(%s, %s)::text", (uc, LATER))
    assert (purged["runs_purged"], purged["failed_runs_purged"]) == (4, 1)
    assert header(conn, snapshot(conn, uc, name="one more"))["status"] == "COMPLETED"


# --- hostile run inputs ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name, problem", [
    ("\t", "contains U+0009, a control character"),
    ("\u200b", "is blank (nothing in it shows)"),
    (" \u200b\u00a0\ufeff\u3000 ", "is blank (nothing in it shows)"),
    ("", "is blank (nothing in it shows)"),
    ("Run\t1", "contains U+0009, a control character"),
    ("red \x1b[31m", "contains U+001B, a control character"),
    ("line\nbreak", "contains U+000A, a control character"),
    ("evil \u202etxt.exe", "contains U+202E, a layout character"),
    ("para\u2029graph", "contains U+2029, a layout character"),
    ("x" * 201, "is 201 characters long"),
])
def test_a_run_name_with_a_control_character_or_blank_once_invisibles_are_removed_is_refused(conn, uc, name, problem):
    with pytest.raises(psycopg.errors.InvalidParameterValue) as caught:
        snapshot(conn, uc, name=name)
    assert caught.value.diag.message_primary == (
        f"run name {problem}: it must be 1 to 200 characters, not blank, and without control characters")
    assert run_count(conn) == 0


def test_visible_names_with_joiners_and_other_scripts_are_kept_exactly(conn, uc):
    for name in ["family \U0001F468\u200d\U0001F469\u200d\U0001F467",
                 "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645", "Ünïcødé run ✓", "x" * 200]:
        assert header(conn, snapshot(conn, uc, name=name))["run_name"] == name


@pytest.mark.parametrize("by, problem, error", [
    ("", "is blank (nothing in it shows)", psycopg.errors.InvalidParameterValue),
    ("\u200b", "is blank (nothing in it shows)", psycopg.errors.InvalidParameterValue),
    ("cron\tjob", "contains U+0009, a control character", psycopg.errors.InvalidParameterValue),
    ("x" * 101, "is 101 characters long", psycopg.errors.StringDataRightTruncation),
])
def test_an_empty_blank_or_control_character_triggered_by_is_refused(conn, uc, by, problem, error):
    with pytest.raises(error) as caught:
        snapshot(conn, uc, by=by)
    assert caught.value.diag.message_primary == (
        f"triggered_by {problem}: it must be 1 to 100 characters, not blank, and without control characters")
    assert caught.value.diag.message_hint == "leave it out for the session user, or say who or what triggered the run"
    assert run_count(conn) == 0


@pytest.mark.parametrize("date", ["infinity", "-infinity"])
def test_a_cob_date_of_infinity_is_refused_by_create_snapshot_and_by_the_tables(conn, uc, date):
    with pytest.raises(psycopg.errors.InvalidParameterValue,
                       match=f"create_snapshot: pnl_date {date} is not a COB date") as caught:
        conn.execute("SELECT create_snapshot(%s, %s::date)", (uc, date))
    assert caught.value.diag.message_hint == "give a calendar date, e.g. 2025-12-24"
    for statement, constraint in [
        ("INSERT INTO fact_pnl_entries (use_case_id, pnl_date, scenario, category_code, daily_amount, wtd_amount, "
         "ytd_amount) VALUES (%s, %s::date, 'ACTUAL', 'FX_1', 1, 1, 1)", "fact_pnl_entries_pnl_date_finite"),
        ("INSERT INTO calculation_runs (use_case_id, pnl_date, run_name) VALUES (%s, %s::date, 'x')",
         "calculation_runs_pnl_date_finite"),
    ]:
        with pytest.raises(psycopg.errors.CheckViolation, match=constraint):
            conn.execute(statement, (uc, date))
    with pytest.raises(psycopg.errors.CheckViolation, match="fx_rates_pnl_date_finite"):
        conn.execute("INSERT INTO fx_rates (pnl_date, currency, reporting_currency, rate) "
                     "VALUES (%s::date, 'EUR', 'USD', 1.1)", (date,))
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=f"purge_runs: before {date} is not a COB date"):
        conn.execute("SELECT purge_runs(%s, %s::date)", (uc, date))
    assert run_count(conn) == 0


# --- purge_runs ------------------------------------------------------------------------------------------

def sign_off(conn, run):
    return conn.execute("SELECT sign_off_run(%s, 'ok')", (run,))


@pytest.fixture
def close_book(db_url, conn, uc):
    """EARLIER: signed off, then restated (two official versions), a trial and a FAILED run. COB: a pending
    run, a trial and a FAILED run. LATER: a trial run (not before the cut). Another use case: a trial run."""
    conn.execute("SELECT set_signoff_policy(%s, 'SIMPLE')", (uc,))
    runs = {"official_1": snapshot(conn, uc, EARLIER, name="official v1")}
    sign_off(conn, runs["official_1"])
    runs["official_2"] = snapshot(conn, uc, EARLIER, name="official v2")
    sign_off(conn, runs["official_2"])
    runs["trial_earlier"] = snapshot(conn, uc, EARLIER, name="trial")
    runs["failed_earlier"] = failed_by_lock_timeout(db_url, uc, name="failed", date=EARLIER)
    runs["pending"] = snapshot(conn, uc, name="pending")
    conn.execute("SELECT submit_run(%s)", (runs["pending"],))
    runs["trial"] = snapshot(conn, uc, name="trial")
    runs["failed"] = failed_by_lock_timeout(db_url, uc, name="failed")
    facts(conn, uc, [("ACTUAL", "FX_1", "1", "1", "1", {}, LATER)])
    runs["later"] = snapshot(conn, uc, LATER, name="later")
    other = trading_use_case(conn, "Other Book")
    runs["other"] = snapshot(conn, other, EARLIER, name="elsewhere")
    return runs


def test_purge_runs_removes_trial_and_failed_runs_before_the_date_and_keeps_official_and_pending(conn, uc, close_book):
    kept = ["official_1", "official_2", "pending", "later", "other"]
    purged_ids = {str(close_book[k]) for k in ("trial_earlier", "failed_earlier", "trial", "failed")}
    results_before = conn.execute("SELECT count(*) FROM fact_calculated_results").fetchone()[0]
    got = sql_json(conn, "SELECT purge_runs(%s, %s)::text", (uc, LATER))
    assert got == {"use_case_id": str(uc), "before": str(LATER), "runs_purged": 4, "trial_runs_purged": 2,
                   "failed_runs_purged": 2, "results_purged": 2 * 30, "runs_kept_official": 2,
                   "runs_kept_pending": 1, "runs_kept_locked": 0}
    left = {r for (r,) in conn.execute("SELECT id FROM calculation_runs").fetchall()}
    assert left == {close_book[k] for k in kept}
    assert conn.execute("SELECT count(*) FROM fact_calculated_results").fetchone()[0] == results_before - 60
    for table in ("fact_calculated_results", "calculation_run_rules", "calculation_run_inputs", "calculation_run_fx"):
        assert conn.execute(f"SELECT count(*) FROM {table} WHERE NOT calculation_run_id IN "
                            "(SELECT id FROM calculation_runs)").fetchone()[0] == 0
    event = conn.execute("SELECT action, use_case_id, use_case_name, pnl_date, run_id, details, actor = session_user "
                         "FROM close_events ORDER BY event_id DESC LIMIT 1").fetchone()
    assert event[:5] == ("RUNS_PURGED", uc, "Project Sterling", None, None) and event[6]
    assert set(event[5].pop("run_ids")) == purged_ids
    chain = event[5].pop("chain")  # the purged runs' links, for verify_chain to follow across the gap (issue 18)
    links = {str(r): (s, d) for r, s, d in conn.execute(
        "SELECT r.id, r.chain_seq, encode(r.digest, 'hex') FROM calculation_runs r WHERE r.use_case_id = %s", (uc,))}
    assert len(chain) == got["trial_runs_purged"] and not purged_ids & set(links)
    assert [c["chain_seq"] for c in chain] == sorted(c["chain_seq"] for c in chain)
    assert all(len(c["digest"]) == 64 and c["run_id"] in purged_ids for c in chain)
    assert api.verify_chain(conn, uc)["intact"] is True
    assert event[5] == json.loads(json.dumps(got))
    # the close is as it was: the official run and the pending one still stand
    status = sql_json(conn, "SELECT get_cob_status(%s, %s)::text", (uc, EARLIER))
    assert status["official_run_id"] == str(close_book["official_2"])
    pending = sql_json(conn, "SELECT get_cob_status(%s, %s)::text", (uc, COB))["pending_run_id"]
    assert pending == str(close_book["pending"])
    assert conn.execute("SELECT count(*) FROM runs_being_purged").fetchone() == (0,)
    # a second purge finds nothing, and records nothing
    events = conn.execute("SELECT count(*) FROM close_events").fetchone()[0]
    again = sql_json(conn, "SELECT purge_runs(%s, %s)::text", (uc, LATER))
    assert (again["runs_purged"], again["results_purged"]) == (0, 0)
    assert conn.execute("SELECT count(*) FROM close_events").fetchone()[0] == events


def test_purge_runs_keeps_every_run_of_a_locked_date(db_url, conn, uc):
    conn.execute("SELECT set_signoff_policy(%s, 'SIMPLE')", (uc,))
    official = snapshot(conn, uc, EARLIER, name="official")
    sign_off(conn, official)
    failed = failed_by_lock_timeout(db_url, uc, name="failed")  # of COB
    conn.execute("SELECT lock_cob(%s, %s, 'month end')", (uc, EARLIER))
    trial = snapshot(conn, uc, EARLIER, name="trial of history")
    got = sql_json(conn, "SELECT purge_runs(%s, %s)::text", (uc, LATER))
    assert (got["runs_purged"], got["failed_runs_purged"], got["runs_kept_locked"]) == (1, 1, 2)
    left = {r for (r,) in conn.execute("SELECT id FROM calculation_runs").fetchall()}
    assert left == {official, trial} and failed not in left


def test_purge_runs_refuses_bad_input_and_writes_nothing(db_url, conn, uc):
    snapshot(conn, uc, EARLIER)
    with pytest.raises(psycopg.errors.NullValueNotAllowed, match="purge_runs needs a use_case_id and a before date"):
        conn.execute("SELECT purge_runs(%s, NULL)", (uc,))
    with pytest.raises(psycopg.errors.NoDataFound, match=f"unknown use case {NO_SUCH}"):
        conn.execute("SELECT purge_runs(%s, %s)", (NO_SUCH, LATER))
    with open_conn(db_url, autocommit=False) as other:
        other.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        with pytest.raises(psycopg.errors.ActiveSqlTransaction,
                           match="purge_runs runs only in a READ COMMITTED transaction, not REPEATABLE READ"):
            other.execute("SELECT purge_runs(%s, %s)", (uc, LATER))
    assert run_count(conn) == 1


def test_only_purge_runs_gets_past_the_runs_immutability(conn, uc):
    run = snapshot(conn, uc, EARLIER)
    for statement in ["DELETE FROM calculation_runs", "DELETE FROM fact_calculated_results",
                      "DELETE FROM calculation_run_inputs"]:
        with pytest.raises(REFUSED, match="calculation runs are immutable"):
            conn.execute(statement)
    conn.execute("SELECT set_config('pnl.purging_use_case', %s, false)", (str(uc),))  # delete_use_case's setting
    with pytest.raises(REFUSED, match="calculation runs are immutable"):
        conn.execute("DELETE FROM calculation_runs")
    conn.execute("RESET pnl.purging_use_case")
    conn.execute("INSERT INTO runs_being_purged (run_id) VALUES (%s)", (run,))  # committed: another transaction's
    for statement in ["DELETE FROM fact_calculated_results", "DELETE FROM calculation_runs"]:
        with pytest.raises(REFUSED, match="calculation runs are immutable"):
            conn.execute(statement)
    conn.execute("DELETE FROM runs_being_purged")
    assert run_count(conn) == 1 and header(conn, run)["status"] == "COMPLETED"


def test_admins_purge_runs_operators_readers_and_approvers_cannot(conn, uc, login):
    snapshot(conn, uc, EARLIER)
    for group in ("operator", "reader", "approver"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            login(group).execute("SELECT purge_runs(%s, %s)", (uc, LATER))
    admin = login("admin")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        admin.execute("INSERT INTO runs_being_purged (run_id) VALUES (gen_random_uuid())")
    assert api.purge_runs(admin, uc, LATER)["runs_purged"] == 1
    who = admin.execute("SELECT session_user").fetchone()[0]
    assert conn.execute("SELECT actor FROM close_events WHERE action = 'RUNS_PURGED'").fetchone() == (who,)


def test_purged_runs_free_the_superseded_facts_they_read(conn, uc):
    snapshot(conn, uc, EARLIER)
    with conn.transaction():
        conn.execute("SELECT replace_facts(%s, %s, 'ACTUAL')", (uc, EARLIER))
        facts(conn, uc, [("ACTUAL", "FX_1", "3", "3", "3", {}, EARLIER)])
    kept = sql_json(conn, "SELECT purge_superseded_facts(now() + interval '1 day')::text")
    assert (kept["slices_purged"], kept["slices_kept_for_runs"]) == (0, 1)
    conn.execute("SELECT purge_runs(%s, %s)", (uc, COB))
    freed = sql_json(conn, "SELECT purge_superseded_facts(now() + interval '1 day')::text")
    assert (freed["slices_purged"], freed["facts_purged"]) == (1, 1)


# --- the command ---------------------------------------------------------------------------------------

@pytest.fixture
def cli(db_url):
    def invoke(*args, input=None):
        return CliRunner().invoke(main, ["--dsn", db_url, *args], input=input)
    return invoke


def test_cli_runs_purge_prints_the_counts_and_json_and_asks_first(conn, uc, cli):
    snapshot(conn, uc, EARLIER)
    refused = cli("runs", "purge", "--use-case", "Project Sterling", "--before", str(COB))
    assert refused.exit_code == 1 and refused.stdout == ""
    assert refused.stderr == ("pnldb: error: not purging runs of use case 'Project Sterling' without confirmation: "
                              "stdin is not a terminal; pass --yes\n")
    assert run_count(conn) == 1
    done = cli("runs", "purge", "--use-case", "Project Sterling", "--before", str(COB), "--yes")
    assert done.exit_code == 0, done.stderr
    assert done.stdout.splitlines()[:4] == [
        "runs of use case 'Project Sterling' of COB dates before 2025-12-24:",
        "  runs purged      1", "    trial          1", "    FAILED         0"]
    snapshot(conn, uc, EARLIER)
    as_json = cli("runs", "purge", "--use-case", str(uc), "--before", str(COB), "--yes", "--json")
    assert as_json.exit_code == 0, as_json.stderr
    assert json.loads(as_json.stdout)["runs_purged"] == 1 and run_count(conn) == 0


def test_cli_runs_purge_on_a_terminal_asks_and_a_no_purges_nothing(conn, uc, cli, monkeypatch):
    monkeypatch.setattr("pnldb.cli.common.stdin_is_a_terminal", lambda: True)
    snapshot(conn, uc, EARLIER)
    declined = cli("runs", "purge", "--use-case", "Project Sterling", "--before", str(COB), input="n\n")
    assert declined.exit_code == 1 and "not confirmed: nothing purged" in declined.stderr
    assert ("Remove the trial and FAILED runs of use case 'Project Sterling' of COB dates before 2025-12-24?"
            in declined.stderr)
    assert run_count(conn) == 1
    accepted = cli("runs", "purge", "--use-case", "Project Sterling", "--before", str(COB), input="y\n")
    assert accepted.exit_code == 0, accepted.stderr
    assert run_count(conn) == 0


def test_the_migration_rolls_back_and_refuses_while_a_failed_run_shares_a_name(db_url, conn, uc):
    from pnldb import schema
    from pnldb.errors import PnlError

    failed_by_lock_timeout(db_url, uc, name="Month-end")
    snapshot(conn, uc, name="Month-end")
    with pytest.raises(PnlError, match="cannot roll back runs: a FAILED run shares its name with another run"):
        schema.rollback(conn, to="0009_rule_limits", force=True)  # forced past the digests: 0010 still refuses
    assert conn.execute("SELECT limit_value('max_runs_per_date')").fetchone() == (200,)  # nothing was changed
    conn.execute("SELECT purge_runs(%s, %s)", (uc, LATER))
    assert schema.rollback(conn, to="0009_rule_limits", force=True) == [
        "0019_fact_slice_statistics", "0018_cluster", "0017_fast_loads", "0016_fact_cents",
                                                                        "0015_entitlements",
                                                                        "0014_integrity", "0013_audit", "0012_locks",
                                                                        "0011_tree", "0010_runs"]
    assert conn.execute("SELECT count(*) FROM limits WHERE name = 'max_runs_per_date'").fetchone() == (0,)
    assert conn.execute("SELECT to_regclass('pnl.runs_being_purged')").fetchone() == (None,)
    schema.migrate(conn)
    assert conn.execute("SELECT limit_value('max_runs_per_date')").fetchone() == (200,)
