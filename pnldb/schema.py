"""Render sql/ and migrations/ (Jinja2 templates read as package resources), apply the migrations (yoyo)
and install the SQL layer in one transaction, and describe the catalog that results."""
from __future__ import annotations

import contextlib
import datetime as dt
import fnmatch
import hashlib
import re
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import jinja2
import psycopg
from psycopg import sql as pgsql

from pnldb.db import DEFAULT_SCHEMA, InstallationRoles, check_identifier
from pnldb.errors import PnlError, describe_db_error
from pnldb.vocabulary import KINDS, MEASURES, SCENARIOS, UNMAPPED, UNMAPPED_NAME, VARIANCE

PACKAGE = "pnldb"
SQL_RESOURCE = "sql"
MIGRATIONS_RESOURCE = "migrations"
DBA_RESOURCE = "dba"
YOYO_TABLES = ("_yoyo_log", "_yoyo_migration", "_yoyo_version", "yoyo_lock")
DUMP_COMMAND = "scripts/dev dump-schema"
# How long migrate (and rollback) wait for one lock: while it waits for a view's or a table's exclusive lock
# behind an open transaction, every reader that comes after queues behind it.
DEFAULT_LOCK_TIMEOUT = "5s"


def template_context(schema: str = DEFAULT_SCHEMA, roles: InstallationRoles | None = None, shards: int = 0) -> dict:
    """What sql/ templates see; `shards` > 0 renders the layer of a coordinator of that many shards
    (pnldb/cluster.py)."""
    natural, adjusted, _plug = KINDS  # a plug is natural - adjusted: derived, never summed
    summed_kinds = (natural, adjusted)

    def node_value(scenario: str, measure: str, kind: str) -> str:
        return f"{scenario.lower()}_{measure}_{kind}"

    return {
        **migration_context(schema, roles),
        "measures": MEASURES,
        "scenarios": SCENARIOS,
        "kinds": KINDS,
        "unmapped": UNMAPPED,
        "unmapped_name": UNMAPPED_NAME,
        "variance": VARIANCE,
        # A snapshot node: the values summed per fact scenario, side by side (sql/0305, sql/0310).
        "summed_kinds": summed_kinds,
        "node_value": node_value,
        "sharded": shards > 0,
        "shard_count": shards,
        "shard_layer_version": shard_layer_version(schema) if shards else "",
        "node_values": [
            {"scenario": scenario, "measure": measure, "kind": kind, "column": node_value(scenario, measure, kind),
             "included_only": kind == adjusted}
            for scenario in SCENARIOS for measure in MEASURES for kind in summed_kinds
        ],
    }


def migration_context(schema: str = DEFAULT_SCHEMA, roles: InstallationRoles | None = None) -> dict:
    """What a migration template sees: the installation's names (its schema, its roles) and nothing else. A
    migration is history and spells out its own columns, so it renders the same SQL whatever the vocabulary
    becomes."""
    return {"schema": check_identifier(schema), "roles": roles or InstallationRoles(schema)}


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


def render_layer(schema: str = DEFAULT_SCHEMA, roles: InstallationRoles | None = None,
                 shards: int = 0) -> list[tuple[str, str]]:
    """Each sql/ file rendered for the schema (and its roles), as (file name, SQL), in load order; for a
    coordinator of `shards` shards if not 0."""
    env = _environment(SQL_RESOURCE)
    context = template_context(schema, roles, shards)
    return [(name, env.get_template(name).render(context).rstrip() + "\n") for name in sql_files()]


# The sql/ files a shard runs too: the rule compiler, so that a shard compiles each rule from its
# predicate_json itself; then the shard's own objects.
SHARD_SHARED_FILES = ("0200_function_predicate_sql.sql", "0300_function_rule_case_tree.sql",
                      "0302_function_rules_included.sql", "0308_function_load_scenario_filter.sql")
SHARD_LAYER_FILE = "_shard_layer.sql"
COORDINATOR_PROXIES_FILE = "_shard_proxies.sql"


def _render_shard_layer(schema: str, version: str) -> str:
    env = _environment(SQL_RESOURCE)
    context = {**template_context(schema), "shard_layer_version": version}
    return "".join(env.get_template(name).render(context).rstrip() + "\n"
                   for name in (*SHARD_SHARED_FILES, SHARD_LAYER_FILE))


def shard_layer_version(schema: str = DEFAULT_SCHEMA) -> str:
    """The version of the shards' SQL: a digest of its text. A coordinator's calls carry the version it
    was rendered with, and a shard of another version refuses them."""
    return hashlib.sha256(_render_shard_layer(schema, "").encode()).hexdigest()[:16]


def render_shard_layer(schema: str = DEFAULT_SCHEMA) -> str:
    """The SQL a shard database runs (after its fact table, pnldb/cluster.py): one script."""
    return _render_shard_layer(schema, shard_layer_version(schema))


def render_coordinator_proxies(schema: str, shards: int) -> str:
    """The PL/Proxy functions of a coordinator of `shards` shards, in schema <schema>_shards."""
    return _environment(SQL_RESOURCE).get_template(COORDINATOR_PROXIES_FILE).render(
        template_context(schema, shards=shards))


def coordinator_shards(conn: psycopg.Connection, schema: str) -> int:
    """How many shards the installation in `schema` has: 0 for a single server."""
    if conn.execute("SELECT to_regclass(%s)", (f"{schema}.cluster_shards",)).fetchone()[0] is None:
        return 0
    return conn.execute(pgsql.SQL("SELECT count(*) FROM {}").format(
        pgsql.Identifier(schema, "cluster_shards"))).fetchone()[0]


def render_sql(schema: str = DEFAULT_SCHEMA, roles: InstallationRoles | None = None) -> str:
    """The whole SQL layer as one script, each object headed by its file name."""
    parts = [f"-- pnldb SQL layer for schema {schema}\n"]
    for name, text in render_layer(schema, roles):
        parts.append(f"\n-- sql/{name}\n{text}")
    return "".join(parts)


def render_migration(source: str, schema: str = DEFAULT_SCHEMA, name: str = "migration",
                     roles: InstallationRoles | None = None) -> str:
    """One migration template rendered for the schema."""
    try:
        return _environment(MIGRATIONS_RESOURCE).from_string(source).render(migration_context(schema, roles))
    except jinja2.UndefinedError as exc:
        raise PnlError(f"{name}: {exc.message}; a migration is rendered with the installation's "
                       "names only (schema, roles), so write out the columns it creates") from None


def render_migrations(schema: str = DEFAULT_SCHEMA, roles: InstallationRoles | None = None) -> dict[str, str]:
    """Every migration file (apply and rollback) rendered for the schema, by file name."""
    folder = resources.files(PACKAGE) / MIGRATIONS_RESOURCE
    return {name: render_migration((folder / name).read_text(encoding="utf-8"), schema, name, roles)
            for name in _resource_names(MIGRATIONS_RESOURCE, "*.sql")}


