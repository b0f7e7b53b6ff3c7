"""`pnldb bench --shards N` (issue 16): the same snapshot on one server and on a coordinator of N shards.

For each size, two scratch databases on the bench's server: one a single-server installation, the other
made a coordinator of N shard databases (pnldb.cluster.init_cluster, before any fact is loaded). Both get
the bench's hierarchy, use cases and rules and the same generated measured slice (generation.generate_slice:
the same statement, the same salt), loaded through the coordinator on the distributed side (its trigger
ships the facts to their shards). Then create_snapshot on both, interleaved, after one untimed run of each;
per run the wall time, the CPU of the backend that ran it, of the shards' backends (the processes connected
to the shard databases, PL/Proxy's connections) and of the whole server. Last, a committed run on each, and
their result rows compared row for row: every column of fact_calculated_results but the row's and the run's
ids. A mismatch is recorded in the report, printed loudly and fails the command after the report.

The measured slice only: no other dates, superseded versions or currencies (loading them through the
coordinator's trigger would dominate the bench). Everything is dropped afterwards, however it ends."""
from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack

import psycopg
from psycopg import sql as pgsql
from psycopg.conninfo import make_conninfo

from pnldb import api, cluster
from pnldb.bench import generation, measurement
from pnldb.bench.peers import common
from pnldb.db import connect
from pnldb.errors import PnlError

DATABASE_MARKER = "pnldb bench --shards scratch database: created and dropped by `pnldb bench`"
# what identifies a result row but is not its content: the row's own id and the ids of its run
RUN_COLUMNS = ("result_id", "run_id", "calculation_run_id")
FIRST_DIFFERENCES = 3


def database_names(conn: psycopg.Connection) -> tuple[str, str]:
    """The single-server and the coordinator scratch databases for a bench connected to `conn`'s database
    (the coordinator's shards are <coordinator>_shard<k>)."""
    base = conn.info.dbname[:30]
    return f"{base}_bench_single", f"{base}_bench_coord"


def _marked(admin: psycopg.Connection, prefix: str) -> list[str]:
    """The scratch databases this bench made whose names start with `prefix`."""
    return [name for (name,) in admin.execute(
        "SELECT datname FROM pg_database WHERE starts_with(datname, %s) "
        "AND shobj_description(oid, 'pg_database') = %s ORDER BY datname", (prefix, DATABASE_MARKER))]


def drop_databases(admin: psycopg.Connection, names: tuple[str, str], link: str | None = None) -> None:
    """Drop the two scratch databases and the coordinator's shards (only databases this bench marked), and
    the coordinator's shard roles."""
    for prefix in names:
        for name in _marked(admin, prefix):
            admin.execute(pgsql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(pgsql.Identifier(name)))
    if link:
        cluster.drop_shard_roles(admin, link)


def _create_database(admin: psycopg.Connection, name: str) -> None:
    found = admin.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
                          (name,)).fetchone()
    if found is not None:
        raise PnlError(f"database {name} exists and was not made by `pnldb bench --shards`; refusing to touch it")
    admin.execute(pgsql.SQL("CREATE DATABASE {}").format(pgsql.Identifier(name)))
    _mark(admin, name)


def _mark(admin: psycopg.Connection, name: str) -> None:
    admin.execute(pgsql.SQL("COMMENT ON DATABASE {} IS {}").format(pgsql.Identifier(name),
                                                                   pgsql.Literal(DATABASE_MARKER)))


class _Shards:
    """The backends connected to the shard databases (PL/Proxy keeps its connections open per
    coordinator backend), found in pg_stat_activity by the bench's own connection, and their CPU."""

    def __init__(self, admin: psycopg.Connection, names: list[str]):
        self.admin, self.names = admin, names

    def cpu(self) -> dict[int, float]:
        pids = self.admin.execute("SELECT pid FROM pg_stat_activity WHERE datname = ANY (%s)",
                                  (self.names,)).fetchall()
        return {pid: common.process_cpu(pid) for (pid,) in pids}


