"""The close (contract §7): checks, transitions, the freeze on every write path, restatement, reopen,
lock, the append-only log and the official views. People and roles: tests/test_close_roles.py."""
from __future__ import annotations

import datetime as dt
import json
import threading
from decimal import Decimal

import psycopg
import pytest

from pnldb import api
from tests.builders import COB, EARLIER, cond, facts, in_thread, open_conn, rule, snapshot, sql_json, trading_use_case

REFUSED = psycopg.errors.ObjectNotInPrerequisiteState
CHECKS = psycopg.errors.CheckViolation


def events(conn, uc=None):
    return conn.execute("SELECT action, pnl_date, run_id FROM close_events WHERE %s::uuid IS NULL OR use_case_id = %s "
                        "ORDER BY event_id", (uc, uc)).fetchall()


def status(conn, uc, date=COB) -> dict:
    return sql_json(conn, "SELECT get_cob_status(%s, %s)::text", (uc, date))


def simple(conn, uc) -> None:
    conn.execute("SELECT set_signoff_policy(%s, 'SIMPLE')", (uc,))


def sign_off(conn, run, acks=None):
    return sql_json(conn, "SELECT sign_off_run(%s, 'ok', %s::jsonb)::text", (run, json.dumps(acks or {})))


def fact_count(conn, uc, date=COB):
    """The use case's facts of the date, wherever they are: on a coordinator (tests/test_close_on_shards.py),
    on its shards."""
    if conn.execute("SELECT to_regprocedure('shard_fact_rows(uuid, date, bigint[])') IS NOT NULL").fetchone()[0]:
        return conn.execute("SELECT count(*) FROM shard_fact_rows(%s, %s, ARRAY(SELECT load_id FROM fact_loads))",
                            (uc, date)).fetchone()[0]
    return conn.execute("SELECT count(*) FROM fact_pnl_entries WHERE use_case_id = %s AND pnl_date = %s",
                        (uc, date)).fetchone()[0]


@pytest.fixture
def uc(conn):
    return trading_use_case(conn)


def test_check_run_reports_every_built_in_check_in_the_fixed_order(conn, uc):
    run = snapshot(conn, uc)
    result = sql_json(conn, "SELECT check_run(%s)::text", (run,))
    assert result["passed"] is True and result["run_id"] == str(run)
    assert [(c["code"], c["severity"], c["passed"]) for c in result["checks"]] == [
        ("RUN_COMPLETED", "ERROR", True), ("FACTS_UNCHANGED", "ERROR", True), ("NO_UNMAPPED", "ERROR", True),
        ("RULES_UNCHANGED", "WARNING", True), ("RULE_FIELDS_PRESENT", "WARNING", True), ("PLUG_LIMIT", "OFF", None)]
    assert result["checks"][2]["observed"] == 0 and result["checks"][2]["limit"] == 0
    assert events(conn) == []  # read-only


def test_an_unmapped_fact_cannot_be_submitted_and_the_error_names_no_unmapped_with_the_amount(conn, uc):
    facts(conn, uc, [("ACTUAL", "NO_SUCH_BOOK", "-12.34", "0", "0", {})])
    run = snapshot(conn, uc)
    with pytest.raises(CHECKS) as refused:
        conn.execute("SELECT submit_run(%s)", (run,))
    assert refused.value.diag.message_primary == f"submit_run: run {run} refused: 1 check(s) fail"
    assert refused.value.diag.message_detail == (
        "NO_UNMAPPED (ERROR): unmapped facts of -12.34 (ACTUAL daily), above the tolerance 0: map their category codes")
    assert events(conn) == [] and status(conn, uc)["status"] == "OPEN"
    # a tolerance above it lets it through
    conn.execute("""SELECT set_check(%s, 'NO_UNMAPPED', 'ERROR', '{"tolerance": 12.34}')""", (uc,))
    assert sql_json(conn, "SELECT check_run(%s)::text", (run,))["passed"] is True


