"""verify_run (contract §6): a run recomputed from the inputs it recorded, its loads' facts, its rules and
its tree, reproduces every result row, also after the slice was replaced and the rules and hierarchy
were edited; a run without recorded inputs (taken before migration 0005) is refused with one clear
error; and what the migration makes of facts already there."""
from __future__ import annotations

import json
from decimal import Decimal

import psycopg
import pytest
from builders import COB, EARLIER, cond, facts, rule, snapshot, trading_use_case
from click.testing import CliRunner

from pnldb import api, schema
from pnldb.api.runs import run_is_sound
from pnldb.cli import main


def test_a_fresh_run_is_reproduced_row_by_row(conn):
    uc = trading_use_case(conn)
    rule(conn, uc, "EMEA", cond("book", "equals", "a"))
    run = snapshot(conn, uc)
    verdict = api.verify_run(conn, run)
    digest = conn.execute("SELECT encode(digest, 'hex') FROM pnl.calculation_runs WHERE id = %s", (run,)).fetchone()[0]
    assert verdict == {"run_id": str(run), "reproduced": True, "rows_checked": 30, "mismatch_count": 0,
                       "mismatches": [], "digest": digest, "digest_ok": True, "chain_seq": 1,
                       "previous_run_id": None, "chain_ok": True, "chain_problem": None, "tree_problem": None}
    assert len(digest) == 64


def test_a_recorded_tree_changed_into_two_roots_is_reported_not_recomputed(conn):
    uc = trading_use_case(conn)
    run = snapshot(conn, uc)
    rows = conn.execute("SELECT count(*) FROM fact_calculated_results WHERE calculation_run_id = %s",
                        (run,)).fetchone()[0]
    with conn.transaction():  # as a superuser, around the triggers
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute("UPDATE fact_calculated_results SET parent_node_id = NULL "
                     "WHERE calculation_run_id = %s AND node_id = 'EMEA'", (run,))
    verdict = api.verify_run(conn, run)
    assert verdict["tree_problem"] == ("the run's recorded tree has 2 roots (EMEA, FIRM), not one: its result rows "
                                       "were changed")
    assert (verdict["reproduced"], verdict["mismatch_count"], verdict["digest_ok"]) == (False, rows, False)
    assert {m["column"] for m in verdict["mismatches"]} == {"row"}
    assert run_is_sound(verdict) == "its digest is not that of its rows: changed after it completed"
    assert run_is_sound({**verdict, "digest_ok": None}) == verdict["tree_problem"]  # a run without a digest


def test_the_run_is_reproduced_after_its_slice_was_replaced_and_rules_and_tree_edited(conn):
    uc = trading_use_case(conn)
    rule(conn, uc, "EMEA", cond("book", "equals", "a"))
    run = snapshot(conn, uc)
    stored = conn.execute("SELECT * FROM fact_calculated_results WHERE calculation_run_id = %s ORDER BY result_id",
                          (run,)).fetchall()
    with conn.transaction():
        conn.execute("SELECT replace_facts(%s, %s, 'ACTUAL', 'corrected')", (uc, COB))
        facts(conn, uc, [("ACTUAL", "RATES_1", "5.00", "5.00", "5.00", {"book": "z"})])
    conn.execute("UPDATE metadata_rules SET predicate_json = %s WHERE use_case_id = %s",
                 (json.dumps(cond("book", "equals", "b")), uc))
    rule(conn, uc, "AMER", cond("book", "not_equals", "a"))
    conn.execute("UPDATE dim_hierarchy SET parent_node_id = 'AMER' WHERE node_id = 'FX'")
    assert api.verify_run(conn, run)["reproduced"] is True
    # and today's inputs give other numbers: a new run differs from the old one
    assert api.run_root(conn, snapshot(conn, uc))["ACTUAL"]["daily_natural"] == Decimal("5.00")
    assert conn.execute("SELECT * FROM fact_calculated_results WHERE calculation_run_id = %s ORDER BY result_id",
                        (run,)).fetchall() == stored


