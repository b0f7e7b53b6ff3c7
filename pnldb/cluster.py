"""Past one machine (issue 16): a coordinator that keeps everything but the facts' rows, and N shard databases
that keep the facts, spread by a hash of category_code and reached through PL/Proxy.

`init_cluster` is a superuser's step, like `pnldb roles create`: it makes the shard databases (on the
coordinator's server by default, or round-robin on the servers given), a login role per coordinator that may
only execute the shard functions, the PL/Proxy server and user mapping on the coordinator (the only place the
role's password is kept), the proxy functions, and then installs the coordinator's SQL layer for its shards.
Credentials are never stored in a table, printed or put in an error."""
from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql as pgsql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pnldb import schema as schema_mod
from pnldb.db import DEFAULT_SCHEMA, check_identifier
from pnldb.errors import PnlError

MAX_SHARDS = 64
# What a shard's fact table is read by: the loads' and the scan's keys, as on the coordinator.
_SHARD_INDEXES = ("(load_id, pnl_date)", "(use_case_id, pnl_date, scenario)")
_SHARD_FUNCTIONS = ("shard_fact_groups", "shard_add_facts", "shard_fact_rows", "shard_fact_currencies",
                    "shard_purge", "shard_loads", "shard_analyze")
_SERVER_KEYS = ("host", "hostaddr", "port", "dbname")


def link_role(conn: psycopg.Connection, schema: str = DEFAULT_SCHEMA) -> str:
    """The login the coordinator's PL/Proxy calls use on its shards: one per coordinator database."""
    return link_role_of(conn.info.host, conn.info.port, conn.info.dbname, schema)


def link_role_of(host: str, port: int | str, dbname: str, schema: str = DEFAULT_SCHEMA) -> str:
    """link_role of the coordinator database `dbname` on host:port (also once it is gone)."""
    digest = hashlib.sha256(f"{host}:{port}/{dbname}".encode()).hexdigest()[:10]
    return f"{schema}_shard_link_{digest}"


def shard_owner_role(link: str) -> str:
    """The login-less owner of a shard's objects, whose SECURITY DEFINER functions the link role runs: it
    owns the shard's schema and nothing else (never a superuser)."""
    return link.replace("_shard_link_", "_shard_owner_", 1)


def drop_shard_roles(admin: psycopg.Connection, link: str) -> None:
    """Drop a cluster's shard roles from a server whose shard databases are gone."""
    for role in (link, shard_owner_role(link)):
        admin.execute(pgsql.SQL("DROP ROLE IF EXISTS {}").format(pgsql.Identifier(role)))


def _public(url: str) -> str:
    """A server's address without its credentials: what may be stored, printed and put in an error."""
    parts = conninfo_to_dict(url)
    return " ".join(f"{k}={parts[k]}" for k in _SERVER_KEYS if parts.get(k))


@contextmanager
def _unlogged(conn: psycopg.Connection) -> Iterator[None]:
    """Statements carrying a password: not written to the server's log, whatever log_statement says."""
    conn.execute("SET log_statement = 'none'")
    conn.execute("SET log_min_error_statement = 'panic'")
    try:
        yield
    finally:
        conn.execute("RESET log_statement")
        conn.execute("RESET log_min_error_statement")


def _connect(url: str, what: str, **overrides) -> psycopg.Connection:
    try:
        return psycopg.connect(make_conninfo(url, **overrides), autocommit=True)
    except psycopg.Error as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        secret = conninfo_to_dict(url).get("password")
        if secret:
            message = message.replace(secret, "***")
        raise PnlError(f"cannot connect to {what} ({_public(make_conninfo(url, **overrides))}): {message}") from None


def _fact_table_sql(conn: psycopg.Connection, schema: str) -> str:
    """The shard's fact table: the coordinator's columns, in its order and types (so that a row of the
    coordinator's row type is a row of the shard's), with its generated columns as plain ones filled from
    the coordinator's values, the shard's indexes, and the coordinator's extended statistics (each shard
    plans the snapshot's scan of its own facts)."""
    columns = conn.execute(
        """SELECT format('%%I %%s%%s', a.attname, format_type(a.atttypid, a.atttypmod),
                         CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END)
           FROM pg_attribute a
           WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum""",
        (f"{schema}.fact_pnl_entries",)).fetchall()
    table = pgsql.Identifier(schema, "fact_pnl_entries")
    statements = [pgsql.SQL("CREATE TABLE {} ({}, PRIMARY KEY (id))").format(
        table, pgsql.SQL(", ").join(pgsql.SQL(c) for (c,) in columns))]
    statements += [pgsql.SQL("CREATE INDEX ON {} {}").format(table, pgsql.SQL(keys)) for keys in _SHARD_INDEXES]
    statistics = conn.execute(
        """SELECT x.stxname, array_to_string(ARRAY(
                      SELECT CASE k WHEN 'd' THEN 'ndistinct' WHEN 'f' THEN 'dependencies' ELSE 'mcv' END
                      FROM unnest(x.stxkind) k WHERE k <> 'e' ORDER BY 1), ', '),
                  pg_get_statisticsobjdef_columns(x.oid)
           FROM pg_statistic_ext x WHERE x.stxrelid = %s::regclass ORDER BY x.stxname""",
        (f"{schema}.fact_pnl_entries",)).fetchall()
    statements += [pgsql.SQL("CREATE STATISTICS {} ({}) ON {} FROM {}").format(
        pgsql.Identifier(schema, name), pgsql.SQL(kinds), pgsql.SQL(keys), table) for name, kinds, keys in statistics]
    return "; ".join(s.as_string(conn) for s in statements)


def is_shard_count(shards: int) -> bool:
    """Whether a cluster can have `shards` shards: a power of two up to MAX_SHARDS."""
    return 1 <= shards <= MAX_SHARDS and not shards & (shards - 1)


def _check_shape(shards: int) -> None:
    if not is_shard_count(shards):
        raise PnlError(f"--shards {shards}: a cluster has a power of two of shards (1, 2, 4, ... {MAX_SHARDS}), "
                       "as PL/Proxy spreads rows by a hash masked to that many")


def init_cluster(conn: psycopg.Connection, shards: int, servers: list[str] | None = None,
                 schema: str = DEFAULT_SCHEMA) -> dict:
    """Make the installation in `conn`'s database (migrated, no facts yet) the coordinator of `shards`
    new shard databases, on `servers` (URLs of superuser logins, round-robin; default: the coordinator's
    own server, as `conn` reaches it). `conn` is a superuser's. Nothing is left half-made: on an error the
    shard databases made so far are dropped and the coordinator is unchanged."""
    check_identifier(schema)
    _check_shape(shards)
    existing = schema_mod.coordinator_shards(conn, schema)
    if existing:
        raise PnlError(f"database {conn.info.dbname} is already a coordinator of {existing} shards: a cluster is "
                       "made once; "
                       "resharding is an offline re-load into a new cluster")
    if conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0] is not True:
        raise PnlError("pnldb cluster init needs a superuser: it creates databases, a login role and PL/Proxy "
                       "functions (a language only a superuser may create functions in)")
    if conn.execute(pgsql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(
            pgsql.Identifier(schema, "fact_pnl_entries"))).fetchone()[0]:
        raise PnlError(f"database {conn.info.dbname} has facts: make the cluster on a new installation, then "
                       "load the facts through the coordinator (pnldb load facts)")
    roles = schema_mod.installation_roles(conn, schema)
    own = make_conninfo(conn.info.dsn, password=conn.info.password or None)
    urls = servers or [own]
    link, password = link_role(conn, schema), secrets.token_urlsafe(24)
    table_sql = _fact_table_sql(conn, schema)
    shard_layer = schema_mod.render_shard_layer(schema)
    made: list[tuple[str, str]] = []
    addresses: list[str] = []
    try:
        for k in range(shards):
            url = urls[k % len(urls)]
            name = f"{conn.info.dbname}_shard{k}"
            with _connect(url, f"shard server {k % len(urls)}") as admin:
                if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                    raise PnlError(f"shard database {name} already exists on {_public(url)}: drop it, or make "
                                   "the cluster from another coordinator database")
                admin.execute(pgsql.SQL("CREATE DATABASE {}").format(pgsql.Identifier(name)))
                made.append((url, name))
                with _unlogged(admin):
                    exists = admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (link,)).fetchone()
                    admin.execute(pgsql.SQL("{} ROLE {} LOGIN PASSWORD {}").format(
                        pgsql.SQL("ALTER" if exists else "CREATE"), pgsql.Identifier(link), pgsql.Literal(password)))
                if not admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (shard_owner_role(link),)).fetchone():
                    admin.execute(pgsql.SQL("CREATE ROLE {} NOLOGIN").format(pgsql.Identifier(shard_owner_role(link))))
            with _connect(url, f"shard {k}", dbname=name) as shard:
                _install_shard(shard, schema, k, shards, link, table_sql, shard_layer)
            addresses.append(_public(make_conninfo(url, dbname=name)))
        with conn.transaction():
            _install_coordinator(conn, schema, roles.owner, link, password, addresses)
        try:
            schema_mod.migrate(conn, schema)  # the SQL layer, now rendered for the shards
        except BaseException:
            _uninstall_coordinator(conn, schema)
            raise
    except BaseException:
        for url, name in reversed(made):
            try:
                with _connect(url, "a shard server") as admin:
                    admin.execute(pgsql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(pgsql.Identifier(name)))
            except PnlError:
                pass
        raise
    return {"coordinator": conn.info.dbname, "shards": [{"shard_no": k, "server": a} for k, a in enumerate(addresses)],
            "link_role": link, "shard_layer_version": schema_mod.shard_layer_version(schema)}


def _install_shard(shard: psycopg.Connection, schema: str, shard_no: int, shards: int, link: str,
                   table_sql: str, shard_layer: str) -> None:
    db, sch, role, owner = (pgsql.Identifier(x) for x in (shard.info.dbname, schema, link, shard_owner_role(link)))
    with shard.transaction():
        shard.execute(pgsql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(db))
        shard.execute(pgsql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(db, role))
        shard.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
        shard.execute(pgsql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(sch, owner))
        shard.execute(pgsql.SQL("SET LOCAL ROLE {}").format(owner))
        shard.execute(table_sql)
        shard.execute(shard_layer)
        shard.execute(pgsql.SQL("INSERT INTO {} VALUES (%s, %s)").format(pgsql.Identifier(schema, "shard_identity")),
                      (shard_no, shards))
        shard.execute(pgsql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sch, role))
        for name in _SHARD_FUNCTIONS:
            shard.execute(pgsql.SQL("GRANT EXECUTE ON FUNCTION {} TO {}").format(pgsql.Identifier(schema, name), role))


def _install_coordinator(conn: psycopg.Connection, schema: str, owner: str, link: str, password: str,
                         addresses: list[str]) -> None:
    cluster = pgsql.Identifier(f"{schema}_shards")
    # in pg_catalog, as plpgsql: not in a schema of the search_path, such as the installation's own
    conn.execute("CREATE EXTENSION IF NOT EXISTS plproxy SCHEMA pg_catalog")
    conn.execute(pgsql.SQL("CREATE SCHEMA {}").format(cluster))
    conn.execute(pgsql.SQL("REVOKE ALL ON SCHEMA {} FROM PUBLIC").format(cluster))
    conn.execute(pgsql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(cluster, pgsql.Identifier(owner)))
    conn.execute(pgsql.SQL("CREATE SERVER {} FOREIGN DATA WRAPPER plproxy OPTIONS ({})").format(
        cluster, pgsql.SQL(", ").join(pgsql.SQL("{} {}").format(pgsql.Identifier(f"p{k}"), pgsql.Literal(a))
                                      for k, a in enumerate(addresses))))
    conn.execute(pgsql.SQL("GRANT USAGE ON FOREIGN SERVER {} TO {}").format(cluster, pgsql.Identifier(owner)))
    with _unlogged(conn):
        # for PUBLIC: whoever may execute the proxy functions, which is the owner alone (and superusers)
        conn.execute(pgsql.SQL("CREATE USER MAPPING FOR PUBLIC SERVER {} OPTIONS (user {}, password {})").format(
            cluster, pgsql.Literal(link), pgsql.Literal(password)))
    conn.execute(schema_mod.render_coordinator_proxies(schema, len(addresses)))
    conn.execute(pgsql.SQL("INSERT INTO {} (shard_no, server) SELECT k - 1, a FROM unnest(%s::text[]) "
                           "WITH ORDINALITY AS s(a, k)").format(pgsql.Identifier(schema, "cluster_shards")),
                 (addresses,))


def _uninstall_coordinator(conn: psycopg.Connection, schema: str) -> None:
    cluster = pgsql.Identifier(f"{schema}_shards")
    with conn.transaction():
        conn.execute(pgsql.SQL("DELETE FROM {}").format(pgsql.Identifier(schema, "cluster_shards")))
        conn.execute(pgsql.SQL("DROP SCHEMA {} CASCADE").format(cluster))
        conn.execute(pgsql.SQL("DROP SERVER {} CASCADE").format(cluster))


def cluster_status(conn: psycopg.Connection, schema: str = DEFAULT_SCHEMA) -> dict:
    """The shards of the coordinator in `conn`, each with its facts and loads, and the facts on shards of
    loads the coordinator does not have (a loader that died; `pnldb cluster purge` removes them)."""
    shards = conn.execute(pgsql.SQL("SELECT shard_no, server FROM {} ORDER BY shard_no").format(
        pgsql.Identifier(schema, "cluster_shards"))).fetchall()
    if not shards:
        return {"coordinator": conn.info.dbname, "shards": [], "orphan_facts": 0, "queued_purges": 0}
    held = conn.execute(pgsql.SQL(
        """SELECT h.shard_no, count(*) AS loads, coalesce(sum(h.facts), 0)::bigint AS facts,
                  coalesce(sum(h.facts) FILTER (WHERE l.load_id IS NULL), 0)::bigint AS orphans
           FROM {}.shard_loads(%s) h LEFT JOIN {}.fact_loads l ON l.load_id = h.load_id
           GROUP BY h.shard_no""").format(pgsql.Identifier(f"{schema}_shards"), pgsql.Identifier(schema)),
        (schema_mod.shard_layer_version(schema),)).fetchall()
    by_shard = {r[0]: r[1:] for r in held}
    queued = conn.execute(pgsql.SQL("SELECT count(*) FROM {}").format(
        pgsql.Identifier(schema, "shard_purges"))).fetchone()[0]
    return {
        "coordinator": conn.info.dbname,
        "shards": [{"shard_no": k, "server": server, "loads": by_shard.get(k, (0, 0, 0))[0],
                    "facts": by_shard.get(k, (0, 0, 0))[1]} for k, server in shards],
        "orphan_facts": sum(v[2] for v in by_shard.values()),
        "queued_purges": queued,
    }


def purge_shards(conn: psycopg.Connection, schema: str = DEFAULT_SCHEMA) -> dict:
    """Delete from the shards what no run can read any more: the purges the coordinator queued (a use case
    deleted, superseded slices purged) and the facts of loads it does not have (a loader that died half-way
    through the shards), once no loader of their use case is still at work. Idempotent: run it again after
    any failure."""
    if not schema_mod.coordinator_shards(conn, schema):
        return {"queued": 0, "orphan_loads": 0, "facts_deleted": 0}
    s, cluster = pgsql.Identifier(schema), pgsql.Identifier(f"{schema}_shards")
    version = schema_mod.shard_layer_version(schema)
    queued = conn.execute(pgsql.SQL("SELECT {}.purge_shards()").format(s)).fetchone()[0]
    deleted = queued["facts_deleted"]
    orphans = conn.execute(pgsql.SQL(
        """SELECT h.use_case_id, array_agg(DISTINCT h.load_id) FROM {}.shard_loads(%s) h
           WHERE NOT EXISTS (SELECT 1 FROM {}.fact_loads l WHERE l.load_id = h.load_id) GROUP BY h.use_case_id"""
    ).format(cluster, s), (version,)).fetchall()
    orphan_loads = 0
    for use_case_id, loads in orphans:
        with conn.transaction():
            # a loader of the use case at work holds its lock exclusively: wait for it to commit or fail
            if conn.execute(pgsql.SQL("SELECT 1 FROM {}.use_cases WHERE use_case_id = %s").format(s),
                            (use_case_id,)).fetchone():
                conn.execute(pgsql.SQL("SELECT {}.lock_use_case(%s, false)").format(s), (use_case_id,))
            gone = conn.execute(pgsql.SQL(
                "SELECT array_agg(x) FROM unnest(%s::bigint[]) x WHERE NOT EXISTS "
                "(SELECT 1 FROM {}.fact_loads l WHERE l.load_id = x)").format(s), (loads,)).fetchone()[0]
        if gone:
            orphan_loads += len(gone)
            deleted += conn.execute(pgsql.SQL(
                "SELECT coalesce(sum(n), 0)::bigint FROM {}.shard_purge(%s, %s, %s, %s) n").format(cluster),
                (version, gone, [None] * len(gone), [None] * len(gone))).fetchone()[0]
    return {"queued": queued["purges"], "orphan_loads": orphan_loads, "facts_deleted": deleted}