def test_a_failing_warning_needs_an_acknowledgement_with_a_reason(conn, uc):
    run = snapshot(conn, uc)
    rule(conn, uc, "RATES", cond("book", "equals", "a"))  # the rules in force move on after the run
    for acks in ({}, {"RULES_UNCHANGED": ""}, {"RULES_UNCHANGED": "   "}, {"RULES_UNCHANGED": 1}):
        with pytest.raises(CHECKS) as refused:
            conn.execute("SELECT submit_run(%s, NULL, %s::jsonb)", (run, json.dumps(acks)))
        assert refused.value.diag.message_detail.startswith("RULES_UNCHANGED (WARNING): the rules in force differ "
                                                            "from those the run applied on RATES")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="acknowledgement of unknown check NOPE"):
        conn.execute("""SELECT submit_run(%s, NULL, '{"NOPE": "x"}')""", (run,))
    assert events(conn) == []
    after = sql_json(conn, """SELECT submit_run(%s, 'c', '{"RULES_UNCHANGED": "reviewed the edit"}')::text""", (run,))
    assert (after["status"], after["pending_run_id"], after["official_run_id"]) == ("PENDING", str(run), None)
    details = conn.execute("SELECT details FROM close_events WHERE action = 'SUBMITTED'").fetchone()[0]
    assert details["acknowledgements"] == {"RULES_UNCHANGED": "reviewed the edit"}
    assert [c["passed"] for c in details["checks"] if c["code"] == "RULES_UNCHANGED"] == [False]


def test_a_load_committed_after_the_snapshot_makes_submit_fail_on_facts_unchanged(conn, uc):
    run = snapshot(conn, uc)
    facts(conn, uc, [("ACTUAL", "RATES_1", "1.00", "1.00", "1.00", {"book": "late"})])
    with pytest.raises(CHECKS) as refused:
        conn.execute("SELECT submit_run(%s)", (run,))
    assert refused.value.diag.message_detail.startswith(
        "FACTS_UNCHANGED (ERROR): the facts changed since the run: load ")
    assert "(ACTUAL, 1 facts) added" in refused.value.diag.message_detail
    assert events(conn) == []


def test_after_submit_every_write_path_of_that_date_is_refused_and_another_date_loads(conn, uc, tmp_path):
    run = snapshot(conn, uc)
    conn.execute("SELECT submit_run(%s)", (run,))
    before = fact_count(conn, uc)
    csv = tmp_path / "late.csv"
    csv.write_text("use_case_id,pnl_date,category_code,daily_amount,wtd_amount,ytd_amount,scenario\n"
                   f",{COB},RATES_1,5.00,5.00,5.00,ACTUAL\n", encoding="utf-8")
    with pytest.raises(REFUSED, match=r'facts refused: their COB dates are frozen by the close: "Project Sterling" '
                                      r'2025-12-24 \(PENDING\); nothing was loaded'):
        api.load_facts(conn, csv, uc, append=True)
    with pytest.raises(REFUSED, match="frozen by the close"), conn.cursor() as cur, \
            cur.copy("COPY fact_pnl_entries (use_case_id, pnl_date, scenario, category_code, daily_amount, "
                     "wtd_amount, ytd_amount) FROM STDIN") as copy:
        copy.write_row((str(uc), COB, "PRIOR", "FX_1", "1", "1", "1"))
    with pytest.raises(REFUSED, match="frozen by the close"):
        facts(conn, uc, [("ACTUAL", "FX_1", "1", "1", "1", {}), ("ACTUAL", "FX_1", "1", "1", "1", {}, EARLIER)])
    with pytest.raises(REFUSED, match=r"replace_facts refused: COB date 2025-12-24 \(PENDING\)"):
        conn.execute("SELECT replace_facts(%s, %s)", (uc, COB))
    assert fact_count(conn, uc) == before
    assert conn.execute("SELECT count(*) FROM fact_load_slices WHERE use_case_id = %s AND pnl_date = %s",
                        (uc, COB)).fetchone()[0] == 2
    other = dt.date(2025, 12, 26)
    csv.write_text(csv.read_text().replace(str(COB), str(other)), encoding="utf-8")
    assert api.load_facts(conn, csv, uc)["rows_loaded"] == 1
    assert fact_count(conn, uc, other) == 1


@pytest.mark.parametrize("first", ["load", "submit"])
def test_a_load_racing_a_submit_ends_one_way_or_the_other(db_url, conn, uc, first):
    run = snapshot(conn, uc)
    before = fact_count(conn, uc)
    with open_conn(db_url, autocommit=False) as holder, open_conn(db_url, autocommit=True) as other:
        if first == "load":  # the load holds the lock; the submit waits, then sees the load
            facts(holder, uc, [("ACTUAL", "FX_1", "3.00", "3.00", "3.00", {})])
            thread, outcome = in_thread(lambda: other.execute("SELECT submit_run(%s)", (run,)))
        else:  # the submit holds the lock; the load waits, then finds the date frozen
            holder.execute("SELECT submit_run(%s)", (run,))
            thread, outcome = in_thread(lambda: facts(other, uc, [("ACTUAL", "FX_1", "3.00", "3.00", "3.00", {})]))
        thread.join(1)
        assert thread.is_alive(), "the second step did not wait for the first"
        holder.commit()
        thread.join(30)
    if first == "load":
        assert isinstance(outcome["error"], CHECKS) and "FACTS_UNCHANGED" in outcome["error"].diag.message_detail
        assert fact_count(conn, uc) == before + 1 and events(conn) == []
    else:
        assert isinstance(outcome["error"], REFUSED) and "frozen by the close" in str(outcome["error"])
        assert fact_count(conn, uc) == before and [e[0] for e in events(conn)] == ["SUBMITTED"]


def test_a_restatement_leaves_exactly_one_official_run_at_every_moment(db_url, conn, uc):
    simple(conn, uc)
    first = snapshot(conn, uc, name="first")
    sign_off(conn, first)
    before_restatement = conn.execute("SELECT clock_timestamp()").fetchone()[0]
    second = snapshot(conn, uc, name="second")
    seen, stop = set(), threading.Event()

    def watch():
        with open_conn(db_url, autocommit=True) as reader:
            while not stop.is_set():
                seen.add(tuple(r[0] for r in reader.execute(
                    "SELECT run_id FROM v_official_runs WHERE use_case_id = %s", (uc,)).fetchall()))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    pending = sql_json(conn, "SELECT submit_run(%s)::text", (second,))
    assert (pending["status"], pending["restatement"], pending["official_run_id"]) == ("PENDING", True, str(first))
    conn.execute("SELECT withdraw_run(%s)", (second,))  # the owner submitted it
    assert status(conn, uc)["official_run_id"] == str(first)
    after = sign_off(conn, second)
    stop.set()
    watcher.join(10)
    assert (after["status"], after["official_run_id"], after["version"], after["restatement"]) == \
        ("SIGNED_OFF", str(second), 2, False)
    assert seen <= {(first,), (second,)} and (first,) in seen
    assert conn.execute("SELECT official_run(%s, %s, %s)", (uc, COB, before_restatement)).fetchone()[0] == first
    assert conn.execute("SELECT official_run(%s, %s)", (uc, COB)).fetchone()[0] == second
    assert conn.execute("SELECT official_run(%s, %s, now() - interval '1 day')", (uc, COB)).fetchone()[0] is None


def test_reopen_leaves_no_official_run_and_unfreezes_the_facts(conn, uc):
    simple(conn, uc)
    run = snapshot(conn, uc)
    sign_off(conn, run)
    with pytest.raises(psycopg.errors.NullValueNotAllowed, match="reopen_cob needs a reason"):
        conn.execute("SELECT reopen_cob(%s, %s, ' ')", (uc, COB))
    reopened = sql_json(conn, "SELECT reopen_cob(%s, %s, 'late trade')::text", (uc, COB))
    assert (reopened["status"], reopened["official_run_id"]) == ("OPEN", None)
    assert conn.execute("SELECT count(*) FROM v_official_runs").fetchone()[0] == 0
    facts(conn, uc, [("ACTUAL", "FX_1", "3.00", "3.00", "3.00", {})])
    with pytest.raises(REFUSED, match="is OPEN, not SIGNED_OFF"):
        conn.execute("SELECT reopen_cob(%s, %s, 'again')", (uc, COB))


def test_lock_cob_refuses_today_a_lower_watermark_and_an_open_unit_with_facts(conn, uc):
    simple(conn, uc)
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="is not before today"):
        conn.execute("SELECT lock_cob(%s, current_date, 'eod')", (uc,))
    sign_off(conn, snapshot(conn, uc, date=EARLIER))
    with pytest.raises(REFUSED, match=r"dates up to 2025-12-24 that are not signed off: 2025-12-24 \(OPEN\)"):
        conn.execute("SELECT lock_cob(%s, %s, 'month end')", (uc, COB))
    locked = sql_json(conn, "SELECT lock_cob(%s, %s, 'month end')::text", (uc, EARLIER))
    assert (locked["status"], locked["locked_through"], locked["units_locked"]) == ("LOCKED", str(EARLIER), 1)
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="never moves back"):
        conn.execute("SELECT lock_cob(%s, %s, 'oops')", (uc, EARLIER - dt.timedelta(days=5)))
    assert status(conn, uc, EARLIER)["official_run_id"] is not None  # locked keeps its official run
    with pytest.raises(REFUSED, match="the watermark never moves back"):
        conn.execute("UPDATE use_cases SET locked_through = NULL")  # the owner either


