"""What the bench times: the floor (one GROUP BY over the in-scope facts), create_snapshot, the write
floor, the Python reference and `pnldb load facts` in their own processes; and what it does before
timing (ANALYZE, pg_prewarm) so that every measurement starts from the same warm state."""
from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg
from psycopg import sql as pgsql
from psycopg.conninfo import make_conninfo

from pnldb import api
from pnldb.bench.checks import RESULT_COLUMNS, store_reference_rows
from pnldb.bench.generation import (
    COB_DATE,
    CURRENCY_USE_CASE,
    LOAD_USE_CASE,
    MAIN_USE_CASE,
    MIXED_CURRENCY_USE_CASE,
    SUPERSEDED_USE_CASE,
    USE_CASE_NAMES,
    insert_rules,
    node_id,
)
from pnldb.db import InstallationRoles, connect
from pnldb.errors import PnlError
from pnldb.reference import snapshot_from_database

FLOOR_SQL = ("SELECT scenario, category_code, sum(daily_amount), sum(wtd_amount), sum(ytd_amount) "
             "FROM {s}.fact_pnl_entries WHERE use_case_id = %s AND pnl_date = %s GROUP BY 1, 2")


def timed_floor(conn: psycopg.Connection, s: str) -> tuple[float, list]:
    started = time.perf_counter()
    rows = conn.execute(FLOOR_SQL.format(s=s), (MAIN_USE_CASE, COB_DATE)).fetchall()
    return time.perf_counter() - started, rows


def timed_snapshot(conn: psycopg.Connection, s: str, use_case: uuid.UUID = MAIN_USE_CASE) -> float:
    """One create_snapshot, end to end, in a transaction that is rolled back: every repeat creates a
    new run, and runs are immutable, so rolling back is the clean way to leave none behind."""
    with conn.transaction(force_rollback=True):
        started = time.perf_counter()
        run_id = conn.execute(f"SELECT {s}.create_snapshot(%s, %s)", (use_case, COB_DATE)).fetchone()[0]
        elapsed = time.perf_counter() - started
        run = api.get_run(conn, run_id)
    if run["status"] != "COMPLETED":
        raise PnlError(f"create_snapshot did not complete: {run['status']}: {run['error_message']}")
    return elapsed


def measure(conn: psycopg.Connection, s: str, repeat: int, progress: Callable[[str], None], label: str) -> dict:
    """Floor and snapshot, interleaved, after one untimed run of each."""
    progress(f"{label}: warming up")
    timed_floor(conn, s)
    timed_snapshot(conn, s)
    floors, snapshots = [], []
    for i in range(repeat):
        progress(f"{label}: floor {i + 1}/{repeat}")
        floors.append(timed_floor(conn, s)[0])
        progress(f"{label}: snapshot {i + 1}/{repeat}")
        snapshots.append(timed_snapshot(conn, s))
    return {"floor": floors, "snapshot": snapshots}


def measure_layouts(conn: psycopg.Connection, s: str, layouts: dict[str, list[dict]], nested: list[dict],
                    repeat: int, progress: Callable[[str], None], label: str) -> dict:
    """Floor and snapshot, interleaved, with the measured use case's rules replaced by each layout's in
    turn; the nested rules are put back at the end, however it ends."""
    def use(rules: list[dict]) -> None:
        conn.execute(f"DELETE FROM {s}.metadata_rules WHERE use_case_id = %s", (MAIN_USE_CASE,))
        insert_rules(conn, s, MAIN_USE_CASE, rules)

    samples = {}
    try:
        for layout, rules in layouts.items():
            progress(f"{label}: rules laid out {layout}")
            use(rules)
            timings = measure(conn, s, repeat, progress, f"{label}, rules {layout}")
            samples[layout] = {"rules": len(rules), "floor_s": timings["floor"], "snapshot_s": timings["snapshot"]}
    finally:
        use(nested)
    return samples


def measure_run_readers(conn: psycopg.Connection, s: str, run_id: uuid.UUID, repeat: int,
                        progress: Callable[[str], None], label: str) -> dict:
    """A snapshot, verify_run of a finished run, and explain_node of its root (its first 1,000 rows, as a
    user asks for them), interleaved, after one untimed run of each."""
    def verify() -> float:
        started = time.perf_counter()
        verdict = conn.execute(f"SELECT {s}.verify_run(%s)", (run_id,)).fetchone()[0]
        elapsed = time.perf_counter() - started
        if not verdict["reproduced"]:
            raise PnlError(f"verify_run did not reproduce the bench's run: {verdict['mismatches'][:3]}")
        return elapsed

    def explain() -> float:
        started = time.perf_counter()
        rows = conn.execute(f"SELECT * FROM {s}.explain_node(%s, %s, 'ACTUAL', 1000)",
                            (run_id, node_id(0, 1))).fetchall()
        elapsed = time.perf_counter() - started
        if len(rows) != 1000:
            raise PnlError(f"explain_node of the root returned {len(rows)} rows, not 1,000")
        return elapsed

    progress(f"{label}: warming up verify_run and explain_node")
    verify()
    explain()
    samples: dict[str, list[float]] = {"snapshot": [], "verify": [], "explain_first_1000": []}
    for i in range(repeat):
        progress(f"{label}: snapshot, verify_run, explain_node {i + 1}/{repeat}")
        samples["snapshot"].append(timed_snapshot(conn, s))
        samples["verify"].append(verify())
        samples["explain_first_1000"].append(explain())
    return samples


