"""`pnldb bench`: snapshots at growing sizes against the bare-aggregate floor.

Everything happens in a scratch schema (``pnldb_bench``) that the bench creates, migrates and drops, so
it never touches real data: on an embedded PostgreSQL by default, or on --dsn. Data is generated inside
the database, set-based and deterministic (values are hashes of generate_series indexes), so every run
of the bench sees the same data:

* one structure of 10,111 nodes five levels deep: FIRM -> 10 regions RGnn -> 100 desks DKnnn ->
  1,000 sub-desks SDnnnn -> 9,000 books BKnnnn;
* N facts per scenario (ACTUAL, PRIOR) for the measured use case and COB date, 97.5% on books, the
  rest on sub-desks and desks and 0.5% on codes of no node (unmapped), with strategy, region, book and
  legal_entity attributes (some facts lack strategy or region);
* the same volume on 20 other COB dates of that use case and on the same date of a second use case,
  so the snapshot has to scope (capped by --scope-volume at the largest sizes);
* R rules on nodes at every depth, nested (rules on a node and on some of its descendants), with
  conditions on attributes, measures and category_code, AND and OR, every operator.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import inspect
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import psycopg
from psycopg import sql as pgsql

from pnldb import schema as schema_mod
from pnldb.errors import PnlError
from pnldb.vocabulary import KINDS, MEASURES

BENCH_SCHEMA = "pnldb_bench"
SCHEMA_MARKER = "pnldb bench scratch schema: created and dropped by `pnldb bench`"

STRUCTURE = "BENCH"
MAIN_USE_CASE = uuid.UUID("00000000-0000-4000-8000-00000000b001")
OTHER_USE_CASE = uuid.UUID("00000000-0000-4000-8000-00000000b002")
LOAD_USE_CASE = uuid.UUID("00000000-0000-4000-8000-00000000b003")
USE_CASE_NAMES = {MAIN_USE_CASE: "bench main", OTHER_USE_CASE: "bench other", LOAD_USE_CASE: "bench load"}
COB_DATE = dt.date(2025, 6, 30)
SCENARIOS = ("ACTUAL", "PRIOR")

# The hierarchy: (id prefix, digits, name, children per parent); level 0 is the root.
LEVELS = (("FIRM", 0, "Firm", 1), ("RG", 2, "Region", 10), ("DK", 3, "Desk", 10),
          ("SD", 4, "Sub-desk", 10), ("BK", 4, "Book", 9))
STRATEGIES = ("MACRO", "RATES", "CREDIT", "EQUITY", "FX", "COMMODITIES", "ARBITRAGE", "HEDGE")
REGIONS = ("EMEA", "AMER", "APAC", "LATAM", "NORDICS", "JAPAN")
LEGAL_ENTITIES = ("LE1", "LE2", "LE3", "LE4")
UNMAPPED_CODES = 20
ATTRIBUTE_VARIANTS = 16  # attribute combinations per book


def level_counts() -> list[int]:
    counts, n = [], 1
    for _, _, _, fanout in LEVELS:
        n *= fanout
        counts.append(n)
    return counts


def node_id(level: int, number: int) -> str:
    prefix, digits, _, _ = LEVELS[level]
    return prefix if digits == 0 else f"{prefix}{number:0{digits}d}"


def parent_number(level: int, number: int) -> int:
    return (number - 1) // LEVELS[level][3] + 1


def node_count() -> int:
    return sum(level_counts())


# --------------------------------------------------------------------------------------------------
# Data generation (SQL, set-based)
# --------------------------------------------------------------------------------------------------

def _hierarchy_sql(s: str) -> str:
    parts = [f"SELECT '{STRUCTURE}', '{node_id(0, 1)}', NULL::text, '{LEVELS[0][2]}'"]
    counts = level_counts()
    for level in range(1, len(LEVELS)):
        prefix, digits, name, fanout = LEVELS[level]
        pprefix, pdigits = LEVELS[level - 1][0], LEVELS[level - 1][1]
        parent = (f"'{pprefix}'" if pdigits == 0
                  else f"'{pprefix}' || lpad(((n - 1) / {fanout} + 1)::text, {pdigits}, '0')")
        parts.append(f"SELECT '{STRUCTURE}', '{prefix}' || lpad(n::text, {digits}, '0'), {parent}, "
                     f"'{name} ' || n FROM generate_series(1, {counts[level]}) n")
    return (f"INSERT INTO {s}.dim_hierarchy (structure_id, node_id, parent_node_id, node_name)\n"
            + "\nUNION ALL ".join(parts))


def _text_array(values) -> str:
    return "ARRAY[" + ", ".join(f"'{v}'" for v in values) + "]"


def _attributes_sql() -> str:
    """A temporary lookup (book, variant) -> attributes jsonb: building jsonb per fact costs more than
    inserting it, so each fact picks one of ATTRIBUTE_VARIANTS prepared combinations of its book."""
    books = level_counts()[-1]
    return f"""
CREATE TEMPORARY TABLE IF NOT EXISTS bench_attributes (book integer, variant integer, attributes jsonb,
                                                       PRIMARY KEY (book, variant));
TRUNCATE bench_attributes;
INSERT INTO bench_attributes
SELECT b, v, jsonb_strip_nulls(jsonb_build_object(
         'strategy', CASE WHEN h % 100 >= 3 THEN ({_text_array(STRATEGIES)})[1 + (h >> 8) % {len(STRATEGIES)}] END,
         'region', CASE WHEN (h >> 16) % 100 >= 2 THEN ({_text_array(REGIONS)})[1 + (h >> 24) % {len(REGIONS)}] END,
         'book', '{LEVELS[-1][0]}' || lpad(b::text, {LEVELS[-1][1]}, '0'),
         'legal_entity', ({_text_array(LEGAL_ENTITIES)})[1 + (h >> 32) % {len(LEGAL_ENTITIES)}]))