def test_a_locked_unit_refuses_submit_approve_reopen_and_facts_but_allows_snapshots(conn, uc):
    simple(conn, uc)
    sign_off(conn, snapshot(conn, uc, date=EARLIER, name="official"))
    pending = snapshot(conn, uc, date=EARLIER, name="restated")
    conn.execute("SELECT set_signoff_policy(%s, 'FOUR_EYES')", (uc,))
    conn.execute("SELECT lock_cob(%s, %s, 'month end')", (uc, EARLIER))
    trial = snapshot(conn, uc, date=EARLIER, name="trial")  # history can still be analysed
    for statement, args in [("SELECT submit_run(%s)", (trial,)), ("SELECT approve_run(%s)", (pending,)),
                            ("SELECT sign_off_run(%s)", (trial,)), ("SELECT reopen_cob(%s, %s, 'x')", (uc, EARLIER))]:
        with pytest.raises(REFUSED, match="locked"):
            conn.execute(statement, args)
    with pytest.raises(REFUSED, match=r"2025-12-23 \(LOCKED\)"):
        facts(conn, uc, [("ACTUAL", "FX_1", "1", "1", "1", {}, EARLIER)])


def test_close_events_are_append_only_for_the_owner_and_outlive_the_use_case(conn, uc):
    simple(conn, uc)
    run = snapshot(conn, uc)
    sign_off(conn, run)
    for statement in ("UPDATE close_events SET actor = 'someone else'", "DELETE FROM close_events",
                      "TRUNCATE close_events"):
        with pytest.raises(REFUSED, match="close events are append-only"):
            conn.execute(statement)
    with pytest.raises(REFUSED, match=r'use case "Project Sterling" cannot be deleted: COB dates in the close: '
                                      r'2025-12-24 \(SIGNED_OFF\)'):
        conn.execute("SELECT delete_use_case(%s)", (uc,))
    conn.execute("SELECT reopen_cob(%s, %s, 'retire the use case')", (uc, COB))
    summary = conn.execute("SELECT delete_use_case(%s)", (uc,)).fetchone()[0]
    assert [e[0] for e in events(conn, uc)] == ["POLICY_SET", "SIGNED_OFF", "REOPENED", "USE_CASE_DELETED"]
    deleted = conn.execute(
        "SELECT use_case_name, details FROM close_events WHERE action = 'USE_CASE_DELETED'").fetchone()
    assert deleted == ("Project Sterling", summary) and summary["calculation_runs_purged"] == 1
    assert sql_json(conn, "SELECT close_history(%s)::text", (uc,))["events"][1]["run_id"] == str(run)


def test_delete_use_case_is_refused_while_a_unit_is_pending(conn, uc):
    conn.execute("SELECT submit_run(%s)", (snapshot(conn, uc),))
    with pytest.raises(REFUSED, match=r"2025-12-24 \(PENDING\)"):
        conn.execute("SELECT delete_use_case(%s)", (uc,))
    assert conn.execute("SELECT count(*) FROM use_cases").fetchone()[0] == 1


def test_v_official_results_shows_only_the_official_run_of_a_date_with_three_runs(conn, uc):
    simple(conn, uc)
    runs = [snapshot(conn, uc, name=f"run {i}") for i in range(3)]
    sign_off(conn, runs[1])
    rows = conn.execute("SELECT DISTINCT calculation_run_id, official_version FROM v_official_results "
                        "WHERE use_case_id = %s AND pnl_date = %s", (uc, COB)).fetchall()
    assert rows == [(runs[1], 1)]
    assert conn.execute("SELECT count(*) FROM v_official_results").fetchone()[0] == \
        conn.execute("SELECT count(*) FROM v_run_results WHERE calculation_run_id = %s", (runs[1],)).fetchone()[0]
    root = conn.execute("SELECT daily_actual FROM v_official_results WHERE depth = 0").fetchone()[0]
    assert str(root) == "1000097.25"
    cob = conn.execute("SELECT status, official_run_id FROM v_cob_status WHERE pnl_date = %s", (COB,)).fetchone()
    assert cob == ("SIGNED_OFF", runs[1])
    assert conn.execute("SELECT status FROM v_cob_status WHERE pnl_date = %s", (EARLIER,)).fetchone()[0] == "OPEN"


