"""Entitlements (issue 18, item 7): who sees and acts on which use case, with real logins. Desk A and
desk B share the server; the grants of all use cases to the group roles are revoked, and a NOLOGIN role
desk_a holds A: its members (readers, operators, admins, approvers) see and act on A and on nothing of B."""
from __future__ import annotations

import json
import re
import uuid

import psycopg
import pytest
from builders import COB, EARLIER, NO_SUCH, cond, rule, snapshot, trading_use_case
from click.testing import CliRunner
from psycopg.conninfo import make_conninfo

from pnldb import api, schema
from pnldb.cli import main
from pnldb.errors import PnlError

DENIED = psycopg.errors.InsufficientPrivilege
GROUPS = ("reader", "operator", "admin", "approver")
RUN_COLUMNS = ("calculation_run_id", "run_id", "official_run_id", "pending_run_id", "id")


@pytest.fixture
def desks(conn):
    """Desk A and desk B, each with facts, a rule, two runs, one of them submitted and approved, and a
    close check; B also a legacy run with a result. Then the grants of all revoked: desk_a holds A."""
    a = trading_use_case(conn, "Desk A")
    b = trading_use_case(conn, "Desk B")
    ids = {}
    for name, uc in (("a", a), ("b", b)):
        rule(conn, uc, "EQ", cond("book", "equals", "NONE"), f"rule of {name}")
        first, second = snapshot(conn, uc), snapshot(conn, uc)
        conn.execute("SELECT set_signoff_policy(%s, 'SIMPLE')", (uc,))
        conn.execute("SELECT set_check(%s, 'PLUG_LIMIT', 'WARNING', '{\"node_id\": \"EQ\", \"abs\": 1e12}')", (uc,))
        conn.execute("SELECT submit_run(%s)", (first,))
        conn.execute("SELECT approve_run(%s, 'ok')", (first,))
        conn.execute("SELECT submit_run(%s)", (second,))
        ids[name] = (uc, first, second)
    legacy = conn.execute("INSERT INTO use_case_runs (use_case_id, pnl_date, status) VALUES (%s, %s, 'COMPLETED') "
                          "RETURNING run_id", (b, COB)).fetchone()[0]
    conn.execute("INSERT INTO fact_calculated_results (run_id, node_id, node_name, depth, scenario, daily_natural) "
                 "VALUES (%s, 'EQ', 'Equities', 1, 'ACTUAL', 1)", (legacy,))
    for group in GROUPS:
        conn.execute("SELECT revoke_use_case(NULL, %s)", (f"pnl_{group}",))
    conn.execute("CREATE ROLE desk_a NOLOGIN")
    conn.execute("SELECT grant_use_case(%s, 'desk_a')", (a,))
    yield {"a": ids["a"], "b": ids["b"], "b_legacy": legacy}
    conn.execute("DROP OWNED BY desk_a")
    conn.execute("DROP ROLE desk_a")


@pytest.fixture
def of_a(conn, login):
    """of_a('reader') -> a login of pnl_reader that is a member of desk_a."""
    def make(group: str) -> psycopg.Connection:
        person = login(group)
        conn.execute(f"GRANT desk_a TO {person.info.user}")
        return person
    return make


def _b_ids(conn, desks) -> set[str]:
    b, first, second = desks["b"]
    return {str(b), str(first), str(second), str(desks["b_legacy"])}


def _tables_and_views(conn) -> list[tuple[str, str]]:
    """(relation, column) of every table and view of the schema with a use case or run id column."""
    return conn.execute(
        """SELECT c.relname, a.attname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
           WHERE c.relnamespace = 'pnl'::regnamespace AND c.relkind IN ('r', 'v') AND a.attnum > 0
             AND NOT a.attisdropped AND a.atttypid = 'uuid'::regtype
             AND (a.attname = ANY (%s) OR a.attname = 'use_case_id') ORDER BY 1, 2""",
        (list(RUN_COLUMNS),)).fetchall()


@pytest.mark.parametrize("group", GROUPS)
def test_a_login_of_desk_a_sees_no_row_of_desk_b_in_any_table_or_view(conn, desks, of_a, group):
    person = of_a(group)
    b_ids = _b_ids(conn, desks)
    a_uc = str(desks["a"][0])
    relations = _tables_and_views(conn)
    assert {"use_cases", "fact_pnl_entries", "calculation_runs", "fact_calculated_results", "close_events",
            "use_case_grants", "v_run_results", "v_cob_status"} <= {r for r, _ in relations}
    readable, seen_a = 0, set()
    for relation, column in relations:
        if not person.execute("SELECT has_table_privilege(%s, 'SELECT')", (f"pnl.{relation}",)).fetchone()[0]:
            continue
        readable += 1
        values = {str(v) for (v,) in person.execute(f"SELECT DISTINCT {column} FROM pnl.{relation}").fetchall()}
        everything = {str(v) for (v,) in conn.execute(f"SELECT DISTINCT {column} FROM pnl.{relation}").fetchall()}
        assert not values & b_ids, f"{group} of desk A sees desk B in {relation}.{column}"
        if column == "use_case_id" and a_uc in everything and relation != "use_case_grants":
            assert a_uc in values, f"{group} of desk A does not see desk A in {relation}"
            seen_a.add(relation)
    assert readable >= 10
    assert {"use_cases", "calculation_runs", "v_calculation_runs", "v_official_runs", "v_close_events"} <= seen_a


