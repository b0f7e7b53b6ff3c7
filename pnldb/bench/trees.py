"""The bench's hierarchies: a fresh load of a wide tree and of a deep chain, each followed by its first
snapshot, in a scratch schema of their own (issue 19: the first snapshot after a fresh 30,000-node load
took 19.9 s on the planner's guesses; a 1,000-deep chain took 11 s to load).

* wide: TREE_NODES nodes, node k under node (k - 1) // 30 (five levels for 30,000), loaded with the
  hierarchy loader from a CSV, as `pnldb load hierarchy` does (which analyses the table after it);
* chain: CHAIN_DEPTH + 1 nodes, each under the one before, the depth limit raised to fit;
* facts on both: min(100,000, the largest --sizes) per scenario, spread over the nodes, loaded (and
  analysed) before the hierarchy, so the load is the only thing that changed before the first snapshot.
"""
from __future__ import annotations

import io
import time
import uuid
from collections.abc import Callable

import psycopg
from psycopg import sql as pgsql

from pnldb.bench import generation, measurement
from pnldb.bench.generation import COB_DATE
from pnldb.errors import PnlError
from pnldb.loaders.hierarchy import load_hierarchy

WIDE_STRUCTURE, CHAIN_STRUCTURE = "BENCH_WIDE", "BENCH_CHAIN"
WIDE_USE_CASE = uuid.UUID("00000000-0000-4000-8000-00000000b101")
CHAIN_USE_CASE = uuid.UUID("00000000-0000-4000-8000-00000000b102")
FANOUT = 30
MAX_FACTS = 100_000

_FACTS_SQL = """
INSERT INTO {s}.fact_pnl_entries (load_id, use_case_id, pnl_date, scenario, category_code, daily_amount,
                                  wtd_amount, ytd_amount, amount, attributes)
SELECT %(load_id)s, %(use_case)s, %(pnl_date)s, sc.scenario, %(prefix)s || (h % %(nodes)s),
       (h % 2000001 - 1000000) * 0.01, ((h >> 21) % 2000001 - 1000000) * 0.01,
       ((h >> 42) % 2000001 - 1000000) * 0.01, (h % 2000001 - 1000000) * 0.01, '{{}}'::jsonb
FROM (VALUES ('ACTUAL', 0), ('PRIOR', 1)) sc(scenario, k),
     LATERAL (SELECT hashint8extended(i, %(salt)s + sc.k) & 9223372036854775807 AS h
              FROM generate_series(1, %(size)s::bigint) i) g
""".replace(" % ", " %% ")  # modulo, not a placeholder


def wide_csv(nodes: int) -> io.BytesIO:
    rows = ["node_id,parent_node_id,node_name", "W0,,Wide root"]
    rows += [f"W{k},W{(k - 1) // FANOUT},Node {k}" for k in range(1, nodes)]
    return io.BytesIO(("\n".join(rows) + "\n").encode())


def chain_csv(nodes: int) -> io.BytesIO:
    rows = ["node_id,parent_node_id,node_name", "C0,,Chain root"]
    rows += [f"C{k},C{k - 1},Link {k}" for k in range(1, nodes)]
    return io.BytesIO(("\n".join(rows) + "\n").encode())


def _facts(conn: psycopg.Connection, s: str, use_case: uuid.UUID, prefix: str, nodes: int, size: int,
           salt: int) -> None:
    with conn.transaction():
        load_id = conn.execute(f"SELECT {s}.open_fact_load(%s, 'pnldb bench')", (use_case,)).fetchone()[0]
        conn.execute(_FACTS_SQL.format(s=s), {"load_id": load_id, "use_case": use_case, "pnl_date": COB_DATE,
                                              "prefix": prefix, "nodes": nodes, "size": size, "salt": salt})


