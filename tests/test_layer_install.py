"""Re-installing the SQL layer keeps what others built on it, in one transaction, and drops what the layer
no longer defines."""
from __future__ import annotations

import psycopg
import pytest
from click.testing import CliRunner

from pnldb import schema
from pnldb.cli import main
from pnldb.errors import PnlError

RUN_RESULTS = "0470_view_run_results.sql"
USERS_VIEW = """CREATE SCHEMA reporting;
CREATE VIEW reporting.daily_pnl AS
SELECT calculation_run_id, node_id, daily_actual, daily_variance FROM pnl.v_run_results WHERE depth <= 1"""


def migrate_cli(db_url: str):
    return CliRunner().invoke(main, ["--dsn", db_url, "migrate"])


def layer_with(*changes: tuple[str, str, str]):
    """render_layer with each (file name, old, new) change made, as changed sql/ files would render."""
    real = schema.render_layer

    def render(schema_name: str = "pnl", roles=None, shards: int = 0):
        files = dict(real(schema_name, roles, shards))
        for file_name, old, new in changes:
            assert old in files[file_name], f"{old!r} not in {file_name}"
            files[file_name] = files[file_name].replace(old, new)
        return list(files.items())

    return render


def view_definition(conn, view: str) -> str | None:
    return conn.execute("SELECT pg_get_viewdef(to_regclass(%s))", (view,)).fetchone()[0]


def columns(conn, schema_name: str, table: str) -> list[str]:
    return [name for (name,) in conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
        "ORDER BY ordinal_position", (schema_name, table))]


def routines(conn, schema_name: str = "pnl") -> set[str]:
    return {signature for (signature,) in conn.execute(
        "SELECT oid::regprocedure::text FROM pg_proc WHERE pronamespace = %s::regnamespace", (schema_name,))}


def applied_migrations(conn) -> list[str]:
    return [m for (m,) in conn.execute("SELECT migration_id FROM pnl._yoyo_migration ORDER BY migration_id")]


def make_last_migration_pending(conn) -> str:
    """Forget that 0004 ran; it only sets sequence caches, so applying it again is harmless and `migrate`
    then runs a migration in the same transaction as the layer."""
    harmless = "0004_identity_cache"
    assert harmless in schema.migration_ids()
    conn.execute("DELETE FROM pnl._yoyo_migration WHERE migration_id = %s", (harmless,))
    return harmless


def view_oid(conn, view: str) -> int | None:
    return conn.execute("SELECT to_regclass(%s)::oid", (view,)).fetchone()[0]


def can_select(conn, role: str, view: str, grant_option: bool = False) -> bool:
    privilege = "SELECT WITH GRANT OPTION" if grant_option else "SELECT"
    return conn.execute("SELECT has_table_privilege(%s, %s, %s)", (role, view, privilege)).fetchone()[0]


@pytest.fixture
def bi_role(conn):
    """A role of the reporting team's (roles belong to the cluster, so one per test database)."""
    role = f"bi_{conn.info.dbname}"
    conn.execute(f"CREATE ROLE {role} NOLOGIN")
    yield role
    conn.execute(f"DROP OWNED BY {role}")
    conn.execute(f"DROP ROLE {role}")


@pytest.fixture
def users_view(conn):
    conn.execute(USERS_VIEW)
    conn.execute("CREATE VIEW reporting.run_total AS SELECT (pnl.list_runs() ->> 'total')::integer AS runs")
    return view_definition(conn, "reporting.daily_pnl")


def test_a_users_view_on_v_run_results_survives_migrate_run_twice(conn, db_url, users_view):
    for _ in range(2):
        result = migrate_cli(db_url)
        assert result.exit_code == 0, result.stderr
        assert "dropped" not in result.stderr and "re-created" not in result.stderr
        assert view_definition(conn, "reporting.daily_pnl") == users_view
    assert conn.execute("SELECT runs FROM reporting.run_total").fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM reporting.daily_pnl").fetchone() == (0,)


def test_a_users_view_survives_a_migrate_that_applies_migrations(conn, db_url, users_view, bi_role):
    conn.execute(f"GRANT SELECT ON pnl.v_hierarchy_nodes TO {bi_role}")
    before = view_oid(conn, "pnl.v_hierarchy_nodes")
    pending = make_last_migration_pending(conn)
    result = migrate_cli(db_url)
    assert result.exit_code == 0, result.stderr
    assert pending in result.stderr
    assert view_definition(conn, "reporting.daily_pnl") == users_view
    assert view_oid(conn, "pnl.v_hierarchy_nodes") != before  # dropped for the migrations, re-created
    assert can_select(conn, bi_role, "pnl.v_hierarchy_nodes")


def test_a_view_gaining_a_column_at_the_end_is_replaced_in_place_under_the_users_view(
        conn, db_url, users_view, monkeypatch):
    monkeypatch.setattr(schema, "render_layer", layer_with(
        (RUN_RESULTS, "r.reporting_currency\n", "r.reporting_currency,\n       count(*) AS result_rows\n")))
    result = migrate_cli(db_url)
    assert result.exit_code == 0, result.stderr
    assert columns(conn, "pnl", "v_run_results")[-2:] == ["reporting_currency", "result_rows"]
    assert view_definition(conn, "reporting.daily_pnl") == users_view