def test_the_policies_are_one_initplan_per_statement_not_a_call_per_row(conn, desks, of_a):
    admin = of_a("admin")
    plan = [r for (r,) in admin.execute(
        "EXPLAIN (COSTS OFF) INSERT INTO fact_pnl_entries (use_case_id, pnl_date, scenario, category_code, "
        "daily_amount, wtd_amount, ytd_amount, amount, attributes) SELECT %s, %s, 'ACTUAL', 'EQ', g, g, g, g, '{}' "
        "FROM generate_series(1, 1000) g", (desks["a"][0], COB))]
    # the bulk INSERT's check: two InitPlans under the Insert, no sub-plan run for each new row
    assert [line.strip().split(" (")[0] for line in plan if re.match(r"^  \S", line)] == \
        ["InitPlan 4", "InitPlan 7", "->  Function Scan on generate_series g"]
    plan = [r for (r,) in admin.execute("EXPLAIN (COSTS OFF) SELECT count(*) FROM fact_pnl_entries")]
    assert any(re.fullmatch(r"\s+Filter: \(\$\d+ OR \(use_case_id = ANY \(\$\d+\)\)\)", line) for line in plan), plan
    person = of_a("operator")
    plan = "\n".join(r for (r,) in person.execute(
        "EXPLAIN SELECT count(*) FROM fact_calculated_results WHERE calculation_run_id = %s", (desks["a"][1],)))
    assert "InitPlan" in plan and "SubPlan" in plan
    plan = "\n".join(r for (r,) in person.execute("EXPLAIN SELECT * FROM v_calculation_runs"))
    assert "InitPlan" in plan and "entitled" not in plan.split("InitPlan")[0]


def _leaks(person, b_ids: set[str], sql: str, params=()) -> str | None:
    """None when the call is refused or returns nothing of desk B (beyond the ids it was given, which a
    result may echo); else what it returned."""
    try:
        with person.transaction():
            rows = person.execute(sql, params).fetchall()
    except (DENIED, psycopg.errors.NoDataFound, psycopg.errors.RaiseException):
        return None
    text = repr(rows)
    return text if any(i in text for i in b_ids - {str(p) for p in params}) else None