def _snapshot(conn: psycopg.Connection, s: str, use_case: uuid.UUID) -> tuple[float, int]:
    """One create_snapshot, rolled back like the bench's others; checks that it completed and that its
    root ties out to the facts. (seconds, result rows)"""
    with conn.transaction(force_rollback=True):
        started = time.perf_counter()
        run_id = conn.execute(f"SELECT {s}.create_snapshot(%s, %s)", (use_case, COB_DATE)).fetchone()[0]
        elapsed = time.perf_counter() - started
        status, rows, root, facts = conn.execute(
            f"""SELECT r.status, (SELECT count(*) FROM {s}.fact_calculated_results x WHERE x.calculation_run_id = r.id),
                       (SELECT x.daily_natural FROM {s}.fact_calculated_results x
                        WHERE x.calculation_run_id = r.id AND x.scenario = 'ACTUAL' AND x.depth = 0),
                       (SELECT sum(f.daily_amount) FROM {s}.fact_pnl_entries f
                        WHERE f.use_case_id = r.use_case_id AND f.pnl_date = r.pnl_date AND f.scenario = 'ACTUAL')
                FROM {s}.calculation_runs r WHERE r.id = %s""", (run_id,)).fetchone()
    if status != "COMPLETED" or root != facts:
        raise PnlError(f"the snapshot of {use_case} after a fresh hierarchy load is wrong: status {status}, "
                       f"root {root}, facts {facts}")
    return elapsed, rows


def _timed_load(conn: psycopg.Connection, source: io.BytesIO, structure: str) -> tuple[float, dict]:
    started = time.perf_counter()
    summary = load_hierarchy(conn, source, structure)
    return time.perf_counter() - started, summary


def bench_trees(conn: psycopg.Connection, schema: str, options, progress: Callable[[str], None]) -> dict:
    """The wide tree's and the chain's load and first snapshot, in a fresh scratch schema, dropped after."""
    s = pgsql.Identifier(schema).as_string(conn)
    size = min(MAX_FACTS, max(options.sizes))
    wide_nodes, chain_nodes = options.tree_nodes, options.chain_depth + 1
    label = "hierarchies"
    progress(f"{label}: creating schema {schema}")
    generation.prepare_schema(conn, schema)
    conn.execute("SELECT set_config('search_path', %s, false)", (f"{schema}, public",))
    conn.execute(f"UPDATE {s}.limits SET value = greatest(value, %s) WHERE name = 'max_hierarchy_depth'",
                 (options.chain_depth,))
    for structure, use_case, name in ((WIDE_STRUCTURE, WIDE_USE_CASE, "Bench wide tree"),
                                      (CHAIN_STRUCTURE, CHAIN_USE_CASE, "Bench chain")):
        conn.execute(f"INSERT INTO {s}.hierarchy_structures (structure_id, name) VALUES (%s, %s)", (structure, name))
        conn.execute(f"INSERT INTO {s}.use_cases (use_case_id, name, structure_id) VALUES (%s, %s, %s)",
                     (use_case, name, structure))
    progress(f"{label}: generating {2 * size:,} facts on each")
    _facts(conn, s, WIDE_USE_CASE, "W", wide_nodes, size, salt=7001)
    _facts(conn, s, CHAIN_USE_CASE, "C", chain_nodes, size, salt=7003)
    measurement.analyze(conn, schema)  # everything but the nodes to come has its statistics

    progress(f"{label}: loading a fresh {wide_nodes:,}-node tree, then its first snapshot")
    load_s, summary = _timed_load(conn, wide_csv(wide_nodes), WIDE_STRUCTURE)
    first_s, rows = _snapshot(conn, s, WIDE_USE_CASE)
    again_s, _ = _snapshot(conn, s, WIDE_USE_CASE)
    wide = {"nodes": summary["nodes_loaded"], "depth": summary["depth"], "analyzed": summary["analyzed"],
            "load_s": load_s, "first_snapshot_s": first_s, "snapshot_again_s": again_s, "result_rows": rows}

    progress(f"{label}: loading a {options.chain_depth:,}-deep chain, then its first snapshot")
    load_s, summary = _timed_load(conn, chain_csv(chain_nodes), CHAIN_STRUCTURE)
    first_s, rows = _snapshot(conn, s, CHAIN_USE_CASE)
    chain = {"nodes": summary["nodes_loaded"], "depth": summary["depth"], "analyzed": summary["analyzed"],
             "load_s": load_s, "first_snapshot_s": first_s, "result_rows": rows}

    progress(f"{label}: dropping schema {schema}")
    conn.execute("SET search_path TO DEFAULT")
    generation.drop_schema(conn, schema)
    return {"facts_per_scenario": size, "wide": wide, "chain": chain}
