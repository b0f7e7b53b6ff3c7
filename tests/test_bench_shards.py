"""`pnldb bench --shards N` (issue 16): one small run through the CLI, its table and its JSON (the rows, the
ratio, the CPU figures, the two runs' rows equal), the scratch databases gone afterwards; the comparison and
the loud line of a mismatch on hand-made rows; --shards refused when not a power of two. No timing is
asserted: timings depend on the machine."""
from __future__ import annotations

import json
import re
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from pnldb import cluster
from pnldb.bench import generation, shards, summary
from pnldb.cli import main
from tests.builders import NODES, SMALL

SHARDED = [*SMALL, "--layouts", "", "--superseded-versions", "0", "--reference-max", "0", "--load-max", "0",
           "--shards", "2"]


needs_plproxy = pytest.mark.skipif(not list(Path("/usr/share/postgresql").glob("*/extension/plproxy.control")),
                                   reason="PL/Proxy is not installed (postgresql-<version>-plproxy)")


def _scratch_databases(db_url: str) -> list[str]:
    """The bench's scratch databases left on the server, and its shard link role if left."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        coordinator = shards.database_names(conn)[1]
        link = cluster.link_role_of(conn.info.host, conn.info.port, coordinator, generation.BENCH_SCHEMA)
        return [name for (name,) in conn.execute(
            "SELECT datname FROM pg_database WHERE shobj_description(oid, 'pg_database') = %s",
            (shards.DATABASE_MARKER,))] + [name for (name,) in conn.execute(
                "SELECT rolname FROM pg_roles WHERE rolname = %s", (link,))]


@needs_plproxy
def test_bench_shards_json_has_both_runs_timed_and_their_rows_equal(db_url):
    result = CliRunner().invoke(main, ["--dsn", db_url, "bench", *SHARDED, "--json"])
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["options"]["shards"] == 2
    (size,) = report["sizes"]
    timed = size["shards"]
    assert timed["shards"] == 2
    assert {k: len(v) for k, v in timed["single"].items()} == {"wall_s": 1, "backend_cpu_s": 1, "server_cpu_s": 1}
    assert {k: len(v) for k, v in timed["distributed"].items()} == {
        "wall_s": 1, "backend_cpu_s": 1, "shards_cpu_s": 1, "server_cpu_s": 1}
    assert sum(timed["shard_facts"]) == 2 * 2000 and len(timed["shard_facts"]) == 2
    check = timed["check"]
    assert check["rows_equal"] is True
    assert check["single_rows"] == check["distributed_rows"] == 3 * (NODES + 1)
    assert "calculation_run_id" not in check["columns"] and "node_id" in check["columns"]
    (row,) = report["summary"]["shards"]
    assert row["facts_per_scenario"] == 2000 and row["shards"] == 2 and row["rows_equal"] is True
    for key in ("single_s", "distributed_s", "distributed_over_single", "coordinator_cpu_s", "shards_cpu_s"):
        assert isinstance(row[key], float) and row[key] >= 0, key
    assert row["distributed_over_single"] == pytest.approx(row["distributed_s"] / row["single_s"])
    assert _scratch_databases(db_url) == []


@needs_plproxy
def test_bench_shards_table_has_a_row_per_size_with_its_ratio_and_rows_equal(db_url):
    result = CliRunner().invoke(main, ["--dsn", db_url, "bench", *SHARDED])
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("facts/scenario  shards"))
    assert lines[header].split("  ")[-1].strip() == "rows equal"
    cells = lines[header + 2].split()
    assert cells[:2] == ["2,000", "2"]
    assert re.fullmatch(r"\d+\.\d+x", cells[6]), cells
    assert cells[-1] == "yes"
    assert "the distributed run equals the single server's row for row" in result.stdout
    assert "FAILED" not in result.stdout
    assert _scratch_databases(db_url) == []


def test_a_mismatch_is_counted_and_makes_a_loud_line():
    columns = ["node_id", "scenario", "daily_natural"]
    a, b = ("A", "ACTUAL", 1), ("B", "PRIOR", 2)
    same = shards.compare_rows(columns, [a, b], [b, a])  # in any order
    assert same == {"columns": columns, "single_rows": 2, "distributed_rows": 2, "rows_equal": True}
    check = shards.compare_rows(columns, [a, b], [a, ("B", "PRIOR", 3)])
    assert check["rows_equal"] is False and (check["only_single"], check["only_distributed"]) == (1, 1)
    assert check["first_only_distributed"] == [{"node_id": "B", "scenario": "PRIOR", "daily_natural": "3"}]
    (line,) = summary.shard_mismatches({"sizes": [{"facts_per_scenario": 2000, "shards": {"shards": 2,
                                                                                          "check": check}}]})
    assert line.startswith("FAILED: 2,000 facts/scenario on 2 shards: the distributed run's rows differ")


def test_shards_must_be_a_power_of_two():
    result = CliRunner().invoke(main, ["bench", "--sizes", "10", "--shards", "3"])
    assert result.exit_code == 1
    assert "--shards 3: 0 (off) or a power of two" in result.stderr