def test_no_function_shows_desk_b_to_desk_a(conn, desks, of_a):
    _, a_run, _ = desks["a"]
    b, b_run, b_other = desks["b"]
    b_ids = _b_ids(conn, desks)
    operator, approver = of_a("operator"), of_a("approver")
    calls = [
        ("SELECT get_run(%s)", (b_run,)), ("SELECT list_runs(%s, NULL, 100)", (COB,)),
        ("SELECT list_runs(%s, %s, 100)", (COB, b)), ("SELECT * FROM compare_runs(%s, %s)", (b_run, b_other)),
        ("SELECT * FROM compare_runs(%s, %s)", (a_run, b_run)),
        ("SELECT explain_node(%s, 'EQ', 'ACTUAL', 10)", (b_run,)),
        ("SELECT explain_plug(%s, 'EQ', 'ACTUAL')", (b_run,)),
        ("SELECT explain_variance(%s, 'EQ', 'daily', NULL)", (b_run,)), ("SELECT * FROM run_rule_stats(%s)", (b_run,)),
        ("SELECT * FROM run_facts(%s, 'ACTUAL', NULL, 10)", (b_run,)), ("SELECT verify_run(%s)", (b_run,)),
        ("SELECT verify_chain(%s)", (b,)), ("SELECT * FROM chain_problems(%s, true)", (b,)),
        ("SELECT * FROM run_chain(%s)", (b,)), ("SELECT list_rules(%s)", (b,)), ("SELECT list_loads(%s, NULL)", (b,)),
        ("SELECT get_cob_status(%s, %s)", (b, COB)), ("SELECT list_cob_status(NULL, NULL, NULL)", ()),
        ("SELECT list_cob_status(%s, NULL, NULL)", (b,)), ("SELECT close_history(%s, %s)", (b, COB)),
        ("SELECT check_run(%s)", (b_run,)), ("SELECT official_run(%s, %s)", (b, COB)),
        ("SELECT * FROM cob_states(NULL)", ()), ("SELECT * FROM missing_fx_rates(%s, %s)", (b, COB)),
        ("SELECT * FROM list_use_case_grants(NULL)", ()), ("SELECT * FROM close_check_settings(%s)", (b,)),
    ]
    called = 0
    for sql, params in calls:
        for person in (operator, approver):
            function = _function(conn, sql)
            if person.execute("SELECT has_function_privilege(%s::oid, 'EXECUTE')", (function,)).fetchone()[0]:
                called += 1
                assert _leaks(person, b_ids, sql, params) is None, f"{sql} shows desk B"
    assert called >= 35
    # and the same calls see desk A
    assert operator.execute("SELECT get_run(%s) ->> 'use_case_id'", (a_run,)).fetchone()[0] == str(desks["a"][0])
    assert operator.execute("SELECT list_runs(%s, NULL, 100)", (COB,)).fetchone()[0]["total"] == 2
    assert operator.execute("SELECT verify_run(%s) ->> 'reproduced'", (a_run,)).fetchone()[0] == "true"
    with pytest.raises(DENIED, match=f"login {approver.info.user} is not entitled to use case {b}"):
        approver.execute("SELECT check_run(%s)", (b_run,))
    # a run of B is, to desk A, a run that does not exist
    for sql, params in [("SELECT get_run(%s)", (b_run,)), ("SELECT * FROM compare_runs(%s, %s)", (a_run, b_run)),
                        ("SELECT explain_node(%s, 'EQ', 'ACTUAL', 10)", (b_run,)), ("SELECT verify_run(%s)", (b_run,)),
                        ("SELECT verify_chain(%s)", (b,))]:
        with pytest.raises(psycopg.errors.NoDataFound, match="unknown"):
            operator.execute(sql, params)


def _function(conn, sql: str) -> int:
    name = sql.split("FROM ")[-1].split("SELECT ")[-1].split("(")[0]
    return conn.execute("SELECT p.oid FROM pg_proc p WHERE p.proname = %s AND p.pronamespace = 'pnl'::regnamespace",
                        (name,)).fetchone()[0]


def _run_count(conn) -> int:
    return conn.execute("SELECT count(*) FROM calculation_runs").fetchone()[0]


def test_an_operator_of_desk_a_snapshots_a_and_not_b_and_nothing_is_written(conn, desks, of_a):
    operator = of_a("operator")
    before = _run_count(conn)
    with pytest.raises(DENIED, match=f"login {operator.info.user} is not entitled to use case {desks['b'][0]}") as err:
        snapshot(operator, desks["b"][0])
    assert "grant_use_case" in err.value.diag.message_hint
    assert _run_count(conn) == before
    run = snapshot(operator, desks["a"][0])
    assert conn.execute("SELECT status, use_case_id FROM calculation_runs WHERE id = %s", (run,)).fetchone() == \
        ("COMPLETED", desks["a"][0])
    # submitting or withdrawing B's runs: refused before anything is read
    with pytest.raises(DENIED, match="not entitled"):
        operator.execute("SELECT submit_run(%s)", (desks["b"][2],))


def test_an_admin_of_desk_a_writes_a_and_nothing_of_b(conn, desks, of_a):
    admin = of_a("admin")
    b = desks["b"][0]
    counts = conn.execute("SELECT (SELECT count(*) FROM fact_pnl_entries), (SELECT count(*) FROM metadata_rules), "
                          "(SELECT count(*) FROM use_case_grants)").fetchone()
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match=r"not entitled|row-level security"):
        admin.execute("INSERT INTO fact_pnl_entries (use_case_id, pnl_date, scenario, category_code, daily_amount, "
                      "wtd_amount, ytd_amount, amount, attributes) VALUES (%s, %s, 'ACTUAL', 'X', 1, 1, 1, 1, '{}')",
                      (b, COB))
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match=r"not entitled|row-level security"):
        rule(admin, b, "EQ", cond("book", "equals", "X"))
    # B's rules, use case and rules' history are out of sight: updates and deletes touch nothing
    assert admin.execute("UPDATE metadata_rules SET logic_en = 'mine' WHERE use_case_id = %s", (b,)).rowcount == 0
    assert admin.execute("DELETE FROM metadata_rules WHERE use_case_id = %s", (b,)).rowcount == 0
    assert admin.execute("UPDATE use_cases SET description = 'mine' WHERE use_case_id = %s", (b,)).rowcount == 0
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
        admin.execute("UPDATE use_cases SET use_case_id = %s WHERE use_case_id = %s", (b, desks["a"][0]))
    for sql, params in [("SELECT replace_facts(%s, %s)", (b, COB)), ("SELECT open_fact_load(%s, 'x')", (b,)),
                        ("SELECT delete_use_case(%s)", (b,)), ("SELECT use_case_footprint(%s)", (b,)),
                        ("SELECT purge_runs(%s, %s)", (b, COB)), ("SELECT lock_use_case(%s, true)", (b,)),
                        ("SELECT grant_use_case(%s, 'desk_a')", (b,)),
                        ("SELECT revoke_use_case(%s, 'pnl_admin')", (b,)),
                        ("SELECT grant_use_case(NULL, 'desk_a')", ())]:
        with pytest.raises(DENIED, match="not entitled"):
            admin.execute(sql, params)
    assert conn.execute("SELECT (SELECT count(*) FROM fact_pnl_entries), (SELECT count(*) FROM metadata_rules), "
                        "(SELECT count(*) FROM use_case_grants)").fetchone() == counts
    assert conn.execute("SELECT description FROM use_cases WHERE use_case_id = %s", (b,)).fetchone()[0] is None
    # and A it writes
    rule(admin, desks["a"][0], "FX", cond("book", "equals", "X"))
    assert admin.execute("SELECT use_case_footprint(%s) ->> 'rules'", (desks["a"][0],)).fetchone()[0] == "2"


