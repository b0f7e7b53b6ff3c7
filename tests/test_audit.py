"""Issue 18, items 5, 6 and 8: audit columns the database sets, the rules' append-only history, history
that stays where it was (structure, status, compare_runs), and a rollback that asks before it destroys."""
from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import psycopg
import pytest
from click.testing import CliRunner

from pnldb import schema
from pnldb.cli import main
from pnldb.errors import PnlError
from tests.builders import COB, TRADING_TREE, cond, rule, snapshot, structure, trading_use_case, use_case

DENIED = psycopg.errors.InsufficientPrivilege
FORGED_AT = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


def now(conn):
    return conn.execute("SELECT now()").fetchone()[0]


def versions(conn, uc):
    return conn.execute("SELECT rule_id, operation, node_id, predicate_json, sql_where, logic_en, changed_by "
                        "FROM rule_versions WHERE use_case_id = %s ORDER BY version_id", (uc,)).fetchall()


@pytest.fixture
def uc(conn):
    return trading_use_case(conn)


# --- item 5: audit columns --------------------------------------------------------------------------


def test_a_rules_who_and_when_are_the_databases_whatever_the_writer_sends(conn, uc, login):
    admin = login("admin")
    with admin.transaction():
        rule_id = admin.execute(
            "INSERT INTO metadata_rules (use_case_id, node_id, predicate_json, last_modified_by, created_at, "
            "last_modified_at) VALUES (%s, 'RATES', %s::jsonb, 'ceo', %s, %s) RETURNING rule_id",
            (uc, json.dumps(cond("book", "equals", "a")), FORGED_AT, FORGED_AT)).fetchone()[0]
        created = now(admin)
    stamps = "SELECT last_modified_by, created_at, last_modified_at FROM metadata_rules WHERE rule_id = %s"
    assert conn.execute(stamps, (rule_id,)).fetchone() == (admin.info.user, created, created)
    with conn.transaction():  # the owner, in a later transaction
        conn.execute("UPDATE metadata_rules SET logic_en = 'why', last_modified_by = 'ceo', created_at = %s, "
                     "last_modified_at = %s WHERE rule_id = %s", (FORGED_AT, FORGED_AT, rule_id))
        updated = now(conn)
    assert conn.execute(stamps, (rule_id,)).fetchone() == (conn.info.user, created, updated)
    assert updated > created


