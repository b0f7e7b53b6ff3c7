"""Plain helpers shared by the test modules: builders for test data straight into the tables, the
TRADING book, table counts, the bundled sample dataset, waiting on another session's lock, and the bench's
smallest run and a hand-made bench report."""
from __future__ import annotations

import contextlib
import csv
import datetime as dt
import json
import threading
import time
from decimal import Decimal
from pathlib import Path

import psycopg

COB = dt.date(2025, 12, 24)
EARLIER = COB - dt.timedelta(days=1)
NO_SUCH = "00000000-0000-0000-0000-000000000000"


def structure(conn, structure_id: str, nodes: list[tuple[str, str | None]]) -> None:
    """nodes: (node_id, parent_node_id); names are 'Name of <id>'."""
    conn.execute("INSERT INTO hierarchy_structures (structure_id, name) VALUES (%s, %s)", (structure_id, structure_id))
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO dim_hierarchy (structure_id, node_id, parent_node_id, node_name) VALUES (%s, %s, %s, %s)",
            [(structure_id, node, parent, f"Name of {node}") for node, parent in nodes])


def use_case(conn, name: str, structure_id: str):
    return conn.execute("INSERT INTO use_cases (name, structure_id) VALUES (%s, %s) RETURNING use_case_id",
                        (name, structure_id)).fetchone()[0]


def facts(conn, use_case_id, rows) -> None:
    """rows: (scenario, category_code, daily, wtd, ytd, attributes dict[, pnl_date]), inserted in one
    transaction: one load (on a connection that is not autocommit, in the caller's transaction)."""
    with conn.transaction() if conn.autocommit else contextlib.nullcontext(), conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO fact_pnl_entries (use_case_id, pnl_date, scenario, category_code, daily_amount, "
            "wtd_amount, ytd_amount, amount, attributes) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb)",
            [(use_case_id, row[6] if len(row) > 6 else COB, row[0], row[1], Decimal(row[2]), Decimal(row[3]),
              Decimal(row[4]), Decimal(row[2]), json.dumps(row[5])) for row in rows])


def rule(conn, use_case_id, node_id: str, predicate: dict, logic_en: str | None = None) -> int:
    return conn.execute(
        "INSERT INTO metadata_rules (use_case_id, node_id, predicate_json, logic_en) VALUES (%s, %s, %s::jsonb, %s) "
        "RETURNING rule_id", (use_case_id, node_id, json.dumps(predicate), logic_en)).fetchone()[0]


def cond(field: str, operator: str, value, conjunction: str | None = None) -> dict:
    predicate = {"conditions": [{"field": field, "operator": operator, "value": value}]}
    if conjunction:
        predicate["conjunction"] = conjunction
    return predicate


def snapshot(conn, use_case_id, date=COB, name=None, by=None):
    return conn.execute("SELECT create_snapshot(%s, %s, %s, %s)", (use_case_id, date, name, by)).fetchone()[0]


def results(conn, run_id) -> dict:
    """{(node_id, scenario): row dict} of a run."""
    cur = conn.execute("SELECT * FROM fact_calculated_results WHERE calculation_run_id = %s", (run_id,))
    names = [c.name for c in cur.description]
    return {(r["node_id"], r["scenario"]): r for r in (dict(zip(names, row)) for row in cur.fetchall())}


def header(conn, run_id) -> dict:
    """The calculation_runs row of a run, as a dict."""
    cur = conn.execute("SELECT * FROM calculation_runs WHERE id = %s", (run_id,))
    return dict(zip([c.name for c in cur.description], cur.fetchone()))


def sql_json(conn, query: str, params=()):
    """The jsonb a query returns, as its exact text parsed (numbers as Decimal, nothing else decoded)."""
    return json.loads(conn.execute(query, params).fetchone()[0], parse_float=Decimal)


# --- the TRADING book -----------------------------------------------------------------------------

TRADING_TREE = [
    ("FIRM", None),
    ("EMEA", "FIRM"), ("RATES", "EMEA"), ("RATES_1", "RATES"), ("RATES_2", "RATES"), ("FX", "EMEA"), ("FX_1", "FX"),
    ("AMER", "FIRM"), ("EQ", "AMER"), ("EQ_1", "EQ"),
]

# (scenario, category_code, daily, wtd, ytd, attributes[, pnl_date])
BOOK_FACTS = [
    ("ACTUAL", "RATES_1", "100.00", "300.00", "1000.00", {"book": "a"}),
    ("ACTUAL", "RATES_2", "-50.25", "10.00", "20.00", {"book": "b"}),
    ("ACTUAL", "FX_1", "40.00", "80.00", "400.00", {"book": "a"}),
    ("ACTUAL", "FX_1", "7.50", "7.50", "7.50", {"book": "b"}),
    ("ACTUAL", "EQ_1", "1000000.00", "2000000.00", "3000000.55", {"book": "a"}),
    ("PRIOR", "RATES_1", "90.00", "200.00", "900.00", {"book": "a"}),
    ("PRIOR", "FX_1", "5.00", "5.00", "5.00", {"book": "b"}),
    ("PRIOR", "EQ_1", "10.00", "10.00", "10.00", {"book": "a"}),
    ("ACTUAL", "RATES_1", "1.00", "1.00", "1.00", {"book": "a"}, EARLIER),
    ("PRIOR", "RATES_1", "2.00", "2.00", "2.00", {"book": "a"}, EARLIER),
]