def test_purge_superseded_facts_of_an_admin_of_desk_a_leaves_desk_b_alone(conn, desks, of_a):
    for uc in (desks["a"][0], desks["b"][0]):
        with conn.transaction():
            conn.execute("SELECT replace_facts(%s, %s, 'ACTUAL')", (uc, EARLIER))
            conn.execute("INSERT INTO fact_pnl_entries (use_case_id, pnl_date, scenario, category_code, daily_amount, "
                         "wtd_amount, ytd_amount, amount, attributes) VALUES (%s, %s, 'ACTUAL', 'X', 1, 1, 1, 1, '{}')",
                         (uc, EARLIER))
    purged = of_a("admin").execute("SELECT purge_superseded_facts(now() + interval '1 day')").fetchone()[0]
    # A's superseded slice only: B's is neither locked, purged nor counted
    assert purged["slices_purged"] + purged["slices_kept_for_runs"] + purged["slices_kept_frozen"] == 1
    assert conn.execute("SELECT count(*) FROM fact_load_slices WHERE use_case_id = %s AND superseded_at IS NOT NULL "
                        "AND purged_at IS NULL", (desks["b"][0],)).fetchone()[0] == 1


def test_an_approver_of_desk_a_cannot_close_desk_b(conn, desks, of_a):
    approver = of_a("approver")
    b, b_run, _ = desks["b"]
    events = conn.execute("SELECT count(*) FROM close_events").fetchone()[0]
    for sql, params in [("SELECT approve_run(%s, 'ok')", (b_run,)), ("SELECT reject_run(%s, 'no')", (b_run,)),
                        ("SELECT sign_off_run(%s, 'ok')", (b_run,)), ("SELECT reopen_cob(%s, %s, 'why')", (b, COB)),
                        ("SELECT lock_cob(%s, %s, 'final')", (b, COB)),
                        ("SELECT set_check(%s, 'PLUG_LIMIT', 'OFF')", (b,)),
                        ("SELECT set_signoff_policy(%s, 'FOUR_EYES')", (b,))]:
        with pytest.raises(DENIED, match=f"not entitled to use case {b}"):
            approver.execute(sql, params)
    assert conn.execute("SELECT count(*) FROM close_events").fetchone()[0] == events
    a_second = desks["a"][2]
    assert approver.execute("SELECT approve_run(%s, 'ok') ->> 'status'", (a_second,)).fetchone()[0] == "SIGNED_OFF"


def test_views_show_the_granted_use_cases_and_a_revoke_takes_effect_at_the_next_statement(conn, desks, of_a):
    reader = of_a("reader")
    a, b = desks["a"][0], desks["b"][0]

    def seen() -> dict[str, set]:
        return {view: {u for (u,) in reader.execute(f"SELECT DISTINCT use_case_id FROM {view}")}
                for view in ("v_calculation_runs", "v_run_results", "v_official_runs", "v_cob_status",
                             "v_close_events", "use_cases")}

    def only(*use_cases) -> dict[str, set]:
        return {view: set(use_cases) for view in seen()}

    assert seen() == only(a)
    conn.execute("SELECT grant_use_case(%s, 'desk_a')", (b,))
    assert seen() == only(a, b)
    conn.execute("SELECT revoke_use_case(%s, 'desk_a')", (a,))
    assert seen() == only(b)
    conn.execute("SELECT revoke_use_case(%s, 'desk_a')", (b,))
    assert seen() == only()