def test_runs_loads_rates_checks_events_and_use_cases_are_stamped_by_the_database(conn, uc, login):
    operator = login("operator")
    run = snapshot(operator, uc, by="the month-end batch")
    executed_by, triggered_by, executed_at = conn.execute(
        "SELECT executed_by, triggered_by, executed_at FROM calculation_runs WHERE id = %s", (run,)).fetchone()
    assert (executed_by, triggered_by) == (operator.info.user, "the month-end batch")  # triggered_by: a label
    assert executed_at > FORGED_AT
    # the owner writing a run header by hand names itself, at a time of its own transaction
    with conn.transaction(force_rollback=True):  # nothing of it stays
        forged = conn.execute(
            "INSERT INTO calculation_runs (pnl_date, use_case_id, run_name, executed_by, executed_at) "
            "VALUES (%s, %s, 'by hand', 'alice', %s) RETURNING id", (COB, uc, FORGED_AT)).fetchone()[0]
        started = now(conn)
        by, at = conn.execute("SELECT executed_by, executed_at FROM calculation_runs WHERE id = %s",
                              (forged,)).fetchone()
        assert by == conn.info.user and started <= at <= conn.execute("SELECT clock_timestamp()").fetchone()[0]
    with conn.transaction():
        load = conn.execute("INSERT INTO fact_loads (use_case_id, loaded_by, loaded_at, source) "
                            "VALUES (%s, 'alice', %s, 'x.csv') RETURNING load_id", (uc, FORGED_AT)).fetchone()[0]
        loaded = now(conn)
    assert conn.execute("SELECT loaded_by, loaded_at FROM fact_loads WHERE load_id = %s", (load,)).fetchone() == \
        (conn.info.user, loaded)
    admin = login("admin")
    with admin.transaction():
        admin.execute("INSERT INTO fx_rates (pnl_date, currency, reporting_currency, rate, loaded_by, loaded_at) "
                      "VALUES (%s, 'EUR', 'USD', 1.1, 'alice', %s)", (COB, FORGED_AT))
        admin.execute("UPDATE fx_rates SET rate = 1.2, loaded_by = 'bob', loaded_at = %s", (FORGED_AT,))
        rated = now(admin)
    assert conn.execute("SELECT rate, loaded_by, loaded_at FROM fx_rates").fetchall() == [
        (Decimal("1.2"), admin.info.user, rated)]
    with conn.transaction():
        conn.execute("INSERT INTO close_checks (use_case_id, code, severity, set_by, set_at) "
                     "VALUES (%s, 'x', 'OFF', 'alice', %s)", (uc, FORGED_AT))
        conn.execute("INSERT INTO close_events (use_case_id, use_case_name, action, actor, at) "
                     "VALUES (%s, 'U', 'APPROVED', 'ceo', %s)", (uc, FORGED_AT))
        conn.execute("INSERT INTO use_cases (name, structure_id, created_at) VALUES ('Other', 'TRADING', %s)",
                     (FORGED_AT,))
        conn.execute("UPDATE use_cases SET created_at = %s WHERE name = 'Project Sterling'", (FORGED_AT,))
        written = now(conn)
    assert conn.execute("SELECT set_by, set_at FROM close_checks").fetchone() == (conn.info.user, written)
    actor, at = conn.execute("SELECT actor, at FROM close_events WHERE action = 'APPROVED'").fetchone()
    assert actor == conn.info.user and at >= written
    assert conn.execute("SELECT created_at = %s FROM use_cases WHERE name = 'Other'", (written,)).fetchone() == (True,)
    assert conn.execute("SELECT created_at < %s FROM use_cases WHERE name = 'Project Sterling'",
                        (written,)).fetchone() == (True,)  # kept: it was created in an earlier transaction


# --- item 5: rule history --------------------------------------------------------------------------


def test_every_insert_update_and_delete_of_a_rule_is_recorded_with_who(conn, uc, login):
    admin = login("admin")
    rule_id = rule(admin, uc, "RATES", cond("book", "equals", "a"), "first")
    admin.execute("UPDATE metadata_rules SET predicate_json = %s::jsonb, logic_en = 'second' WHERE rule_id = %s",
                  (json.dumps(cond("book", "equals", "b")), rule_id))
    conn.execute("DELETE FROM metadata_rules WHERE rule_id = %s", (rule_id,))
    a, b = cond("book", "equals", "a"), cond("book", "equals", "b")
    assert versions(conn, uc) == [
        (rule_id, "INSERT", "RATES", a, "(coalesce((attributes ->> 'book') = 'a', false))", "first", admin.info.user),
        (rule_id, "UPDATE", "RATES", b, "(coalesce((attributes ->> 'book') = 'b', false))", "second", admin.info.user),
        (rule_id, "DELETE", "RATES", b, "(coalesce((attributes ->> 'book') = 'b', false))", "second", conn.info.user),
    ]
    # whoever reads the rules reads their history; readers read neither
    operator = login("operator")
    assert operator.execute("SELECT count(*) FROM rule_versions").fetchone() == (3,)
    with pytest.raises(DENIED):
        login("reader").execute("SELECT count(*) FROM rule_versions")


