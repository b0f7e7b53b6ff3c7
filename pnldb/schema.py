"""Render sql/ and migrations/ (Jinja2 templates read as package resources), apply the migrations (yoyo)
and install the SQL layer in one transaction, and describe the catalog that results."""
from __future__ import annotations

import contextlib
import fnmatch
import re
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import jinja2
import psycopg
from psycopg import sql as pgsql

from pnldb.db import DEFAULT_SCHEMA, check_identifier
from pnldb.errors import PnlError
from pnldb.vocabulary import KINDS, MEASURES, SCENARIOS

PACKAGE = "pnldb"
SQL_RESOURCE = "sql"
MIGRATIONS_RESOURCE = "migrations"
YOYO_TABLES = ("_yoyo_log", "_yoyo_migration", "_yoyo_version", "yoyo_lock")
DUMP_COMMAND = "scripts/dev dump-schema"


def template_context(schema: str = DEFAULT_SCHEMA) -> dict:
    return {
        "schema": check_identifier(schema),
        "measures": MEASURES,
        "scenarios": SCENARIOS,
        "kinds": KINDS,
    }


def migration_context(schema: str = DEFAULT_SCHEMA) -> dict:
    """What a migration template sees: the schema name and nothing else. A migration is history and
    spells out its own columns, so it renders the same SQL whatever the vocabulary becomes."""
    return {"schema": check_identifier(schema)}


def _environment(resource: str) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader(PACKAGE, resource),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def _resource_names(resource: str, pattern: str) -> list[str]:
    folder = resources.files(PACKAGE) / resource
    return sorted(entry.name for entry in folder.iterdir() if entry.is_file() and fnmatch.fnmatch(entry.name, pattern))


def sql_files() -> list[str]:
    """The sql/ object files in load order: by their number prefix."""
    return _resource_names(SQL_RESOURCE, "[0-9]*.sql")


def migration_ids() -> list[str]:
    """Every migration id (file name without .sql), oldest first."""
    return [name.removesuffix(".sql") for name in _resource_names(MIGRATIONS_RESOURCE, "[0-9]*.sql")
            if not name.endswith(".rollback.sql")]


def render_layer(schema: str = DEFAULT_SCHEMA) -> list[tuple[str, str]]:
    """Each sql/ file rendered for the schema, as (file name, SQL), in load order."""
    env = _environment(SQL_RESOURCE)
    context = template_context(schema)
    return [(name, env.get_template(name).render(context).rstrip() + "\n") for name in sql_files()]


def render_sql(schema: str = DEFAULT_SCHEMA) -> str:
    """The whole SQL layer as one script, each object headed by its file name."""
    parts = [f"-- pnldb SQL layer for schema {schema}\n"]
    for name, text in render_layer(schema):
        parts.append(f"\n-- sql/{name}\n{text}")
    return "".join(parts)


def render_migration(source: str, schema: str = DEFAULT_SCHEMA, name: str = "migration") -> str:
    """One migration template rendered for the schema."""
    try:
        return _environment(MIGRATIONS_RESOURCE).from_string(source).render(migration_context(schema))
    except jinja2.UndefinedError as exc:
        raise PnlError(f"{name}: {exc.message}; a migration is rendered with the schema name only, "
                       "so write out the columns it creates") from None


def render_migrations(schema: str = DEFAULT_SCHEMA) -> dict[str, str]:
    """Every migration file (apply and rollback) rendered for the schema, by file name."""
    folder = resources.files(PACKAGE) / MIGRATIONS_RESOURCE
    return {name: render_migration((folder / name).read_text(encoding="utf-8"), schema, name)
            for name in _resource_names(MIGRATIONS_RESOURCE, "*.sql")}


def _db_message(exc: psycopg.Error) -> str:
    diag = exc.diag
    parts = [diag.message_primary or str(exc).strip().splitlines()[0]]
    if diag.message_detail:
        parts.append(diag.message_detail)
    if diag.message_hint:
        parts.append(f"hint: {diag.message_hint}")
    return " ".join(" ".join(part.split()) for part in parts)


# --- migrations --------------------------------------------------------------------------------------