def test_a_grant_reaches_the_members_of_its_members_and_a_superuser_sees_all(conn, desks, login):
    conn.execute("CREATE ROLE desk_a_team NOLOGIN IN ROLE desk_a")
    try:
        person = login("reader")
        conn.execute(f"GRANT desk_a_team TO {person.info.user}")
        assert person.execute("SELECT array_agg(name) FROM use_cases").fetchone()[0] == ["Desk A"]
        assert person.execute("SELECT entitled_use_cases()").fetchone()[0] == [desks["a"][0]]
        # SET ROLE changes nothing: entitlements follow the login (session_user)
        person.execute("SET ROLE pnl_reader")
        assert person.execute("SELECT array_agg(name) FROM use_cases").fetchone()[0] == ["Desk A"]
        person.execute("RESET ROLE")
        assert login("reader").execute("SELECT count(*) FROM use_cases").fetchone()[0] == 0
        assert conn.execute("SELECT entitled_to_all_use_cases(), count(*) FROM v_calculation_runs").fetchone() == \
            (True, 4)
    finally:
        conn.execute("REVOKE desk_a FROM desk_a_team")
        conn.execute("DROP ROLE desk_a_team")


def test_the_grant_of_all_covers_use_cases_created_later(conn, desks, login):
    conn.execute("SELECT grant_use_case(NULL, 'pnl_reader')")
    reader = login("reader")
    later = trading_use_case(conn, "Desk C")
    assert {u for (u,) in reader.execute("SELECT use_case_id FROM v_calculation_runs")} == \
        {desks["a"][0], desks["b"][0]}
    assert later in {u for (u,) in reader.execute("SELECT use_case_id FROM use_cases")}


def test_an_admin_of_one_desk_creates_a_use_case_and_works_on_it(conn, desks, of_a):
    admin = of_a("admin")
    # INSERT ... RETURNING checks the new row against the SELECT policy before the statement's trigger
    # grants it: refused. pnldb use-case create inserts, then reads.
    with pytest.raises(DENIED, match="row-level security"):
        admin.execute("INSERT INTO use_cases (name, structure_id) VALUES ('Desk N', 'TRADING') RETURNING use_case_id")
    admin.execute("INSERT INTO use_cases (name, structure_id) VALUES ('Desk N', 'TRADING')")
    new = admin.execute("SELECT use_case_id FROM use_cases WHERE name = 'Desk N'").fetchone()[0]
    assert conn.execute("SELECT role_name, granted_by FROM use_case_grants WHERE use_case_id = %s",
                        (new,)).fetchall() == [(admin.info.user, admin.info.user)]
    rule(admin, new, "FX", cond("book", "equals", "X"))
    admin.execute("INSERT INTO fact_pnl_entries (use_case_id, pnl_date, scenario, category_code, daily_amount, "
                  "wtd_amount, ytd_amount, amount, attributes) VALUES (%s, %s, 'ACTUAL', 'EQ', 1, 1, 1, 1, '{}')",
                  (new, COB))
    assert admin.execute("SELECT count(*) FROM metadata_rules WHERE use_case_id = %s", (new,)).fetchone()[0] == 1
    # an operator of desk A does not see it until it is granted
    operator = of_a("operator")
    assert operator.execute("SELECT count(*) FROM use_cases WHERE use_case_id = %s", (new,)).fetchone()[0] == 0
    admin.execute("SELECT grant_use_case(%s, 'desk_a')", (new,))
    assert snapshot(operator, new) is not None
    # a login entitled to all is granted nothing on creation
    conn.execute("INSERT INTO use_cases (name, structure_id) VALUES ('Desk S', 'TRADING')")
    assert conn.execute("SELECT count(*) FROM use_case_grants g JOIN use_cases u USING (use_case_id) "
                        "WHERE u.name = 'Desk S'").fetchone()[0] == 0