def test_rule_history_is_append_only_for_everybody_owner_included(conn, uc, login):
    rule_id = rule(conn, uc, "RATES", cond("book", "equals", "a"))
    before = versions(conn, uc)
    for statement in ["UPDATE rule_versions SET changed_by = 'ceo'", "DELETE FROM rule_versions",
                      "TRUNCATE rule_versions",
                      f"INSERT INTO rule_versions (rule_id, use_case_id, operation, node_id, predicate_json, "
                      f"changed_by, changed_at) VALUES ({rule_id}, '{uc}', 'INSERT', 'RATES', '{{}}', 'ceo', now())"]:
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="rule_versions is the rules' history"):
            conn.execute(statement)
    admin = login("admin")
    for statement in ["UPDATE rule_versions SET changed_by = 'ceo'", "DELETE FROM rule_versions"]:
        with pytest.raises(DENIED):
            admin.execute(statement)
    assert versions(conn, uc) == before


def test_rule_history_outlives_delete_use_case(conn, uc, login):
    rule(conn, uc, "RATES", cond("book", "equals", "a"))
    rule(conn, uc, "FX", cond("book", "equals", "b"))
    admin = login("admin")
    admin.execute("SELECT delete_use_case(%s)", (uc,))
    assert [(op, node, by) for _, op, node, _, _, _, by in versions(conn, uc)] == [
        ("INSERT", "RATES", conn.info.user), ("INSERT", "FX", conn.info.user),
        ("DELETE", "RATES", admin.info.user), ("DELETE", "FX", admin.info.user)]


def test_the_migration_starts_the_history_of_rules_already_there(empty_conn):
    c = empty_conn
    schema.create_roles(c)
    schema.migrate(c, to="0012_locks")
    c.execute("INSERT INTO pnl.hierarchy_structures VALUES ('S', 'S')")
    c.execute("INSERT INTO pnl.dim_hierarchy (structure_id, node_id, parent_node_id, node_name) "
              "VALUES ('S', 'ROOT', NULL, 'Root')")
    uc = c.execute("INSERT INTO pnl.use_cases (name, structure_id) VALUES ('U', 'S') RETURNING use_case_id"
                   ).fetchone()[0]
    c.execute("INSERT INTO pnl.metadata_rules (use_case_id, node_id, predicate_json, sql_where, last_modified_by, "
              "last_modified_at) VALUES (%s, 'ROOT', '{}', '1 = 1', 'legacy_etl', %s)", (uc, FORGED_AT))
    assert schema.migrate(c) == ["0013_audit", "0014_integrity", "0015_entitlements", "0016_fact_cents",
                                 "0017_fast_loads", "0018_cluster",
                                 "0019_fact_slice_statistics"]
    assert c.execute("SELECT operation, node_id, sql_where, changed_by, changed_at FROM pnl.rule_versions"
                     ).fetchall() == [("MIGRATED", "ROOT", "1 = 1", "legacy_etl", FORGED_AT)]


# --- item 6: history stays where it was ---------------------------------------------------------------


def test_a_use_case_with_runs_cannot_move_to_another_structure(conn, uc, login):
    structure(conn, "OTHER", [("O_ROOT", None)])
    admin = login("admin")
    spare = use_case(conn, "Spare", "TRADING")
    admin.execute("UPDATE use_cases SET structure_id = 'OTHER' WHERE use_case_id = %s", (spare,))  # no runs: free
    snapshot(conn, uc)
    snapshot(conn, uc)
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState) as refused:
        admin.execute("UPDATE use_cases SET structure_id = 'OTHER' WHERE use_case_id = %s", (uc,))
    assert refused.value.diag.message_primary == (
        'use case "Project Sterling" has 2 run(s) taken on structure TRADING: its structure cannot change to OTHER')
    assert refused.value.diag.message_hint == (
        "runs stay with the structure they were taken on; create a new use case on structure OTHER instead")
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
        conn.execute("UPDATE use_cases SET structure_id = 'OTHER' WHERE use_case_id = %s", (uc,))  # owner too
    admin.execute("UPDATE use_cases SET name = 'Sterling', description = 'renamed' WHERE use_case_id = %s", (uc,))
    assert conn.execute("SELECT name, structure_id FROM use_cases WHERE use_case_id = %s", (uc,)).fetchone() == \
        ("Sterling", "TRADING")


