"""A login-less owner (issue 18, item 1): every object of the schema belongs to pnl_owner, which nobody can log
in as and which holds nothing else; `pnldb roles create`, a DBA's step, makes the roles, the schema and the
DDL guard; `pnldb migrate` then acts as the owner through SET ROLE, so the login that runs it needs no
CREATEROLE; the group roles are named per database. What a login acting as the owner tries, the forgeries of
the issue, is refused (or, for what the owner may do, detected by verify: test_integrity.py)."""
from __future__ import annotations

import json
import uuid

import psycopg
import pytest
from builders import cond, snapshot, trading_use_case
from click.testing import CliRunner
from psycopg.conninfo import make_conninfo

from pnldb import api, schema
from pnldb.cli import main
from pnldb.errors import PnlError

DENIED = psycopg.errors.InsufficientPrivilege
FORGED = psycopg.errors.ObjectNotInPrerequisiteState

OWNED_BY_OTHERS = """
SELECT kind, name FROM (
    SELECT 'relation' AS kind, c.relname::text AS name, c.relowner AS owner FROM pg_class c
    WHERE c.relnamespace = %(schema)s::text::regnamespace
    UNION ALL SELECT 'routine', p.oid::regprocedure::text, p.proowner FROM pg_proc p
    WHERE p.pronamespace = %(schema)s::text::regnamespace
    UNION ALL SELECT 'type', t.typname::text, t.typowner FROM pg_type t
    WHERE t.typnamespace = %(schema)s::text::regnamespace
    UNION ALL SELECT 'schema', n.nspname::text, n.nspowner FROM pg_namespace n WHERE n.nspname = %(schema)s::text
) o WHERE o.owner <> %(owner)s::regrole ORDER BY 1, 2
"""


def cli(dsn: str, *args):
    return CliRunner().invoke(main, ["--dsn", dsn, *args])


@pytest.fixture
def make_login(server_url):
    """make_login(*grants) -> (name, DSN of the server's database given later): a new LOGIN role without
    CREATEROLE, CREATEDB or superuser, member of each grant; dropped at the end."""
    created = []
    with psycopg.connect(server_url, autocommit=True) as admin:
        def make(*grants: str) -> str:
            name = f"t_login_{uuid.uuid4().hex[:8]}"
            admin.execute(f"CREATE ROLE {name} LOGIN PASSWORD 'pw' NOCREATEROLE NOCREATEDB NOSUPERUSER")
            for grant in grants:
                admin.execute(f"GRANT {grant} TO {name}")
            created.append(name)
            return name

        yield make
        for name in created:
            admin.execute(f"DROP ROLE {name}")


def as_login(db_url: str, name: str) -> psycopg.Connection:
    return psycopg.connect(make_conninfo(db_url, user=name, password="pw"), autocommit=True)


@pytest.fixture
def owner(db_url, make_login):
    """A login that may act as pnl_owner (a migrator), acting as it: what pnl_owner itself can do."""
    with as_login(db_url, make_login("pnl_owner")) as connection:
        connection.execute("SET ROLE pnl_owner")
        connection.execute("SET search_path TO pnl")
        yield connection


# --- the owner -------------------------------------------------------------------------------------------------

def test_every_object_of_the_schema_belongs_to_the_owner_which_holds_nothing_else(conn):
    assert conn.execute(OWNED_BY_OTHERS, {"schema": "pnl", "owner": "pnl_owner"}).fetchall() == []
    assert conn.execute(
        "SELECT rolcanlogin, rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls FROM pg_roles "
        "WHERE rolname = 'pnl_owner'").fetchone() == (False,) * 6
    assert conn.execute("SELECT array_agg(roleid::regrole::text) FROM pg_auth_members "
                        "WHERE member = 'pnl_owner'::regrole").fetchone() == (["pg_read_all_stats"],)
    definers = conn.execute("SELECT DISTINCT proowner::regrole::text FROM pg_proc "
                            "WHERE pronamespace = 'pnl'::regnamespace AND prosecdef").fetchall()
    assert definers == [("pnl_owner",)]
    assert conn.execute("SELECT evtowner::regrole::text FROM pg_event_trigger ORDER BY 1").fetchall() == [
        (conn.info.user,)] * 2  # the guard is the superuser's who ran roles create, never the owner's


def test_nobody_can_log_in_as_the_owner(db_url):
    with pytest.raises(psycopg.OperationalError, match='role "pnl_owner" is not permitted to log in'):
        psycopg.connect(make_conninfo(db_url, user="pnl_owner"))


@pytest.mark.parametrize("statement", [
    "GRANT pg_execute_server_program TO pnl_owner",
    "CREATE ROLE sneaky LOGIN SUPERUSER",
    "ALTER ROLE pnl_owner CREATEROLE",
    "ALTER ROLE pnl_owner LOGIN PASSWORD 'x'",
    "GRANT pnl_admin TO pnl_owner",
    "COPY (SELECT 1) TO PROGRAM 'id'",
])
def test_acting_as_the_owner_gives_no_power_over_roles_or_the_server(owner, statement):
    with pytest.raises(DENIED):
        owner.execute(statement)


# --- the forgeries of the issue, by a login acting as the owner -------------------------------------------------

OWNER_FORGERIES = {
    "a result row added to a completed run": (
        "INSERT INTO fact_calculated_results (calculation_run_id, node_id, scenario, daily_natural, daily_adjusted, "
        "daily_plug) VALUES ({run}, 'FIRM', 'ACTUAL', 1e9, 1e9, 0)", FORGED),
    "a run inserted COMPLETED": (
        "INSERT INTO calculation_runs (pnl_date, use_case_id, run_name, status, executed_by) "
        "SELECT pnl_date, use_case_id, 'forged', 'COMPLETED', 'ceo' FROM calculation_runs WHERE id = {run}", FORGED),
    "a finished run updated": ("UPDATE fact_calculated_results SET daily_natural = 1 WHERE calculation_run_id = {run}",
                               FORGED),
    "the use case deleted with the old purge setting": (
        "SELECT set_config('pnl.purging_use_case', use_case_id::text, false) FROM calculation_runs WHERE id = {run} ;; "
        "DELETE FROM use_cases", FORGED),
    "values rewritten with ALTER TABLE ... TYPE": (
        "ALTER TABLE calculation_run_fx ALTER COLUMN rate TYPE numeric USING rate * 2", DENIED),
    "the immutability trigger disabled": (
        "ALTER TABLE calculation_runs DISABLE TRIGGER calculation_runs_are_immutable", DENIED),
    "the immutability function replaced": (
        "CREATE OR REPLACE FUNCTION runs_are_immutable() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END'",
        DENIED),
    "the DDL guard disabled": ("ALTER EVENT TRIGGER pnl_guard_ddl DISABLE", DENIED),
    "the guard's record of the protected tables emptied": ("UPDATE pnl_guard.home SET protected = '{{}}'", DENIED),
    "a use case with runs moved to another structure": (
        "UPDATE use_cases SET structure_id = 'OTHER' WHERE use_case_id = "
        "(SELECT use_case_id FROM calculation_runs WHERE id = {run})", FORGED),
}


@pytest.mark.parametrize("forgery", OWNER_FORGERIES)
def test_the_forgeries_of_the_issue_are_refused_to_a_login_acting_as_the_owner(conn, owner, forgery):
    uc = trading_use_case(conn)
    conn.execute("INSERT INTO hierarchy_structures (structure_id, name) VALUES ('OTHER', 'Other')")
    run = snapshot(conn, uc)
    before = api.verify_run(conn, run)
    statement, error = OWNER_FORGERIES[forgery]
    with pytest.raises(error), owner.transaction():
        for part in statement.format(run=f"'{run}'").split(" ;; "):
            owner.execute(part)
    assert api.verify_run(conn, run) == before
    assert (before["reproduced"], before["digest_ok"], before["chain_ok"]) == (True, True, True)
    assert conn.execute("SELECT count(*) FROM calculation_runs").fetchone() == (1,)