FROM generate_series(1, {books}) b, generate_series(0, {ATTRIBUTE_VARIANTS - 1}) v,
     LATERAL (SELECT hashint8extended(b * 64 + v, 7) & 9223372036854775807 AS h) x;
ANALYZE bench_attributes;
"""


def _facts_sql(s: str) -> str:
    """INSERT of facts %(first)s..%(last)s per scenario of one use case and date; %(salt)s varies the data."""
    books = level_counts()[-1]
    book_level, sub_level, desk_level = len(LEVELS) - 1, len(LEVELS) - 2, len(LEVELS) - 3
    per_sub = LEVELS[book_level][3]
    per_desk = per_sub * LEVELS[sub_level][3]

    def code(level, number_sql):
        prefix, digits = LEVELS[level][0], LEVELS[level][1]
        return f"'{prefix}' || lpad(({number_sql})::text, {digits}, '0')"

    return f"""
INSERT INTO {s}.fact_pnl_entries (use_case_id, pnl_date, scenario, category_code,
                                  amount, daily_amount, wtd_amount, ytd_amount, attributes)
SELECT %(use_case)s, %(pnl_date)s, g.scenario,
       CASE WHEN g.sel < 5 THEN 'UNMAPPED-' || lpad((g.sel * 4 + g.variant % 4)::text, 2, '0')
            WHEN g.sel < 20 THEN {code(sub_level, f"(g.book - 1) / {per_sub} + 1")}
            WHEN g.sel < 25 THEN {code(desk_level, f"(g.book - 1) / {per_desk} + 1")}
            ELSE {code(book_level, "g.book")} END,
       g.daily, g.daily, g.daily + g.wtd, g.daily + g.wtd + g.ytd, a.attributes
FROM (SELECT sc.scenario,
             1 + h1 % {books} AS book,
             (h1 >> 20) % 1000 AS sel,
             (h1 >> 32) % {ATTRIBUTE_VARIANTS} AS variant,
             (h2 % 2000001 - 1000000) * 0.01 AS daily,
             ((h2 >> 21) % 4000001 - 2000000) * 0.01 AS wtd,
             ((h2 >> 43) % 1000001 - 500000) * 0.1 AS ytd
      FROM (VALUES ('ACTUAL', 0), ('PRIOR', 1)) sc(scenario, k),
           LATERAL (SELECT hashint8extended(i, %(salt)s * 4 + sc.k) & 9223372036854775807 AS h1,
                           hashint8extended(i, %(salt)s * 4 + sc.k + 2) & 9223372036854775807 AS h2
                    FROM generate_series(%(first)s::bigint, %(last)s::bigint) i) h) g