def test_a_structure_in_use_cannot_be_deleted_and_its_nodes_may_change(conn, uc, login):
    run = snapshot(conn, uc)
    use_case(conn, "Spare", "TRADING")
    admin = login("admin")
    with pytest.raises(psycopg.errors.ForeignKeyViolation) as refused:
        admin.execute("DELETE FROM hierarchy_structures WHERE structure_id = 'TRADING'")
    assert refused.value.diag.message_primary == (
        'structure TRADING cannot be deleted: use case(s) "Project Sterling" (1 run(s)), "Spare" (0 run(s)) are on it')
    assert refused.value.diag.message_hint == (
        "a structure keeps the runs taken on it; delete_use_case removes a use case with its runs first")
    assert conn.execute("SELECT count(*) FROM dim_hierarchy WHERE structure_id = 'TRADING'").fetchone() == (
        len(TRADING_TREE),)
    # its nodes may be renamed: the run keeps the tree it was taken on
    admin.execute("UPDATE dim_hierarchy SET node_name = 'Renamed' WHERE structure_id = 'TRADING' AND node_id = 'FX'")
    assert conn.execute("SELECT DISTINCT node_name FROM fact_calculated_results "
                        "WHERE calculation_run_id = %s AND node_id = 'FX'", (run,)).fetchall() == [("Name of FX",)]
    for name in ("Project Sterling", "Spare"):
        admin.execute("SELECT delete_use_case(use_case_id) FROM use_cases WHERE name = %s", (name,))
    admin.execute("DELETE FROM hierarchy_structures WHERE structure_id = 'TRADING'")
    assert conn.execute("SELECT count(*) FROM hierarchy_structures").fetchone() == (0,)


def test_an_inactive_use_case_takes_no_snapshots(conn, uc, login):
    admin, operator = login("admin"), login("operator")
    kept = snapshot(operator, uc)
    admin.execute("UPDATE use_cases SET status = 'INACTIVE' WHERE use_case_id = %s", (uc,))
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState) as refused:
        snapshot(operator, uc)
    assert refused.value.diag.message_primary == 'use case "Project Sterling" is INACTIVE: it takes no snapshots'
    assert refused.value.diag.message_hint == (
        "an admin makes it active again: UPDATE pnl.use_cases SET status = 'ACTIVE' WHERE use_case_id = "
        f"'{uc}'")
    assert conn.execute("SELECT array_agg(id) FROM calculation_runs").fetchone() == ([kept],)  # nothing written
    assert operator.execute("SELECT get_run(%s) ->> 'status'", (kept,)).fetchone() == ("COMPLETED",)  # still read
    admin.execute("UPDATE use_cases SET status = 'ACTIVE' WHERE use_case_id = %s", (uc,))
    assert conn.execute("SELECT status FROM calculation_runs WHERE id = %s", (snapshot(operator, uc),)
                        ).fetchone() == ("COMPLETED",)


def test_compare_runs_refuses_runs_of_different_use_cases_and_of_different_structures(conn, uc, login):
    structure(conn, "OTHER", [("O_ROOT", None), ("RATES_1", "O_ROOT")])
    other = use_case(conn, "Other", "OTHER")
    conn.execute("INSERT INTO fact_pnl_entries (use_case_id, pnl_date, scenario, category_code, daily_amount, "
                 "wtd_amount, ytd_amount) VALUES (%s, %s, 'ACTUAL', 'RATES_1', 1, 1, 1)", (other, COB))
    reader = login("reader")
    a, b = snapshot(conn, uc), snapshot(conn, other)
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="belong to different use cases"):
        reader.execute("SELECT * FROM compare_runs(%s, %s)", (a, b))
    # a structure changed before it was refused: a superuser with the triggers off, as old data may be
    with conn.transaction():
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute("UPDATE use_cases SET structure_id = 'OTHER' WHERE use_case_id = %s", (uc,))
    moved = snapshot(conn, uc)
    with pytest.raises(psycopg.errors.InvalidParameterValue) as refused:
        reader.execute("SELECT * FROM compare_runs(%s, %s)", (a, moved))
    assert refused.value.diag.message_primary == (
        f"runs {a} and {moved} were taken on different structures (roots FIRM and O_ROOT)")
    assert reader.execute("SELECT count(*) FROM compare_runs(%s, %s)", (a, a)).fetchone() == (0,)