def _backend_class():
    from yoyo.backends.core.postgresql import PostgresqlPsycopgBackend

    class CallerConnectionBackend(PostgresqlPsycopgBackend):
        """yoyo's psycopg backend on pnldb's connection. yoyo alone applies each migration on a connection
        of its own and commits it; here every migration runs as a savepoint of the caller's transaction,
        so the migrations and the SQL layer commit, or roll back, together."""

        def __init__(self, conn: psycopg.Connection, schema: str):
            from yoyo.connections import parse_uri

            self._caller_conn = conn
            super().__init__(parse_uri(f"postgresql+psycopg:///?schema={schema}"), "_yoyo_migration")

        def connect(self, dburi):
            self.schema = dburi.args["schema"]
            return self._caller_conn

        def copy(self):
            return self

        def __exit__(self, *exc_info):
            pass  # the connection is the caller's to close

    return CallerConnectionBackend


@contextlib.contextmanager
def _yoyo(conn: psycopg.Connection, schema: str) -> Iterator[tuple]:
    """(backend, migrations) for the schema, with yoyo's bookkeeping tables in place. yoyo sets the
    session's search_path to the schema; the caller's is restored on the way out."""
    from yoyo import read_migrations

    conn.autocommit = True
    search_path = conn.execute("SELECT current_setting('search_path')").fetchone()[0]
    try:
        with tempfile.TemporaryDirectory(prefix="pnldb-migrations-") as tmp:
            for name, text in render_migrations(schema).items():
                (Path(tmp) / name).write_text(text, encoding="utf-8")
            backend = _backend_class()(conn, schema)
            backend.init_database()
            backend.ensure_internal_schema_updated()  # commits: must run before our transaction begins
            yield backend, read_migrations(tmp)
    finally:
        if not conn.closed:
            conn.execute("SELECT set_config('search_path', %s, false)", (search_path,))


@contextlib.contextmanager
def _one_transaction(backend, schema: str) -> Iterator[None]:
    backend.begin()
    try:
        # Two migrates of one schema queue here instead of interleaving their DDL.
        backend.connection.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                                   (f"pnldb.migrate:{schema}",))
        yield
    except BaseException:
        backend.rollback()
        raise
    backend.commit()


def _check_target(to: str | None) -> None:
    if to is not None and to not in migration_ids():
        raise PnlError(f"unknown migration {to!r}; the migrations are {', '.join(migration_ids())}")


def migrate(conn: psycopg.Connection, schema: str = DEFAULT_SCHEMA, to: str | None = None) -> list[str]:
    """Apply the pending migrations, then install the SQL layer, in one transaction: on any error nothing
    changes. Idempotent. Returns the ids applied.

    With `to`, only the migrations up to and including `to` are applied and the SQL layer is left alone
    (it is written against the newest schema): that is how an old deployment is reproduced."""
    check_identifier(schema)
    _check_target(to)
    conn.autocommit = True
    conn.execute(pgsql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(pgsql.Identifier(schema)))
    with _yoyo(conn, schema) as (backend, migrations), _one_transaction(backend, schema):
        pending = list(backend.to_apply(migrations))
        if to is not None:
            newer = set(migration_ids()[migration_ids().index(to) + 1:])
            pending = [m for m in pending if m.id not in newer]
        if pending and to is None:
            # The views are re-created below; without them a migration may alter the columns they read.
            _drop_views(conn, schema, _free_views(conn, schema))
        for migration in pending:
            try:
                backend.apply_one(migration)
            except psycopg.Error as exc:
                raise PnlError(f"migration {migration.id} failed, nothing was changed: {_db_message(exc)}") from None
        if to is None:
            _install_layer(conn, schema)
        return [m.id for m in pending]


def rollback(conn: psycopg.Connection, schema: str = DEFAULT_SCHEMA, to: str | None = None) -> list[str]:
    """Roll back every migration applied after `to` (all of them when None), in one transaction. The SQL
    layer is dropped first because it is written against the newest schema; `migrate` brings both back."""
    check_identifier(schema)
    _check_target(to)
    with _yoyo(conn, schema) as (backend, migrations), _one_transaction(backend, schema):
        _uninstall_layer(conn, schema)
        pending = []
        for migration in backend.to_rollback(migrations):  # newest first
            if migration.id == to:
                break
            pending.append(migration)
        for migration in pending:
            try:
                backend.rollback_one(migration)
            except psycopg.Error as exc:
                raise PnlError(f"rolling back {migration.id} failed, nothing was changed: {_db_message(exc)}") from None
        return [m.id for m in pending]