JOIN bench_attributes a ON a.book = g.book AND a.variant = g.variant
""".replace(" % ", " %% ")  # modulo, not a placeholder


# --------------------------------------------------------------------------------------------------
# Rules (deterministic, nested, every operator)
# --------------------------------------------------------------------------------------------------

# Share of the rules per depth below the root (the root gets one rule when there are at least 2).
RULE_SHARES = (0.005, 0.05, 0.25)  # regions, desks, sub-desks; books take the rest


def _rule_nodes(count: int, rng: random.Random) -> list[tuple[int, int]]:
    """(level, number) of the nodes that carry a rule: every depth, deeper rules preferably below
    nodes that already carry one, so rules nest."""
    counts = level_counts()
    chosen: list[tuple[int, int]] = []
    if count <= 0:
        return chosen
    if count >= 2:
        chosen.append((0, 1))
    remaining = count - len(chosen)
    wanted = []
    for level, share in enumerate(RULE_SHARES, start=1):
        wanted.append(min(counts[level], max(1 if remaining >= 4 else 0, round(count * share))))
    wanted.append(max(0, remaining - sum(wanted)))
    ruled = {0: {1} if chosen else set()}
    for level, n in enumerate(wanted, start=1):
        n = min(n, counts[level])
        if n == 0:
            ruled[level] = set()
            continue
        above = sorted(ruled.get(level - 1, ()))
        fanout = LEVELS[level][3]
        # half of them among children of ruled parents (nested rules), the rest anywhere
        under = [c for p in above for c in range((p - 1) * fanout + 1, p * fanout + 1)]
        rng.shuffle(under)
        picked: list[int] = under[: n // 2]
        taken = set(picked)
        everything = list(range(1, counts[level] + 1))
        rng.shuffle(everything)
        for candidate in everything:
            if len(picked) >= n:
                break
            if candidate not in taken:
                picked.append(candidate)
                taken.add(candidate)
        ruled[level] = set(picked)
        chosen.extend((level, number) for number in sorted(picked))
    return chosen[:count]


def _descendant_codes(level: int, number: int, rng: random.Random, k: int) -> list[str]:
    """Some node ids at or below (level, number), for category_code conditions."""
    codes = [node_id(level, number)]
    lo = hi = number
    for deeper in range(level + 1, len(LEVELS)):
        fanout = LEVELS[deeper][3]
        lo, hi = (lo - 1) * fanout + 1, hi * fanout
        codes.extend(node_id(deeper, rng.randint(lo, hi)) for _ in range(2))
    rng.shuffle(codes)
    return sorted(set(codes[:k]))


def _conditions(level: int, number: int, rng: random.Random) -> list:
    """Condition makers, one per (field, operator) flavour; the first six cover every operator."""
    amount = lambda lo, hi: round(rng.uniform(lo, hi), 2)  # noqa: E731
    books = level_counts()[-1]
    book = lambda: node_id(len(LEVELS) - 1, rng.randint(1, books))  # noqa: E731
    return [
        ("strategy", lambda: {"operator": "not_in", "value": sorted(rng.sample(STRATEGIES, 2))}),
        ("daily_amount", lambda: {"operator": "greater_than", "value": amount(-9000, 3000)}),
        ("region", lambda: {"operator": "in", "value": sorted(rng.sample(REGIONS, 4))}),
        ("legal_entity", lambda: {"operator": "not_equals", "value": rng.choice(LEGAL_ENTITIES)}),
        ("ytd_amount", lambda: {"operator": "less_than", "value": amount(-20000, 60000)}),
        ("strategy", lambda: {"operator": "equals", "value": rng.choice(STRATEGIES)}),
        ("category_code", lambda: {"operator": "not_in", "value": _descendant_codes(level, number, rng, 3)}),
        ("wtd_amount", lambda: {"operator": "greater_than", "value": amount(-25000, 5000)}),
        ("strategy", lambda: {"operator": "in", "value": sorted(rng.sample(STRATEGIES, 3))}),
        ("region", lambda: {"operator": "not_in", "value": sorted(rng.sample(REGIONS, 2))}),
        ("daily_amount", lambda: {"operator": "less_than", "value": amount(-3000, 9000)}),
        ("book", lambda: {"operator": "not_in", "value": sorted({book() for _ in range(3)})}),
        ("region", lambda: {"operator": "equals", "value": rng.choice(REGIONS)}),
        ("strategy", lambda: {"operator": "not_equals", "value": rng.choice(STRATEGIES)}),
        ("category_code", lambda: {"operator": "in", "value": _descendant_codes(level, number, rng, 4)
                                   + [f"UNMAPPED-{rng.randint(0, UNMAPPED_CODES - 1):02d}"]}),
        ("daily_amount", lambda: {"operator": "not_equals", "value": amount(-100, 100)}),
        ("daily_amount", lambda: {"operator": "not_in", "value": [amount(-10, 10), amount(-10, 10)]}),
        ("ytd_amount", lambda: {"operator": "equals", "value": amount(-10, 10)}),
        ("wtd_amount", lambda: {"operator": "in", "value": [amount(-10, 10), 0]}),
        ("category_code", lambda: {"operator": "not_equals", "value": node_id(level, number)}),
        ("desk_head", lambda: {"operator": "equals", "value": "nobody"}),  # no fact has this attribute
        ("desk_head", lambda: {"operator": "not_in", "value": ["nobody", "anyone"]}),
    ]


def make_rules(count: int, seed: int = 1) -> list[dict]:
    """The bench's rules: [{node_id, predicate_json, logic_en}], the same for the same (count, seed)."""
    rng = random.Random(f"pnldb-bench-rules-{seed}")
    rules = []
    for index, (level, number) in enumerate(_rule_nodes(count, rng)):
        makers = _conditions(level, number, rng)
        width = 1 + rng.randrange(3)
        picks = [index % len(makers)]  # the first rules go through every flavour in turn
        while len(picks) < width:
            pick = rng.randrange(len(makers))
            if makers[pick][0] not in {makers[p][0] for p in picks}:
                picks.append(pick)
        conditions = [{"field": makers[p][0], **makers[p][1]()} for p in picks]
        conjunction = "OR" if index % 5 in (1, 3) else "AND"
        rules.append({"node_id": node_id(level, number),
                      "predicate_json": {"conditions": conditions, "conjunction": conjunction},
                      "logic_en": f"bench rule {index + 1}: {len(conditions)} condition(s) joined by {conjunction}"})
    return rules


# --------------------------------------------------------------------------------------------------
# Options and the server
# --------------------------------------------------------------------------------------------------

FACT_ROW_BYTES = 200  # heap bytes per generated fact (measured: ~193)
MB = 1 << 20


@dataclass
class Options:
    sizes: list[int]
    rules: int = 1000
    repeat: int = 5
    reference_max: int = 100_000  # the Python reference runs at sizes up to this
    load_max: int = 1_000_000  # `pnldb load facts` is timed at sizes up to this
    other_dates: int = 20  # other COB dates of the measured use case
    scope_volume: int = 1_000_000  # at most this many facts per scenario on each other date / use case
    workers: int | None = None  # max_parallel_workers_per_gather of the embedded server; default: CPUs
    seed: int = 1

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


# --------------------------------------------------------------------------------------------------
# The scratch schema and data generation
# --------------------------------------------------------------------------------------------------

def _ident(*parts: str) -> pgsql.Composable:
    return pgsql.Identifier(*parts)


def prepare_schema(conn: psycopg.Connection, schema: str) -> None:
    """Drop a previous bench schema (only one this bench made: it carries the marker comment), then
    create and migrate a fresh one."""
    comment = conn.execute(
        "SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
    if comment is not None:
        if comment[0] != SCHEMA_MARKER:
            raise PnlError(f"schema {schema} exists and was not made by `pnldb bench`; refusing to touch it")
        drop_schema(conn, schema)
    conn.execute(pgsql.SQL("CREATE SCHEMA {}").format(_ident(schema)))
    conn.execute(pgsql.SQL("COMMENT ON SCHEMA {} IS {}").format(_ident(schema), pgsql.Literal(SCHEMA_MARKER)))
    with contextlib.redirect_stderr(open(os.devnull, "w")):
        schema_mod.migrate(conn, schema)


def drop_schema(conn: psycopg.Connection, schema: str) -> None:
    # calculation runs refuse to be deleted except through their use case; DROP SCHEMA ... CASCADE
    # drops the tables without deleting rows, so nothing fires.
    conn.execute(pgsql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(_ident(schema)))


def is_superuser(conn: psycopg.Connection) -> bool:
    return conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]


