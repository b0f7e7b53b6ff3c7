"""The catalog description: the committed dump matches a fresh migrate, it is stable and names no owner;
migrations are history, templated by the installation's names only."""
from __future__ import annotations

import difflib
from importlib import resources
from pathlib import Path

import jinja2
import jinja2.meta
import psycopg
import pytest

from pnldb import schema
from pnldb.errors import PnlError

DUMP = Path(__file__).resolve().parents[1] / "docs" / "schema.sql"


def test_the_committed_schema_dump_matches_a_fresh_migrate(conn):
    regenerate = f"regenerate it with `{schema.DUMP_COMMAND}` and commit the result with the change"
    assert DUMP.exists(), f"{DUMP} is missing; {regenerate}"
    committed = DUMP.read_text(encoding="utf-8")
    server_major = conn.info.server_version // 10000
    if schema.dump_major_version(committed) != server_major:
        pytest.skip(f"docs/schema.sql was deparsed by PostgreSQL {schema.dump_major_version(committed)}, this server "
                    f"is {server_major}: definitions read differently across major versions")
    fresh = schema.catalog_dump(conn)
    if fresh != committed:
        diff = "".join(difflib.unified_diff(committed.splitlines(keepends=True), fresh.splitlines(keepends=True),
                                            "docs/schema.sql (committed)", "schema after a fresh migrate", n=2))
        pytest.fail(f"docs/schema.sql is not the schema that migrations/ and sql/ make; {regenerate}.\n"
                    f"{diff[:8000]}", pytrace=False)


def test_an_install_into_another_schema_is_described_as_the_same_catalog(empty_db_url, conn):
    with psycopg.connect(empty_db_url, autocommit=True) as other:
        schema.create_roles(other, "pnl_other")
        schema.migrate(other, "pnl_other")
        described = schema.describe_catalog(other, "pnl_other")
    assert described.splitlines() == schema.describe_catalog(conn).splitlines()


def test_the_description_is_the_same_whatever_the_search_path_and_names_no_owner(conn):
    first = schema.describe_catalog(conn)
    conn.execute("SET search_path TO public")
    assert schema.describe_catalog(conn) == first
    owner = conn.execute("SELECT quote_ident(current_user)").fetchone()[0]
    assert f" {owner}" not in first and f"{owner}=" not in first
    assert "GRANT SELECT ON TABLE pnl.calculation_runs TO pnl_reader;" in first.splitlines()
    assert "_yoyo" not in first


def test_every_migration_is_templated_by_the_installation_names_only():
    env = jinja2.Environment()
    folder = resources.files("pnldb") / "migrations"
    sources = {name: (folder / name).read_text() for name in schema.render_migrations()}
    assert len(sources) == 2 * len(schema.migration_ids())
    for name, source in sources.items():
        assert jinja2.meta.find_undeclared_variables(env.parse(source)) <= {"schema", "roles"}, name
    context = schema.migration_context("pnl_x")
    assert set(context) == {"schema", "roles"}
    roles = context["roles"]
    assert (context["schema"], roles.owner, roles.reader) == ("pnl_x", "pnl_x_owner", "pnl_x_reader")


def test_a_migration_that_reaches_for_the_vocabulary_fails_to_render():
    with pytest.raises(PnlError, match=r"^0009_more\.sql: 'measures' is undefined; a migration is rendered with the "
                                       r"installation's names only \(schema, roles\), so write out the columns it "
                                       r"creates$"):
        schema.render_migration("ALTER TABLE {{ schema }}.t ADD COLUMN {{ measures[0] }}_extra numeric;",
                                "pnl", "0009_more.sql")
    assert schema.render_migration("CREATE TABLE {{ schema }}.t ();\n", "pnl_x") == "CREATE TABLE pnl_x.t ();\n"