# --- the SQL layer -------------------------------------------------------------------------------------
#
# The schema is pnldb's: every view, routine and trigger (on its tables, running its functions) in it
# belongs to the layer. Objects that others build on the layer (a view in a reporting schema on
# v_run_results, a function calling get_run) are kept: the layer replaces its objects in place where
# PostgreSQL allows it and stops, naming those objects, where it does not.

_LAYER_SQL = """
SELECT 'pg_class'::regclass AS classid, c.oid AS objid, c.reltype AS typid
FROM pg_class c WHERE c.relnamespace = %(schema)s::regnamespace AND c.relkind = 'v'
UNION ALL
SELECT 'pg_proc'::regclass, p.oid, NULL FROM pg_proc p WHERE p.pronamespace = %(schema)s::regnamespace
UNION ALL
SELECT 'pg_trigger'::regclass, t.oid, NULL
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_proc p ON p.oid = t.tgfoid
WHERE c.relnamespace = %(schema)s::regnamespace AND p.pronamespace = %(schema)s::regnamespace AND NOT t.tgisinternal
"""

_DEPENDENTS_SQL = f"""
WITH layer AS ({_LAYER_SQL}),
edge AS (
    -- a view's rewrite rule stands for its view; a view's row type, too
    SELECT DISTINCT l.classid AS ref_classid, l.objid AS ref_objid,
           CASE WHEN d.classid = 'pg_rewrite'::regclass THEN 'pg_class'::regclass ELSE d.classid END AS classid,
           CASE WHEN d.classid = 'pg_rewrite'::regclass THEN r.ev_class ELSE d.objid END AS objid
    FROM layer l
    JOIN pg_depend d ON (d.refclassid = l.classid AND d.refobjid = l.objid)
                     OR (d.refclassid = 'pg_type'::regclass AND d.refobjid = l.typid)
    LEFT JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND r.oid = d.objid
    WHERE d.deptype IN ('n', 'a')
)
SELECT e.ref_classid::text, e.ref_objid, e.classid::text, e.objid,
       EXISTS (SELECT 1 FROM layer l WHERE l.classid = e.classid AND l.objid = e.objid) AS in_layer,
       CASE WHEN e.classid = 'pg_class'::regclass THEN
                (SELECT CASE c.relkind WHEN 'v' THEN 'view ' WHEN 'm' THEN 'materialized view ' ELSE 'table ' END
                        || format('%%I.%%I', n.nspname, c.relname)
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = e.objid)
            ELSE pg_describe_object(e.classid, e.objid, 0) END AS description
FROM edge e
WHERE (e.classid, e.objid) <> (e.ref_classid, e.ref_objid)
"""

# A layer object as the catalog names it: ('pg_class', oid) for a view, ('pg_proc', oid) for a routine,
# ('pg_trigger', oid) for a trigger.
LayerObject = tuple[str, int]


class _Dependents:
    """What depends on the layer's views and routines, and whether it is part of the layer itself (its
    views, routines, and triggers running its functions) or foreign."""

    def __init__(self, conn: psycopg.Connection, schema: str):
        self._on: dict[LayerObject, list[tuple[LayerObject, bool, str]]] = defaultdict(list)
        for ref_class, ref_oid, dep_class, dep_oid, in_layer, description in conn.execute(
                _DEPENDENTS_SQL, {"schema": schema}):
            self._on[(ref_class, ref_oid)].append(((dep_class, dep_oid), in_layer, description))

    def foreign(self, objects: list[LayerObject]) -> list[str]:
        """The foreign objects that depend on any of `objects`, directly or through other layer objects."""
        seen, todo, found = set(objects), list(objects), set()
        while todo:
            for dependent, in_layer, description in self._on.get(todo.pop(), []):
                if not in_layer:
                    found.add(description)
                elif dependent not in seen:
                    seen.add(dependent)
                    todo.append(dependent)
        return sorted(found)


def _views(conn: psycopg.Connection, schema: str) -> dict[str, int]:
    rows = conn.execute("SELECT relname, oid FROM pg_class WHERE relnamespace = %s::regnamespace AND relkind = 'v'",
                        (schema,))
    return dict(rows.fetchall())


def _free_views(conn: psycopg.Connection, schema: str) -> list[str]:
    """The layer's views that nothing foreign depends on, directly or through another view of the layer."""
    dependents = _Dependents(conn, schema)
    return [name for name, oid in _views(conn, schema).items() if not dependents.foreign([("pg_class", oid)])]


def _drop_views(conn: psycopg.Connection, schema: str, names: list[str], cascade: bool = False) -> None:
    if names:  # one statement, so that views of the list that depend on each other go together
        conn.execute(pgsql.SQL("DROP VIEW {}{}").format(
            pgsql.SQL(", ").join(pgsql.Identifier(schema, name) for name in sorted(names)),
            pgsql.SQL(" CASCADE" if cascade else "")))


def _defined_views(text: str, schema: str) -> list[str]:
    return sorted(set(re.findall(rf"CREATE\s+(?:OR\s+REPLACE\s+)?VIEW\s+{schema}\.(\w+)", text, re.IGNORECASE)))


def _it(names: list[str], one: str, many: str) -> str:
    return one if len(names) == 1 else many


def _run_layer_file(conn: psycopg.Connection, schema: str, name: str, text: str) -> None:
    """Run one sql/ file. A view whose new columns CREATE OR REPLACE VIEW refuses (a column renamed,
    removed or retyped) is dropped and created again when nothing foreign depends on it; otherwise this
    stops, naming what depends on it."""
    try:
        with conn.transaction():
            conn.execute(text)
        return
    except psycopg.errors.InvalidTableDefinition as exc:
        views = _views(conn, schema)
        changed = [view for view in _defined_views(text, schema) if view in views]
        if not changed:
            raise PnlError(f"installing sql/{name} failed, nothing was changed: {_db_message(exc)}") from None
        dependents = _Dependents(conn, schema)
        for view in changed:
            blocking = dependents.foreign([("pg_class", views[view])])
            if blocking:
                raise PnlError(
                    f"{', '.join(blocking)} {_it(blocking, 'depends', 'depend')} on view {schema}.{view}, whose "
                    f"columns sql/{name} changes ({exc.diag.message_primary}); nothing was changed. Save "
                    f"{_it(blocking, 'its definition', 'their definitions')}, drop {_it(blocking, 'it', 'them')}, "
                    f"run pnldb migrate again, then create {_it(blocking, 'it', 'them')} again on the new "
                    f"{schema}.{view}") from None
        _drop_views(conn, schema, changed, cascade=True)  # what cascades is the layer's own views only
    except psycopg.Error as exc:
        raise PnlError(f"installing sql/{name} failed, nothing was changed: {_db_message(exc)}") from None
    try:
        with conn.transaction():
            conn.execute(text)
    except psycopg.Error as exc:
        raise PnlError(f"installing sql/{name} failed, nothing was changed: {_db_message(exc)}") from None


def _row_versions(conn: psycopg.Connection, schema: str) -> dict[LayerObject, str]:
    """A catalog row version (xmin) per view, routine and trigger of the layer that changes exactly when the
    layer script (re)defines the object: CREATE OR REPLACE writes a new version even when nothing changed,
    so whatever the script did not define keeps its xmin. For a view that is its rewrite rule, for a
    trigger its pg_trigger row. For a routine it is the pg_depend row on its schema, which CREATE OR
    REPLACE FUNCTION records anew: the pg_proc row will not do, as the grants' REVOKE ... ON ALL FUNCTIONS
    rewrites every one. (Nor will comparing xmin with the transaction's id: the script runs in savepoints,
    whose rows carry their subtransaction's id.)"""
    rows = conn.execute(
        f"""WITH layer AS ({_LAYER_SQL})
            SELECT l.classid::text, l.objid, coalesce(r.xmin, d.xmin, t.xmin)::text
            FROM layer l
            LEFT JOIN pg_rewrite r ON l.classid = 'pg_class'::regclass AND r.ev_class = l.objid
            LEFT JOIN pg_depend d ON l.classid = 'pg_proc'::regclass AND d.classid = 'pg_proc'::regclass
                                 AND d.objid = l.objid AND d.refclassid = 'pg_namespace'::regclass
            LEFT JOIN pg_trigger t ON l.classid = 'pg_trigger'::regclass AND t.oid = l.objid""",
        {"schema": schema}).fetchall()
    return {(kind, oid): xmin for kind, oid, xmin in rows}


