"""`pnldb bench` at a tiny size: it runs, prints its table and passes its own correctness checks; a
wrong answer fails it. No timing is asserted anywhere: timings depend on the machine."""
from __future__ import annotations

import json

import psycopg
from click.testing import CliRunner

from pnldb.bench import generation
from pnldb.cli import main

SMALL = ["--sizes", "2000", "--rules", "20", "--repeat", "1", "--other-dates", "2"]


def _no_scratch_schema_left(db_url) -> bool:
    with psycopg.connect(db_url) as conn:
        return conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = %s",
                            (generation.BENCH_SCHEMA,)).fetchone()[0] == 0


def test_bench_runs_prints_its_table_and_passes_its_checks(db_url):
    result = CliRunner().invoke(main, ["--dsn", db_url, "bench", *SMALL])
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "facts/scenario" in out and "floor" in out and "write floor" in out and "snapshot" in out
    assert "2,000" in out
    assert "correctness: root ties out to the in-scope facts at every size" in out
    assert "engine equals the Python reference row for row" in out
    assert "targets:" in out
    assert "generating" in result.stderr  # progress goes to stderr
    assert _no_scratch_schema_left(db_url)


def test_bench_json_has_every_measurement(db_url):
    result = CliRunner().invoke(main, ["--dsn", db_url, "bench", *SMALL, "--json"])
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    (size,) = report["sizes"]
    assert size["facts_per_scenario"] == 2000
    assert len(size["floor_s"]) == len(size["snapshot_s"]) == 1
    assert len(size["scope_only_date"]["snapshot_s"]) == 1
    assert len(size["write_floor_s"]) == 1 and size["write_floor_s"][0] > 0
    assert size["check"]["root_ties_out"] is True
    assert size["check"]["result_rows"] == 3 * (generation.node_count() + 1)  # the data has unmapped codes
    assert size["reference"]["matches_engine"] is True
    assert size["load"]["rows"] == 4000
    assert size["fact_rows_total"] == 2 * 2000 * (1 + 2 + 1)  # the date, 2 other dates, a second use case
    row = report["summary"]["rows"][0]
    assert row["snapshot_over_floor"] > 0 and row["scope_ratio"] > 0
    assert row["reference_over_floors"] == row["reference_s"] / (row["floor_s"] + row["write_floor_s"])
    assert {t["target"].split(" ")[0] for t in report["summary"]["targets"]} >= {"create_snapshot", "engine", "pnldb"}


def test_a_wrong_answer_fails_the_bench(db_url, monkeypatch):
    """An engine that ignores every rule is fast and wrong: the comparison with the reference catches it."""
    prepare = generation.prepare_schema

    def prepare_then_break_the_rules(conn, schema):
        prepare(conn, schema)
        conn.execute(f"CREATE OR REPLACE FUNCTION {schema}.predicate_sql(p_predicate jsonb) RETURNS text "
                     "LANGUAGE sql IMMUTABLE AS $$ SELECT 'true' $$")

    monkeypatch.setattr(generation, "prepare_schema", prepare_then_break_the_rules)
    result = CliRunner().invoke(main, ["--dsn", db_url, "bench", *SMALL, "--load-max", "0"])
    assert result.exit_code == 1
    assert "differ from the Python reference" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("pnldb: error: ")
    assert _no_scratch_schema_left(db_url)


def test_bad_sizes_are_refused():
    result = CliRunner().invoke(main, ["bench", "--sizes", "10,abc"])
    assert result.exit_code == 2 and "--sizes" in result.stderr


def test_rules_are_deterministic_nested_and_cover_every_operator():
    rules = generation.make_rules(1000)
    assert rules == generation.make_rules(1000)
    assert len({r["node_id"] for r in rules}) == 1000
    operators = {c["operator"] for r in rules for c in r["predicate_json"]["conditions"]}
    assert operators == {"equals", "not_equals", "in", "not_in", "greater_than", "less_than"}
    assert {r["predicate_json"]["conjunction"] for r in rules} == {"AND", "OR"}
    levels = {generation.LEVELS[i][0] for i in range(len(generation.LEVELS))}
    assert {r["node_id"][:2] for r in rules} >= {p[:2] for p in levels}  # every depth carries rules
    ruled = {r["node_id"] for r in rules}
    nested = [n for n in ruled if n.startswith("SD")
              and generation.node_id(2, generation.parent_number(3, int(n[2:]))) in ruled]
    assert nested  # some sub-desk rules sit below a desk rule
