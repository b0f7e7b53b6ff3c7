"""Roles: log in as each of reader, operator and admin and prove what it can and cannot do."""
from __future__ import annotations

import psycopg
import pytest

from tests.builders import COB, cond, facts, rule, snapshot, structure, use_case

DENIED = psycopg.errors.InsufficientPrivilege


@pytest.fixture
def world(conn):
    structure(conn, "S", [("ROOT", None), ("A", "ROOT")])
    uc = use_case(conn, "U", "S")
    facts(conn, uc, [("ACTUAL", "A", "10", "10", "10", {"book": "x"}), ("PRIOR", "A", "4", "4", "4", {})])
    rule(conn, uc, "A", cond("book", "equals", "x"))
    run = snapshot(conn, uc, name="Initial Run")
    return uc, run


def test_roles_are_nologin_groups_nested_reader_operator_admin(conn):
    rows = conn.execute("SELECT rolname, rolcanlogin FROM pg_roles "
                        "WHERE rolname IN ('pnl_reader', 'pnl_operator', 'pnl_admin') ORDER BY 1").fetchall()
    assert rows == [("pnl_admin", False), ("pnl_operator", False), ("pnl_reader", False)]
    assert conn.execute("SELECT pg_has_role('pnl_admin', 'pnl_reader', 'MEMBER')").fetchone()[0]
    assert not conn.execute("SELECT pg_has_role('pnl_reader', 'pnl_operator', 'MEMBER')").fetchone()[0]


def test_a_reader_reads_runs_and_nothing_else(login, world):
    uc, run = world
    reader = login("reader")
    assert reader.execute("SELECT get_run(%s) ->> 'run_name'", (run,)).fetchone()[0] == "Initial Run"
    assert reader.execute("SELECT list_runs() -> 'total'").fetchone()[0] == 1
    assert reader.execute("SELECT count(*) FROM compare_runs(%s, %s)", (run, run)).fetchone()[0] == 0
    assert reader.execute("SELECT daily_actual FROM v_run_results WHERE node_id = 'ROOT'").fetchone()[0] == 10
    assert reader.execute("SELECT use_case_name FROM v_calculation_runs").fetchone()[0] == "U"
    for statement, args in [
        ("SELECT create_snapshot(%s, %s)", (uc, COB)),
        ("SELECT count(*) FROM fact_pnl_entries", None),
        ("SELECT count(*) FROM metadata_rules", None),
        ("INSERT INTO use_cases (name, structure_id) VALUES ('x', 'S')", None),
        ("SELECT delete_use_case(%s)", (uc,)),
        ("UPDATE calculation_runs SET run_name = 'x'", None),
    ]:
        with pytest.raises(DENIED):
            reader.execute(statement, args)


def test_an_operator_takes_snapshots_but_writes_no_data(login, world, conn):
    uc, _ = world
    operator = login("operator")
    run = operator.execute("SELECT create_snapshot(%s, %s)", (uc, COB)).fetchone()[0]
    status, by = operator.execute("SELECT status, triggered_by FROM calculation_runs WHERE id = %s", (run,)).fetchone()
    assert status == "COMPLETED" and by == operator.info.user  # the session user, not the function's owner
    for statement, args in [
        ("INSERT INTO fact_pnl_entries (use_case_id, pnl_date, scenario, category_code, daily_amount, wtd_amount, "
         "ytd_amount) VALUES (%s, %s, 'ACTUAL', 'A', 1, 1, 1)", (uc, COB)),
        ("""INSERT INTO metadata_rules (use_case_id, node_id, predicate_json)
            VALUES (%s, 'ROOT', '{"conditions": []}')""", (uc,)),
        ("DELETE FROM fact_pnl_entries", None),
        ("SELECT delete_use_case(%s)", (uc,)),
        ("INSERT INTO calculation_runs (pnl_date, use_case_id, run_name, status) "
         "VALUES (%s, %s, 'fake', 'COMPLETED')", (COB, uc)),
        ("DELETE FROM fact_calculated_results", None),
    ]:
        with pytest.raises(DENIED):
            operator.execute(statement, args)
    assert conn.execute("SELECT count(*) FROM calculation_runs").fetchone()[0] == 2