def test_audit_columns_are_the_databases_even_for_a_login_acting_as_the_owner(conn, owner):
    uc = trading_use_case(conn)
    conn.execute("SELECT grant_use_case(%s, %s)", (uc, owner.info.user))  # the use case's rules need it (item 7)
    owner.execute("INSERT INTO metadata_rules (use_case_id, node_id, predicate_json, last_modified_by, "
                  "last_modified_at) VALUES (%s, 'RATES', %s::jsonb, 'ceo', '2000-01-01')",
                  (uc, json.dumps(cond("book", "equals", "B1"))))
    by, at = conn.execute("SELECT last_modified_by, last_modified_at FROM metadata_rules").fetchone()
    assert by == owner.info.user and at.year > 2000  # the login, not the owner role it acts as, nor the caller's


# --- the DBA's step and migrate without CREATEROLE -------------------------------------------------------------

def test_migrate_works_for_a_login_without_createrole_once_roles_create_ran(empty_conn, empty_db_url, make_login):
    deployer = make_login()
    notes = schema.create_roles(empty_conn, migrators=[deployer])
    assert notes == [
        "roles pnl_owner (owner, no login), pnl_reader, pnl_operator, pnl_admin, pnl_approver are in place; schema pnl "
        "belongs to pnl_owner",
        f"{deployer} may run pnldb migrate on schema pnl (it acts as pnl_owner)",
        "installed the DDL guard of schema pnl"]
    with as_login(empty_db_url, deployer) as migrator:
        assert migrator.execute("SELECT rolcreaterole OR rolsuper OR rolcreatedb FROM pg_roles "
                                "WHERE rolname = current_user").fetchone() == (False,)
        assert schema.migrate(migrator) == schema.migration_ids()
        assert migrator.execute("SELECT current_user, current_setting('role')").fetchone() == (deployer, "none")
        assert schema.migrate(migrator) == []
    assert empty_conn.execute(OWNED_BY_OTHERS, {"schema": "pnl", "owner": "pnl_owner"}).fetchall() == []
    stranger = make_login()
    result = cli(make_conninfo(empty_db_url, user=stranger, password="pw"), "migrate")
    assert result.exit_code == 1
    assert result.stderr == (
        f"pnldb: error: role {stranger} may not act as pnl_owner, the owner of schema pnl: a DBA lets it with "
        f"`pnldb --schema pnl roles create --migrator {stranger}` (GRANT pnl_owner TO {stranger})\n")


def test_migrate_before_the_dbas_step_says_what_to_run(empty_conn):
    with pytest.raises(PnlError) as refused:
        schema.migrate(empty_conn)
    assert str(refused.value) == (
        f"schema pnl does not exist in database {empty_conn.info.dbname}: a DBA runs `pnldb --schema pnl roles create` "
        "once in this database (README, \"Setting up a database\"); it creates the login-less owner pnl_owner, the "
        "group roles and the schema. Then run pnldb migrate")
    assert empty_conn.execute("SELECT to_regnamespace('pnl')").fetchone() == (None,)


def test_roles_create_runs_again_harmlessly_and_is_all_or_nothing(conn, db_url):
    before = schema.describe_catalog(conn)
    assert schema.create_roles(conn)[0].startswith("roles pnl_owner (owner, no login)")
    assert schema.describe_catalog(conn) == before
    with pytest.raises(PnlError, match="--migrator nobody_here: no such role"):
        schema.create_roles(conn, "pnl_fresh", migrators=["nobody_here"])
    assert conn.execute("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'pnl_fresh%%'").fetchone() == (0,)
    assert conn.execute("SELECT to_regnamespace('pnl_fresh')").fetchone() == (None,)
    with pytest.raises(PnlError, match="schema pnl already belongs to pnl_owner, whose roles are pnl_reader"):
        schema.create_roles(conn, prefix="desk_a")