def test_grant_and_revoke_errors_and_who_calls_them(conn, desks, of_a, login):
    a = desks["a"][0]
    with pytest.raises(psycopg.errors.UndefinedObject, match="grant_use_case: unknown role no_such_role"):
        conn.execute("SELECT grant_use_case(%s, 'no_such_role')", (a,))
    with pytest.raises(psycopg.errors.NoDataFound, match=f"revoke_use_case: unknown use case {NO_SUCH}"):
        conn.execute("SELECT revoke_use_case(%s, 'desk_a')", (NO_SUCH,))
    with pytest.raises(psycopg.errors.NullValueNotAllowed, match="grant_use_case needs a role"):
        conn.execute("SELECT grant_use_case(%s, NULL)", (a,))
    with pytest.raises(psycopg.errors.NoDataFound, match="role pnl_reader holds no grant of all use cases") as err:
        conn.execute("SELECT revoke_use_case(NULL, 'pnl_reader')")
    assert "nothing was revoked" in err.value.diag.message_hint
    with pytest.raises(psycopg.errors.NoDataFound, match=f"role desk_a holds no grant of use case {desks['b'][0]}"):
        conn.execute("SELECT revoke_use_case(%s, 'desk_a')", (desks["b"][0],))
    assert conn.execute("SELECT grant_use_case(%s, 'desk_a')", (a,)).fetchone()[0] is False  # held already
    # readers, operators and approvers do not grant; an admin of A grants A, not B nor all
    for group in ("reader", "operator", "approver"):
        with pytest.raises(DENIED, match="permission denied for function grant_use_case"):
            of_a(group).execute("SELECT grant_use_case(%s, 'pnl_reader')", (a,))
    admin = of_a("admin")
    other = login("reader")
    assert admin.execute("SELECT grant_use_case(%s, %s)", (a, other.info.user)).fetchone()[0] is True
    assert other.execute("SELECT name FROM use_cases").fetchall() == [("Desk A",)]
    assert conn.execute("SELECT granted_by FROM use_case_grants WHERE role_name = %s",
                        (other.info.user,)).fetchone()[0] == admin.info.user
    with pytest.raises(DENIED, match=f"login {admin.info.user} is not entitled to all use cases, so it cannot grant"):
        admin.execute("SELECT grant_use_case(NULL, %s)", (admin.info.user,))
    admin.execute("SELECT revoke_use_case(%s, %s)", (a, other.info.user))
    assert other.execute("SELECT count(*) FROM use_cases").fetchone()[0] == 0
    # nobody writes the grants but the functions; the audit columns are the database's
    with pytest.raises(DENIED):
        admin.execute("INSERT INTO use_case_grants (use_case_id, role_name) VALUES (NULL, 'x')")
    conn.execute("INSERT INTO use_case_grants (use_case_id, role_name, granted_by, granted_at) "
                 "VALUES (NULL, 'desk_a', 'someone else', '2000-01-01')")
    assert conn.execute("SELECT granted_by, granted_at > now() - interval '1 minute' FROM use_case_grants "
                        "WHERE use_case_id IS NULL AND role_name = 'desk_a'").fetchone() == (conn.info.user, True)
    # the listing: a member of desk_a sees A's grants and the grants of all, never B's
    listed = admin.execute("SELECT use_case_name, role_name FROM list_use_case_grants()").fetchall()
    assert listed == [(None, "desk_a"), ("Desk A", "desk_a")]


def test_delete_use_case_counts_stay_right_and_its_grants_go_with_it(conn, desks, of_a):
    a = desks["a"][0]
    admin = of_a("admin")
    footprint = admin.execute("SELECT use_case_footprint(%s)", (a,)).fetchone()[0]
    conn.execute("SELECT withdraw_run(%s)", (desks["a"][2],))
    conn.execute("SELECT reopen_cob(%s, %s, 'to delete')", (a, COB))
    deleted = admin.execute("SELECT delete_use_case(%s)", (a,)).fetchone()[0]
    assert [deleted[f"{k}_purged"] for k in ("rules", "calculation_runs", "facts", "results")] == \
        [footprint[k] for k in ("rules", "calculation_runs", "facts", "results")]
    assert deleted["calculation_runs_purged"] == 2 and deleted["rules_purged"] == 1
    assert conn.execute("SELECT count(*) FROM use_case_grants WHERE use_case_id = %s", (a,)).fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM use_case_grants WHERE role_name = 'desk_a'").fetchone()[0] == 0


def test_the_default_keeps_todays_behaviour_on_a_fresh_install(conn, login):
    a = trading_use_case(conn, "Desk A")
    run = snapshot(conn, a)
    assert sorted(conn.execute("SELECT role_name FROM use_case_grants WHERE use_case_id IS NULL").fetchall()) == \
        [("pnl_admin",), ("pnl_approver",), ("pnl_operator",), ("pnl_reader",)]
    for group in GROUPS:
        person = login(group)
        assert person.execute("SELECT count(*) FROM v_calculation_runs").fetchone()[0] == 1
        assert person.execute("SELECT count(*) FROM fact_calculated_results").fetchone()[0] == \
            conn.execute("SELECT count(*) FROM fact_calculated_results").fetchone()[0]
    assert snapshot(login("operator"), a) != run