# --- item 8: rollback that asks ---------------------------------------------------------------------


@pytest.fixture
def worked(conn, uc):
    """Project Sterling with a rule edited once and two runs."""
    rule_id = rule(conn, uc, "RATES", cond("book", "equals", "a"))
    conn.execute("UPDATE metadata_rules SET logic_en = 'edited' WHERE rule_id = %s", (rule_id,))
    snapshot(conn, uc)
    snapshot(conn, uc)
    return uc


def counts(conn):
    return conn.execute("SELECT (SELECT count(*) FROM pnl.calculation_runs), (SELECT count(*) FROM "
                        "pnl.fact_calculated_results), (SELECT count(*) FROM pnl.rule_versions), "
                        "(SELECT count(*) FROM pnl._yoyo_migration), to_regproc('pnl.create_snapshot') IS NOT NULL"
                        ).fetchone()


def test_rollback_to_the_baseline_refuses_listing_what_it_would_destroy_unless_forced(conn, worked):
    before = counts(conn)
    runs, result_rows = before[0], before[1]
    with pytest.raises(PnlError) as refused:
        schema.rollback(conn, to="0001_baseline")
    assert str(refused.value).split("\n") == [
        "rolling back to 0001_baseline would destroy or rewrite:",
        f"  {runs} run digest(s) and chain link(s): the tamper evidence of runs (rolling back 0014_integrity)",
        "  2 rule version(s): the rules' history (rule_versions) (rolling back 0013_audit)",
        f"  {runs} run(s) whose reporting currency is recorded (rolling back 0007_currency)",
        f"  {runs} run(s) whose executed_by is recorded (rolling back 0006_close)",
        f"  {2 * 2} recorded input(s) of runs (calculation_run_inputs) (rolling back 0005_fact_loads)",
        "  1 fact load record(s): who loaded what, when (fact_loads) (rolling back 0005_fact_loads)",
        "  2 recorded rule(s) of runs (calculation_run_rules) (rolling back 0003_run_rules)",
        "  2 run(s) (calculation_runs) (rolling back 0002_step_4_2)",
        f"  {result_rows} result row(s) of those runs (rolling back 0002_step_4_2)",
        # of the book's 10 facts, the 5 whose WTD and YTD are not running sums of their daily amounts
        "  5 fact(s) whose loaded daily, WTD or YTD figures re-applying 0002_step_4_2 would rewrite "
        "(rolling back 0002_step_4_2)",
        "nothing was changed; to roll back anyway (this cannot be undone: re-applying the migrations does not bring "
        "it back), give --force (rollback(..., force=True))"]
    assert counts(conn) == before
    assert runs == 2 and result_rows > 0
    assert schema.rollback(conn, to="0001_baseline", force=True) == schema.migration_ids()[1:][::-1]
    assert conn.execute("SELECT to_regclass('pnl.calculation_runs')").fetchone() == (None,)