DAILY_ACTUAL = "max(x.daily_adjusted) FILTER (WHERE x.scenario = 'ACTUAL') AS daily_actual,"
DAILY_ACTUAL_COMMENT = "COMMENT ON COLUMN pnl.v_run_results.daily_actual IS"
INCOMPATIBLE = {  # the changes to sql/0470 that CREATE OR REPLACE VIEW refuses
    "renamed": [(RUN_RESULTS, "AS daily_actual,", "AS daily_actual_adjusted,"),
                (RUN_RESULTS, DAILY_ACTUAL_COMMENT, DAILY_ACTUAL_COMMENT.replace("actual", "actual_adjusted"))],
    "removed": [(RUN_RESULTS, DAILY_ACTUAL + "\n", ""), (RUN_RESULTS, DAILY_ACTUAL_COMMENT, "-- ")],
    "retyped": [(RUN_RESULTS, DAILY_ACTUAL, DAILY_ACTUAL.replace(") AS", ")::text AS"))],
}


@pytest.mark.parametrize("change", INCOMPATIBLE)
def test_a_column_change_the_users_view_cannot_survive_stops_migrate_naming_it_and_changes_nothing(
        conn, db_url, users_view, monkeypatch, change):
    before_columns = columns(conn, "pnl", "v_run_results")
    before_definition = view_definition(conn, "pnl.v_run_results")
    pending = make_last_migration_pending(conn)
    monkeypatch.setattr(schema, "render_layer", layer_with(*INCOMPATIBLE[change]))

    result = migrate_cli(db_url)

    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("pnldb: error: view reporting.daily_pnl depends on view pnl.v_run_results, whose "
                               f"columns sql/{RUN_RESULTS} changes (cannot ")
    assert "nothing was changed" in lines[0] and "run pnldb migrate again" in lines[0]
    assert "reporting.run_total" not in lines[0]  # it reads list_runs(), which stays
    assert view_definition(conn, "reporting.daily_pnl") == users_view
    assert columns(conn, "pnl", "v_run_results") == before_columns
    assert view_definition(conn, "pnl.v_run_results") == before_definition
    assert pending not in applied_migrations(conn)  # the migration rolled back with the layer
    assert view_definition(conn, "pnl.v_hierarchy_nodes") is not None  # dropped for the migrations, restored


def test_a_column_change_nothing_foreign_depends_on_rebuilds_the_view_with_its_grants(
        conn, db_url, monkeypatch, bi_role):
    conn.execute(f"GRANT SELECT ON pnl.v_run_results TO {bi_role} WITH GRANT OPTION")
    monkeypatch.setattr(schema, "render_layer", layer_with(*INCOMPATIBLE["renamed"]))
    result = migrate_cli(db_url)
    assert result.exit_code == 0, result.stderr
    assert f"re-created view pnl.v_run_results: sql/{RUN_RESULTS} changes its columns\n" in result.stderr
    assert "daily_actual_adjusted" in columns(conn, "pnl", "v_run_results")
    assert "daily_actual" not in columns(conn, "pnl", "v_run_results")
    assert can_select(conn, "pnl_reader", "pnl.v_run_results")
    assert can_select(conn, bi_role, "pnl.v_run_results", grant_option=True)


def test_a_stale_function_signature_and_its_trigger_are_dropped_by_migrate(conn, db_url, template_db):
    current = routines(conn)
    conn.execute("""CREATE FUNCTION pnl.rule_case_tree(p_predicates text[], p_low integer, p_high integer)
                    RETURNS text LANGUAGE sql IMMUTABLE AS 'SELECT NULL::text'""")
    conn.execute("""CREATE FUNCTION pnl.stamp_rule() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END'""")
    conn.execute("CREATE TRIGGER stamp_rule BEFORE INSERT ON pnl.metadata_rules FOR EACH ROW "
                 "EXECUTE FUNCTION pnl.stamp_rule()")
    assert routines(conn) - current == {"rule_case_tree(text[],integer,integer)", "stamp_rule()"}

    result = migrate_cli(db_url)

    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines()[:3] == [
        "dropped trigger stamp_rule ON pnl.metadata_rules: no longer part of the SQL layer",
        "dropped routine pnl.rule_case_tree(p_predicates text[], p_low integer, p_high integer): no longer part of "
        "the SQL layer",
        "dropped routine pnl.stamp_rule(): no longer part of the SQL layer"]
    assert routines(conn) == current
    assert "rule_case_tree(bigint[],text[],integer,integer)" in current
    assert conn.execute("SELECT count(*) FROM pg_trigger WHERE tgname = 'stamp_rule'").fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'pnl.metadata_rules'::regclass "
                        "AND tgname = 'rule_is_valid'").fetchone() == (1,)