def test_migrating_an_existing_installation_keeps_everyones_view(set_up_conn, empty_db_url):
    set_up_conn.execute("SET search_path TO pnl, public")
    schema.migrate(set_up_conn, to="0014_integrity")
    set_up_conn.execute("INSERT INTO hierarchy_structures (structure_id, name) VALUES ('S', 'S')")
    set_up_conn.execute("INSERT INTO dim_hierarchy (structure_id, node_id, parent_node_id, node_name) "
                       "VALUES ('S', 'ROOT', NULL, 'Root')")
    uc = set_up_conn.execute("INSERT INTO use_cases (name, structure_id) VALUES ('Old', 'S') "
                            "RETURNING use_case_id").fetchone()[0]
    assert schema.migrate(set_up_conn) == ["0015_entitlements", "0016_fact_cents", "0017_fast_loads", "0018_cluster",
                                          "0019_fact_slice_statistics"]
    assert set_up_conn.execute("SELECT count(*) FROM use_case_grants WHERE use_case_id IS NULL").fetchone()[0] == 4
    set_up_conn.execute("INSERT INTO fact_pnl_entries (use_case_id, pnl_date, scenario, category_code, daily_amount, "
                       "wtd_amount, ytd_amount, amount, attributes) "
                       "VALUES (%s, %s, 'ACTUAL', 'ROOT', 1, 1, 1, 1, '{}')", (uc, COB))
    name = f"t_old_{uuid.uuid4().hex[:8]}"
    set_up_conn.execute(f"CREATE ROLE {name} LOGIN PASSWORD 'pw' IN ROLE pnl_operator")
    try:
        with psycopg.connect(make_conninfo(empty_db_url, user=name, password="pw"), autocommit=True) as person:
            person.execute("SET search_path TO pnl")
            assert person.execute("SELECT count(*) FROM fact_pnl_entries").fetchone()[0] == 1
            assert person.execute("SELECT create_snapshot(%s, %s)", (uc, COB)).fetchone()[0] is not None
            assert person.execute("SELECT count(*) FROM v_calculation_runs").fetchone()[0] == 1
    finally:
        set_up_conn.execute(f"DROP OWNED BY {name}")
        set_up_conn.execute(f"DROP ROLE {name}")


def test_rolling_back_0015_drops_the_grants_and_the_policies(conn, desks):
    assert schema.rollback(conn, to="0014_integrity", force=True) == [
        "0019_fact_slice_statistics", "0018_cluster", "0017_fast_loads", "0016_fact_cents",
                                                                      "0015_entitlements"]
    assert conn.execute("SELECT to_regclass('pnl.use_case_grants')").fetchone()[0] is None
    assert conn.execute("SELECT count(*) FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid "
                        "WHERE c.relnamespace = 'pnl'::regnamespace").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM pg_class WHERE relnamespace = 'pnl'::regnamespace "
                        "AND relrowsecurity").fetchone()[0] == 0
    assert schema.migrate(conn) == ["0015_entitlements", "0016_fact_cents", "0017_fast_loads", "0018_cluster",
                                          "0019_fact_slice_statistics"]
    assert conn.execute("SELECT count(*) FROM use_case_grants WHERE use_case_id IS NULL").fetchone()[0] == 4


def test_rolling_back_0015_refuses_while_the_grants_are_not_the_default_unless_forced(conn):
    """Re-applying 0015 grants every use case to the four groups again: a narrowed installation would widen."""
    uc = trading_use_case(conn)
    assert schema.rollback_losses(conn, "pnl", ["0015_entitlements"]) == []
    conn.execute("SELECT revoke_use_case(NULL, 'pnl_operator')")
    conn.execute("SELECT grant_use_case(%s, 'pnl_operator')", (uc,))
    what = ("use-case grant(s) other than the default, or default grant(s) revoked, which re-applying "
            "0015_entitlements would not keep (use_case_grants)")
    assert schema.rollback_losses(conn, "pnl", ["0015_entitlements"]) == [("0015_entitlements", what, 2)]
    with pytest.raises(PnlError, match=re.escape(f"2 {what} (rolling back 0015_entitlements)")):
        schema.rollback(conn, to="0014_integrity")
    assert conn.execute("SELECT count(*) FROM use_case_grants").fetchone() == (4,)


def use_case_cli(db_url, *args, user: str | None = None):
    dsn = db_url if user is None else make_conninfo(db_url, user=user, password="pw")
    return CliRunner().invoke(main, ["--dsn", dsn, "use-case", *args])