def measure_entitled(conn: psycopg.Connection, dsn: str, schema: str, s: str, repeat: int,
                     progress: Callable[[str], None], label: str) -> dict:
    """create_snapshot of the measured use case as a real operator login entitled to it by a grant of its
    own (the grants of all use cases revoked meanwhile, so the tables' policies and every check take the
    narrow path), and as the superuser, interleaved, after one untimed run of each. The grants are put
    back and the login dropped however it ends."""
    login = f"{schema}_bench_operator"
    password = uuid.uuid4().hex
    conn.execute(pgsql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE {}").format(
        pgsql.Identifier(login), pgsql.Literal(password), pgsql.Identifier(InstallationRoles(schema).operator)))
    of_all = [r for (r,) in conn.execute(f"SELECT role_name FROM {s}.use_case_grants WHERE use_case_id IS NULL")]
    samples: dict[str, list[float]] = {"operator_s": [], "superuser_s": []}
    try:
        for role in of_all:
            conn.execute(f"SELECT {s}.revoke_use_case(NULL, %s)", (role,))
        conn.execute(f"SELECT {s}.grant_use_case(%s, %s)", (MAIN_USE_CASE, login))
        with connect(make_conninfo(dsn, user=login, password=password),
                     autocommit=True) as operator:
            operator.execute("SET jit = off")
            operator.execute("SELECT set_config('search_path', %s, false)", (f"{schema}, public",))
            timed_snapshot(operator, s)
            timed_snapshot(conn, s)
            for i in range(repeat):
                progress(f"{label}: snapshot as an entitled operator and as the superuser {i + 1}/{repeat}")
                samples["operator_s"].append(timed_snapshot(operator, s))
                samples["superuser_s"].append(timed_snapshot(conn, s))
    finally:
        conn.execute(f"DELETE FROM {s}.use_case_grants WHERE role_name = %s", (login,))
        for role in of_all:
            conn.execute(f"SELECT {s}.grant_use_case(NULL, %s)", (role,))
        conn.execute(pgsql.SQL("DROP ROLE {}").format(pgsql.Identifier(login)))
    return samples


def measure_superseded(conn: psycopg.Connection, s: str, repeat: int, progress: Callable[[str], None],
                       label: str) -> dict:
    """The same current facts snapshotted with no superseded version beside them (the measured use case)
    and with several (SUPERSEDED_USE_CASE), interleaved, after one untimed run of each."""
    timed_snapshot(conn, s)
    timed_snapshot(conn, s, SUPERSEDED_USE_CASE)
    samples: dict[str, list[float]] = {"none": [], "superseded": []}
    for i in range(repeat):
        progress(f"{label}: snapshot with and without superseded versions {i + 1}/{repeat}")
        samples["none"].append(timed_snapshot(conn, s))
        samples["superseded"].append(timed_snapshot(conn, s, SUPERSEDED_USE_CASE))
    return samples


def measure_currencies(conn: psycopg.Connection, s: str, repeat: int, progress: Callable[[str], None],
                       label: str) -> dict:
    """The same facts snapshotted in the reporting currency (the measured use case), with each book in one
    of five currencies (CURRENCY_USE_CASE) and with every book in all five (MIXED_CURRENCY_USE_CASE),
    interleaved, after one untimed run of each."""
    use_cases = {"one": MAIN_USE_CASE, "five": CURRENCY_USE_CASE, "mixed": MIXED_CURRENCY_USE_CASE}
    for use_case in use_cases.values():
        timed_snapshot(conn, s, use_case)
    samples: dict[str, list[float]] = {what: [] for what in use_cases}
    for i in range(repeat):
        progress(f"{label}: snapshot in one currency and in five {i + 1}/{repeat}")
        for what, use_case in use_cases.items():
            samples[what].append(timed_snapshot(conn, s, use_case))
    return samples


def timed_write_floor(conn: psycopg.Connection, s: str, run_id: uuid.UUID) -> float:
    """The least any engine that stores the contract's rows pays to write them: the rows of a finished run
    copied under a new run header by one INSERT (heap, indexes, the foreign key check of each row),
    timed alone, in a transaction that is rolled back."""
    columns = ", ".join(RESULT_COLUMNS)
    with conn.transaction(force_rollback=True):
        conn.execute(f"CREATE TEMP TABLE bench_result_rows ON COMMIT DROP AS SELECT {columns} "
                     f"FROM {s}.fact_calculated_results WHERE calculation_run_id = %s", (run_id,))
        header = conn.execute(
            f"INSERT INTO {s}.calculation_runs (pnl_date, use_case_id, run_name) VALUES (%s, %s, 'bench write floor') "
            "RETURNING id", (COB_DATE, MAIN_USE_CASE)).fetchone()[0]
        started = time.perf_counter()
        conn.execute(f"INSERT INTO {s}.fact_calculated_results (calculation_run_id, {columns}) "
                     f"SELECT %s, {columns} FROM bench_result_rows", (header,))
        return time.perf_counter() - started