def test_a_load_that_lost_one_scenario_is_read_for_the_other_only(conn):
    uc = trading_use_case(conn)  # one load with both scenarios of COB
    with conn.transaction():
        conn.execute("SELECT replace_facts(%s, %s, 'PRIOR')", (uc, COB))
        facts(conn, uc, [("PRIOR", "RATES_1", "1.00", "1.00", "1.00", {"book": "a"})])
    run = snapshot(conn, uc)
    root = api.run_root(conn, run)
    assert (root["ACTUAL"]["daily_natural"], root["PRIOR"]["daily_natural"]) == (Decimal("1000097.25"),
                                                                                 Decimal("1.00"))
    inputs = conn.execute("SELECT scenario, facts, daily_sum FROM calculation_run_inputs WHERE calculation_run_id = %s "
                          "ORDER BY load_id, scenario", (run,)).fetchall()
    assert inputs == [("ACTUAL", 5, Decimal("1000097.25")), ("PRIOR", 1, Decimal("1.00"))]
    assert api.verify_run(conn, run)["reproduced"] is True


def test_a_stored_value_that_the_inputs_do_not_give_is_reported(conn):
    """A result row forged behind the triggers' back (as the superuser could) is caught by verify_run."""
    uc = trading_use_case(conn)
    run = snapshot(conn, uc)
    with conn.transaction():
        conn.execute("SET LOCAL session_replication_role = replica")  # the test user is the superuser
        conn.execute("UPDATE fact_calculated_results SET daily_adjusted = daily_adjusted + 1 "
                     "WHERE calculation_run_id = %s AND node_id = 'RATES' AND scenario = 'ACTUAL'", (run,))
    verdict = api.verify_run(conn, run)
    assert verdict["reproduced"] is False
    assert verdict["mismatch_count"] == 1
    assert verdict["mismatches"] == [{"node_id": "RATES", "scenario": "ACTUAL", "column": "daily_adjusted",
                                      "stored": "50.75", "recomputed": "49.75"}]
    result = CliRunner().invoke(main, ["--dsn", conn.info.dsn, "runs", "verify", str(run)])
    assert result.exit_code == 1
    assert "RATES  ACTUAL    daily_adjusted  50.75   49.75" in result.stdout
    assert f"run {run}: NOT reproduced: 1 mismatches in 30 result rows" in result.stderr


def test_runs_verify_prints_the_verdict_and_exits_0(conn):
    run = snapshot(conn, trading_use_case(conn))
    result = CliRunner().invoke(main, ["--dsn", conn.info.dsn, "runs", "verify", str(run)])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr == f"run {run}: reproduced: all 30 result rows recomputed from its recorded inputs\n"
    as_json = CliRunner().invoke(main, ["--dsn", conn.info.dsn, "runs", "verify", str(run), "--json"])
    assert json.loads(as_json.stdout)["reproduced"] is True


def test_a_failed_or_unknown_run_is_refused(conn):
    uc = trading_use_case(conn)
    with pytest.raises(psycopg.errors.NoDataFound, match="unknown run 00000000-0000-0000-0000-000000000000"):
        api.verify_run(conn, "00000000-0000-0000-0000-000000000000")
    # a stored predicate that no longer validates, written behind the trigger's back, fails the snapshot
    conn.execute("ALTER TABLE metadata_rules DISABLE TRIGGER rule_is_valid")
    conn.execute("""INSERT INTO metadata_rules (use_case_id, node_id, predicate_json) VALUES
                    (%s, 'RATES', '{"conditions": [{"field": "book", "operator": "contains", "value": "x"}]}')""",
                 (uc,))
    conn.execute("ALTER TABLE metadata_rules ENABLE TRIGGER rule_is_valid")
    failed = snapshot(conn, uc)
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState,
                       match=rf"verify_run: run {failed} \(Run 1\) is FAILED, not COMPLETED"):
        api.verify_run(conn, failed)