def trading_use_case(conn, name: str = "Project Sterling", structure_id: str = "TRADING"):
    """A use case on the TRADING tree (created once) with ACTUAL and PRIOR facts on COB and the day before."""
    if conn.execute("SELECT NOT EXISTS (SELECT 1 FROM hierarchy_structures WHERE structure_id = %s)",
                    (structure_id,)).fetchone()[0]:
        structure(conn, structure_id, TRADING_TREE)
    uc = use_case(conn, name, structure_id)
    facts(conn, uc, BOOK_FACTS)
    return uc


# what delete_use_case reports, as SQL over the whole database (every use case)
TABLE_COUNTS = {
    "rules": "SELECT count(*) FROM metadata_rules",
    "legacy_runs": "SELECT count(*) FROM use_case_runs",
    "calculation_runs": "SELECT count(*) FROM calculation_runs",
    "facts": "SELECT count(*) FROM fact_pnl_entries",
    "results": "SELECT count(*) FROM fact_calculated_results",
    "run_rules": "SELECT count(*) FROM calculation_run_rules",
}


def table_counts(conn) -> dict:
    return {name: conn.execute(query).fetchone()[0] for name, query in TABLE_COUNTS.items()}


# --- the bundled sample dataset (pnldb/data) ------------------------------------------------------

DATA = Path(__file__).resolve().parent.parent / "pnldb" / "data"
FACT_COLUMNS = ["use_case_id", "pnl_date", "category_code", "daily_amount", "wtd_amount", "ytd_amount", "scenario",
                "legal_entity", "region", "strategy", "risk_officer", "book", "currency"]
DIMENSIONS = FACT_COLUMNS[7:-1]


def read_hierarchy() -> list[dict]:
    with open(DATA / "hierarchy.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def read_facts() -> list[dict]:
    with open(DATA / "facts.csv", newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == FACT_COLUMNS
        return list(reader)


def read_fx() -> list[dict]:
    with open(DATA / "fx.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def read_rules(name: str = "rules.json") -> list[dict]:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def load_sample(conn, rules_file: str | None = "rules.json", name: str = "Global Markets Demo"):
    """Structure GLOBAL_MARKETS, a use case, the rates of fx.csv, the facts (COPY) and the rules; returns the
    use-case id."""
    structure_id = "GLOBAL_MARKETS"
    conn.execute("INSERT INTO hierarchy_structures (structure_id, name) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                 (structure_id, "Global Markets"))
    if not conn.execute("SELECT 1 FROM dim_hierarchy WHERE structure_id = %s LIMIT 1", (structure_id,)).fetchone():
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO dim_hierarchy (structure_id, node_id, parent_node_id, node_name) VALUES (%s, %s, %s, %s)",
                [(structure_id, r["node_id"], r["parent_node_id"] or None, r["node_name"]) for r in read_hierarchy()])
    use_case_id = conn.execute("INSERT INTO use_cases (name, structure_id) VALUES (%s, %s) RETURNING use_case_id",
                               (name, structure_id)).fetchone()[0]
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO fx_rates (pnl_date, currency, reporting_currency, rate) VALUES (%s, %s, %s, %s) "
                        "ON CONFLICT DO NOTHING",
                        [(r["pnl_date"], r["currency"], r["reporting_currency"], r["rate"]) for r in read_fx()])
    columns = ("use_case_id, pnl_date, scenario, category_code, daily_amount, wtd_amount, ytd_amount, attributes, "
               "currency")
    with conn.cursor() as cur, cur.copy(f"COPY fact_pnl_entries ({columns}) FROM STDIN") as copy:
        for r in read_facts():
            attributes = {k: r[k] for k in DIMENSIONS if r[k]}
            copy.write_row((str(use_case_id), r["pnl_date"], r["scenario"], r["category_code"], r["daily_amount"],
                            r["wtd_amount"], r["ytd_amount"], json.dumps(attributes), r["currency"] or None))
    if rules_file:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO metadata_rules (use_case_id, node_id, predicate_json, logic_en) "
                "VALUES (%s, %s, %s::jsonb, %s)",
                [(use_case_id, r["node_id"], json.dumps(r["predicate_json"]), r["logic_en"])
                 for r in read_rules(rules_file)])
    return use_case_id


# --- other sessions -------------------------------------------------------------------------------

def open_conn(db_url, autocommit: bool) -> psycopg.Connection:
    """A connection of its own, schema pnl first; not autocommit: no transaction open yet. A lock wait
    longer than a minute fails, so a test whose lock is never released fails instead of hanging."""
    c = psycopg.connect(db_url, autocommit=autocommit)
    c.execute("SET search_path TO pnl, public")
    c.execute("SET lock_timeout = '60s'")
    if not autocommit:
        c.commit()
    return c


def in_thread(target):
    """Runs target() in a daemon thread; returns (thread, outcome) with outcome["value"] or ["error"]."""
    outcome = {}

    def run():
        try:
            outcome["value"] = target()
        except Exception as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def wait_until_blocked(observer, pid: int, thread: threading.Thread, seconds: float = 20) -> None:
    """Until backend `pid` waits on a lock; fails if the thread finishes first (it did not wait)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        waiting = observer.execute("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s",
                                   (pid,)).fetchone()
        if waiting and waiting[0]:
            return
        assert thread.is_alive(), "the other session did not wait"
        time.sleep(0.02)
    raise AssertionError("the other session never blocked")


def backdate(conn, table: str, where: str, params: tuple, **columns) -> None:
    """Test data as history would have left it: set audit columns (who, when) that the database stamps
    itself (issue 18), as a superuser with the tables' triggers off for one statement."""
    assignments = ", ".join(f"{column} = %s" for column in columns)
    with conn.transaction() if conn.autocommit else contextlib.nullcontext():
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute(f"UPDATE {table} SET {assignments} WHERE {where}", (*columns.values(), *params))
        conn.execute("SET LOCAL session_replication_role = DEFAULT")


# --- the CLI's outcome (click.testing results) ------------------------------------------------------

def ok(result) -> str:
    """A command that succeeded: exit 0; its stdout."""
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr, result.exception)
    return result.stdout


def error_line(result) -> str:
    """The CLI's error: exit 1, one line on stderr, nothing on stdout."""
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("pnldb: error: ")
    return lines[0]


# --- pnldb bench ---------------------------------------------------------------------------------

# the bench's smallest run, and its tree's size
SMALL = ["--sizes", "2000", "--rules", "20", "--repeat", "1", "--other-dates", "2"]
NODES = 10_111  # 1 + 10 + 100 + 1,000 + 9,000


def hand_made_report() -> dict:
    """Two sizes with round samples: every median, ratio and verdict the tests expect follows by hand."""
    return {
        "started_at": "2026-01-02T03:04:05+00:00",
        "machine": {"cpus": 8, "memory_gb": 31.2, "platform": "Linux 6.1 x86_64",
                    "load_average_at_start": [0.5, 0.4, 0.3], "load_average_at_end": [1.25, 1.0, 0.75]},
        "options": {"sizes": [100_000, 1_000_000], "rules": 1000, "repeat": 3, "reference_max": 100_000,
                    "load_max": 100_000, "other_dates": 20, "scope_volume": 1_000_000},
        "hierarchy_nodes": NODES, "hierarchy_depth": 5, "server": "embedded",
        "settings": {"server_version": "15.4", "shared_buffers": "4GB", "work_mem": "256MB",
                     "max_parallel_workers_per_gather": "8", "jit": "off"},
        "sizes": [
            {"facts_per_scenario": 100_000, "floor_s": [3.0, 1.0, 2.0], "snapshot_s": [6.0, 5.0, 4.0],
             "scope_only_date": {"floor_s": [1.5, 1.5, 1.5], "snapshot_s": [4.0, 4.0, 3.0]},
             "write_floor_s": [1.0, 0.5, 2.0],
             "reference": {"seconds": [70.0, 60.0, 50.0], "matches_engine": True, "peak_rss_mb": 210.0},
             "load": {"rows": 200_000, "seconds": 0.8, "rows_per_s": 250_000.0, "peak_rss_mb": 60.0},
             "run_readers": {"snapshot_s": [5.0, 6.0, 4.0], "verify_s": [4.0, 4.5, 3.5],
                             "explain_first_1000_s": [0.2, 0.3, 0.1]},
             "superseded": {"versions": 5, "none_s": [5.0, 5.0, 5.0], "superseded_s": [5.5, 5.0, 5.25]},
             "currencies": {"currencies": 5, "one_s": [5.0, 5.0, 5.0], "five_s": [5.5, 6.0, 5.75],
                            "mixed_s": [7.0, 7.5, 8.0]},
             "peak_rss_mb": 90.0},
            {"facts_per_scenario": 1_000_000, "floor_s": [10.0, 10.0, 10.0], "snapshot_s": [40.0, 41.0, 39.0],
             "scope_only_date": {"floor_s": [10.0, 10.0, 10.0], "snapshot_s": [40.0, 40.0, 40.0]},
             "write_floor_s": [8.0, 8.0, 8.0],
             "reference": {"skipped": "above --reference-max 100,000"},
             "load": {"skipped": "above --load-max 100,000"},
             "run_readers": {"snapshot_s": [40.0, 40.0, 40.0], "verify_s": [36.0, 38.0, 40.0],
                             "explain_first_1000_s": [0.5, 0.6, 0.4]},
             "superseded": {"versions": 5, "none_s": [40.0, 40.0, 40.0], "superseded_s": [42.0, 41.0, 43.0]},
             "currencies": {"currencies": 5, "one_s": [40.0, 40.0, 40.0], "five_s": [50.0, 49.0, 51.0],
                            "mixed_s": [60.0, 60.0, 60.0]},
             "peak_rss_mb": 120.0},
        ],
        "peak_rss_mb": 120.0,
    }