def prewarm(conn: psycopg.Connection, schema: str, fact_blocks: int, last_blocks: int = 0) -> bool:
    """Load the measured slice (the first fact_blocks blocks of the fact table: it is generated first),
    the last `last_blocks` blocks (the slice generated last), the index that finds it, and the small
    tables into shared buffers. False when pg_prewarm is not
    available (it is in contrib; CREATE EXTENSION needs the right to)."""
    try:
        with conn.transaction():
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
        where = conn.execute("SELECT extnamespace::regnamespace::text FROM pg_extension "
                             "WHERE extname = 'pg_prewarm'").fetchone()[0]
    except psycopg.Error:
        return False
    call = f"SELECT {where}.pg_prewarm(%s::regclass, 'buffer', 'main', %s, %s)"
    facts = f"{schema}.fact_pnl_entries"
    if fact_blocks > 0:
        conn.execute(call, (facts, 0, fact_blocks - 1))
    total = relation_blocks(conn, facts)
    if last_blocks > 0 and total > fact_blocks:
        conn.execute(call, (facts, max(fact_blocks, total - last_blocks), total - 1))
    small = conn.execute(
        """SELECT c.oid::regclass::text FROM pg_class c
           WHERE c.relnamespace = %s::regnamespace AND c.relkind IN ('r', 'i')
             AND (c.relname IN ('dim_hierarchy', 'metadata_rules', 'use_cases', 'hierarchy_structures',
                                'fact_load_slices', 'ix_fact_pnl_entries_scope', 'ix_fact_pnl_entries_load')
                  OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid IN (
                      %s::regclass, %s::regclass)))""",
        (schema, f"{schema}.dim_hierarchy", f"{schema}.metadata_rules")).fetchall()
    for (rel,) in small:
        conn.execute(f"SELECT {where}.pg_prewarm(%s::regclass)", (rel,))
    return True


def analyze(conn: psycopg.Connection, schema: str) -> None:
    """Statistics for every table of the scratch schema, as autovacuum would gather after a load."""
    tables = conn.execute("SELECT oid::regclass::text FROM pg_class WHERE relnamespace = %s::regnamespace "
                          "AND relkind = 'r'", (schema,)).fetchall()
    for (table,) in tables:
        conn.execute(f"ANALYZE {table}")


def relation_blocks(conn: psycopg.Connection, relation: str) -> int:
    return conn.execute("SELECT pg_relation_size(%s::regclass) / current_setting('block_size')::integer",
                        (relation,)).fetchone()[0]


def reference_process(dsn: str, schema: str, repeat: int) -> None:
    """The Python reference's own process (so its memory is not the bench's): times `repeat` runs of
    snapshot_from_database on the measured use case and date, stores the first run's rows for the
    comparison, and prints the timings as JSON."""
    seconds = []
    with connect(dsn, autocommit=True) as conn:
        for i in range(repeat):
            started = time.perf_counter()
            rows = snapshot_from_database(conn, MAIN_USE_CASE, COB_DATE, schema=schema)
            seconds.append(time.perf_counter() - started)
            if i == 0:
                store_reference_rows(conn, pgsql.Identifier(schema).as_string(conn), rows)
            del rows
    print(json.dumps({"seconds": seconds}))


def _vm_hwm_mb(pid: int) -> float:
    """Peak resident set of a running process, from /proc (0 when it cannot be read)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def run_process(command: list[str], what: str) -> tuple[float, float, str]:
    """Run a command; (seconds, its peak RSS in MB, its stdout). Peak RSS is polled from /proc: a child's
    ru_maxrss would count the pages it shared with this process before exec."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err)
        peak = 0.0
        while process.poll() is None:
            peak = max(peak, _vm_hwm_mb(process.pid))
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        if process.returncode != 0:
            message = err.read().decode(errors="replace").strip().splitlines()
            raise PnlError(f"{what} failed: {message[-1] if message else f'exit status {process.returncode}'}")
        return elapsed, peak, out.read().decode()


def timed_reference(dsn: str, schema: str, repeat: int) -> tuple[list[float], float]:
    """reference_process in a process of its own; (the seconds of each run, peak RSS of that process in MB)."""
    code = f"from pnldb.bench.measurement import reference_process; reference_process({dsn!r}, {schema!r}, {repeat})"
    _, peak, out = run_process([sys.executable, "-c", code], "the Python reference")
    return json.loads(out.strip().splitlines()[-1])["seconds"], peak


def timed_load(dsn: str, schema: str, path: Path) -> tuple[float, float]:
    """The whole `pnldb load facts` command, the installed one, as its own process; (seconds, peak RSS
    of that process in MB)."""
    command = [sys.executable, "-m", "pnldb", "--dsn", dsn, "--schema", schema,
               "load", "facts", str(path), "--use-case", USE_CASE_NAMES[LOAD_USE_CASE]]
    seconds, peak, _ = run_process(command, "`pnldb load facts`")
    return seconds, peak


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes
