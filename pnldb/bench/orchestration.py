"""The whole bench: the embedded server's settings, one size after another, the report dict."""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql as pgsql

from pnldb import cluster
from pnldb.bench import checks, generation, measurement, peers, shards, trees
from pnldb.bench.peers import runner as peer_runner
from pnldb.bench.summary import summarize
from pnldb.db import connect
from pnldb.embedded import EmbeddedPostgres
from pnldb.errors import PnlError

FACT_ROW_BYTES = 200  # heap bytes per generated fact (measured: ~193)
MB = 1 << 20


@dataclass
class Options:
    sizes: list[int]
    rules: int = 1000
    repeat: int = 5
    reference_max: int = 100_000  # the Python reference runs at sizes up to this
    load_max: int = 1_000_000  # `pnldb load facts` is timed at sizes up to this
    superseded_versions: int = 5  # superseded versions of the slice beside the current one
    other_dates: int = 20  # other COB dates of the measured use case
    scope_volume: int = 1_000_000  # at most this many facts per scenario on each other date / use case
    workers: int | None = None  # max_parallel_workers_per_gather of the embedded server; default: CPUs
    seed: int = 1
    layouts: tuple[str, ...] = tuple(layout for layout in generation.RULE_LAYOUTS if layout != "nested")
    tree_nodes: int = 30_000  # the wide tree loaded fresh before its first snapshot (see trees)
    chain_depth: int = 1_000  # the chain loaded before its first snapshot: this deep, one node more
    peers: tuple[str, ...] = ()  # pandas, polars, duckdb: timed beside the engine (pnldb.bench.peers)
    shards: int = 0  # > 0: the snapshot on one server and on a coordinator of this many shards (pnldb.bench.shards)

    def other_volume(self, size: int) -> int:
        return min(size, self.scope_volume)


def machine_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):  # pragma: no cover - not Linux
        return 8 << 30


def embedded_settings(options: Options) -> dict[str, str]:
    """Server settings for the embedded PostgreSQL: shared_buffers over 4x the measured slice, so its
    sequential scans stay in shared buffers (a scan of a table over a quarter of shared_buffers goes
    through a small ring buffer instead), within 70% of the machine's memory."""
    slice_bytes = 2 * max(options.sizes) * FACT_ROW_BYTES
    shared = int(min(0.7 * machine_memory(), max(1 << 30, 4.5 * slice_bytes + 512 * MB)))
    workers = options.workers if options.workers is not None else (os.cpu_count() or 2)
    return {
        "shared_buffers": f"{shared // MB}MB",
        "work_mem": "256MB",
        "maintenance_work_mem": "1GB",
        "max_parallel_workers_per_gather": str(workers),
        "max_parallel_maintenance_workers": str(min(workers, 4)),
        "max_wal_size": "16GB",
        "checkpoint_timeout": "1h",
        "wal_level": "minimal",
        "max_wal_senders": "0",
        "autovacuum": "off",  # the bench analyzes explicitly; no background work during timings
        "jit": "off",  # create_snapshot runs without JIT; so does the floor
    }


class Progress:
    """One line on stderr saying what the bench is doing; rewritten in place on a terminal."""

    def __init__(self, stream=None, enabled: bool = True):
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = self.stream.isatty()
        self.width = 0

    def __call__(self, message: str) -> None:
        if not self.enabled:
            return
        if self.tty:
            self.stream.write("\r" + message.ljust(self.width))
            self.width = len(message)
        else:
            self.stream.write(message + "\n")
        self.stream.flush()

    def done(self) -> None:
        if self.enabled and self.tty and self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()
            self.width = 0


def _server_facts(conn: psycopg.Connection) -> dict:
    names = ("server_version", "shared_buffers", "work_mem", "max_parallel_workers_per_gather", "jit")
    return {n: conn.execute(f"SHOW {n}").fetchone()[0] for n in names}


def bench_size(conn: psycopg.Connection, dsn: str, schema: str, size: int, options: Options, rules: list[dict],
               progress: Callable[[str], None]) -> dict:
    s = pgsql.Identifier(schema).as_string(conn)
    label = f"{size:,} facts/scenario"
    result: dict = {"facts_per_scenario": size}
    started = time.perf_counter()

    progress(f"{label}: creating schema {schema}")
    generation.prepare_schema(conn, schema)
    conn.execute("SELECT set_config('search_path', %s, false)", (f"{schema}, public",))
    progress(f"{label}: hierarchy, use cases, {len(rules):,} rules")
    generation.generate_structure(conn, schema, rules)

    progress(f"{label}: generating the measured slice ({2 * size:,} facts)")
    generating = time.perf_counter()
    with generation.bulk_mode(conn, schema):
        generation.generate_slice(conn, schema, generation.MAIN_USE_CASE, generation.COB_DATE, size,
                                  salt=options.seed * 1000)
    measurement.analyze(conn, schema)
    result["generate_slice_s"] = round(time.perf_counter() - generating, 1)
    slice_blocks = measurement.relation_blocks(conn, f"{schema}.fact_pnl_entries")
    result["prewarmed"] = measurement.prewarm(conn, schema, slice_blocks)
    only = measurement.measure(conn, s, options.repeat, progress, f"{label}, only this date")

    others = generation.other_slices(options.other_dates)
    volume = options.other_volume(size)
    generating = time.perf_counter()
    with generation.bulk_mode(conn, schema):
        for i, (use_case, day) in enumerate(others, start=1):
            progress(f"{label}: generating other dates and use case {i}/{len(others)} ({2 * volume:,} facts each)")
            generation.generate_slice(conn, schema, use_case, day, volume, salt=options.seed * 1000 + i)
        progress(f"{label}: building the fact table's indexes")
    measurement.analyze(conn, schema)
    result["fact_rows_total"] = 2 * size + 2 * volume * len(others)
    result["fact_table_mb"] = round(conn.execute("SELECT pg_total_relation_size(%s::regclass)",
                                                 (f"{schema}.fact_pnl_entries",)).fetchone()[0] / MB)
    result["generate_others_s"] = round(time.perf_counter() - generating, 1)
    measurement.prewarm(conn, schema, slice_blocks)

    timings = measurement.measure(conn, s, options.repeat, progress, label)
    result["floor_s"] = timings["floor"]
    result["snapshot_s"] = timings["snapshot"]
    result["scope_only_date"] = {"floor_s": only["floor"], "snapshot_s": only["snapshot"]}

    if options.layouts:
        layouts = {layout: generation.make_rules(options.rules, options.seed, layout) for layout in options.layouts}
        result["layouts"] = measurement.measure_layouts(conn, s, layouts, rules, options.repeat, progress, label)

    result["entitled"] = measurement.measure_entitled(conn, dsn, schema, s, options.repeat, progress, label)

    progress(f"{label}: checking a snapshot")
    _, floor_rows = measurement.timed_floor(conn, s)
    run_id, check = checks.check_run(conn, s, floor_rows)
    del floor_rows
    result["check"] = check
    if options.peers:
        result["peers"] = peer_runner.measure_peers(conn, dsn, schema, s, run_id, options.peers, options.repeat,
                                                    progress, label)
    progress(f"{label}: write floor x{options.repeat}")
    result["write_floor_s"] = [measurement.timed_write_floor(conn, s, run_id) for _ in range(options.repeat)]
    readers = measurement.measure_run_readers(conn, s, run_id, options.repeat, progress, label)
    result["run_readers"] = {"snapshot_s": readers["snapshot"], "verify_s": readers["verify"],
                             "explain_first_1000_s": readers["explain_first_1000"]}

    versions = options.superseded_versions
    progress(f"{label}: generating {versions} superseded versions of the slice and the current one")
    with generation.bulk_mode(conn, schema):
        generation.generate_superseded(conn, schema, size, versions, salt=options.seed * 1000)
    measurement.analyze(conn, schema)
    measurement.prewarm(conn, schema, slice_blocks, last_blocks=slice_blocks)
    superseded = measurement.measure_superseded(conn, s, options.repeat, progress, label)
    result["superseded"] = {"versions": versions, "none_s": superseded["none"],
                            "superseded_s": superseded["superseded"]}

    progress(f"{label}: the slice again in {len(generation.BENCH_CURRENCIES)} currencies")
    with generation.bulk_mode(conn, schema):
        generation.generate_currencies(conn, schema)
    measurement.analyze(conn, schema)
    measurement.prewarm(conn, schema, slice_blocks, last_blocks=slice_blocks)
    currencies = measurement.measure_currencies(conn, s, options.repeat, progress, label)
    result["currencies"] = {"currencies": len(generation.BENCH_CURRENCIES), "one_s": currencies["one"],
                            "five_s": currencies["five"], "mixed_s": currencies["mixed"]}

    if size > options.reference_max:
        result["reference"] = {"skipped": f"above --reference-max {options.reference_max:,}"}
    else:
        progress(f"{label}: Python reference x{options.repeat} (own process)")
        seconds, peak = measurement.timed_reference(dsn, schema, options.repeat)
        progress(f"{label}: comparing the engine with the Python reference")
        checks.compare_with_reference(conn, s, run_id)
        result["reference"] = {"seconds": seconds, "matches_engine": True, "peak_rss_mb": peak}

    if size > options.load_max:
        result["load"] = {"skipped": f"above --load-max {options.load_max:,}"}
    else:
        with tempfile.TemporaryDirectory(prefix="pnldb-bench-") as tmp:
            path = Path(tmp) / "facts.csv"
            progress(f"{label}: exporting {2 * size:,} facts to CSV")
            generation.export_csv(conn, s, path)
            progress(f"{label}: pnldb load facts ({2 * size:,} rows)")
            seconds, rss = measurement.timed_load(dsn, schema, path)
        loaded = conn.execute(f"SELECT count(*) FROM {s}.fact_pnl_entries WHERE use_case_id = %s",
                              (generation.LOAD_USE_CASE,)).fetchone()[0]
        if loaded != 2 * size:
            raise PnlError(f"`pnldb load facts` loaded {loaded:,} rows from a file of {2 * size:,}")
        result["load"] = {"rows": loaded, "seconds": seconds, "rows_per_s": loaded / seconds, "peak_rss_mb": rss}

    progress(f"{label}: dropping schema {schema}")
    conn.execute("SET search_path TO DEFAULT")
    generation.drop_schema(conn, schema)

    if options.shards:
        result["shards"] = shards.measure_shards(conn, dsn, schema, size, options.shards, options.repeat, rules,
                                                 options.seed, progress, label)
    result["peak_rss_mb"] = measurement.peak_rss_mb()
    result["total_s"] = round(time.perf_counter() - started, 1)
    return result


def run_bench(options: Options, dsn: str | None = None, progress: Progress | None = None,
              schema: str = generation.BENCH_SCHEMA) -> dict:
    """Run the bench; a dict with the environment, every sample and the summary (see summarize)."""
    progress = progress or Progress(enabled=False)
    if not options.sizes or any(n < 1 for n in options.sizes):
        raise PnlError("--sizes needs positive numbers of facts per scenario")
    if options.repeat < 1:
        raise PnlError("--repeat must be at least 1")
    if options.tree_nodes < 2 or options.chain_depth < 1:
        raise PnlError("the bench's wide tree needs at least 2 nodes and its chain a depth of at least 1")
    unknown = [layout for layout in options.layouts if layout not in generation.RULE_LAYOUTS]
    if unknown:
        raise PnlError(f"unknown rule layout(s) {', '.join(unknown)}; the layouts are "
                       f"{', '.join(generation.RULE_LAYOUTS)}")
    if options.rules < 0 or options.rules > generation.node_count():
        raise PnlError(f"--rules must be between 0 and {generation.node_count():,} (one rule per node at most)")
    if options.shards and not cluster.is_shard_count(options.shards):
        raise PnlError(f"--shards {options.shards}: 0 (off) or a power of two of shards (1, 2, 4, ... "
                       f"{cluster.MAX_SHARDS}), as a cluster has")
    rules = generation.make_rules(options.rules, options.seed)
    unknown = [peer for peer in options.peers if peer not in peers.PEERS]
    if unknown:
        raise PnlError(f"unknown peer(s) {', '.join(unknown)}; the peers are {', '.join(peers.PEERS)}")
    ready, skipped = peers.available(options.peers)
    options = dataclasses.replace(options, peers=ready)
    started = dt.datetime.now(dt.UTC)
    report: dict = {
        "started_at": started.isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "memory_gb": round(machine_memory() / (1 << 30), 1),
                    "platform": f"{os.uname().sysname} {os.uname().release} {os.uname().machine}",
                    "load_average_at_start": [round(x, 2) for x in os.getloadavg()]},
        "options": {"sizes": options.sizes, "rules": options.rules, "repeat": options.repeat,
                    "reference_max": options.reference_max, "load_max": options.load_max,
                    "superseded_versions": options.superseded_versions,
                    "other_dates": options.other_dates, "scope_volume": options.scope_volume,
                    "tree_nodes": options.tree_nodes, "chain_depth": options.chain_depth,
                    "layouts": ["nested", *options.layouts]},
        "hierarchy_nodes": generation.node_count(),
        "hierarchy_depth": len(generation.LEVELS),
        "sizes": [],
    }
    with contextlib.ExitStack() as stack:
        if dsn is None:
            settings = embedded_settings(options)
            progress(f"starting an embedded PostgreSQL (shared_buffers {settings['shared_buffers']})")
            server = stack.enter_context(EmbeddedPostgres(settings=settings))
            dsn = server.url
            report["server"] = "embedded"
        else:
            report["server"] = "--dsn"
        conn = stack.enter_context(connect(dsn, autocommit=True))
        conn.execute("SET jit = off")
        report["settings"] = _server_facts(conn)
        try:
            for size in options.sizes:
                report["sizes"].append(bench_size(conn, dsn, schema, size, options, rules, progress))
            report["hierarchies"] = trees.bench_trees(conn, schema, options, progress)
        except BaseException:
            with contextlib.suppress(Exception):
                if conn.info.transaction_status:
                    conn.execute("ROLLBACK")
                conn.execute("SET search_path TO DEFAULT")
                generation.drop_schema(conn, schema)
            raise
        finally:
            progress.done()
    if options.peers:
        report["options"]["peers"] = list(options.peers)
    if options.shards:
        report["options"]["shards"] = options.shards
    if skipped:
        report["peers_skipped"] = skipped
    report["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    report["peak_rss_mb"] = round(measurement.peak_rss_mb(), 1)
    report["summary"] = summarize(report)
    return report