@contextlib.contextmanager
def bulk_mode(conn: psycopg.Connection, schema: str):
    """Bulk generation: the fact table's secondary indexes are dropped and built again afterwards
    (a sorted build beats a million scattered inserts), and as superuser the per-row triggers (the
    use case foreign key check) are skipped: the generated data is valid by construction."""
    indexes = conn.execute(
        """SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i
           WHERE i.indrelid = %s::regclass AND NOT i.indisprimary
             AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)""",
        (f"{schema}.fact_pnl_entries",)).fetchall()
    for name, _ in indexes:
        conn.execute(f"DROP INDEX {name}")
    replica = is_superuser(conn)
    if replica:
        conn.execute("SET session_replication_role = replica")
    try:
        yield
    finally:
        if replica:
            conn.execute("RESET session_replication_role")
        for _, definition in indexes:
            conn.execute(definition)


def generate_structure(conn: psycopg.Connection, schema: str, rules: list[dict]) -> None:
    s = pgsql.Identifier(schema).as_string(conn)
    conn.execute(f"INSERT INTO {s}.hierarchy_structures (structure_id, name) VALUES ('{STRUCTURE}', 'Bench structure')")
    conn.execute(_hierarchy_sql(s))
    for uc, name in USE_CASE_NAMES.items():
        conn.execute(f"INSERT INTO {s}.use_cases (use_case_id, name, structure_id) VALUES (%s, %s, '{STRUCTURE}')",
                     (uc, name))
    # The rule trigger validates each rule as it is inserted.
    conn.execute(
        f"""INSERT INTO {s}.metadata_rules (use_case_id, node_id, predicate_json, logic_en)
            SELECT %s, r.node_id, r.predicate_json, r.logic_en
            FROM jsonb_to_recordset(%s::jsonb) AS r(node_id text, predicate_json jsonb, logic_en text)""",
        (MAIN_USE_CASE, json.dumps(rules)))
    conn.execute(
        f"""INSERT INTO {s}.metadata_rules (use_case_id, node_id, predicate_json, logic_en)
            SELECT %s, node_id, predicate_json, logic_en FROM {s}.metadata_rules
            WHERE use_case_id = %s ORDER BY rule_id""", (OTHER_USE_CASE, MAIN_USE_CASE))
    conn.execute(_attributes_sql())


def generate_slice(conn: psycopg.Connection, schema: str, use_case: uuid.UUID, pnl_date: dt.date, size: int,
                   salt: int, chunk: int = 1_000_000) -> None:
    """`size` facts per scenario for one use case and date, in chunks of `chunk` indexes."""
    sql = _facts_sql(pgsql.Identifier(schema).as_string(conn))
    for first in range(1, size + 1, chunk):
        last = min(size, first + chunk - 1)
        conn.execute(sql, {"use_case": use_case, "pnl_date": pnl_date, "first": first, "last": last,
                           "salt": salt})


def other_slices(options: Options) -> list[tuple[uuid.UUID, dt.date]]:
    """The data a snapshot of (MAIN_USE_CASE, COB_DATE) must leave out: the same use case on the
    business days before, and the second use case on the same date."""
    dates, day = [], COB_DATE
    while len(dates) < options.other_dates:
        day -= dt.timedelta(days=1)
        if day.weekday() < 5:
            dates.append(day)
    return [(MAIN_USE_CASE, d) for d in dates] + [(OTHER_USE_CASE, COB_DATE)]


# --------------------------------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------------------------------

FLOOR_SQL = ("SELECT scenario, category_code, sum(daily_amount), sum(wtd_amount), sum(ytd_amount) "
             "FROM {s}.fact_pnl_entries WHERE use_case_id = %s AND pnl_date = %s GROUP BY 1, 2")
RESULT_COLUMNS = (["node_id", "parent_node_id", "node_name", "depth", "scenario"]
                  + [f"{m}_{k}" for m in MEASURES for k in KINDS] + ["is_override", "is_reconciled"])


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


def median(samples: list[float]) -> float | None:
    return statistics.median(samples) if samples else None


def timed_floor(conn: psycopg.Connection, s: str) -> tuple[float, list]:
    started = time.perf_counter()
    rows = conn.execute(FLOOR_SQL.format(s=s), (MAIN_USE_CASE, COB_DATE)).fetchall()
    return time.perf_counter() - started, rows


def timed_snapshot(conn: psycopg.Connection, s: str) -> float:
    """One create_snapshot, end to end, in a transaction that is rolled back: every repeat creates a
    new run, and runs are immutable, so rolling back is the clean way to leave none behind."""
    with conn.transaction(force_rollback=True):
        started = time.perf_counter()
        run_id = conn.execute(f"SELECT {s}.create_snapshot(%s, %s)", (MAIN_USE_CASE, COB_DATE)).fetchone()[0]
        elapsed = time.perf_counter() - started
        status, error = conn.execute(f"SELECT status, error_message FROM {s}.calculation_runs WHERE id = %s",
                                     (run_id,)).fetchone()
    if status != "COMPLETED":
        raise PnlError(f"create_snapshot did not complete: {status}: {error}")
    return elapsed


def measure(conn: psycopg.Connection, s: str, repeat: int, progress: Progress, label: str) -> dict:
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