def timed_snapshot(conn: psycopg.Connection, s: str, postmaster: int | None, shards: _Shards | None) -> dict:
    """One create_snapshot of the measured slice, rolled back: wall seconds, the CPU seconds of the backend
    that ran it, of the shards' backends (None on a single server) and of the whole server (None when it
    cannot be read from here)."""
    backend = conn.info.backend_pid
    shards_before = shards.cpu() if shards else {}
    with conn.transaction(force_rollback=True):
        server_before, backend_before = common.server_cpu(postmaster), common.process_cpu(backend)
        started = time.perf_counter()
        run_id = conn.execute(f"SELECT {s}.create_snapshot(%s, %s)",
                              (generation.MAIN_USE_CASE, generation.COB_DATE)).fetchone()[0]
        wall = time.perf_counter() - started
        backend_cpu, server_after = common.process_cpu(backend) - backend_before, common.server_cpu(postmaster)
        run = api.get_run(conn, run_id)
    if run["status"] != "COMPLETED":
        raise PnlError(f"create_snapshot did not complete: {run['status']}: {run['error_message']}")
    shards_after = shards.cpu() if shards else {}
    return {"wall_s": wall, "backend_cpu_s": backend_cpu,
            "shards_cpu_s": sum(cpu - shards_before.get(pid, 0.0) for pid, cpu in shards_after.items())
            if shards else None,
            "server_cpu_s": None if server_before is None or server_after is None else server_after - server_before}


def result_columns(conn: psycopg.Connection, schema: str) -> list[str]:
    """Every column of fact_calculated_results but RUN_COLUMNS, in the table's order."""
    return [name for (name,) in conn.execute(
        """SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped
           ORDER BY attnum""", (f"{schema}.fact_calculated_results",)) if name not in RUN_COLUMNS]


def committed_rows(conn: psycopg.Connection, s: str, columns: list[str]) -> list[tuple]:
    run = api.create_snapshot(conn, generation.MAIN_USE_CASE, generation.COB_DATE, "bench shards check")
    if run["status"] != "COMPLETED":
        raise PnlError(f"create_snapshot ended {run['status']}: {run['error_message']}")
    return conn.execute(f"SELECT {', '.join(columns)} FROM {s}.fact_calculated_results "
                        "WHERE calculation_run_id = %s", (run["id"],)).fetchall()


def compare_rows(columns: list[str], single: list[tuple], distributed: list[tuple]) -> dict:
    """The two runs' rows as multisets: equal, or how many of each have no equal, and the first few."""
    a, b = Counter(single), Counter(distributed)
    only_single, only_distributed = sorted((a - b).elements(), key=repr), sorted((b - a).elements(), key=repr)
    out = {"columns": columns, "single_rows": len(single), "distributed_rows": len(distributed),
           "rows_equal": not only_single and not only_distributed and len(single) == len(distributed)}
    if not out["rows_equal"]:
        out["only_single"] = len(only_single)
        out["only_distributed"] = len(only_distributed)
        out["first_only_single"] = [dict(zip(columns, map(str, r), strict=True))
                                    for r in only_single[:FIRST_DIFFERENCES]]
        out["first_only_distributed"] = [dict(zip(columns, map(str, r), strict=True))
                                         for r in only_distributed[:FIRST_DIFFERENCES]]
    return out


def _install(conn: psycopg.Connection, schema: str, rules: list[dict], shards: int) -> dict | None:
    """A fresh installation in the scratch schema of `conn`'s database, a coordinator of `shards` if not 0,
    with the bench's hierarchy, use cases and rules."""
    conn.execute("SET jit = off")
    generation.prepare_schema(conn, schema)
    made = None
    if shards:
        # with the default search_path: init_cluster creates the plproxy extension, which must not land in
        # the installation's schema (its migrate would then find objects that are not part of the layer)
        made = cluster.init_cluster(conn, shards, schema=schema)
    conn.execute("SELECT set_config('search_path', %s, false)", (f"{schema}, public",))
    generation.generate_structure(conn, schema, rules)
    return made


def _prewarm_shard(conn: psycopg.Connection, schema: str) -> None:
    """Statistics and shared buffers for a shard's facts, as for the single server's."""
    facts = f"{schema}.fact_pnl_entries"
    conn.execute(pgsql.SQL("ANALYZE {}").format(pgsql.Identifier(schema, "fact_pnl_entries")))
    with conn.transaction():
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
    for (rel,) in conn.execute("SELECT %s::regclass::text UNION ALL SELECT indexrelid::regclass::text "
                               "FROM pg_index WHERE indrelid = %s::regclass", (facts, facts)).fetchall():
        conn.execute("SELECT pg_prewarm(%s::regclass)", (rel,))


def measure_shards(admin: psycopg.Connection, dsn: str, schema: str, size: int, shards: int, repeat: int,
                   rules: list[dict], seed: int, progress: Callable[[str], None], label: str) -> dict:
    """{"shards", "single": {phase: [samples]}, "distributed": {...}, "load_s": {...}, "check": {...},
    "shard_facts": [...], "total_s"}: see the module's docstring. `admin` is the bench's superuser connection."""
    if admin.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0] is not True:
        raise PnlError("--shards needs a superuser login: it creates databases and a PL/Proxy cluster")
    names = database_names(admin)
    single_name, coord_name = names
    label = f"{label}, {shards} shards"
    out: dict = {"shards": shards}
    started = time.perf_counter()
    link = None
    shard_names = [f"{coord_name}_shard{k}" for k in range(shards)]
    drop_databases(admin, names)
    try:
        with ExitStack() as stack:
            conns = {}
            for side, name, n in (("single", single_name, 0), ("distributed", coord_name, shards)):
                progress(f"{label}: database {name}" + (f", a coordinator of {n} shards" if n else ""))
                _create_database(admin, name)
                conns[side] = stack.enter_context(connect(make_conninfo(dsn, dbname=name), autocommit=True))
                if n:
                    link = cluster.link_role(conns[side], schema)
                made = _install(conns[side], schema, rules, n)
                if made:
                    for shard in made["shards"]:
                        _mark(admin, f"{coord_name}_shard{shard['shard_no']}")
            s = pgsql.Identifier(schema).as_string(admin)
            out["load_s"] = {}
            for side, conn in conns.items():
                progress(f"{label}: loading the measured slice ({2 * size:,} facts) into the {side} database")
                loading = time.perf_counter()
                if side == "single":
                    with generation.bulk_mode(conn, schema):
                        generation.generate_slice(conn, schema, generation.MAIN_USE_CASE, generation.COB_DATE,
                                                  size, salt=seed * 1000)
                else:  # through the coordinator, whose trigger ships each fact to its shard
                    generation.generate_slice(conn, schema, generation.MAIN_USE_CASE, generation.COB_DATE, size,
                                              salt=seed * 1000)
                out["load_s"][side] = time.perf_counter() - loading
                measurement.analyze(conn, schema)
            coordinator = conns["distributed"]
            kept = coordinator.execute(f"SELECT count(*) FROM {s}.fact_pnl_entries").fetchone()[0]
            if kept:
                raise PnlError(f"the coordinator kept {kept:,} facts: they should all be on its shards")
            status = cluster.cluster_status(coordinator, schema)
            out["shard_facts"] = [int(shard["facts"]) for shard in status["shards"]]
            if sum(out["shard_facts"]) != 2 * size:
                raise PnlError(f"the shards hold {sum(out['shard_facts']):,} facts, not the {2 * size:,} loaded")
            measurement.prewarm(conns["single"], schema, measurement.relation_blocks(
                conns["single"], f"{schema}.fact_pnl_entries"))
            measurement.prewarm(coordinator, schema, 0)
            for shard_name in shard_names:
                with connect(make_conninfo(dsn, dbname=shard_name), autocommit=True) as shard:
                    _prewarm_shard(shard, schema)

            postmaster = common.postmaster_pid(admin)
            watch = _Shards(admin, shard_names)
            progress(f"{label}: warming up both")
            timed_snapshot(conns["single"], s, postmaster, None)
            timed_snapshot(coordinator, s, postmaster, watch)
            samples: dict[str, dict[str, list]] = {
                side: {"wall_s": [], "backend_cpu_s": [], "shards_cpu_s": [], "server_cpu_s": []} for side in conns}
            for i in range(repeat):
                for side, conn in conns.items():
                    progress(f"{label}: snapshot {side} {i + 1}/{repeat}")
                    timings = timed_snapshot(conn, s, postmaster, watch if side == "distributed" else None)
                    for phase, value in timings.items():
                        samples[side][phase].append(value)
            del samples["single"]["shards_cpu_s"]
            out.update(samples)

            progress(f"{label}: comparing the two runs row for row")
            columns = result_columns(coordinator, schema)
            out["check"] = compare_rows(columns, committed_rows(conns["single"], s, columns),
                                        committed_rows(coordinator, s, columns))
    finally:
        progress(f"{label}: dropping the scratch databases")
        drop_databases(admin, names, link)
    out["total_s"] = round(time.perf_counter() - started, 1)
    return out