def test_an_admin_writes_data_and_deletes_use_cases_only_through_delete_use_case(login, world, conn):
    uc, run = world
    admin = login("admin")
    admin.execute("INSERT INTO hierarchy_structures (structure_id, name) VALUES ('T', 'T')")
    admin.execute("INSERT INTO dim_hierarchy (structure_id, node_id, parent_node_id, node_name) "
                  "VALUES ('T', 'R', NULL, 'R')")
    other = admin.execute("INSERT INTO use_cases (name, structure_id) VALUES ('V', 'T') "
                          "RETURNING use_case_id").fetchone()[0]
    admin.execute("INSERT INTO fact_pnl_entries (use_case_id, pnl_date, scenario, category_code, daily_amount, "
                  "wtd_amount, ytd_amount) VALUES (%s, %s, 'ACTUAL', 'R', 1, 1, 1)", (other, COB))
    admin.execute("""INSERT INTO metadata_rules (use_case_id, node_id, predicate_json)
                     VALUES (%s, 'R', '{"conditions": [{"field": "book", "operator": "equals", "value": "x"}]}')""",
                  (other,))
    admin.execute("SELECT create_snapshot(%s, %s)", (other, COB))
    for statement, error in [
        ("UPDATE calculation_runs SET run_name = 'x'", DENIED),
        ("DELETE FROM calculation_runs", DENIED),
        ("DELETE FROM fact_calculated_results", DENIED),
        ("DELETE FROM use_cases", DENIED),
    ]:
        with pytest.raises(error):
            admin.execute(statement)
    summary = admin.execute("SELECT delete_use_case(%s)", (uc,)).fetchone()[0]
    assert summary["calculation_runs_purged"] == 1 and summary["facts_purged"] == 2
    assert conn.execute("SELECT count(*) FROM calculation_runs WHERE id = %s", (run,)).fetchone()[0] == 0


def test_not_even_the_owner_can_update_a_finished_run(conn, world):
    _, run = world
    for statement in ("UPDATE calculation_runs SET status = 'FAILED', error_message = 'x'",
                      "UPDATE fact_calculated_results SET daily_adjusted = 0",
                      "DELETE FROM calculation_runs"):
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
            conn.execute(statement)
    assert conn.execute("SELECT status FROM calculation_runs WHERE id = %s", (run,)).fetchone()[0] == "COMPLETED"


def test_functions_that_need_more_than_their_caller_are_security_definer_with_a_pinned_search_path(conn):
    rows = conn.execute(
        """SELECT p.proname, p.prosecdef, p.proconfig FROM pg_proc p
           WHERE p.pronamespace = 'pnl'::regnamespace ORDER BY 1""").fetchall()
    definers = {name for name, secdef, _ in rows if secdef}
    # the fact-load bookkeeping writes tables no caller may write (fact_loads, fact_load_slices)
    # the rate freeze reads the facts and the close's units of every use case a rate concerns
    assert definers == {"create_snapshot", "delete_use_case", "use_case_footprint", "open_fact_load",
                        "fact_loads_count_their_slices", "replace_facts", "purge_superseded_facts",
                        # the close: transitions and settings write close_events; check_run reads the loads
                        "check_run", "submit_run", "approve_run", "reject_run", "withdraw_run", "sign_off_run",
                        "reopen_cob", "lock_cob", "set_check", "set_signoff_policy", "cob_states",
                        "fx_rates_frozen",
                        # ANALYZE of the fact tables after a large load, which only their owner may run
                        "analyze_facts",
                        # purge_runs writes runs_being_purged, which nobody else may, and deletes runs
                        "purge_runs",
                        # a use case's loads take their facts with them, as the foreign key's cascade did
                        "fact_loads_take_their_facts",
                        # ANALYZE needs the table's owner; the hierarchy loader runs as an admin
                        "analyze_hierarchy",
                        # the locks are rows of lock_rows, which no caller may lock or write (contract: robustness)
                        "lock_use_case", "lock_structure", "take_lock", "use_cases_get_lock_rows",
                        "structures_get_lock_rows", "fact_slices_get_lock_rows",
                        # the rules' history, which no rule writer may write (issue 18)
                        "record_rule_version",
                        # the chain of runs follows the purged links recorded in close_events (issue 18), and a
                        # run is linked at commit, outside create_snapshot (issue 18)
                        "run_chain", "runs_are_chained",
                        # entitlements (issue 18): the grants, which nobody writes directly, and their listing
                        "grant_use_case", "revoke_use_case", "list_use_case_grants", "use_cases_granted_to_creator"}

    for name, _, config in rows:
        assert config and any(c.startswith("search_path=") for c in config), name
    public = conn.execute(
        """SELECT p.proname FROM pg_proc p WHERE p.pronamespace = 'pnl'::regnamespace
           AND has_function_privilege('public', p.oid, 'EXECUTE')""").fetchall()
    assert public == []