def prewarm(conn: psycopg.Connection, schema: str, fact_blocks: int) -> bool:
    """Load the measured slice (the first fact_blocks blocks of the fact table: it is generated first),
    the index that finds it, and the small tables into shared buffers. False when pg_prewarm is not
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
    small = conn.execute(
        """SELECT c.oid::regclass::text FROM pg_class c
           WHERE c.relnamespace = %s::regnamespace AND c.relkind IN ('r', 'i')
             AND (c.relname IN ('dim_hierarchy', 'metadata_rules', 'use_cases', 'hierarchy_structures',
                                'ix_fact_pnl_entries_scope')
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


# --------------------------------------------------------------------------------------------------
# Correctness
# --------------------------------------------------------------------------------------------------

def check_run(conn: psycopg.Connection, s: str, floor_rows: list) -> tuple[uuid.UUID, dict]:
    """A committed snapshot, checked: it completed, every node has its three rows, and the root's
    natural values equal the sums of all in-scope facts (the floor's groups added up)."""
    run_id = conn.execute(f"SELECT {s}.create_snapshot(%s, %s, 'bench check')", (MAIN_USE_CASE, COB_DATE)).fetchone()[0]
    status, error = conn.execute(f"SELECT status, error_message FROM {s}.calculation_runs WHERE id = %s",
                                 (run_id,)).fetchone()
    if status != "COMPLETED":
        raise PnlError(f"create_snapshot ended {status}: {error}")
    expected: dict[str, list[Decimal]] = {sc: [Decimal(0)] * 3 for sc in SCENARIOS}
    unmapped = False
    codes = set(node_id(lvl, n) for lvl, count in enumerate(level_counts()) for n in range(1, count + 1))
    for scenario, code, *sums in floor_rows:
        expected[scenario] = [a + b for a, b in zip(expected[scenario], sums)]
        unmapped = unmapped or code not in codes
    rows = conn.execute(
        f"""SELECT scenario, daily_natural, wtd_natural, ytd_natural, count(*) OVER ()
            FROM {s}.fact_calculated_results WHERE calculation_run_id = %s AND node_id = %s""",
        (run_id, node_id(0, 1))).fetchall()
    got = {sc: list(vals) for sc, *vals, _ in rows}
    count = conn.execute(f"SELECT count(*) FROM {s}.fact_calculated_results WHERE calculation_run_id = %s",
                         (run_id,)).fetchone()[0]
    want_count = 3 * (node_count() + (1 if unmapped else 0))
    if count != want_count:
        raise PnlError(f"the snapshot has {count} result rows; expected {want_count} (3 per node"
                       f"{' and for __UNMAPPED__' if unmapped else ''})")
    for scenario in SCENARIOS:
        if got.get(scenario) != expected[scenario]:
            raise PnlError(f"the root's {scenario} natural values {got.get(scenario)} differ from the sums of the "
                           f"in-scope facts {expected[scenario]}")
    return run_id, {"root_ties_out": True, "result_rows": count}


REFERENCE_TABLE = "bench_reference_rows"


def _reference_table_sql(s: str) -> str:
    numeric = {f"{m}_{k}" for m in MEASURES for k in KINDS}
    types = {"depth": "integer", "is_override": "boolean", "is_reconciled": "boolean"}
    columns = ", ".join(f"{c} {types.get(c, 'numeric' if c in numeric else 'text')}" for c in RESULT_COLUMNS)
    return f"CREATE TABLE {s}.{REFERENCE_TABLE} ({columns})"


def store_reference_rows(conn: psycopg.Connection, s: str, rows: list[dict]) -> None:
    """The reference's rows into a table of the scratch schema, for compare_with_reference."""
    with conn.transaction():
        conn.execute(f"DROP TABLE IF EXISTS {s}.{REFERENCE_TABLE}")
        conn.execute(_reference_table_sql(s))
        with conn.cursor().copy(f"COPY {s}.{REFERENCE_TABLE} ({', '.join(RESULT_COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([row[c] for c in RESULT_COLUMNS])


def compare_with_reference(conn: psycopg.Connection, s: str, run_id: uuid.UUID) -> None:
    """Every row of the engine's run equals the reference's, every node, scenario and measure column,
    compared in SQL (exact numeric equality), both ways."""
    listed = ", ".join(RESULT_COLUMNS)
    ref = f"{s}.{REFERENCE_TABLE}"
    diff = conn.execute(
        f"""WITH engine AS (SELECT {listed} FROM {s}.fact_calculated_results WHERE calculation_run_id = %s),
                 only_engine AS (SELECT {listed} FROM engine EXCEPT ALL SELECT {listed} FROM {ref}),
                 only_reference AS (SELECT {listed} FROM {ref} EXCEPT ALL SELECT {listed} FROM engine)
            SELECT (SELECT count(*) FROM engine), (SELECT count(*) FROM {ref}),
                   (SELECT count(*) FROM only_engine), (SELECT count(*) FROM only_reference),
                   (SELECT row_to_json(x)::text FROM (SELECT * FROM only_engine ORDER BY node_id, scenario LIMIT 1) x),
                   (SELECT row_to_json(x)::text FROM (SELECT * FROM only_reference ORDER BY node_id, scenario LIMIT 1) x)""",
        (run_id,)).fetchone()
    engine_rows, reference_rows, only_engine, only_reference, engine_row, reference_row = diff
    if only_engine or only_reference or engine_rows != reference_rows:
        raise PnlError(f"the engine's results differ from the Python reference's: {engine_rows} engine rows, "
                       f"{reference_rows} reference rows, {only_engine} engine row(s) and {only_reference} reference "
                       f"row(s) without an equal; first engine row without an equal: {engine_row}; first reference "
                       f"row without an equal: {reference_row}")


def load_reference() -> tuple[Callable | None, str]:
    """pnldb.reference.snapshot_from_database, or None and why not."""
    try:
        module = importlib.import_module("pnldb.reference")
    except ImportError:
        return None, "pnldb.reference is not installed"
    function = getattr(module, "snapshot_from_database", None)
    if function is None:
        return None, "pnldb.reference has no snapshot_from_database"
    return function, ""


def run_reference(function: Callable, conn: psycopg.Connection, schema: str) -> list[dict]:
    parameters = inspect.signature(function).parameters
    if "schema" in parameters:
        return function(conn, MAIN_USE_CASE, COB_DATE, schema=schema)
    if schema != "pnl":
        raise PnlError("pnldb.reference.snapshot_from_database takes no schema; the bench needs one")
    return function(conn, MAIN_USE_CASE, COB_DATE)


def reference_process(dsn: str, schema: str, repeat: int) -> None:
    """The Python reference's own process (so its memory is not the bench's): times `repeat` runs of
    snapshot_from_database on the measured use case and date, stores the first run's rows for the
    comparison, and prints the timings as JSON."""
    from pnldb.db import connect

    function, why = load_reference()
    if function is None:
        raise SystemExit(why)
    seconds = []
    with connect(dsn, autocommit=True) as conn:
        for i in range(repeat):
            started = time.perf_counter()
            rows = run_reference(function, conn, schema)
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


def python_command(code: str) -> list[str]:
    return [sys.executable, "-c", code]


# --------------------------------------------------------------------------------------------------
# Loading through `pnldb load facts`
# --------------------------------------------------------------------------------------------------

def load_command_available() -> bool:
    from pnldb.cli import main

    group = main.commands.get("load")
    return group is not None and hasattr(group, "commands") and "facts" in group.commands


def export_csv(conn: psycopg.Connection, s: str, path: Path) -> int:
    """The measured slice as a CSV for `pnldb load facts`, streamed to disk."""
    dims = ("strategy", "region", "book", "legal_entity")
    select = ("SELECT pnl_date, category_code, daily_amount, wtd_amount, ytd_amount, scenario, "
              + ", ".join(f"attributes ->> '{d}' AS {d}" for d in dims)
              + f" FROM {s}.fact_pnl_entries WHERE use_case_id = '{MAIN_USE_CASE}' AND pnl_date = '{COB_DATE}'"
              + " ORDER BY id")
    with path.open("wb") as out, conn.cursor().copy(f"COPY ({select}) TO STDOUT WITH (FORMAT csv, HEADER)") as copy:
        for chunk in copy:
            out.write(chunk)
    return path.stat().st_size


def timed_load(dsn: str, schema: str, path: Path) -> tuple[float, float]:
    """Run `pnldb load facts` as its own process; (seconds, peak RSS of that process in MB)."""
    command = python_command("from pnldb.cli import main; main()") + [
        "--dsn", dsn, "--schema", schema, "load", "facts", str(path), "--use-case", USE_CASE_NAMES[LOAD_USE_CASE]]
    seconds, peak, _ = run_process(command, "`pnldb load facts`")
    return seconds, peak


# --------------------------------------------------------------------------------------------------
# The whole bench
# --------------------------------------------------------------------------------------------------

def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def _server_facts(conn: psycopg.Connection) -> dict:
    names = ("server_version", "shared_buffers", "work_mem", "max_parallel_workers_per_gather", "jit")
    return {n: conn.execute(f"SHOW {n}").fetchone()[0] for n in names}


def bench_size(conn: psycopg.Connection, dsn: str, schema: str, size: int, options: Options, rules: list[dict],
               progress: Progress) -> dict:
    s = pgsql.Identifier(schema).as_string(conn)
    label = f"{size:,} facts/scenario"
    result: dict = {"facts_per_scenario": size}
    started = time.perf_counter()

    progress(f"{label}: creating schema {schema}")
    prepare_schema(conn, schema)
    conn.execute("SELECT set_config('search_path', %s, false)", (f"{schema}, public",))
    progress(f"{label}: hierarchy, use cases, {len(rules):,} rules")
    generate_structure(conn, schema, rules)

    progress(f"{label}: generating the measured slice ({2 * size:,} facts)")
    generating = time.perf_counter()
    with bulk_mode(conn, schema):
        generate_slice(conn, schema, MAIN_USE_CASE, COB_DATE, size, salt=options.seed * 1000)
    analyze(conn, schema)
    result["generate_slice_s"] = round(time.perf_counter() - generating, 1)
    slice_blocks = relation_blocks(conn, f"{schema}.fact_pnl_entries")
    result["prewarmed"] = prewarm(conn, schema, slice_blocks)
    only = measure(conn, s, options.repeat, progress, f"{label}, only this date")

    others = other_slices(options)
    volume = options.other_volume(size)
    generating = time.perf_counter()
    with bulk_mode(conn, schema):
        for i, (use_case, day) in enumerate(others, start=1):
            progress(f"{label}: generating other dates and use case {i}/{len(others)} ({2 * volume:,} facts each)")
            generate_slice(conn, schema, use_case, day, volume, salt=options.seed * 1000 + i)
        progress(f"{label}: building the fact table's indexes")
    analyze(conn, schema)
    result["fact_rows_total"] = 2 * size + 2 * volume * len(others)
    result["fact_table_mb"] = round(conn.execute("SELECT pg_total_relation_size(%s::regclass)",
                                                 (f"{schema}.fact_pnl_entries",)).fetchone()[0] / MB)
    result["generate_others_s"] = round(time.perf_counter() - generating, 1)
    prewarm(conn, schema, slice_blocks)

    timings = measure(conn, s, options.repeat, progress, label)
    result["floor_s"] = timings["floor"]
    result["snapshot_s"] = timings["snapshot"]
    result["scope_only_date"] = {"floor_s": only["floor"], "snapshot_s": only["snapshot"]}

    progress(f"{label}: checking a snapshot")
    _, floor_rows = timed_floor(conn, s)
    run_id, check = check_run(conn, s, floor_rows)
    del floor_rows
    result["check"] = check
    progress(f"{label}: write floor x{options.repeat}")
    result["write_floor_s"] = [timed_write_floor(conn, s, run_id) for _ in range(options.repeat)]

    reference, why = load_reference()
    if reference is None:
        result["reference"] = {"skipped": why}
    elif size > options.reference_max:
        result["reference"] = {"skipped": f"above --reference-max {options.reference_max:,}"}
    else:
        progress(f"{label}: Python reference x{options.repeat} (own process)")
        code = (f"from pnldb.bench import reference_process; "
                f"reference_process({dsn!r}, {schema!r}, {options.repeat})")
        _, peak, out = run_process(python_command(code), "the Python reference")
        progress(f"{label}: comparing the engine with the Python reference")
        compare_with_reference(conn, s, run_id)
        result["reference"] = {"seconds": json.loads(out.strip().splitlines()[-1])["seconds"],
                               "matches_engine": True, "peak_rss_mb": peak}

    if not load_command_available():
        result["load"] = {"skipped": "`pnldb load facts` is not available"}
    elif size > options.load_max:
        result["load"] = {"skipped": f"above --load-max {options.load_max:,}"}
    else:
        with tempfile.TemporaryDirectory(prefix="pnldb-bench-") as tmp:
            path = Path(tmp) / "facts.csv"
            progress(f"{label}: exporting {2 * size:,} facts to CSV")
            export_csv(conn, s, path)
            progress(f"{label}: pnldb load facts ({2 * size:,} rows)")
            seconds, rss = timed_load(dsn, schema, path)
        loaded = conn.execute(f"SELECT count(*) FROM {s}.fact_pnl_entries WHERE use_case_id = %s",
                              (LOAD_USE_CASE,)).fetchone()[0]
        if loaded != 2 * size:
            raise PnlError(f"`pnldb load facts` loaded {loaded:,} rows from a file of {2 * size:,}")
        result["load"] = {"rows": loaded, "seconds": seconds, "rows_per_s": loaded / seconds, "peak_rss_mb": rss}

    progress(f"{label}: dropping schema {schema}")
    conn.execute("SET search_path TO DEFAULT")
    drop_schema(conn, schema)
    result["peak_rss_mb"] = peak_rss_mb()
    result["total_s"] = round(time.perf_counter() - started, 1)
    return result


def run_bench(options: Options, dsn: str | None = None, progress: Progress | None = None,
              schema: str = BENCH_SCHEMA) -> dict:
    """Run the bench; a dict with the environment, every sample and the summary (see summarize)."""
    from pnldb.db import connect
    from pnldb.embedded import EmbeddedPostgres

    progress = progress or Progress(enabled=False)
    if not options.sizes or any(n < 1 for n in options.sizes):
        raise PnlError("--sizes needs positive numbers of facts per scenario")
    if options.repeat < 1:
        raise PnlError("--repeat must be at least 1")
    if options.rules < 0 or options.rules > node_count():
        raise PnlError(f"--rules must be between 0 and {node_count():,} (one rule per node at most)")
    rules = make_rules(options.rules, options.seed)
    started = dt.datetime.now(dt.UTC)
    report: dict = {
        "started_at": started.isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "memory_gb": round(machine_memory() / (1 << 30), 1),
                    "platform": f"{os.uname().sysname} {os.uname().release} {os.uname().machine}",
                    "load_average_at_start": [round(x, 2) for x in os.getloadavg()]},
        "options": {"sizes": options.sizes, "rules": options.rules, "repeat": options.repeat,
                    "reference_max": options.reference_max, "load_max": options.load_max,
                    "other_dates": options.other_dates, "scope_volume": options.scope_volume},
        "hierarchy_nodes": node_count(),
        "hierarchy_depth": len(LEVELS),
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
        except BaseException:
            with contextlib.suppress(Exception):
                conn.execute("ROLLBACK") if conn.info.transaction_status else None
                conn.execute("SET search_path TO DEFAULT")
                drop_schema(conn, schema)
            raise
        finally:
            progress.done()
    report["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    report["peak_rss_mb"] = round(peak_rss_mb(), 1)
    report["summary"] = summarize(report)
    return report


# --------------------------------------------------------------------------------------------------
# Summary and report
# --------------------------------------------------------------------------------------------------

TARGET_RATIO = 3.0  # create_snapshot within 3x the floor at 1,000,000 facts per scenario
TARGET_REFERENCE = 10.0  # the engine at least 10x faster than the Python reference at 100,000
TARGET_RSS_MB = 150.0
TARGET_SCOPE = 1.2
LINEAR_TOLERANCE = 1.1  # growth within 10% of linear still counts as linear (timing noise)


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def summarize(report: dict) -> dict:
    rows, targets = [], []
    for size in report["sizes"]:
        floor, snap = median(size["floor_s"]), median(size["snapshot_s"])
        only = median(size["scope_only_date"]["snapshot_s"])
        ref = size["reference"]
        ref_median = median(ref.get("seconds", []))
        write_floor = median(size["write_floor_s"])
        rows.append({
            "facts_per_scenario": size["facts_per_scenario"],
            "floor_s": floor, "snapshot_s": snap, "snapshot_over_floor": _ratio(snap, floor),
            "write_floor_s": write_floor,
            "reference_over_floors": _ratio(ref_median, floor + write_floor),
            "snapshot_only_date_s": only, "floor_only_date_s": median(size["scope_only_date"]["floor_s"]),
            "scope_ratio": _ratio(snap, only),
            "reference_s": ref_median, "reference_over_engine": _ratio(ref_median, snap),
            "reference_note": ref.get("skipped"), "reference_peak_rss_mb": ref.get("peak_rss_mb"),
            "load_rows_per_s": size["load"].get("rows_per_s"), "load_note": size["load"].get("skipped"),
            "load_peak_rss_mb": size["load"].get("peak_rss_mb"),
            "peak_rss_mb": size["peak_rss_mb"],
        })

    def target(name: str, met: bool | None, value: str) -> None:
        targets.append({"target": name, "met": met, "measured": value})

    big = [r for r in rows if r["facts_per_scenario"] >= 1_000_000]
    if big:
        worst = max(big, key=lambda r: r["snapshot_over_floor"])
        target(f"create_snapshot within {TARGET_RATIO:g}x the floor at >= 1,000,000 facts/scenario",
               worst["snapshot_over_floor"] <= TARGET_RATIO,
               ", ".join(f"{r['snapshot_over_floor']:.2f}x at {r['facts_per_scenario']:,}" for r in big))
    else:
        target(f"create_snapshot within {TARGET_RATIO:g}x the floor at >= 1,000,000 facts/scenario", None,
               "no size >= 1,000,000")
    with_ref = [r for r in rows if r["reference_over_engine"] is not None]
    if with_ref:
        r = max(with_ref, key=lambda r: r["facts_per_scenario"])
        target(f"engine >= {TARGET_REFERENCE:g}x faster than the Python reference",
               r["reference_over_engine"] >= TARGET_REFERENCE,
               f"{r['reference_over_engine']:.1f}x at {r['facts_per_scenario']:,}; an engine that took no more than "
               f"the floor plus the write floor would be {r['reference_over_floors']:.1f}x")
    else:
        target(f"engine >= {TARGET_REFERENCE:g}x faster than the Python reference", None,
               "reference not run" + (f" ({rows[0]['reference_note']})" if rows else ""))
    load_rss = [r["load_peak_rss_mb"] for r in rows if r["load_peak_rss_mb"] is not None]
    rss = max([report.get("peak_rss_mb") or 0] + load_rss)
    target(f"pnldb process under {TARGET_RSS_MB:g} MB", rss < TARGET_RSS_MB,
           f"bench {report.get('peak_rss_mb', 0):.0f} MB" + (f", load {max(load_rss):.0f} MB" if load_rss else ""))
    worst_scope = max(rows, key=lambda r: r["scope_ratio"]) if rows else None
    if worst_scope:
        target(f"one date among 20 others and a second use case within {TARGET_SCOPE:g}x of that date alone",
               worst_scope["scope_ratio"] <= TARGET_SCOPE,
               ", ".join(f"{r['scope_ratio']:.2f}x at {r['facts_per_scenario']:,}" for r in rows))
    if len(rows) >= 2:
        ordered = sorted(rows, key=lambda r: r["facts_per_scenario"])
        growth = [(_ratio(b["snapshot_s"], a["snapshot_s"]) / (b["facts_per_scenario"] / a["facts_per_scenario"]),
                   a["facts_per_scenario"], b["facts_per_scenario"]) for a, b in zip(ordered, ordered[1:])]
        target("time grows no faster than linearly (snapshot time ratio / size ratio)",
               all(g <= LINEAR_TOLERANCE for g, _, _ in growth),
               ", ".join(f"{g:.2f} from {a:,} to {b:,}" for g, a, b in growth))
    failed = [t for t in targets if t["met"] is False]
    return {"rows": rows, "targets": targets, "targets_missed": len(failed)}


def _s(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    return f"{seconds:.3f} s" if seconds < 10 else f"{seconds:.1f} s"


def _x(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{ratio:.2f}x"


def format_report(report: dict) -> str:
    from pnldb import format as fmt

    m, st = report["machine"], report["settings"]
    lines = [
        f"pnldb bench, {report['started_at']}: {m['cpus']} CPUs, {m['memory_gb']} GiB, {m['platform']}; "
        f"load average {m['load_average_at_start'][0]:.2f} at start, {m['load_average_at_end'][0]:.2f} at end",
        f"PostgreSQL {st['server_version']} ({report['server']}): shared_buffers {st['shared_buffers']}, "
        f"work_mem {st['work_mem']}, max_parallel_workers_per_gather {st['max_parallel_workers_per_gather']}, "
        f"jit {st['jit']}",
        f"{report['hierarchy_nodes']:,} nodes in {report['hierarchy_depth']} levels, {report['options']['rules']:,} "
        f"rules; scope: {report['options']['other_dates']} other dates + a second use case; "
        f"medians of {report['options']['repeat']} (floor and snapshot interleaved)",
        "",
    ]
    header = ("facts/scenario", "floor", "write floor", "snapshot", "x floor", "1 date alone", "x alone",
              "reference", "ref/engine", "load rows/s", "peak RSS")
    rows = [(f"{r['facts_per_scenario']:,}", _s(r["floor_s"]), _s(r["write_floor_s"]), _s(r["snapshot_s"]),
             _x(r["snapshot_over_floor"]), _s(r["snapshot_only_date_s"]), _x(r["scope_ratio"]),
             _s(r["reference_s"]), _x(r["reference_over_engine"]),
             f"{r['load_rows_per_s']:,.0f}" if r["load_rows_per_s"] is not None else "n/a",
             f"{r['peak_rss_mb']:.0f} MB") for r in report["summary"]["rows"]]
    lines += fmt.table(header, rows, align="r" * len(header), rule=True)
    notes = ["write floor: one INSERT of a run's result rows (3 per node) with their indexes and foreign key "
             "checks, the least any engine that stores them pays"]
    for r in report["summary"]["rows"]:
        for what, note in (("reference", r["reference_note"]), ("load", r["load_note"])):
            if note:
                notes.append(f"{r['facts_per_scenario']:,}: {what} n/a: {note}")
        if r["load_peak_rss_mb"] is not None:
            notes.append(f"{r['facts_per_scenario']:,}: `pnldb load facts` process peak RSS {r['load_peak_rss_mb']:.0f} MB")
        if r["reference_peak_rss_mb"] is not None:
            notes.append(f"{r['facts_per_scenario']:,}: Python reference process peak RSS "
                         f"{r['reference_peak_rss_mb']:.0f} MB (not part of the target)")
    lines += [""] + notes
    lines += ["", "correctness: root ties out to the in-scope facts at every size"
              + ("; engine equals the Python reference row for row where it ran"
                 if any(s["reference"].get("matches_engine") for s in report["sizes"]) else ""), "", "targets:"]
    for t in report["summary"]["targets"]:
        mark = {True: "met", False: "MISSED", None: "n/a"}[t["met"]]
        lines.append(f"  [{mark}] {t['target']}: {t['measured']}")
    return "\n".join(lines)
