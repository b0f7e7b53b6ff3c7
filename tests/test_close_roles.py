"""The close's people (contract §7), each a login role of their own: four-eyes, SIMPLE, and who may do
what. A shared login defeats four-eyes: the database knows only logins."""
from __future__ import annotations

import psycopg
import pytest

from tests.builders import COB, trading_use_case

DENIED = psycopg.errors.InsufficientPrivilege


@pytest.fixture
def unit(conn, login):
    uc = trading_use_case(conn)
    executor = login("operator")
    run = executor.execute("SELECT create_snapshot(%s, %s)", (uc, COB)).fetchone()[0]
    return uc, run, executor


def test_approver_is_a_reader_and_not_granted_to_admin(conn):
    assert conn.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'pnl_approver'").fetchone()[0] is False
    assert conn.execute("SELECT pg_has_role('pnl_approver', 'pnl_reader', 'MEMBER')").fetchone()[0]
    assert not conn.execute("SELECT pg_has_role('pnl_admin', 'pnl_approver', 'MEMBER')").fetchone()[0]
    assert not conn.execute("SELECT pg_has_role('pnl_approver', 'pnl_operator', 'MEMBER')").fetchone()[0]


def test_under_four_eyes_only_an_approver_who_neither_submitted_nor_executed_approves(conn, login, unit):
    _, run, executor = unit
    submitter = login("operator")
    submitter.execute("SELECT submit_run(%s)", (run,))
    # the submitter and the executor, even made approvers, cannot approve
    for person in (submitter, executor):
        conn.execute(f"GRANT pnl_approver TO {person.info.user}")
        with pytest.raises(DENIED, match="four-eyes"):
            person.execute("SELECT approve_run(%s)", (run,))
    with pytest.raises(DENIED):  # an admin is not an approver
        login("admin").execute("SELECT approve_run(%s)", (run,))
    approver = login("approver")
    approved = approver.execute("SELECT approve_run(%s, 'fine')", (run,)).fetchone()[0]
    assert (approved["status"], approved["official_run_id"], approved["signed_off_by"]) == \
        ("SIGNED_OFF", str(run), approver.info.user)
    assert conn.execute("SELECT actor, action FROM close_events ORDER BY event_id").fetchall() == [
        (submitter.info.user, "SUBMITTED"), (approver.info.user, "APPROVED")]
    assert conn.execute("SELECT signed_off_by, executed_by FROM v_official_runs").fetchone() == \
        (approver.info.user, executor.info.user)


def test_operators_submit_and_withdraw_their_own_approvers_reject_with_a_reason(conn, login, unit):
    _, run, executor = unit
    executor.execute("SELECT submit_run(%s)", (run,))
    with pytest.raises(DENIED, match="only the submitter withdraws it"):
        login("operator").execute("SELECT withdraw_run(%s)", (run,))
    approver = login("approver")
    with pytest.raises(DENIED):
        approver.execute("SELECT submit_run(%s)", (run,))
    with pytest.raises(psycopg.errors.NullValueNotAllowed, match="reject_run needs a reason"):
        approver.execute("SELECT reject_run(%s, '')", (run,))
    assert approver.execute("SELECT reject_run(%s, 'wrong feed') ->> 'status'", (run,)).fetchone()[0] == "OPEN"
    executor.execute("SELECT submit_run(%s)", (run,))
    assert executor.execute("SELECT withdraw_run(%s) ->> 'status'", (run,)).fetchone()[0] == "OPEN"
    assert [r[0] for r in conn.execute("SELECT action FROM close_events ORDER BY event_id")] == [
        "SUBMITTED", "REJECTED", "SUBMITTED", "WITHDRAWN"]


def test_under_simple_an_approver_signs_off_alone_and_reopens_and_locks(conn, login, unit):
    uc, run, _ = unit
    approver = login("approver")
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="signs off under FOUR_EYES, not SIMPLE"):
        approver.execute("SELECT sign_off_run(%s)", (run,))
    approver.execute("SELECT set_signoff_policy(%s, 'SIMPLE')", (uc,))
    with pytest.raises(DENIED):
        login("operator").execute("SELECT sign_off_run(%s)", (run,))
    assert approver.execute("SELECT sign_off_run(%s) ->> 'status'", (run,)).fetchone()[0] == "SIGNED_OFF"
    assert approver.execute("SELECT reopen_cob(%s, %s, 'late trade') ->> 'status'", (uc, COB)).fetchone()[0] == "OPEN"


def test_a_reader_can_read_the_close_and_do_none_of_it(conn, login, unit):
    uc, run, _ = unit
    reader = login("reader")
    assert reader.execute("SELECT check_run(%s) -> 'passed'", (run,)).fetchone()[0] is True
    assert reader.execute("SELECT get_cob_status(%s, %s) ->> 'status'", (uc, COB)).fetchone()[0] == "OPEN"
    assert reader.execute("SELECT official_run(%s, %s)", (uc, COB)).fetchone()[0] is None
    for view in ("v_official_runs", "v_official_results", "v_cob_status", "v_close_events"):
        reader.execute(f"SELECT count(*) FROM {view}")
    for statement, args in [
        ("SELECT submit_run(%s)", (run,)), ("SELECT approve_run(%s)", (run,)), ("SELECT sign_off_run(%s)", (run,)),
        ("SELECT reject_run(%s, 'x')", (run,)), ("SELECT withdraw_run(%s)", (run,)),
        ("SELECT reopen_cob(%s, %s, 'x')", (uc, COB)), ("SELECT lock_cob(%s, %s, 'x')", (uc, COB)),
        ("SELECT set_check(%s, 'NO_UNMAPPED', 'OFF')", (uc,)), ("SELECT set_signoff_policy(%s, 'SIMPLE')", (uc,)),
        ("INSERT INTO close_events (use_case_id, use_case_name, action) VALUES (%s, 'x', 'APPROVED')", (uc,)),
    ]:
        with pytest.raises(DENIED):
            reader.execute(statement, args)
    assert conn.execute("SELECT count(*) FROM close_events").fetchone()[0] == 0