def test_an_owner_holding_a_role_is_refused_by_roles_create(conn):
    conn.execute("GRANT pg_read_server_files TO pnl_owner")
    try:
        with pytest.raises(PnlError, match="role pnl_owner is a member of pg_read_server_files: the owner of pnldb's "
                                           "objects must hold nothing else"):
            schema.create_roles(conn)
    finally:
        conn.execute("REVOKE pg_read_server_files FROM pnl_owner")


def test_an_installation_from_before_the_owner_is_handed_to_it_with_its_data(conn):
    uc = trading_use_case(conn)
    run = snapshot(conn, uc)
    fresh = schema.describe_catalog(conn)
    with conn.transaction():  # as migrate once left it: everything the superuser's who ran it
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('pnldb.migrate:pnl', 0))")
        conn.execute("REASSIGN OWNED BY pnl_owner TO CURRENT_USER")
    with pytest.raises(PnlError, match=f"schema pnl belongs to role {conn.info.user}, not to a login-less owner"):
        schema.migrate(conn)
    notes = schema.create_roles(conn)
    assert notes[1] == f"handed schema pnl and everything in it from {conn.info.user} to pnl_owner"
    assert conn.execute(OWNED_BY_OTHERS, {"schema": "pnl", "owner": "pnl_owner"}).fetchall() == []
    assert schema.migrate(conn) == []
    assert schema.describe_catalog(conn) == fresh
    assert api.verify_run(conn, run)["reproduced"] is True


# --- group roles per database ----------------------------------------------------------------------------------

def test_two_databases_need_not_share_readers(empty_conn, empty_db_url, db_url, make_login):
    assert schema.create_roles(empty_conn, prefix="desk_a")[0].startswith(
        "roles desk_a_owner (owner, no login), desk_a_reader, desk_a_operator, desk_a_admin, desk_a_approver")
    schema.migrate(empty_conn)
    assert schema.installation_roles(empty_conn).reader == "desk_a_reader"
    assert schema.create_roles(empty_conn)[0].startswith("roles desk_a_owner")  # the prefix the schema has
    for reader, sees_a, sees_default in (("desk_a_reader", True, False), ("pnl_reader", False, True)):
        name = make_login(reader)
        for url, expected in ((empty_db_url, sees_a), (db_url, sees_default)):
            with as_login(url, name) as c:
                if expected:
                    assert c.execute("SELECT count(*) FROM pnl.v_calculation_runs").fetchone() == (0,)
                else:
                    with pytest.raises(DENIED):
                        c.execute("SELECT count(*) FROM pnl.v_calculation_runs")


def test_roles_create_on_the_command_line(empty_db_url, make_login):
    deployer = make_login()
    result = cli(empty_db_url, "roles", "create", "--roles", "desk_b", "--migrator", deployer)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "roles desk_b_owner (owner, no login), desk_b_reader, desk_b_operator, desk_b_admin, desk_b_approver are in "
        "place; schema pnl belongs to desk_b_owner",
        f"{deployer} may run pnldb migrate on schema pnl (it acts as desk_b_owner)",
        "installed the DDL guard of schema pnl",
        "next: pnldb --schema pnl migrate, as a member of desk_b_owner"]
    migrated = cli(make_conninfo(empty_db_url, user=deployer, password="pw"), "migrate")
    assert migrated.exit_code == 0, migrated.stderr
    assert f"applied {len(schema.migration_ids())} migration(s)" in migrated.stderr
    rendered = cli(empty_db_url, "render", "--roles", "desk_b")
    assert "GRANT USAGE ON SCHEMA pnl TO desk_b_reader;" in rendered.stdout and "pnl_reader" not in rendered.stdout