def test_cli_grant_revoke_and_list(conn, db_url, desks, of_a):
    admin = of_a("admin").info.user
    conn.execute("CREATE ROLE desk_b NOLOGIN")
    try:
        granted = use_case_cli(db_url, "grant", "Desk B", "desk_b")
        assert (granted.exit_code, granted.stdout, granted.stderr) == (0, "", "granted use case 'Desk B' to desk_b\n")
        again = use_case_cli(db_url, "grant", str(desks["b"][0]), "desk_b")
        assert again.stderr == f"desk_b holds use case '{desks['b'][0]}' already\n"
        listed = use_case_cli(db_url, "grants", "Desk B", "--json")
        assert listed.exit_code == 0, listed.stderr
        assert [(g["use_case_name"], g["role_name"], g["granted_by"]) for g in json.loads(listed.stdout)] == \
            [("Desk B", "desk_b", conn.info.user)]
        table = use_case_cli(db_url, "grants").stdout.splitlines()
        assert table[0].split() == ["USE", "CASE", "ID", "USE", "CASE", "ROLE", "GRANTED", "BY", "GRANTED", "AT"]
        assert [line.split()[1:4] for line in table[1:]] == [["Desk", "A", "desk_a"], ["Desk", "B", "desk_b"]]
        # an admin of desk A: B is unknown to it, all is not its to grant, A is
        refused = use_case_cli(db_url, "grant", "Desk B", admin, user=admin)
        assert refused.exit_code == 1 and refused.stderr.startswith("pnldb: error: unknown use case 'Desk B'")
        refused = use_case_cli(db_url, "grant", "--all", admin, user=admin)
        assert refused.exit_code == 1 and "is not entitled to all use cases" in refused.stderr
        assert use_case_cli(db_url, "grants", user=admin).stdout.splitlines()[1].split()[1:4] == ["Desk", "A", "desk_a"]
        usage = use_case_cli(db_url, "grant", "Desk B")
        assert usage.exit_code == 2 and "takes USE_CASE ROLE, or --all ROLE" in usage.stderr
        revoked = use_case_cli(db_url, "revoke", "Desk B", "desk_b")
        assert (revoked.exit_code, revoked.stderr) == (0, "revoked use case 'Desk B' from desk_b\n")
        again = use_case_cli(db_url, "revoke", "Desk B", "desk_b")
        assert again.exit_code == 1 and "role desk_b holds no grant of use case" in again.stderr
        assert use_case_cli(db_url, "grant", "--all", "desk_b").stderr == "granted all use cases to desk_b\n"
        assert use_case_cli(db_url, "revoke", "--all", "desk_b").exit_code == 0
    finally:
        conn.execute("DROP ROLE desk_b")


def test_cli_use_case_create_by_an_admin_of_one_desk(db_url, desks, of_a):
    admin = of_a("admin").info.user
    created = CliRunner().invoke(main, ["--dsn", make_conninfo(db_url, user=admin, password="pw"), "use-case",
                                        "create", "Desk N", "--structure", "TRADING", "--json"])
    assert created.exit_code == 0, created.stderr
    assert json.loads(created.stdout)["name"] == "Desk N"
    with psycopg.connect(make_conninfo(db_url, user=admin, password="pw"), autocommit=True) as own:
        own.execute("SET search_path TO pnl")
        assert [(g["use_case_name"], g["role_name"]) for g in api.list_use_case_grants(own, "Desk N")] == \
            [("Desk N", admin)]
        assert api.grant_use_case(own, "Desk N", "desk_a") is True
        api.revoke_use_case(own, "Desk N", "desk_a")


def test_the_fact_loader_works_for_an_admin_of_one_desk_and_a_direct_copy_is_refused(conn, desks, of_a, tmp_path):
    admin = of_a("admin")
    path = tmp_path / "facts.csv"
    path.write_text("pnl_date,scenario,category_code,daily_amount,wtd_amount,ytd_amount\n"
                    "2025-12-26,ACTUAL,EQ,1.00,1.00,1.00\n")
    summary = api.load_facts(admin, str(path), "Desk A")
    assert conn.execute("SELECT count(*) FROM fact_pnl_entries WHERE use_case_id = %s AND pnl_date = '2025-12-26'",
                        (desks["a"][0],)).fetchone()[0] == 1, summary
    for b in ("Desk B", str(desks["b"][0])):  # to desk A, B does not exist, by name or id
        with pytest.raises(PnlError, match=f"unknown use case '{b}'"):
            api.load_facts(admin, str(path), b)
    # PostgreSQL refuses COPY FROM into a table with row-level security to roles it applies to: the
    # loader copies into a staging table, then INSERTs
    copy_sql = ("COPY fact_pnl_entries (use_case_id, pnl_date, scenario, category_code, daily_amount, wtd_amount, "
                "ytd_amount) FROM STDIN")
    with pytest.raises(psycopg.errors.FeatureNotSupported, match="COPY FROM not supported with row-level security"), \
            admin.cursor().copy(copy_sql) as copy:
        copy.write_row((desks["a"][0], "2025-12-27", "ACTUAL", "EQ", 1, 1, 1))