def test_an_extension_created_in_the_schema_is_not_the_layers_and_survives_migrate(conn, db_url):
    """pg_prewarm lands in the first schema of the search path: its functions there are the extension's,
    not stale layer objects."""
    conn.execute("CREATE EXTENSION pg_prewarm SCHEMA pnl")
    current = routines(conn)
    assert "pg_prewarm(regclass,text,text,bigint,bigint)" in current

    result = migrate_cli(db_url)

    assert result.exit_code == 0, result.stderr
    assert "dropped" not in result.stderr
    assert routines(conn) == current
    assert conn.execute("SELECT extnamespace::regnamespace::text FROM pg_extension "
                        "WHERE extname = 'pg_prewarm'").fetchone() == ("pnl",)


def test_a_stale_function_a_users_view_calls_stops_migrate_naming_the_view(conn, db_url):
    conn.execute("CREATE FUNCTION pnl.old_run_count() RETURNS bigint LANGUAGE sql STABLE "
                 "BEGIN ATOMIC SELECT count(*) FROM pnl.calculation_runs; END")
    conn.execute("CREATE SCHEMA reporting; CREATE VIEW reporting.runs AS SELECT pnl.old_run_count() AS n")
    result = migrate_cli(db_url)
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "pnldb: error: view reporting.runs depends on routine pnl.old_run_count(), which is no longer part of "
        "pnldb's SQL layer; nothing was changed. Drop or change it, then run pnldb migrate again")
    assert "old_run_count()" in routines(conn)


def test_a_broken_layer_file_changes_nothing_and_names_the_file(conn, db_url, monkeypatch):
    pending = make_last_migration_pending(conn)
    monkeypatch.setattr(schema, "render_layer", layer_with(
        ("0100_view_hierarchy_nodes.sql", "IS 'Nodes of every structure", "IS 'Changed: nodes of every structure"),
        (RUN_RESULTS, "COMMENT ON VIEW", "COMMENT ON VIEWW")))
    result = migrate_cli(db_url)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"pnldb: error: installing sql/{RUN_RESULTS} failed, nothing was changed: "
                                    'syntax error at or near "VIEWW"')
    assert pending not in applied_migrations(conn)
    assert conn.execute("SELECT obj_description('pnl.v_hierarchy_nodes'::regclass)").fetchone()[0].startswith("Nodes")


def test_rollback_refuses_while_a_users_view_depends_on_the_layer(conn, users_view):
    with pytest.raises(PnlError) as refused:
        schema.rollback(conn, to="0001_baseline")
    assert str(refused.value) == (
        "view reporting.run_total depends on routine pnl.list_runs(pnl_date date, use_case_id uuid, max_runs integer), "
        "and view reporting.daily_pnl depends on view pnl.v_run_results, which are part of pnldb's SQL layer, which "
        "rollback drops; nothing was changed. Drop or change them, then roll back again")
    assert applied_migrations(conn) == schema.migration_ids()
    assert view_definition(conn, "reporting.daily_pnl") == users_view
    assert conn.execute("SHOW search_path").fetchone() == ("pnl, public",)  # yoyo's search_path is not left behind
    conn.execute("DROP SCHEMA reporting CASCADE")
    assert schema.rollback(conn, to="0003_run_rules") == [
        "0019_fact_slice_statistics", "0018_cluster", "0017_fast_loads", "0016_fact_cents",
                                                          "0015_entitlements", "0014_integrity",
                                                          "0013_audit", "0012_locks", "0011_tree", "0010_runs",
                                                          "0009_rule_limits", "0008_limits", "0007_currency",
                                                          "0006_close", "0005_fact_loads", "0004_identity_cache"]
    # the DDL guard is the DBA's and stays, guarding the protected tables the schema has at 0003
    assert conn.execute("SELECT count(*) FROM pg_event_trigger WHERE evtname LIKE 'pnl_guard_%'").fetchone() == (2,)
    assert conn.execute("SELECT array_agg(c.relname::text ORDER BY c.relname) "
                        "FROM pnl_guard.home h, unnest(h.tables) t JOIN pg_class c ON c.oid = t").fetchone()[0] == [
        "calculation_run_rules", "calculation_runs", "fact_calculated_results", "fact_pnl_entries"]
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="DDL guard"):
        conn.execute("ALTER TABLE pnl.calculation_runs RENAME TO runs_old")
    conn.execute("CREATE TABLE public.elsewhere (x int)")  # DDL of other tables goes on as before
    assert routines(conn) == set()


def test_install_sql_and_uninstall_sql_on_their_own(conn, db_url, users_view):
    layer = routines(conn)
    with psycopg.connect(db_url, autocommit=True) as other:
        assert schema.install_sql(other) == []
        assert view_definition(conn, "reporting.daily_pnl") == users_view
        with pytest.raises(PnlError, match=r"^view reporting\.run_total depends on routine pnl\.list_runs\("):
            schema.uninstall_sql(other)
        assert routines(conn) == layer
        conn.execute("DROP SCHEMA reporting CASCADE")
        schema.uninstall_sql(other)
        assert routines(conn) == set()
        assert view_definition(conn, "pnl.v_run_results") is None
        assert conn.execute("SELECT to_regclass('pnl.calculation_runs') IS NOT NULL").fetchone() == (True,)
        schema.install_sql(other)
    assert routines(conn) == layer