# --- the installation: its owner and group roles ----------------------------------------------------------
#
# Every object of the schema belongs to a login-less owner role (prefix_owner). migrate, rollback and the
# layer's install act as it through SET ROLE, so the login that runs them needs membership in it and no
# CREATEROLE. Making the roles, the schema and the DDL guard is a DBA's step: create_roles (pnldb roles
# create). The schema's owner names the installation's roles: prefix_owner's groups are prefix_reader, ...

def _schema_owner(conn: psycopg.Connection, schema: str) -> tuple[str, str | None, bool] | None:
    """(owner, its pnldb prefix or None when it is no `_owner` role, whether it can log in) of the schema,
    or None when there is no such schema."""
    row = conn.execute("SELECT r.rolname, r.rolcanlogin FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner "
                       "WHERE n.nspname = %s", (schema,)).fetchone()
    if row is None:
        return None
    owner, can_login = row
    return owner, owner.removesuffix("_owner") if owner.endswith("_owner") else None, can_login


def _set_up_hint(schema: str) -> str:
    return (f"a DBA runs `pnldb --schema {schema} roles create` once in this database "
            "(README, \"Setting up a database\")")


def installation_roles(conn: psycopg.Connection, schema: str = DEFAULT_SCHEMA) -> InstallationRoles:
    """The roles of the installation in `schema`, named by the schema's owner; refused, saying what the DBA
    does, when the schema is missing or was not set up by create_roles."""
    check_identifier(schema)
    found = _schema_owner(conn, schema)
    if found is None:
        raise PnlError(f"schema {schema} does not exist in database {conn.info.dbname}: {_set_up_hint(schema)}; it "
                       f"creates the login-less owner {schema}_owner, the group roles and the schema. Then run "
                       "pnldb migrate")
    owner, prefix, can_login = found
    if prefix is None:
        raise PnlError(f"schema {schema} belongs to role {owner}, not to a login-less owner: "
                       f"{_set_up_hint(schema)}; it hands the schema and everything in it, data kept, to "
                       f"{schema}_owner. Then run pnldb migrate")
    roles = InstallationRoles(prefix)
    missing = conn.execute("SELECT array(SELECT g FROM unnest(%s::text[]) g "
                           "WHERE NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = g))",
                           (list(roles.groups),)).fetchone()[0]
    if can_login:
        raise PnlError(f"schema {schema} belongs to {roles.owner}, which can log in: nobody may log in as pnldb's "
                       f"owner; {_set_up_hint(schema)}, which makes it NOLOGIN again")
    if missing:
        raise PnlError(f"the group role(s) {', '.join(missing)} of schema {schema} do not exist: "
                       f"{_set_up_hint(schema)}")
    return roles


@contextlib.contextmanager
def _acting_as_owner(conn: psycopg.Connection, schema: str, roles: InstallationRoles) -> Iterator[None]:
    """SET ROLE to the installation's owner for the block; the session's role is restored on the way out."""
    conn.autocommit = True
    before = conn.execute("SELECT current_setting('role')").fetchone()[0]
    try:
        conn.execute(pgsql.SQL("SET ROLE {}").format(pgsql.Identifier(roles.owner)))
    except psycopg.errors.InsufficientPrivilege:
        login = conn.execute("SELECT session_user").fetchone()[0]
        raise PnlError(f"role {login} may not act as {roles.owner}, the owner of schema {schema}: a DBA lets it with "
                       f"`pnldb --schema {schema} roles create --migrator {login}` (GRANT {roles.owner} TO "
                       f"{login})") from None
    try:
        yield
    finally:
        if not conn.closed:
            conn.execute("SELECT set_config('role', %s, false)", (before,))


def _record_protected_tables(conn: psycopg.Connection, schema: str) -> None:
    """Tell the DDL guard, if there is one, which protected tables the schema has now (by oid: found when
    renamed), in the installer's transaction."""
    if conn.execute("SELECT to_regclass(%s)", (f"{schema}_guard.home",)).fetchone()[0] is not None:
        conn.execute(pgsql.SQL("UPDATE {} SET tables = ARRAY(SELECT c.oid FROM pg_class c WHERE c.relnamespace = nsp "
                               "AND c.relname = ANY (protected))").format(pgsql.Identifier(f"{schema}_guard", "home")))


def _guard_installed(conn: psycopg.Connection, schema: str) -> bool:
    return conn.execute("SELECT count(*) = 2 FROM pg_event_trigger WHERE evtname IN (%s, %s)",
                        (f"{schema}_guard_ddl", f"{schema}_guard_drop")).fetchone()[0]


def create_roles(conn: psycopg.Connection, schema: str = DEFAULT_SCHEMA, prefix: str | None = None,
                 migrators: tuple[str, ...] | list[str] = ()) -> list[str]:
    """The DBA's step (pnldb roles create), in one transaction: the installation's roles (prefix_owner,
    login-less and holding nothing, and the four group roles; kept when they exist), the schema owned by the
    owner (an existing one is handed to it with everything in it), membership in the owner for each of
    `migrators`, and, when run by a superuser, the DDL guard. The prefix defaults to the one the schema
    already has, else the schema's name. Returns notes of what it did."""
    check_identifier(schema)
    conn.autocommit = True
    existing, existing_prefix, _ = _schema_owner(conn, schema) or (None, None, False)
    roles = InstallationRoles(prefix or existing_prefix or schema)
    if existing_prefix is not None and existing != roles.owner:
        raise PnlError(f"schema {schema} already belongs to {existing}, whose roles are {existing_prefix}_reader, "
                       f"...: run without --roles (or with --roles {existing_prefix}); nothing was changed")
    superuser = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]
    env = _environment(DBA_RESOURCE)
    context = migration_context(schema, roles)
    notes = []
    try:
        with conn.transaction():
            _take_migrate_lock(conn, schema)
            conn.execute(env.get_template("roles.sql").render(context))
            for login in migrators:
                if not _role_exists(conn, login):
                    raise PnlError(f"--migrator {login}: no such role; create the login first "
                                   f"(CREATE ROLE {login} LOGIN ...); nothing was changed")
                conn.execute(pgsql.SQL("GRANT {} TO {}").format(pgsql.Identifier(roles.owner),
                                                                pgsql.Identifier(login)))
                notes.append(f"{login} may run pnldb migrate on schema {schema} (it acts as {roles.owner})")
            if superuser:
                conn.execute(env.get_template("ddl_guard.sql").render(context))
    except psycopg.Error as exc:
        raise PnlError(f"pnldb roles create failed, nothing was changed: {describe_db_error(exc)}") from None
    notes.insert(0, f"roles {roles.owner} (owner, no login), {', '.join(roles.groups)} are in place; schema {schema} "
                    f"belongs to {roles.owner}")
    if existing is not None and existing != roles.owner:
        notes.insert(1, f"handed schema {schema} and everything in it from {existing} to {roles.owner}")
    notes.append(f"installed the DDL guard of schema {schema}" if superuser else
                 f"the DDL guard of schema {schema} was not installed: its event triggers need a superuser to run "
                 "pnldb roles create")
    return notes