def _pre_migration_run(empty_conn):
    """A database at migration 0004 with a use case, facts and a COMPLETED run written as the SQL layer of
    that time would have, then upgraded: facts become loads, the run has no recorded inputs."""
    schema.create_roles(empty_conn)
    schema.migrate(empty_conn, to="0004_identity_cache")
    c = empty_conn
    c.execute("INSERT INTO pnl.hierarchy_structures VALUES ('S', 'S')")
    c.execute("INSERT INTO pnl.dim_hierarchy (structure_id, node_id, parent_node_id, node_name) VALUES "
              "('S', 'ROOT', NULL, 'Root'), ('S', 'A', 'ROOT', 'A')")
    uc = c.execute("INSERT INTO pnl.use_cases (name, structure_id) VALUES ('Old', 'S') RETURNING use_case_id"
                   ).fetchone()[0]
    for scenario, date, amount in (("ACTUAL", COB, "10.00"), ("ACTUAL", COB, "2.50"), ("PRIOR", COB, "4.00"),
                                   ("ACTUAL", EARLIER, "1.00")):
        c.execute("INSERT INTO pnl.fact_pnl_entries (use_case_id, pnl_date, scenario, category_code, amount, "
                  "daily_amount, wtd_amount, ytd_amount) VALUES (%s, %s, %s, 'A', %s, %s, %s, %s)",
                  (uc, date, scenario, amount, amount, amount, amount))
    run = c.execute("INSERT INTO pnl.calculation_runs (pnl_date, use_case_id, run_name, status) "
                    "VALUES (%s, %s, 'Old run', 'COMPLETED') RETURNING id", (COB, uc)).fetchone()[0]
    c.execute("INSERT INTO pnl.fact_calculated_results (calculation_run_id, node_id, scenario, daily_natural) "
              "VALUES (%s, 'ROOT', 'ACTUAL', 12.50)", (run,))
    schema.migrate(empty_conn)
    return uc, run


def test_the_migration_makes_one_load_per_slice_and_old_runs_are_refused_saying_why(empty_conn):
    uc, run = _pre_migration_run(empty_conn)
    c = empty_conn
    slices = c.execute("SELECT pnl_date, scenario, rows, daily_sum, superseded_at FROM pnl.fact_load_slices "
                       "ORDER BY pnl_date, scenario").fetchall()
    assert slices == [(EARLIER, "ACTUAL", 1, Decimal("1.00"), None), (COB, "ACTUAL", 2, Decimal("12.50"), None),
                      (COB, "PRIOR", 1, Decimal("4.00"), None)]
    loads = c.execute("SELECT count(*), sum(rows) FROM pnl.fact_loads WHERE use_case_id = %s", (uc,)).fetchone()
    assert loads == (3, 4)
    assert c.execute("SELECT count(DISTINCT load_id) FROM pnl.fact_pnl_entries").fetchone()[0] == 3
    c.execute("SET search_path TO pnl")
    for call in ("verify_run(%s)", "explain_node(%s, 'ROOT')"):
        if call.startswith("explain") and not c.execute("SELECT to_regproc('pnl.explain_node')").fetchone()[0]:
            continue
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState,
                           match=rf"run {run} \(Old run\) was taken before pnldb recorded the facts each run read "
                                 r"\(migration 0005_fact_loads\), so it cannot be explained or verified"):
            c.execute(f"SELECT * FROM {call}", (run,))
    # a new run of the same date records its inputs and is reproduced
    new = c.execute("SELECT create_snapshot(%s, %s)", (uc, COB)).fetchone()[0]
    assert api.verify_run(c, new)["reproduced"] is True
    # new loads get ids after the migrated ones
    c.execute("INSERT INTO fact_pnl_entries (use_case_id, pnl_date, scenario, category_code, daily_amount, "
              "wtd_amount, ytd_amount) VALUES (%s, %s, 'ACTUAL', 'A', 1, 1, 1)", (uc, EARLIER))
    assert c.execute("SELECT max(load_id) FROM fact_loads").fetchone()[0] == 4


def test_rolling_fact_loads_back_is_refused_while_superseded_facts_exist(empty_conn):
    uc, _ = _pre_migration_run(empty_conn)
    c = empty_conn
    with c.transaction():
        c.execute("SELECT pnl.replace_facts(%s, %s, 'PRIOR')", (uc, COB))
    before = c.execute("SELECT count(*) FROM pnl.fact_pnl_entries").fetchone()[0]
    with pytest.raises(Exception, match="cannot roll back fact loads: superseded facts exist"):
        schema.rollback(c, to="0004_identity_cache", force=True)
    assert c.execute("SELECT count(*) FROM pnl.fact_pnl_entries").fetchone()[0] == before
    assert c.execute("SELECT to_regproc('pnl.create_snapshot') IS NOT NULL").fetchone()[0]  # nothing was changed
    c.execute("SELECT pnl.purge_superseded_facts(now() + interval '1 second')")
    newer = schema.migration_ids()[schema.migration_ids().index("0005_fact_loads"):]
    assert schema.rollback(c, to="0004_identity_cache", force=True) == newer[::-1]
    assert c.execute("SELECT count(*) FROM pnl.fact_pnl_entries").fetchone()[0] == before - 1