def test_only_what_the_migrations_rolled_back_would_lose_counts(conn, worked):
    with pytest.raises(PnlError, match=r"^rolling back to 0012_locks would destroy or rewrite:\n"
                       r"  2 run digest\(s\) and chain link\(s\): the tamper evidence of runs \(rolling back "
                       r"0014_integrity\)\n  2 rule version"):
        schema.rollback(conn, to="0012_locks")
    assert schema.rollback(conn, to="0012_locks", force=True) == [
        "0019_fact_slice_statistics", "0018_cluster", "0017_fast_loads", "0016_fact_cents",
                                                                 "0015_entitlements",
                                                                 "0014_integrity", "0013_audit"]
    # nothing more of value in 0010-0012: rolled back without asking
    assert schema.rollback(conn, to="0009_rule_limits") == ["0012_locks", "0011_tree", "0010_runs"]
    schema.migrate(conn)
    assert conn.execute("SELECT operation FROM pnl.rule_versions").fetchall() == [("MIGRATED",)]


def test_rewritten_figures_alone_refuse_the_rollback(conn):
    structure(conn, "S", [("ROOT", None)])
    uc = use_case(conn, "U", "S")
    # one loaded fact whose WTD and YTD are not the running sums of its daily amount
    conn.execute("INSERT INTO fact_pnl_entries (use_case_id, pnl_date, scenario, category_code, daily_amount, "
                 "wtd_amount, ytd_amount) VALUES (%s, %s, 'ACTUAL', 'A', 1, 5, 50), (%s, %s, 'ACTUAL', 'A', 2, 2, 2)",
                 (uc, COB, uc, COB - dt.timedelta(days=400)))
    with pytest.raises(PnlError) as refused:
        schema.rollback(conn, to="0001_baseline")
    assert str(refused.value).split("\n")[1:-1] == [
        "  1 fact load record(s): who loaded what, when (fact_loads) (rolling back 0005_fact_loads)",
        "  1 fact(s) whose loaded daily, WTD or YTD figures re-applying 0002_step_4_2 would rewrite "
        "(rolling back 0002_step_4_2)"]


def cli(db_url, *args):
    return CliRunner().invoke(main, ["--dsn", db_url, "migrate", *args])


def test_migrate_rollback_to_prints_what_would_be_lost_and_exits_1_unless_forced(conn, db_url, worked):
    before = counts(conn)
    refused = cli(db_url, "--rollback-to", "0005_fact_loads")
    assert refused.exit_code == 1
    assert refused.stderr.split("\n") == [
        "pnldb: error: rolling back to 0005_fact_loads would destroy or rewrite:",
        "  2 run digest(s) and chain link(s): the tamper evidence of runs (rolling back 0014_integrity)",
        "  2 rule version(s): the rules' history (rule_versions) (rolling back 0013_audit)",
        "  2 run(s) whose reporting currency is recorded (rolling back 0007_currency)",
        "  2 run(s) whose executed_by is recorded (rolling back 0006_close)",
        "nothing was changed; to roll back anyway (this cannot be undone: re-applying the migrations does not bring "
        "it back), give --force (rollback(..., force=True))", ""]
    assert counts(conn) == before
    usage = CliRunner().invoke(main, ["--dsn", db_url, "migrate", "--force"])
    assert usage.exit_code == 2 and usage.stderr == "pnldb: error: --force goes with --rollback-to\n"
    forced = cli(db_url, "--rollback-to", "0005_fact_loads", "--force")
    assert forced.exit_code == 0, forced.stderr
    assert forced.stderr == ("rolled back 14 migration(s): 0019_fact_slice_statistics, 0018_cluster, 0017_fast_loads, "
                             "0016_fact_cents, "
                             "0015_entitlements, "
                             "0014_integrity, "
                             "0013_audit, 0012_locks, 0011_tree, 0010_runs, 0009_rule_limits, 0008_limits, "
                             "0007_currency, 0006_close; the SQL layer is dropped until pnldb migrate\n")
    assert cli(db_url, "--rollback-to", "0005_fact_loads").stderr == (
        "nothing to roll back: no migration after 0005_fact_loads is applied\n")
    assert cli(db_url).exit_code == 0
    assert conn.execute("SELECT count(*) FROM pnl.calculation_runs").fetchone() == (2,)