def _install_layer(conn: psycopg.Connection, schema: str) -> None:
    before = _row_versions(conn, schema)
    for name, text in render_layer(schema):
        _run_layer_file(conn, schema, name, text)
    stale = [key for key, xmin in _row_versions(conn, schema).items() if before.get(key) == xmin]
    _drop_layer_objects(conn, schema, stale, ("is no longer part of pnldb's SQL layer",
                                              "are no longer part of pnldb's SQL layer"), "run pnldb migrate again")


def _uninstall_layer(conn: psycopg.Connection, schema: str) -> None:
    _drop_layer_objects(conn, schema, list(_row_versions(conn, schema)),
                        ("is part of pnldb's SQL layer, which rollback drops",
                         "are part of pnldb's SQL layer, which rollback drops"), "roll back again")


_OBJECT_NAME_SQL = """
SELECT o.classid, o.objid,
       CASE o.classid
           WHEN 'pg_class' THEN (
               SELECT format('%%I.%%I', n.nspname, c.relname)
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = o.objid)
           WHEN 'pg_proc' THEN (
               SELECT format('%%I.%%I(%%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid))
               FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE p.oid = o.objid)
           ELSE (
               SELECT format('%%I ON %%I.%%I', t.tgname, n.nspname, c.relname)
               FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE t.oid = o.objid)
       END
FROM unnest(%(classes)s::text[], %(oids)s::oid[]) AS o(classid, objid)
"""


def _drop_layer_objects(conn: psycopg.Connection, schema: str, objects: list[LayerObject],
                        why: tuple[str, str], then: str) -> None:
    """Drop layer objects: first their triggers, then views, then routines. Refused with one error naming
    them when something foreign depends on one."""
    if not objects:
        return
    names = {(kind, oid): name for kind, oid, name in conn.execute(
        _OBJECT_NAME_SQL, {"classes": [kind for kind, _ in objects], "oids": [oid for _, oid in objects]})}
    dependents = _Dependents(conn, schema)
    clauses, blocking = [], set()
    for kind, oid in sorted(objects, key=names.get):
        foreign = dependents.foreign([(kind, oid)])
        if foreign:
            what = "view" if kind == "pg_class" else "routine"
            clauses.append(f"{' and '.join(foreign)} {_it(foreign, 'depends', 'depend')} on {what} {names[kind, oid]}")
            blocking.update(foreign)
    if clauses:
        raise PnlError(f"{', and '.join(clauses)}, which {_it(clauses, *why)}; nothing was changed. Drop or change "
                       f"{_it(sorted(blocking), 'it', 'them')}, then {then}")

    def named(kind: str) -> list[pgsql.Composable]:
        return [pgsql.SQL(name) for (k, _), name in sorted(names.items(), key=lambda item: item[1]) if k == kind]

    for trigger in named("pg_trigger"):
        conn.execute(pgsql.SQL("DROP TRIGGER {}").format(trigger))
    for kind, statement in (("pg_class", "DROP VIEW {}"), ("pg_proc", "DROP ROUTINE {}")):
        if named(kind):  # one statement each, so that objects of the list that depend on each other go together
            conn.execute(pgsql.SQL(statement).format(pgsql.SQL(", ").join(named(kind))))


def install_sql(conn: psycopg.Connection, schema: str = DEFAULT_SCHEMA) -> None:
    """(Re)install every sql/ object in one transaction, keeping what others built on it; drop the
    routines, views and triggers of the schema that the layer no longer defines."""
    with conn.transaction():
        _install_layer(conn, check_identifier(schema))


def uninstall_sql(conn: psycopg.Connection, schema: str = DEFAULT_SCHEMA) -> None:
    """Drop the SQL layer (views, functions, procedures and their triggers); tables stay. Refused, naming
    them, while others' objects depend on it."""
    with conn.transaction():
        _uninstall_layer(conn, check_identifier(schema))