def _role_exists(conn: psycopg.Connection, name: str) -> bool:
    return conn.execute("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %s)", (name,)).fetchone()[0]



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
def _yoyo(conn: psycopg.Connection, schema: str, roles: InstallationRoles) -> Iterator[tuple]:
    """(backend, migrations) for the schema, with yoyo's bookkeeping tables in place. yoyo sets the
    session's search_path to the schema; the caller's is restored on the way out."""
    from yoyo import read_migrations

    conn.autocommit = True
    search_path = conn.execute("SELECT current_setting('search_path')").fetchone()[0]
    try:
        with tempfile.TemporaryDirectory(prefix="pnldb-migrations-") as tmp:
            for name, text in render_migrations(schema, roles).items():
                (Path(tmp) / name).write_text(text, encoding="utf-8")
            backend = _backend_class()(conn, schema)
            backend.init_database()
            backend.ensure_internal_schema_updated()  # commits: must run before our transaction begins
            yield backend, read_migrations(tmp)
    finally:
        if not conn.closed:
            conn.execute("SELECT set_config('search_path', %s, false)", (search_path,))


class _LockWait(Exception):
    """A lock wait that ran past the lock timeout while migrate (or rollback) was doing `step`."""

    def __init__(self, step: str):
        super().__init__(step)
        self.step = step


_LOCK_HOLDERS_SQL = """
SELECT a.pid, a.usename, a.xact_start, a.state,
       string_agg(DISTINCT format('%%I.%%I', n.nspname, c.relname), ', '
                  ORDER BY format('%%I.%%I', n.nspname, c.relname)) AS relations
FROM pg_locks l
JOIN pg_class c ON c.oid = l.relation
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.granted AND l.pid <> pg_backend_pid() AND n.nspname = %(schema)s AND c.relkind IN ('r', 'p', 'v', 'm')
  AND l.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
  AND (a.xact_start IS NULL OR a.xact_start <= %(started)s)  -- not those that queued behind this one
GROUP BY a.pid, a.usename, a.xact_start, a.state
ORDER BY a.xact_start NULLS LAST, a.pid
"""


def _lock_holders(conn: psycopg.Connection, schema: str, started) -> list[tuple[int, str]]:
    """The other sessions holding a lock on a table or view of the schema since before `started`: (pid,
    'pid N (role R, transaction open since T, idle in transaction) on s.t, ...')."""
    holders = []
    for pid, role, since, state, relations in conn.execute(_LOCK_HOLDERS_SQL, {"schema": schema, "started": started}):
        when = (f"transaction open since {since.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC" if since is not None
                else "open since a time your role may not see (pg_read_all_stats may)")
        names = relations.split(", ")
        on = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        holders.append((pid, f"pid {pid} (role {role}, {when}{f', {state}' if state else ''}) on {on}"))
    return holders


_LONGER = {"pnldb migrate": "--lock-timeout or PNLDB_MIGRATE_LOCK_TIMEOUT (0: no limit)",
           "pnldb rollback": "rollback(..., lock_timeout=...) (0: no limit)"}


def _lock_timeout_error(conn: psycopg.Connection, schema: str, started, lock_timeout: str, command: str,
                        step: str) -> PnlError:
    """The error of a lock wait past the timeout, asked after the rollback: who holds locks on the schema."""
    holders = _lock_holders(conn, schema, started) if started is not None and not conn.closed else []
    if holders:
        held = (f"Held by {'; '.join(text for _, text in holders)}. End that transaction (a DBA can: SELECT "
                f"pg_terminate_backend({holders[0][0]})) and run {command} again")
    else:
        held = f"The session that held it has ended since; run {command} again"
    return PnlError(f"{command} waited more than {lock_timeout} for a lock while {step}; nothing was changed. "
                    f"{held}, or let it wait longer with {_LONGER[command]}")


