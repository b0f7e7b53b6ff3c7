"""Render sql/ and migrations/ (Jinja2), apply migrations (yoyo), install the SQL layer."""
from __future__ import annotations

import tempfile
from pathlib import Path
from urllib.parse import quote

import jinja2
import psycopg
from psycopg import sql as pgsql

from pnldb.db import DEFAULT_SCHEMA, check_identifier
from pnldb.errors import PnlError
from pnldb.vocabulary import KINDS, MEASURES, SCENARIOS

PACKAGE_DIR = Path(__file__).resolve().parent
SQL_DIR = PACKAGE_DIR / "sql"
MIGRATIONS_DIR = PACKAGE_DIR / "migrations"



def template_context(schema: str = DEFAULT_SCHEMA) -> dict:
    from pnldb.vocabulary import RESULT_SCENARIOS, UNMAPPED, UNMAPPED_NAME

    natural, adjusted, _plug = KINDS  # a plug is natural - adjusted: derived, never summed
    summed_kinds = (natural, adjusted)

    def node_value(scenario: str, measure: str, kind: str) -> str:
        return f"{scenario.lower()}_{measure}_{kind}"

    return {
        "schema": check_identifier(schema),
        "measures": MEASURES,
        "scenarios": SCENARIOS,
        "kinds": KINDS,
        "unmapped": UNMAPPED,
        "unmapped_name": UNMAPPED_NAME,
        "variance": next(s for s in RESULT_SCENARIOS if s not in SCENARIOS),
        # A snapshot node: the values summed per fact scenario, side by side (sql/0305, sql/0310).
        "summed_kinds": summed_kinds,
        "node_value": node_value,
        "node_values": [
            {"scenario": scenario, "measure": measure, "kind": kind, "column": node_value(scenario, measure, kind),
             "included_only": kind == adjusted}
            for scenario in SCENARIOS for measure in MEASURES for kind in summed_kinds
        ],
    }


def _environment(directory: Path) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(directory)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def sql_files() -> list[Path]:
    """The sql/ objects in load order: by their number prefix."""
    return sorted(SQL_DIR.glob("[0-9]*.sql"))


def render_sql(schema: str = DEFAULT_SCHEMA) -> str:
    """The whole SQL layer as one script, each object headed by its file name."""
    env = _environment(SQL_DIR)
    context = template_context(schema)
    parts = [f"-- pnldb SQL layer for schema {schema}\n"]
    for path in sql_files():
        parts.append(f"\n-- sql/{path.name}\n")
        parts.append(env.get_template(path.name).render(context).rstrip() + "\n")
    return "".join(parts)


def _render_migrations(schema: str, target: Path) -> None:
    env = _environment(MIGRATIONS_DIR)
    context = template_context(schema)
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        (target / path.name).write_text(env.get_template(path.name).render(context))


def _yoyo_url(conn: psycopg.Connection, schema: str) -> str:
    info = conn.info
    user = quote(info.user or "", safe="")
    password = f":{quote(info.password, safe='')}" if info.password else ""
    host = info.host or ""
    args = f"schema={schema}"
    if host.startswith("/"):
        args += f"&host={quote(host, safe='')}"
        host = ""
    return f"postgresql+psycopg://{user}{password}@{host}:{info.port}/{quote(info.dbname, safe='')}?{args}"


def _migrate_with_yoyo(conn: psycopg.Connection, schema: str, action: str, keep: str | None = None) -> list[str]:
    from yoyo import get_backend, read_migrations

    with tempfile.TemporaryDirectory(prefix="pnldb-migrations-") as tmp:
        _render_migrations(schema, Path(tmp))
        migrations = read_migrations(tmp)
        backend = get_backend(_yoyo_url(conn, schema))
        try:
            with backend.lock():
                if action == "apply":
                    pending = backend.to_apply(migrations)
                    backend.apply_migrations(pending)
                else:
                    pending = []
                    for migration in backend.to_rollback(migrations):  # newest first
                        if migration.id == keep:
                            break
                        pending.append(migration)
                    backend.rollback_migrations(pending)
        finally:
            backend.connection.close()
        return [m.id for m in pending]


def install_sql(conn: psycopg.Connection, schema: str = DEFAULT_SCHEMA) -> None:
    """(Re)install every sql/ object in one transaction."""
    script = render_sql(schema)
    with conn.transaction():
        _drop_views(conn, schema)
        conn.execute(script)


def _drop_views(conn: psycopg.Connection, schema: str) -> None:
    # CREATE OR REPLACE VIEW cannot change a view's columns; views hold no data, so rebuild them.
    views = conn.execute(
        "SELECT table_name FROM information_schema.views WHERE table_schema = %s", (schema,)
    ).fetchall()
    for (view,) in views:
        conn.execute(pgsql.SQL("DROP VIEW IF EXISTS {}.{} CASCADE").format(
            pgsql.Identifier(schema), pgsql.Identifier(view)))


def uninstall_sql(conn: psycopg.Connection, schema: str = DEFAULT_SCHEMA) -> None:
    """Drop the SQL layer (views, functions, procedures and their triggers); tables stay."""
    with conn.transaction():
        _drop_views(conn, schema)
        routines = conn.execute(
            """SELECT p.oid::regprocedure::text, p.prokind FROM pg_proc p
               JOIN pg_namespace n ON n.oid = p.pronamespace
               WHERE n.nspname = %s AND p.prokind IN ('f', 'p')""",
            (schema,),
        ).fetchall()
        for signature, kind in routines:
            word = "PROCEDURE" if kind == "p" else "FUNCTION"
            conn.execute(f"DROP {word} IF EXISTS {signature} CASCADE")


def migrate(conn: psycopg.Connection, schema: str = DEFAULT_SCHEMA) -> list[str]:
    """Apply pending migrations, then install the SQL layer. Idempotent. Returns applied ids."""
    check_identifier(schema)
    conn.autocommit = True
    conn.execute(pgsql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(pgsql.Identifier(schema)))
    try:
        applied = _migrate_with_yoyo(conn, schema, "apply")
    except psycopg.Error as exc:
        raise PnlError(f"migration failed: {exc}") from None
    install_sql(conn, schema)
    return applied


def rollback(conn: psycopg.Connection, schema: str = DEFAULT_SCHEMA, to: str | None = None) -> list[str]:
    """Roll back every migration applied after `to` (all of them when None). The SQL layer is dropped
    first because it is written against the newest schema; `migrate` brings both back."""
    conn.autocommit = True
    uninstall_sql(conn, schema)
    return _migrate_with_yoyo(conn, schema, "rollback", keep=to)