def test_set_check_refuses_bad_codes_severities_and_params_and_plug_limit_checks_the_node(conn, uc):
    for args, message in [
        (("NOPE", "ERROR", "{}"), "unknown check 'NOPE'"),
        (("NO_UNMAPPED", "FATAL", "{}"), "severity 'FATAL' is not ERROR, WARNING or OFF"),
        (("RUN_COMPLETED", "OFF", "{}"), "RUN_COMPLETED is always ERROR"),
        (("NO_UNMAPPED", "ERROR", '{"tolerance": -1}'), "tolerance must be a number >= 0"),
        (("NO_UNMAPPED", "ERROR", '{"tolerance": "1"}'), "tolerance must be a number >= 0"),
        (("RULES_UNCHANGED", "ERROR", '{"x": 1}'), "params x are not among those it takes"),
        (("PLUG_LIMIT", "ERROR", '{"node_id": "NOPE", "abs": 1}'), 'params.node_id "NOPE" is not a node'),
        (("PLUG_LIMIT", "ERROR", '{"node_id": "RATES"}'), "params.abs must be a number"),
    ]:
        with pytest.raises(psycopg.errors.InvalidParameterValue, match=message):
            conn.execute("SELECT set_check(%s, %s, %s, %s::jsonb)", (uc, *args))
    assert conn.execute("SELECT count(*) FROM close_checks").fetchone()[0] == 0
    rule(conn, uc, "RATES", cond("book", "equals", "a"))  # excludes RATES_2's -50.25
    conn.execute("""SELECT set_check(%s, 'PLUG_LIMIT', 'error', '{"node_id": "RATES", "abs": 50}')""", (uc,))
    run = snapshot(conn, uc)
    plug = sql_json(conn, "SELECT check_run(%s)::text", (run,))["checks"][5]
    assert plug == {"code": "PLUG_LIMIT", "severity": "ERROR", "passed": False, "observed": Decimal("50.25"),
                    "limit": 50, "message": "largest |plug| at RATES: 50.25 (limit 50)"}


def test_a_misspelt_rule_field_is_a_warning(conn, uc):
    rule(conn, uc, "FX", cond("Book", "equals", "a"))
    check = sql_json(conn, "SELECT check_run(%s)::text", (snapshot(conn, uc),))["checks"][4]
    assert (check["code"], check["passed"]) == ("RULE_FIELDS_PRESENT", False)
    assert check["observed"][0].endswith("on FX: Book")


def test_purge_keeps_superseded_facts_of_a_frozen_date(conn, uc):
    conn.execute("SELECT replace_facts(%s, %s, 'PRIOR')", (uc, COB))  # supersedes PRIOR, read by no run
    simple(conn, uc)
    sign_off(conn, snapshot(conn, uc))
    counts = sql_json(conn, "SELECT purge_superseded_facts(now() + interval '1 minute')::text")
    assert (counts["slices_purged"], counts["slices_kept_frozen"]) == (0, 1)


def test_executed_by_is_the_session_user_and_the_policy_and_watermark_are_not_plain_columns(conn, uc, login):
    run = snapshot(conn, uc, by="a scheduler")
    assert conn.execute("SELECT executed_by, triggered_by FROM calculation_runs WHERE id = %s", (run,)).fetchone() == \
        (conn.info.user, "a scheduler")
    admin = login("admin")
    for statement in ("UPDATE use_cases SET signoff_policy = 'SIMPLE'",
                      "UPDATE use_cases SET locked_through = '2020-01-01'",
                      "INSERT INTO use_cases (name, structure_id, signoff_policy) VALUES ('x', 'TRADING', 'SIMPLE')"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="set by set_signoff_policy and lock_cob only"):
            admin.execute(statement)
    admin.execute("UPDATE use_cases SET description = 'still editable'")