def _take_migrate_lock(conn: psycopg.Connection, schema: str) -> None:
    """The schema's migrate lock, to the end of the transaction. The DDL guard (dba/ddl_guard.sql) lets DDL on the
    protected tables through only in a transaction that holds it."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"pnldb.migrate:{schema}",))


@contextlib.contextmanager
def _one_transaction(backend, schema: str, lock_timeout: str, command: str) -> Iterator[None]:
    """One transaction of migrate or rollback; a lock wait longer than `lock_timeout` (PostgreSQL's
    lock_timeout text: 5s, 500ms, 0 for no limit) rolls it all back and names who holds the lock."""
    conn = backend.connection
    backend.begin()
    started = None
    try:
        started = conn.execute("SELECT now()").fetchone()[0]  # the transaction's start
        # Two migrates of one schema queue here instead of interleaving their DDL; that wait holds no lock
        # of a table or view, so it has no limit.
        _take_migrate_lock(conn, schema)
        try:
            with conn.transaction():
                conn.execute("SELECT set_config('lock_timeout', %s, true)", (str(lock_timeout),))
        except (psycopg.errors.InvalidParameterValue, psycopg.errors.InvalidTextRepresentation):
            raise PnlError(f"lock timeout {lock_timeout!r} is not a duration: give one such as 5s, 500ms or 1min "
                           "(0 waits without limit)") from None
        yield
    except (_LockWait, psycopg.errors.LockNotAvailable) as exc:
        backend.rollback()
        step = exc.step if isinstance(exc, _LockWait) else "changing the schema"
        raise _lock_timeout_error(conn, schema, started, lock_timeout, command, step) from None
    except BaseException:
        backend.rollback()
        raise
    backend.commit()


def _check_target(to: str | None) -> None:
    if to is not None and to not in migration_ids():
        raise PnlError(f"unknown migration {to!r}; the migrations are {', '.join(migration_ids())}")


def migrate(conn: psycopg.Connection, schema: str = DEFAULT_SCHEMA, to: str | None = None,
            notes: list[str] | None = None, lock_timeout: str = DEFAULT_LOCK_TIMEOUT) -> list[str]:
    """Apply the pending migrations, then install the SQL layer, in one transaction: on any error nothing
    changes. Idempotent. Returns the ids applied; what the install dropped or re-created is added to `notes`.
    A wait for one lock longer than `lock_timeout` (an open transaction reading a view the install
    replaces) fails, naming the sessions holding locks, instead of queueing every reader behind it.

    With `to`, only the migrations up to and including `to` are applied and the SQL layer is left alone
    (it is written against the newest schema): that is how an old deployment is reproduced."""
    check_identifier(schema)
    _check_target(to)
    notes = notes if notes is not None else []
    roles = installation_roles(conn, schema)
    with _acting_as_owner(conn, schema, roles), _yoyo(conn, schema, roles) as (backend, migrations), \
            _one_transaction(backend, schema, lock_timeout, "pnldb migrate"):
        pending = list(backend.to_apply(migrations))
        if to is not None:
            newer = set(migration_ids()[migration_ids().index(to) + 1:])
            pending = [m for m in pending if m.id not in newer]
        grants = _view_grants(conn, schema)
        if pending and to is None:
            # The views are re-created below; without them a migration may alter the columns they read.
            _drop_views(conn, schema, _free_views(conn, schema))
        for migration in pending:
            try:
                backend.apply_one(migration)
            except psycopg.errors.LockNotAvailable:
                raise _LockWait(f"applying migration {migration.id}") from None
            except psycopg.Error as exc:
                raise PnlError(f"migration {migration.id} failed, nothing was changed: "
                               f"{describe_db_error(exc)}") from None
        _record_protected_tables(conn, schema)
        if to is None:
            _install_layer(conn, schema, roles, notes, grants)
            if not _guard_installed(conn, schema):
                notes.append(f"the DDL guard of schema {schema} is not installed: {_set_up_hint(schema)} as a "
                             "superuser to install it")
        return [m.id for m in pending]


# What rolling back a migration destroys of the runs, the loaded figures and the history, as (what, SQL
# counting it) in the schema as it stands before the rollback: `rollback` refuses while any count is not
# zero, unless forced. Migrations not listed (0004, 0008, 0009, 0010) lose none of it.
_ROLLBACK_LOSSES: dict[str, list[tuple[str, str]]] = {
    "0001_baseline": [
        ("use case(s) and everything of them", "SELECT count(*) FROM {s}.use_cases"),
        ("fact(s)", "SELECT count(*) FROM {s}.fact_pnl_entries"),
        ("rule(s)", "SELECT count(*) FROM {s}.metadata_rules"),
        ("legacy run(s) (use_case_runs)", "SELECT count(*) FROM {s}.use_case_runs"),
        ("hierarchy structure(s)", "SELECT count(*) FROM {s}.hierarchy_structures"),
    ],
    "0002_step_4_2": [
        ("run(s) (calculation_runs)", "SELECT count(*) FROM {s}.calculation_runs"),
        ("result row(s) of those runs",
         "SELECT count(*) FROM {s}.fact_calculated_results WHERE calculation_run_id IS NOT NULL"),
        # 0002 re-applied derives daily from `amount` and WTD/YTD as running sums of it: loaded figures
        # that are not exactly that are rewritten.
        ("fact(s) whose loaded daily, WTD or YTD figures re-applying 0002_step_4_2 would rewrite", """
            SELECT count(*) FROM (
                SELECT f.daily_amount, f.wtd_amount, f.ytd_amount, f.amount,
                       sum(f.amount) OVER (PARTITION BY f.use_case_id, f.scenario, f.category_code, f.attributes,
                                                        date_trunc('week', f.pnl_date)
                                           ORDER BY f.pnl_date, f.id
                                           ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS wtd,
                       sum(f.amount) OVER (PARTITION BY f.use_case_id, f.scenario, f.category_code, f.attributes,
                                                        date_trunc('year', f.pnl_date)
                                           ORDER BY f.pnl_date, f.id
                                           ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS ytd
                FROM {s}.fact_pnl_entries f) x
            WHERE (x.daily_amount, x.wtd_amount, x.ytd_amount) IS DISTINCT FROM (x.amount, x.wtd, x.ytd)"""),
    ],
    "0003_run_rules": [("recorded rule(s) of runs (calculation_run_rules)",
                        "SELECT count(*) FROM {s}.calculation_run_rules")],
    "0005_fact_loads": [
        ("recorded input(s) of runs (calculation_run_inputs)", "SELECT count(*) FROM {s}.calculation_run_inputs"),
        # the loads 0005 made of the facts before it are made again alike; real loads' records are not
        ("fact load record(s): who loaded what, when (fact_loads)",
         "SELECT count(*) FROM {s}.fact_loads WHERE source IS DISTINCT FROM "
         "'facts loaded before pnldb tracked loads (migration 0005)'"),
    ],
    "0006_close": [
        ("run(s) whose executed_by is recorded",
         "SELECT count(*) FROM {s}.calculation_runs WHERE executed_by IS NOT NULL"),
        ("close check setting(s) (close_checks)", "SELECT count(*) FROM {s}.close_checks"),
        ("close event(s) (close_events)", "SELECT count(*) FROM {s}.close_events"),
    ],
    "0007_currency": [
        ("run(s) whose reporting currency is recorded", "SELECT count(*) FROM {s}.calculation_runs"),
        ("recorded fx rate(s) of runs (calculation_run_fx)", "SELECT count(*) FROM {s}.calculation_run_fx"),
        ("fx rate(s) (fx_rates)", "SELECT count(*) FROM {s}.fx_rates"),
    ],
    "0013_audit": [("rule version(s): the rules' history (rule_versions)",
                    "SELECT count(*) FROM {s}.rule_versions WHERE operation <> 'MIGRATED'")],
    # runs keep their rows, but not the digests and chain links that prove them unchanged
    "0014_integrity": [("run digest(s) and chain link(s): the tamper evidence of runs",
                        "SELECT count(*) FROM {s}.calculation_runs WHERE digest IS NOT NULL")],
    # re-applying 0015 grants every use case to the four group roles again: a narrowed installation widens
    "0015_entitlements": [("use-case grant(s) other than the default, or default grant(s) revoked, which re-applying "
                           "0015_entitlements would not keep (use_case_grants)", """
        SELECT count(*) FILTER (WHERE g.use_case_id IS NOT NULL OR g.role_name <> ALL ({groups}))
               + cardinality({groups})
               - count(*) FILTER (WHERE g.use_case_id IS NULL AND g.role_name = ANY ({groups}))
        FROM {s}.use_case_grants g""")],
}


def rollback_losses(conn: psycopg.Connection, schema: str, migration_ids_: list[str],
                    roles: InstallationRoles | None = None) -> list[tuple[str, str, int]]:
    """What rolling back these (applied) migrations would destroy or rewrite: (migration, what, count), the
    counts that are not zero, newest migration first as given."""
    names = {"s": pgsql.Identifier(schema).as_string(conn),
             "groups": pgsql.Literal(list((roles or InstallationRoles(schema)).groups)).as_string(conn) + "::name[]"}
    losses = []
    for migration_id in migration_ids_:
        for what, query in _ROLLBACK_LOSSES.get(migration_id, []):
            count = conn.execute(query.format(**names)).fetchone()[0]
            if count:
                losses.append((migration_id, what, count))
    return losses


def _losses_error(to: str | None, losses: list[tuple[str, str, int]]) -> PnlError:
    lines = [f"  {count} {what} (rolling back {migration_id})" for migration_id, what, count in losses]
    return PnlError(f"rolling back to {to or 'nothing'} would destroy or rewrite:\n" + "\n".join(lines)
                    + "\nnothing was changed; to roll back anyway (this cannot be undone: re-applying the migrations "
                      "does not bring it back), give --force (rollback(..., force=True))")


def rollback(conn: psycopg.Connection, schema: str = DEFAULT_SCHEMA, to: str | None = None,
             lock_timeout: str = DEFAULT_LOCK_TIMEOUT, force: bool = False) -> list[str]:
    """Roll back every migration applied after `to` (all of them when None), in one transaction. The SQL
    layer is dropped first because it is written against the newest schema; `migrate` brings both back.
    Lock waits are bounded as migrate's.

    Refused, with nothing changed, when it would destroy runs or what they recorded, rule or load history,
    or rewrite loaded figures (rollback_losses: the error lists each count), unless `force`."""
    check_identifier(schema)
    _check_target(to)
    roles = installation_roles(conn, schema)
    with _acting_as_owner(conn, schema, roles), _yoyo(conn, schema, roles) as (backend, migrations), \
            _one_transaction(backend, schema, lock_timeout, "pnldb rollback"):
        kept = set(migration_ids()[:migration_ids().index(to) + 1]) if to else set()
        pending = [m for m in backend.to_rollback(migrations) if m.id not in kept]  # newest first
        if not force:
            try:
                losses = rollback_losses(conn, schema, [m.id for m in pending], roles)
            except psycopg.errors.LockNotAvailable:
                raise _LockWait("counting what the rollback would destroy") from None
            if losses:
                raise _losses_error(to, losses)
        try:
            _uninstall_layer(conn, schema)
        except psycopg.errors.LockNotAvailable:
            raise _LockWait("dropping the SQL layer") from None
        for migration in pending:
            try:
                backend.rollback_one(migration)
            except psycopg.errors.LockNotAvailable:
                raise _LockWait(f"rolling back migration {migration.id}") from None
            except psycopg.Error as exc:
                raise PnlError(f"rolling back {migration.id} failed, nothing was changed: "
                               f"{describe_db_error(exc)}") from None
        _record_protected_tables(conn, schema)
        return [m.id for m in pending]


# --- the SQL layer -------------------------------------------------------------------------------------
#
# The schema is pnldb's: every view, routine and trigger (on its tables, running its functions) in it
# belongs to the layer, except an extension's (a DBA may create one in the schema, as pg_prewarm lands
# in the first schema of the search path). Objects that others build on the layer (a view in a reporting
# schema on v_run_results, a function calling get_run) are kept: the layer replaces its objects in place
# where PostgreSQL allows it and stops, naming those objects, where it does not.

_LAYER_SQL = """
SELECT 'pg_class'::regclass AS classid, c.oid AS objid, c.reltype AS typid
FROM pg_class c WHERE c.relnamespace = %(schema)s::regnamespace AND c.relkind = 'v'
  AND NOT EXISTS (SELECT 1 FROM pg_depend e
                  WHERE e.classid = 'pg_class'::regclass AND e.objid = c.oid AND e.deptype = 'e')
UNION ALL
SELECT 'pg_proc'::regclass, p.oid, NULL FROM pg_proc p WHERE p.pronamespace = %(schema)s::regnamespace
  AND NOT EXISTS (SELECT 1 FROM pg_depend e
                  WHERE e.classid = 'pg_proc'::regclass AND e.objid = p.oid AND e.deptype = 'e')
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


def _run_layer_file(conn: psycopg.Connection, schema: str, name: str, text: str, notes: list[str]) -> None:
    """Run one sql/ file. A view whose new columns CREATE OR REPLACE VIEW refuses (a column renamed,
    removed or retyped) is dropped and created again when nothing foreign depends on it; otherwise this
    stops, naming what depends on it."""
    try:
        with conn.transaction():
            conn.execute(text)
        return
    except psycopg.errors.LockNotAvailable:
        raise _LockWait(f"installing sql/{name}") from None
    except psycopg.errors.InvalidTableDefinition as exc:
        views = _views(conn, schema)
        changed = [view for view in _defined_views(text, schema) if view in views]
        if not changed:
            raise PnlError(f"installing sql/{name} failed, nothing was changed: {describe_db_error(exc)}") from None
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
        notes += [f"re-created view {schema}.{view}: sql/{name} changes its columns" for view in changed]
    except psycopg.Error as exc:
        raise PnlError(f"installing sql/{name} failed, nothing was changed: {describe_db_error(exc)}") from None
    try:
        with conn.transaction():
            conn.execute(text)
    except psycopg.errors.LockNotAvailable:
        raise _LockWait(f"installing sql/{name}") from None
    except psycopg.Error as exc:
        raise PnlError(f"installing sql/{name} failed, nothing was changed: {describe_db_error(exc)}") from None


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


def _view_grants(conn: psycopg.Connection, schema: str) -> dict[str, tuple[int, list[str]]]:
    """Each view's oid and the GRANTs on it to roles other than its owner: what a view that is dropped
    and re-created must be given back. (Not those to PUBLIC: the layer's grants revoke them anyway.)"""
    grants: dict[str, tuple[int, list[str]]] = {name: (oid, []) for name, oid in _views(conn, schema).items()}
    for name, grant in conn.execute(
            """SELECT c.relname, format('GRANT %%s ON %%I.%%I TO %%I%%s', a.privilege_type, n.nspname, c.relname,
                                        pg_get_userbyid(a.grantee),
                                        CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, aclexplode(c.relacl) a
               WHERE c.relnamespace = %s::regnamespace AND c.relkind = 'v' AND a.grantee NOT IN (0, c.relowner)
               ORDER BY 1, 2""", (schema,)):
        grants[name][1].append(grant)
    return grants


def _install_layer(conn: psycopg.Connection, schema: str, roles: InstallationRoles, notes: list[str],
                   grants: dict[str, tuple[int, list[str]]] | None = None) -> None:
    grants = _view_grants(conn, schema) if grants is None else grants
    before = _row_versions(conn, schema)
    for name, text in render_layer(schema, roles, coordinator_shards(conn, schema)):
        _run_layer_file(conn, schema, name, text, notes)
    stale = [key for key, xmin in _row_versions(conn, schema).items() if before.get(key) == xmin]
    dropped = _drop_layer_objects(conn, schema, stale, ("is no longer part of pnldb's SQL layer",
                                                        "are no longer part of pnldb's SQL layer"),
                                  "run pnldb migrate again")
    notes += [f"dropped {what}: no longer part of the SQL layer" for what in dropped]
    views = _views(conn, schema)
    for name, (oid, statements) in grants.items():
        if views.get(name, oid) != oid:  # re-created: what was granted on it, by whoever, is granted again
            for statement in statements:
                conn.execute(statement)


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
                        why: tuple[str, str], then: str) -> list[str]:
    """Drop layer objects: first their triggers, then views, then routines; returns what was dropped, by
    kind and name. Refused with one error naming them when something foreign depends on one."""
    if not objects:
        return []
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

    def named(kind: str) -> list[str]:
        return sorted(name for (k, _), name in names.items() if k == kind)

    for trigger in named("pg_trigger"):
        conn.execute(pgsql.SQL("DROP TRIGGER {}").format(pgsql.SQL(trigger)))
    for kind, statement in (("pg_class", "DROP VIEW {}"), ("pg_proc", "DROP ROUTINE {}")):
        if named(kind):  # one statement each, so that objects of the list that depend on each other go together
            conn.execute(pgsql.SQL(statement).format(pgsql.SQL(", ").join(pgsql.SQL(n) for n in named(kind))))
    return [f"{word} {name}" for kind, word in (("pg_trigger", "trigger"), ("pg_class", "view"), ("pg_proc", "routine"))
            for name in named(kind)]


def install_sql(conn: psycopg.Connection, schema: str = DEFAULT_SCHEMA) -> list[str]:
    """(Re)install every sql/ object in one transaction, keeping what others built on it; drop the
    routines, views and triggers of the schema that the layer no longer defines. Returns what it dropped
    or re-created."""
    notes: list[str] = []
    roles = installation_roles(conn, check_identifier(schema))
    with _acting_as_owner(conn, schema, roles), conn.transaction():
        _take_migrate_lock(conn, schema)  # also the DDL guard's sign of the installer (dba/ddl_guard.sql)
        _install_layer(conn, schema, roles, notes)
    return notes


def uninstall_sql(conn: psycopg.Connection, schema: str = DEFAULT_SCHEMA) -> None:
    """Drop the SQL layer (views, functions, procedures and their triggers); tables stay. Refused, naming
    them, while others' objects depend on it."""
    roles = installation_roles(conn, check_identifier(schema))
    with _acting_as_owner(conn, schema, roles), conn.transaction():
        _take_migrate_lock(conn, schema)
        _uninstall_layer(conn, schema)


# --- the catalog, described ------------------------------------------------------------------------------
#
# Everything migrations and the layer leave in the schema, as SQL-like text in a fixed order, without OIDs,
# owners or dates, so that two databases compare equal exactly when their schemas are the same, and a
# change to the schema shows as a diff of the committed dump (docs/schema.sql). yoyo's bookkeeping tables
# are left out: they are yoyo's, and differ between its versions.

_RELKIND = {"r": "TABLE", "p": "TABLE", "v": "VIEW", "m": "MATERIALIZED VIEW", "S": "SEQUENCE", "c": "TYPE",
            "f": "FOREIGN TABLE", "i": "INDEX", "I": "INDEX"}

_IDENTITY = {"a": " GENERATED ALWAYS AS IDENTITY", "d": " GENERATED BY DEFAULT AS IDENTITY"}

_CATALOG_QUERIES = {
    "relations": """
        SELECT c.relname, c.relkind, c.reloptions::text, c.relrowsecurity, c.relforcerowsecurity,
               CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid, true) END
        FROM pg_class c
        WHERE c.relnamespace = %(schema)s::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'c', 'f')
          AND c.relname <> ALL (%(skip)s)""",
    "columns": """
        SELECT c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               pg_get_expr(ad.adbin, ad.adrelid), a.attidentity, a.attgenerated,
               CASE WHEN a.attcollation <> t.typcollation THEN quote_ident(co.collname) END
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_type t ON t.oid = a.atttypid
        LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
        LEFT JOIN pg_collation co ON co.oid = a.attcollation
        WHERE c.relnamespace = %(schema)s::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'c', 'f')
          AND c.relname <> ALL (%(skip)s) AND a.attnum > 0 AND NOT a.attisdropped""",
    "constraints": """
        SELECT c.relname, k.conname, pg_get_constraintdef(k.oid, true)
        FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
        WHERE c.relnamespace = %(schema)s::regnamespace AND c.relname <> ALL (%(skip)s)""",
    "indexes": """
        SELECT c.relname, i.relname, pg_get_indexdef(i.oid)
        FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class c ON c.oid = x.indrelid
        WHERE c.relnamespace = %(schema)s::regnamespace AND c.relname <> ALL (%(skip)s)
          AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid AND k.conrelid = x.indrelid
                          AND k.contype IN ('p', 'u', 'x'))""",
    "statistics": """
        SELECT c.relname, x.stxname, pg_get_statisticsobjdef(x.oid)
        FROM pg_statistic_ext x JOIN pg_class c ON c.oid = x.stxrelid
        WHERE c.relnamespace = %(schema)s::regnamespace AND c.relname <> ALL (%(skip)s)""",
    "triggers": """
        SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid, true), t.tgenabled
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        WHERE c.relnamespace = %(schema)s::regnamespace AND NOT t.tgisinternal""",
    "rules": """
        SELECT c.relname, r.rulename, pg_get_ruledef(r.oid, true)
        FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class
        WHERE c.relnamespace = %(schema)s::regnamespace AND r.rulename <> '_RETURN'""",
    "policies": """
        SELECT c.relname, p.polname,
               format('CREATE POLICY %%I ON %%s AS %%s FOR %%s TO %%s%%s%%s;', p.polname, c.oid::regclass,
                      CASE WHEN p.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END,
                      CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE'
                                    WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
                      (SELECT string_agg(CASE WHEN r = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(r)) END, ', '
                                         ORDER BY CASE WHEN r = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(r)::text END
                                         COLLATE "C")
                       FROM unnest(p.polroles) r),
                      ' USING (' || pg_get_expr(p.polqual, p.polrelid) || ')',
                      ' WITH CHECK (' || pg_get_expr(p.polwithcheck, p.polrelid) || ')')
        FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
        WHERE c.relnamespace = %(schema)s::regnamespace""",
    "sequences": """
        SELECT c.relname, format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache,
               s.seqcycle, o.relname || '.' || quote_ident(a.attname), d.deptype
        FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid
        LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid
                             AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
        LEFT JOIN pg_class o ON o.oid = d.refobjid
        LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
        WHERE c.relnamespace = %(schema)s::regnamespace AND coalesce(o.relname, '') <> ALL (%(skip)s)""",
    "types": """
        SELECT t.typname, t.typtype, format_type(t.typbasetype, t.typtypmod), t.typnotnull, t.typdefault,
               (SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder)
                FROM pg_enum e WHERE e.enumtypid = t.oid),
               (SELECT string_agg(format('CONSTRAINT %%I %%s', k.conname, pg_get_constraintdef(k.oid, true)), ' '
                                  ORDER BY k.conname COLLATE "C")
                FROM pg_constraint k WHERE k.contypid = t.oid)
        FROM pg_type t
        WHERE t.typnamespace = %(schema)s::regnamespace AND t.typtype IN ('e', 'd')""",
    "routines": """
        SELECT p.oid::regprocedure::text, p.prokind,
               CASE WHEN p.prokind <> 'a' THEN pg_get_functiondef(p.oid) END,
               (SELECT format('CREATE AGGREGATE %%s (SFUNC = %%s, STYPE = %%s%%s%%s);', p.oid::regprocedure,
                              g.aggtransfn, format_type(g.aggtranstype, NULL),
                              ', FINALFUNC = ' || nullif(g.aggfinalfn::oid, 0)::regproc,
                              ', INITCOND = ' || quote_literal(g.agginitval))
                FROM pg_aggregate g WHERE g.aggfnoid = p.oid)
        FROM pg_proc p WHERE p.pronamespace = %(schema)s::regnamespace""",
    "comments": """
        SELECT 'relation', c.relname,
               CASE WHEN d.objsubid = 0 THEN CASE c.relkind WHEN 'r' THEN 'TABLE' WHEN 'p' THEN 'TABLE'
                                                            WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                                                            WHEN 'S' THEN 'SEQUENCE' WHEN 'c' THEN 'TYPE'
                                                            WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'INDEX' END
                                             || ' ' || c.oid::regclass::text
                    ELSE 'COLUMN ' || c.oid::regclass::text || '.' || quote_ident(a.attname) END,
               d.objsubid, quote_literal(d.description)
        FROM pg_description d JOIN pg_class c ON d.classoid = 'pg_class'::regclass AND c.oid = d.objoid
        LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.objsubid
        WHERE c.relnamespace = %(schema)s::regnamespace AND c.relname <> ALL (%(skip)s)
        UNION ALL
        SELECT 'routine', p.oid::regprocedure::text,
               CASE p.prokind WHEN 'p' THEN 'PROCEDURE ' WHEN 'a' THEN 'AGGREGATE ' ELSE 'FUNCTION ' END
               || p.oid::regprocedure::text, 0, quote_literal(d.description)
        FROM pg_description d JOIN pg_proc p ON d.classoid = 'pg_proc'::regclass AND p.oid = d.objoid
        WHERE p.pronamespace = %(schema)s::regnamespace
        UNION ALL
        SELECT 'relation', c.relname, format('TRIGGER %%I ON %%s', t.tgname, c.oid::regclass), 0,
               quote_literal(d.description)
        FROM pg_description d JOIN pg_trigger t ON d.classoid = 'pg_trigger'::regclass AND t.oid = d.objoid
        JOIN pg_class c ON c.oid = t.tgrelid WHERE c.relnamespace = %(schema)s::regnamespace
        UNION ALL
        SELECT 'relation', c.relname, format('CONSTRAINT %%I ON %%s', k.conname, c.oid::regclass), 0,
               quote_literal(d.description)
        FROM pg_description d JOIN pg_constraint k ON d.classoid = 'pg_constraint'::regclass AND k.oid = d.objoid
        JOIN pg_class c ON c.oid = k.conrelid WHERE c.relnamespace = %(schema)s::regnamespace
        UNION ALL
        SELECT 'type', t.typname, 'TYPE ' || t.oid::regtype::text, 0, quote_literal(d.description)
        FROM pg_description d JOIN pg_type t ON d.classoid = 'pg_type'::regclass AND t.oid = d.objoid
        WHERE t.typnamespace = %(schema)s::regnamespace
        UNION ALL
        SELECT 'schema', n.nspname, 'SCHEMA ' || quote_ident(n.nspname), 0, quote_literal(d.description)
        FROM pg_description d JOIN pg_namespace n ON d.classoid = 'pg_namespace'::regclass AND n.oid = d.objoid
        WHERE n.oid = %(schema)s::regnamespace""",
    # Privileges without the owner's own (the owner differs between installations) and without grantors.
    "privileges": """
        SELECT 'relation', c.relname,
               CASE WHEN c.relkind = 'S' THEN 'SEQUENCE ' ELSE 'TABLE ' END || c.oid::regclass::text,
               acl.grantee, acl.privilege_type, acl.is_grantable
        FROM pg_class c,
             aclexplode(coalesce(c.relacl, acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char",
                                                      c.relowner))) acl
        WHERE c.relnamespace = %(schema)s::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
          AND c.relname <> ALL (%(skip)s) AND acl.grantee <> c.relowner
        UNION ALL
        SELECT 'relation', c.relname, 'TABLE ' || c.oid::regclass::text || ' (' || quote_ident(a.attname) || ')',
               acl.grantee, acl.privilege_type, acl.is_grantable
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid, aclexplode(a.attacl) acl
        WHERE c.relnamespace = %(schema)s::regnamespace AND a.attacl IS NOT NULL AND acl.grantee <> c.relowner
        UNION ALL
        SELECT 'routine', p.oid::regprocedure::text,
               CASE p.prokind WHEN 'p' THEN 'PROCEDURE ' ELSE 'FUNCTION ' END || p.oid::regprocedure::text,
               acl.grantee, acl.privilege_type, acl.is_grantable
        FROM pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) acl
        WHERE p.pronamespace = %(schema)s::regnamespace AND acl.grantee <> p.proowner
        UNION ALL
        SELECT 'type', t.typname, 'TYPE ' || t.oid::regtype::text, acl.grantee, acl.privilege_type, acl.is_grantable
        FROM pg_type t, aclexplode(coalesce(t.typacl, acldefault('T', t.typowner))) acl
        WHERE t.typnamespace = %(schema)s::regnamespace AND t.typtype IN ('e', 'd') AND acl.grantee <> t.typowner
        UNION ALL
        SELECT 'schema', n.nspname, 'SCHEMA ' || quote_ident(n.nspname), acl.grantee, acl.privilege_type,
               acl.is_grantable
        FROM pg_namespace n, aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) acl
        WHERE n.oid = %(schema)s::regnamespace AND acl.grantee <> n.nspowner
        UNION ALL
        SELECT 'schema', n.nspname,
               'DEFAULT ' || CASE a.defaclobjtype WHEN 'r' THEN 'TABLES' WHEN 'S' THEN 'SEQUENCES'
                                 WHEN 'f' THEN 'FUNCTIONS' WHEN 'T' THEN 'TYPES' ELSE 'SCHEMAS' END,
               acl.grantee, acl.privilege_type, acl.is_grantable
        FROM pg_default_acl a JOIN pg_namespace n ON n.oid = a.defaclnamespace, aclexplode(a.defaclacl) acl
        WHERE n.oid = %(schema)s::regnamespace AND acl.grantee <> a.defaclrole""",
}


def _grantee(oid: int, names: dict[int, str]) -> str:
    return "PUBLIC" if oid == 0 else names[oid]


def describe_catalog(conn: psycopg.Connection, schema: str = DEFAULT_SCHEMA) -> str:
    """The schema's catalog as text: types, tables (columns, defaults, constraints, indexes, statistics, triggers,
    rules, policies), sequences, views (definition and columns), routines (signature and definition),
    comments and privileges; ordered by name, with the schema name written as `pnl` whatever it is."""
    check_identifier(schema)
    params = {"schema": schema, "skip": list(YOYO_TABLES)}
    with conn.transaction(force_rollback=True):  # rolled back: takes the SET LOCAL with it, also in a savepoint
        # Every name outside pg_catalog comes out schema-qualified, whatever the caller's search_path.
        conn.execute("SET LOCAL search_path = pg_catalog")
        rows = {key: conn.execute(query, params).fetchall() for key, query in _CATALOG_QUERIES.items()}
        roles = dict(conn.execute("SELECT oid::bigint, quote_ident(rolname) FROM pg_roles").fetchall())

    qualified = f"{schema}."
    per_object: dict[tuple[str, str], list[str]] = defaultdict(list)  # (kind, name) -> lines after the definition

    for table, name, definition in sorted(rows["constraints"]):
        per_object["relation", table].append(f"ALTER TABLE {qualified}{table} ADD CONSTRAINT {name} {definition};")
    for table, _name, definition in sorted(rows["indexes"]) + sorted(rows["statistics"]):
        per_object["relation", table].append(f"{definition};")
    for table, _name, definition, enabled in sorted(rows["triggers"]):
        per_object["relation", table].append(f"{definition};")
        if enabled != "O":
            per_object["relation", table].append(f"-- trigger above: tgenabled = {enabled}")
    for table, _name, definition in sorted(rows["rules"]) + sorted(rows["policies"]):
        per_object["relation", table].append(definition)
    for kind, owner, target, _column, literal in sorted(rows["comments"], key=lambda r: (r[1], r[3], r[2])):
        per_object[kind, owner].append(f"COMMENT ON {target} IS {literal};")
    grants: dict[tuple[str, str, str, str, bool], list[str]] = defaultdict(list)
    for kind, owner, target, grantee, privilege, grantable in rows["privileges"]:
        grants[kind, owner, target, _grantee(grantee, roles), grantable].append(privilege)
    for (kind, owner, target, grantee, grantable), privileges in sorted(grants.items()):
        if target.startswith("DEFAULT "):
            line = f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT {', '.join(sorted(privileges))} " \
                   f"ON {target.removeprefix('DEFAULT ')} TO {grantee}"
        else:
            line = f"GRANT {', '.join(sorted(privileges))} ON {target} TO {grantee}"
        per_object[kind, owner].append(line + (" WITH GRANT OPTION;" if grantable else ";"))

    columns: dict[str, list[tuple]] = defaultdict(list)
    for row in sorted(rows["columns"], key=lambda r: (r[0], r[1])):
        columns[row[0]].append(row[2:])

    out = [f"CREATE SCHEMA {schema};", *per_object["schema", schema]]
    for name, kind, base, not_null, default, labels, checks in sorted(rows["types"]):
        if kind == "e":
            out += ["", f"CREATE TYPE {qualified}{name} AS ENUM ({labels});"]
        else:
            out += ["", f"CREATE DOMAIN {qualified}{name} AS {base}" + (" NOT NULL" if not_null else "")
                    + (f" DEFAULT {default}" if default else "") + (f" {checks}" if checks else "") + ";"]
        out += per_object["type", name]
    for name, relkind, options, row_security, force_row_security, view_definition in sorted(rows["relations"]):
        out.append("")
        if relkind in ("v", "m"):
            out.append(f"CREATE {_RELKIND[relkind]} {qualified}{name} AS")
            out.append(view_definition.rstrip())
            out.append(f"-- columns of {qualified}{name}:")
            out += [f"--     {column} {data_type}" for column, data_type, *_ in columns[name]]
        else:
            lines = []
            for column, data_type, not_null, default, identity, generated, collation in columns[name]:
                line = f"    {column} {data_type}"
                line += f" COLLATE {collation}" if collation else ""
                if generated == "s":
                    line += f" GENERATED ALWAYS AS ({default}) STORED"
                elif default is not None:
                    line += f" DEFAULT {default}"
                line += _IDENTITY.get(identity, "")
                line += " NOT NULL" if not_null else ""
                lines.append(line)
            out.append(f"CREATE {_RELKIND[relkind]} {qualified}{name}{' AS' if relkind == 'c' else ''} (")
            out.append(",\n".join(lines))
            out.append(")" + (f" WITH ({options[1:-1]})" if options else "") + ";")
            if row_security:
                out.append(f"ALTER TABLE {qualified}{name} ENABLE ROW LEVEL SECURITY;")
            if force_row_security:
                out.append(f"ALTER TABLE {qualified}{name} FORCE ROW LEVEL SECURITY;")
        out += per_object["relation", name]
    for name, data_type, start, increment, minimum, maximum, cache, cycle, owned_by, deptype in sorted(
            rows["sequences"]):
        out += ["", f"CREATE SEQUENCE {qualified}{name} AS {data_type} START WITH {start} INCREMENT BY {increment} "
                    f"MINVALUE {minimum} MAXVALUE {maximum} CACHE {cache}{' CYCLE' if cycle else ''};"]
        if owned_by:
            out.append(f"-- {'identity of' if deptype == 'i' else 'owned by'} {qualified}{owned_by}")
        out += per_object["relation", name]
    for signature, _kind, definition, aggregate in sorted(rows["routines"]):
        out += ["", (definition.rstrip() + ";") if definition else aggregate]
        out += per_object["routine", signature]
    return _normalise_schema("\n".join(out) + "\n", schema)


def _normalise_schema(text: str, schema: str) -> str:
    """The description of schema pnl_x reads as that of pnl: its name, as a word, a qualifier or the prefix
    of the layer's role names (pnl_x_reader), becomes `pnl`."""
    if schema == DEFAULT_SCHEMA:
        return text
    return re.sub(rf"(?<![\w$]){schema}(?=[._]|(?![\w$]))", DEFAULT_SCHEMA, text)


def catalog_dump(conn: psycopg.Connection) -> str:
    """docs/schema.sql: a header, then describe_catalog of schema pnl."""
    major = conn.info.server_version // 10000
    return (f"-- Schema pnl as `pnldb migrate` leaves it: every type, table, sequence, view and routine with its\n"
            f"-- constraints, indexes, triggers, comments and privileges (owners left out), ordered by name.\n"
            f"-- For review: a change to migrations/ or sql/ shows here. Generated by `{DUMP_COMMAND}`; do not edit.\n"
            f"-- Deparsed by PostgreSQL {major}.\n\n") + describe_catalog(conn, DEFAULT_SCHEMA)


def dump_major_version(dump: str) -> int | None:
    """The PostgreSQL major version that deparsed a catalog dump, from its header."""
    found = re.search(r"^-- Deparsed by PostgreSQL (\d+)\.$", dump, re.MULTILINE)
    return int(found.group(1)) if found else None


def fresh_catalog_dump() -> str:
    """catalog_dump of a fresh `pnldb roles create` and `pnldb migrate` on a throw-away embedded PostgreSQL."""
    from pnldb.embedded import EmbeddedPostgres

    with EmbeddedPostgres() as pg, psycopg.connect(pg.url, autocommit=True) as conn:
        create_roles(conn)
        migrate(conn)
        return catalog_dump(conn)


def write_catalog_dump(path: str | Path) -> None:
    Path(path).write_text(fresh_catalog_dump(), encoding="utf-8")
