"""`pnldb bench`: the summary and the table of a hand-made report, the generated data, the checks that fail
the bench on a wrong answer, and one end-to-end run at a tiny size. No timing is asserted anywhere:
timings depend on the machine."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from decimal import Decimal

import psycopg
import pytest
from click.testing import CliRunner
from psycopg.rows import dict_row

from pnldb.bench import checks, format_report, generation, measurement, summarize
from pnldb.cli import main
from pnldb.errors import PnlError
from tests.builders import NODES, SMALL, hand_made_report

# ---------------------------------------------------------------------------------------------- summary


def test_the_summary_of_a_hand_made_report_has_the_medians_ratios_and_verdicts_worked_out_by_hand():
    summary = summarize(hand_made_report())
    small, big = summary["rows"]
    # medians: floor 2, snapshot 5, write floor 1, that date alone 4, reference 60
    assert small == {
        "facts_per_scenario": 100_000, "floor_s": 2.0, "snapshot_s": 5.0, "snapshot_over_floor": 2.5,
        "write_floor_s": 1.0, "reference_over_floors": 20.0, "snapshot_only_date_s": 4.0, "floor_only_date_s": 1.5,
        "scope_ratio": 1.25, "reference_s": 60.0, "reference_over_engine": 12.0, "reference_note": None,
        "reference_peak_rss_mb": 210.0, "load_rows_per_s": 250_000.0, "load_note": None, "load_peak_rss_mb": 60.0,
        "peak_rss_mb": 90.0, "readers_snapshot_s": 5.0, "verify_s": 4.0, "verify_over_snapshot": 0.8,
        "explain_first_1000_s": 0.2, "superseded_versions": 5, "not_superseded_s": 5.0, "superseded_s": 5.25,
        "superseded_ratio": 1.05, "currencies": 5, "one_currency_s": 5.0, "five_currencies_s": 5.75,
        "currencies_ratio": 1.15, "mixed_currencies_s": 7.5, "mixed_currencies_ratio": 1.5}
    assert big == {
        "facts_per_scenario": 1_000_000, "floor_s": 10.0, "snapshot_s": 40.0, "snapshot_over_floor": 4.0,
        "write_floor_s": 8.0, "reference_over_floors": None, "snapshot_only_date_s": 40.0, "floor_only_date_s": 10.0,
        "scope_ratio": 1.0, "reference_s": None, "reference_over_engine": None,
        "reference_note": "above --reference-max 100,000", "reference_peak_rss_mb": None, "load_rows_per_s": None,
        "load_note": "above --load-max 100,000", "load_peak_rss_mb": None, "peak_rss_mb": 120.0,
        "readers_snapshot_s": 40.0, "verify_s": 38.0, "verify_over_snapshot": 0.95, "explain_first_1000_s": 0.5,
        "superseded_versions": 5, "not_superseded_s": 40.0, "superseded_s": 42.0, "superseded_ratio": 1.05,
        "currencies": 5, "one_currency_s": 40.0, "five_currencies_s": 50.0, "currencies_ratio": 1.25,
        "mixed_currencies_s": 60.0, "mixed_currencies_ratio": 1.5}
    assert summary["targets"] == [
        {"target": "create_snapshot within 3x the floor at >= 1,000,000 facts/scenario", "met": False,
         "measured": "4.00x at 1,000,000"},
        {"target": "engine >= 10x faster than the Python reference", "met": True,
         "measured": "12.0x at 100,000; an engine that took no more than the floor plus the write floor would be "
                     "20.0x"},
        {"target": "pnldb process under 150 MB", "met": True, "measured": "bench 120 MB, load 60 MB"},
        {"target": "one date among 20 others and a second use case within 1.2x of that date alone", "met": False,
         "measured": "1.25x at 100,000, 1.00x at 1,000,000"},
        {"target": "a snapshot with 5 superseded versions of its slice in the table within 1.1x of one with none",
         "met": True, "measured": "1.05x at 100,000, 1.05x at 1,000,000"},
        {"target": "a snapshot of books in 5 currencies within 1.2x of the same facts in one", "met": False,
         "measured": "1.15x at 100,000, 1.25x at 1,000,000"},
        {"target": "verify_run of a run costs no more than a snapshot", "met": True,
         "measured": "0.80x at 100,000, 0.95x at 1,000,000"},
        {"target": "explain_node of the root: its first 1,000 rows in under 1 s at >= 1,000,000 facts/scenario",
         "met": True, "measured": "0.500 s at 1,000,000"},
        {"target": "time grows no faster than linearly (snapshot time ratio / size ratio)", "met": True,
         "measured": "0.80 from 100,000 to 1,000,000"},
    ]
    assert summary["targets_missed"] == 3


def test_targets_that_cannot_be_judged_are_not_applicable_and_a_big_load_process_misses_the_memory_target():
    report = hand_made_report()
    report["sizes"] = report["sizes"][:1]
    report["sizes"][0]["reference"] = {"skipped": "above --reference-max 0"}
    report["sizes"][0]["load"]["peak_rss_mb"] = 151.0
    summary = summarize(report)
    assert [(t["met"], t["measured"]) for t in summary["targets"]] == [
        (None, "no size >= 1,000,000"),
        (None, "reference not run (above --reference-max 0)"),
        (False, "bench 120 MB, load 151 MB"),
        (False, "1.25x at 100,000"),
        (True, "1.05x at 100,000"),
        (True, "1.15x at 100,000"),
        (True, "0.80x at 100,000"),
        (None, "no size >= 1,000,000"),
    ]  # and no growth target with a single size
    assert summary["targets_missed"] == 2


def test_a_slower_growth_than_linear_misses_the_growth_target():
    report = hand_made_report()
    report["sizes"][1]["snapshot_s"] = [56.0, 56.0, 56.0]  # 11.2x the time for 10x the facts
    [growth] = [t for t in summarize(report)["targets"] if t["target"].startswith("time grows")]
    assert growth["met"] is False and growth["measured"] == "1.12 from 100,000 to 1,000,000"


EXPECTED_TABLE = """\
pnldb bench, 2026-01-02T03:04:05+00:00: 8 CPUs, 31.2 GiB, Linux 6.1 x86_64; load average 0.50 at start, 1.25 at end
PostgreSQL 15.4 (embedded): shared_buffers 4GB, work_mem 256MB, max_parallel_workers_per_gather 8, jit off
10,111 nodes in 5 levels, 1,000 rules; scope: 20 other dates + a second use case; medians of 3 (floor and snapshot \
interleaved)

facts/scenario    floor  write floor  snapshot  x floor  1 date alone  x alone  reference  ref/engine  load rows/s  \
peak RSS
--------------  -------  -----------  --------  -------  ------------  -------  ---------  ----------  -----------  \
--------
       100,000  2.000 s      1.000 s   5.000 s    2.50x       4.000 s    1.25x     60.0 s      12.00x      250,000  \
   90 MB
     1,000,000   10.0 s      8.000 s    40.0 s    4.00x        40.0 s    1.00x        n/a         n/a          n/a  \
  120 MB

facts/scenario  snapshot  verify_run  x snapshot  explain 1,000  superseded  snapshot behind  x none
--------------  --------  ----------  ----------  -------------  ----------  ---------------  ------
       100,000   5.000 s     4.000 s       0.80x        0.200 s  5 versions          5.250 s   1.05x
     1,000,000    40.0 s      38.0 s       0.95x        0.500 s  5 versions           42.0 s   1.05x

write floor: one INSERT of a run's result rows (3 per node) with their indexes and foreign key checks, the least any \
engine that stores them pays
verify_run and explain 1,000 (explain_node of the root, its first 1,000 rows) interleaved with a snapshot; snapshot \
behind: the same current facts behind superseded versions of them, interleaved with a snapshot of them alone (x none)
100,000: the same facts with each book in one of 5 currencies 5.750 s, in one currency 5.000 s (1.15x), every book \
in all 5 7.500 s (1.50x), interleaved
100,000: `pnldb load facts` process peak RSS 60 MB
100,000: Python reference process peak RSS 210 MB (not part of the target)
1,000,000: the same facts with each book in one of 5 currencies 50.0 s, in one currency 40.0 s (1.25x), every book \
in all 5 60.0 s (1.50x), interleaved
1,000,000: reference n/a: above --reference-max 100,000
1,000,000: load n/a: above --load-max 100,000

correctness: root ties out to the in-scope facts at every size; engine equals the Python reference row for row where \
it ran

targets:
  [MISSED] create_snapshot within 3x the floor at >= 1,000,000 facts/scenario: 4.00x at 1,000,000
  [met] engine >= 10x faster than the Python reference: 12.0x at 100,000; an engine that took no more than the floor \
plus the write floor would be 20.0x
  [met] pnldb process under 150 MB: bench 120 MB, load 60 MB
  [MISSED] one date among 20 others and a second use case within 1.2x of that date alone: 1.25x at 100,000, 1.00x at \
1,000,000
  [met] a snapshot with 5 superseded versions of its slice in the table within 1.1x of one with none: 1.05x at \
100,000, 1.05x at 1,000,000
  [MISSED] a snapshot of books in 5 currencies within 1.2x of the same facts in one: 1.15x at 100,000, 1.25x at \
1,000,000
  [met] verify_run of a run costs no more than a snapshot: 0.80x at 100,000, 0.95x at 1,000,000
  [met] explain_node of the root: its first 1,000 rows in under 1 s at >= 1,000,000 facts/scenario: 0.500 s at \
1,000,000
  [met] time grows no faster than linearly (snapshot time ratio / size ratio): 0.80 from 100,000 to 1,000,000"""


def test_the_table_of_a_hand_made_report_is_exactly_this():
    report = hand_made_report()
    report["summary"] = summarize(report)
    assert format_report(report) == EXPECTED_TABLE


def test_the_fresh_hierarchies_of_a_hand_made_report_give_a_target_and_two_lines():
    report = hand_made_report()
    report["hierarchies"] = {
        "facts_per_scenario": 100_000,
        "wide": {"nodes": 30_000, "depth": 4, "analyzed": True, "load_s": 1.5, "first_snapshot_s": 2.0,
                 "snapshot_again_s": 1.0, "result_rows": 90_000},
        "chain": {"nodes": 1001, "depth": 1000, "analyzed": True, "load_s": 0.25, "first_snapshot_s": 0.75,
                  "result_rows": 3003}}
    summary = summarize(report)
    assert summary["targets"][-1] == {
        "target": "the first snapshot after a fresh 30,000-node hierarchy load within 1.5x of the next", "met": False,
        "measured": "2.00x (2.000 s, then 1.000 s)"}
    assert summary["targets_missed"] == 4
    report["summary"] = summary
    lines = format_report(report).splitlines()
    at = lines.index("hierarchies loaded fresh by the hierarchy loader, 100,000 facts/scenario each:")
    assert lines[at + 1:at + 4] == [
        "  a 30,000-node tree, 4 deep: load 1.500 s (analysed), first snapshot 2.000 s, the next 1.000 s",
        "  a 1,000-deep chain (1,001 nodes): load 0.250 s, first snapshot 0.750 s",
        ""]


def test_the_entitled_snapshot_of_a_hand_made_report_is_judged_at_1_000_000_and_printed_per_size():
    report = hand_made_report()
    report["sizes"][0]["entitled"] = {"operator_s": [5.5, 5.0, 6.0], "superuser_s": [5.0, 5.0, 5.0]}
    report["sizes"][1]["entitled"] = {"operator_s": [41.6, 42.0, 40.0], "superuser_s": [40.0, 40.0, 41.0]}
    summary = summarize(report)
    [entitled] = [t for t in summary["targets"] if t["target"].startswith("entitled")]
    # 1.10x at 100,000 is noise at a size the target does not judge; 1.05x at 1,000,000 meets it
    assert entitled == {"target": "entitled operator snapshot ≤ 1.05x superuser", "met": True,
                        "measured": "1.10x at 100,000, 1.04x at 1,000,000"}
    report["summary"] = summary
    lines = format_report(report).splitlines()
    report["sizes"][1]["entitled"]["operator_s"] = [43.0, 43.0, 43.0]
    assert [t["met"] for t in summarize(report)["targets"] if t["target"].startswith("entitled")] == [False]
    assert ("1,000,000: create_snapshot as an operator login entitled to the use case by a grant of its own 41.6 s, "
            "as the superuser 40.0 s (1.04x), interleaved") in lines


def test_the_rule_layouts_of_a_hand_made_report_are_judged_at_1_000_000_and_tabled():
    report = hand_made_report()
    report["sizes"][0]["layouts"] = {"books": {"rules": 1000, "floor_s": [2.0, 2.0, 2.0], "snapshot_s": [9.0] * 3}}
    report["sizes"][1]["layouts"] = {"books": {"rules": 1000, "floor_s": [10.0, 11.0, 9.0],
                                               "snapshot_s": [14.0, 15.0, 13.0]},
                                     "upper": {"rules": 1000, "floor_s": [10.0] * 3, "snapshot_s": [12.0] * 3}}
    summary = summarize(report)
    assert [(r["facts_per_scenario"], r["layout"], r["snapshot_over_floor"]) for r in summary["layouts"]] == [
        (100_000, "nested", 2.5), (100_000, "books", 4.5),
        (1_000_000, "nested", 4.0), (1_000_000, "books", 1.4), (1_000_000, "upper", 1.2)]
    [layouts] = [t for t in summary["targets"] if "rule layout" in t["target"]]
    # 4.5x at 100,000 is not judged; at 1,000,000 the nested layout's 4.0x misses
    assert layouts == {"target": "create_snapshot within 1.5x the floor in every rule layout at >= 1,000,000 "
                                 "facts/scenario", "met": False, "measured": "nested 4.00x, books 1.40x, upper 1.20x"}
    report["summary"] = summary
    lines = format_report(report).splitlines()
    header = lines.index(next(line for line in lines if line.startswith("facts/scenario  rule layout")))
    assert re.split(r"\s{2,}", lines[header + 4].strip()) == [
        "1,000,000", "nested: every level, nested, mixed conditions", "1,000", "10.0 s", "40.0 s", "4.00x"]
    assert "books: books only" in lines[header + 5]


def test_rule_layouts_put_their_rules_where_they_say_and_test_what_they_say():
    def fields(rules):
        return {c["field"] for r in rules for c in r["predicate_json"]["conditions"]}

    assert generation.make_rules(1000, layout="nested") == generation.make_rules(1000)
    upper, books = generation.make_rules(1000, layout="upper"), generation.make_rules(1000, layout="books")
    assert {r["node_id"][:2] for r in upper} == {"RG", "DK", "SD"} and len({r["node_id"] for r in upper}) == 1000
    assert {r["node_id"][:2] for r in books} == {"BK"} and len({r["node_id"] for r in books}) == 1000
    measures = generation.make_rules(1000, layout="measures")
    assert fields(measures) == {"daily_amount", "wtd_amount", "ytd_amount"}
    assert {len(r["predicate_json"]["conditions"]) for r in measures} == {3}
    in_lists = generation.make_rules(1000, layout="in_lists")
    assert max(len(c["value"]) for r in in_lists for c in r["predicate_json"]["conditions"]) >= 150
    assert {c["operator"] for r in in_lists for c in r["predicate_json"]["conditions"]} == {"in", "not_in"}
    assert fields(generation.make_rules(1000, layout="absent")) == {"strategy", "region", "desk_head"}
    with pytest.raises(PnlError, match="unknown rule layout 'flat'; the layouts are nested, upper, books"):
        generation.make_rules(10, layout="flat")


def test_without_the_reference_the_correctness_line_claims_only_the_tie_out():
    report = hand_made_report()
    for size in report["sizes"]:
        size["reference"] = {"skipped": "above --reference-max 0"}
    report["summary"] = summarize(report)
    lines = format_report(report).splitlines()
    assert "correctness: root ties out to the in-scope facts at every size" in lines
    assert not [line for line in lines if "row for row" in line]


# ---------------------------------------------------------------------------------------------- data and checks

@pytest.fixture
def scratch(db_url):
    """A bench scratch schema with the structure, 20 rules and 500 facts per scenario on the measured date,
    200 on each of 2 other dates and the second use case; search_path as the bench sets it."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        schema = generation.BENCH_SCHEMA
        generation.prepare_schema(conn, schema)
        conn.execute("SELECT set_config('search_path', %s, false)", (f"{schema}, public",))
        generation.generate_structure(conn, schema, generation.make_rules(20))
        with generation.bulk_mode(conn, schema):
            generation.generate_slice(conn, schema, generation.MAIN_USE_CASE, generation.COB_DATE, 500, salt=1000)
            for i, (use_case, day) in enumerate(generation.other_slices(2), start=1):
                generation.generate_slice(conn, schema, use_case, day, 200, salt=1000 + i)
        measurement.analyze(conn, schema)
        yield conn
        conn.execute("SET search_path TO DEFAULT")
        generation.drop_schema(conn, schema)


def test_the_generated_data_has_the_sizes_asked_for(scratch):
    conn, s = scratch, generation.BENCH_SCHEMA
    by_prefix = dict(conn.execute(f"SELECT left(node_id, 2), count(*) FROM {s}.dim_hierarchy GROUP BY 1").fetchall())
    assert by_prefix == {"FI": 1, "RG": 10, "DK": 100, "SD": 1000, "BK": 9000}
    assert generation.node_count() == NODES
    facts = conn.execute(f"SELECT use_case_id, pnl_date, scenario, count(*) FROM {s}.fact_pnl_entries "
                         "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3").fetchall()
    main_uc, other_uc, cob = generation.MAIN_USE_CASE, generation.OTHER_USE_CASE, generation.COB_DATE
    other_dates = sorted(d for uc, d in generation.other_slices(2) if uc == main_uc)
    assert [d.isoformat() for d in other_dates] == ["2025-06-26", "2025-06-27"]  # business days before 2025-06-30
    assert facts == [(main_uc, d, sc, 200) for d in other_dates for sc in ("ACTUAL", "PRIOR")] + [
        (main_uc, cob, "ACTUAL", 500), (main_uc, cob, "PRIOR", 500),
        (other_uc, cob, "ACTUAL", 200), (other_uc, cob, "PRIOR", 200)]
    # the rules of the measured use case, copied to the other, the superseded and the two currencies ones
    assert conn.execute(f"SELECT count(*) FROM {s}.metadata_rules GROUP BY use_case_id").fetchall() == [(20,)] * 5
    unmapped = conn.execute(f"SELECT count(*) FROM {s}.fact_pnl_entries f WHERE NOT EXISTS "
                            f"(SELECT 1 FROM {s}.dim_hierarchy h WHERE h.node_id = f.category_code)").fetchone()[0]
    assert unmapped > 0  # so every snapshot has an __UNMAPPED__ node


def test_the_currencies_slices_are_the_measured_one_in_five_currencies_by_book_and_mixed(scratch):
    conn, s = scratch, generation.BENCH_SCHEMA
    generation.generate_currencies(conn, s)
    same = f"""SELECT scenario, category_code, daily_amount, wtd_amount, ytd_amount, attributes
               FROM {s}.fact_pnl_entries WHERE use_case_id = %s AND pnl_date = %s ORDER BY id"""
    measured = conn.execute(same, (generation.MAIN_USE_CASE, generation.COB_DATE)).fetchall()
    for use_case, by_book in ((generation.CURRENCY_USE_CASE, True), (generation.MIXED_CURRENCY_USE_CASE, False)):
        spread = dict(conn.execute(f"SELECT coalesce(currency, 'USD'), count(*) FROM {s}.fact_pnl_entries "
                                   "WHERE use_case_id = %s GROUP BY 1", (use_case,)).fetchall())
        assert set(spread) == {"USD", "EUR", "GBP", "JPY", "CHF"} and sum(spread.values()) == 1000
        assert min(spread.values()) >= 100
        # each book in one currency; or, the worst case, a book's facts in the currencies in turn
        most = conn.execute(
            f"SELECT max(n) FROM (SELECT count(DISTINCT coalesce(currency, 'USD')) AS n FROM {s}.fact_pnl_entries "
            "WHERE use_case_id = %s GROUP BY category_code) c", (use_case,)).fetchone()[0]
        assert (most == 1) if by_book else (most > 1), use_case
        assert conn.execute(same, (use_case, generation.COB_DATE)).fetchall() == measured
        run = conn.execute(f"SELECT {s}.create_snapshot(%s, %s)", (use_case, generation.COB_DATE)).fetchone()[0]
        assert conn.execute(f"SELECT currency, rate::text FROM {s}.calculation_run_fx WHERE calculation_run_id = %s "
                            "ORDER BY 1", (run,)).fetchall() == sorted(generation.BENCH_RATES.items())


def test_the_checks_pass_on_the_engine_and_fail_one_cent_off(scratch):
    conn, s = scratch, generation.BENCH_SCHEMA
    _, floor_rows = measurement.timed_floor(conn, s)
    scenario, code, daily, wtd, ytd = floor_rows[0]
    one_cent_off = [(scenario, code, daily + Decimal("0.01"), wtd, ytd), *floor_rows[1:]]
    with pytest.raises(PnlError, match=f"the root's {scenario} natural values .* differ from the sums"), \
            conn.transaction():  # rolled back with its run, which would take the run name of the next check
        checks.check_run(conn, s, one_cent_off)
    run_id, check = checks.check_run(conn, s, floor_rows)
    assert check == {"root_ties_out": True, "result_rows": 3 * (NODES + 1)}

    columns = ", ".join(checks.RESULT_COLUMNS)
    with conn.cursor(row_factory=dict_row) as cur:
        engine_rows = cur.execute(f"SELECT {columns} FROM {s}.fact_calculated_results WHERE calculation_run_id = %s "
                                  "ORDER BY node_id, scenario", (run_id,)).fetchall()
    checks.store_reference_rows(conn, s, engine_rows)
    checks.compare_with_reference(conn, s, run_id)  # equal rows: no error
    engine_rows[0]["ytd_adjusted"] += Decimal("0.01")
    checks.store_reference_rows(conn, s, engine_rows)
    with pytest.raises(PnlError, match=r"differ from the Python reference's: .* 1 engine row\(s\) and 1 reference"):
        checks.compare_with_reference(conn, s, run_id)
    checks.store_reference_rows(conn, s, engine_rows[1:])
    with pytest.raises(PnlError, match=f"{len(engine_rows)} engine rows, {len(engine_rows) - 1} reference rows"):
        checks.compare_with_reference(conn, s, run_id)


def test_the_bench_refuses_a_schema_it_did_not_make(db_url):
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {generation.BENCH_SCHEMA}")
        conn.execute(f"CREATE TABLE {generation.BENCH_SCHEMA}.precious (x integer)")
        with pytest.raises(PnlError, match="exists and was not made by `pnldb bench`; refusing to touch it"):
            generation.prepare_schema(conn, generation.BENCH_SCHEMA)
        assert conn.execute(f"SELECT count(*) FROM {generation.BENCH_SCHEMA}.precious").fetchone()[0] == 0


def test_rules_are_deterministic_nested_and_cover_every_operator():
    rules = generation.make_rules(1000)
    assert rules == generation.make_rules(1000)
    assert rules != generation.make_rules(1000, seed=2)
    assert len({r["node_id"] for r in rules}) == 1000
    operators = {c["operator"] for r in rules for c in r["predicate_json"]["conditions"]}
    assert operators == {"equals", "not_equals", "in", "not_in", "greater_than", "less_than"}
    assert {r["predicate_json"]["conjunction"] for r in rules} == {"AND", "OR"}
    assert {r["node_id"][:2] for r in rules} == {"FI", "RG", "DK", "SD", "BK"}  # every depth carries rules
    ruled = {r["node_id"] for r in rules}
    nested = [n for n in ruled if n.startswith("SD")
              and generation.node_id(2, generation.parent_number(3, int(n[2:]))) in ruled]
    assert nested  # some sub-desk rules sit below a desk rule


# ---------------------------------------------------------------------------------------------- end to end

def _no_scratch_schema_left(db_url) -> bool:
    with psycopg.connect(db_url) as conn:
        return conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = %s",
                            (generation.BENCH_SCHEMA,)).fetchone()[0] == 0


SIZE_KEYS = {"facts_per_scenario", "generate_slice_s", "prewarmed", "fact_rows_total", "fact_table_mb",
             "generate_others_s", "floor_s", "snapshot_s", "scope_only_date", "check", "write_floor_s", "reference",
             "load", "peak_rss_mb", "total_s", "run_readers", "superseded", "currencies", "entitled", "layouts"}
ROW_KEYS = {"facts_per_scenario", "floor_s", "snapshot_s", "snapshot_over_floor", "write_floor_s",
            "reference_over_floors", "snapshot_only_date_s", "floor_only_date_s", "scope_ratio", "reference_s",
            "reference_over_engine", "reference_note", "reference_peak_rss_mb", "load_rows_per_s", "load_note",
            "load_peak_rss_mb", "peak_rss_mb", "verify_s", "readers_snapshot_s", "verify_over_snapshot",
            "explain_first_1000_s", "superseded_versions", "superseded_s", "not_superseded_s", "superseded_ratio",
            "currencies", "one_currency_s", "five_currencies_s", "currencies_ratio", "mixed_currencies_s",
            "mixed_currencies_ratio"}


def test_bench_json_has_exactly_the_measurements_and_counts_of_the_generated_sizes(db_url):
    result = CliRunner().invoke(main, ["--dsn", db_url, "bench", *SMALL, "--json"])
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) == {"started_at", "machine", "options", "hierarchy_nodes", "hierarchy_depth", "sizes",
                           "server", "settings", "peak_rss_mb", "summary", "hierarchies"}
    assert set(report["machine"]) == {"cpus", "memory_gb", "platform", "load_average_at_start", "load_average_at_end"}
    assert report["options"] == {"sizes": [2000], "rules": 20, "repeat": 1, "reference_max": 100_000,
                                 "load_max": 1_000_000, "other_dates": 2, "scope_volume": 1_000_000,
                                 "superseded_versions": 5, "tree_nodes": 30_000, "chain_depth": 1_000,
                                 "layouts": ["nested", "upper", "books", "measures", "in_lists", "absent"]}
    assert set(report["settings"]) == {"server_version", "shared_buffers", "work_mem",
                                       "max_parallel_workers_per_gather", "jit"}
    assert (report["server"], report["hierarchy_nodes"], report["hierarchy_depth"]) == ("--dsn", NODES, 5)
    (size,) = report["sizes"]
    assert set(size) == SIZE_KEYS
    assert size["facts_per_scenario"] == 2000
    assert [len(size["floor_s"]), len(size["snapshot_s"]), len(size["write_floor_s"])] == [1, 1, 1]
    assert {k: len(v) for k, v in size["scope_only_date"].items()} == {"floor_s": 1, "snapshot_s": 1}
    assert size["check"] == {"root_ties_out": True, "result_rows": 3 * (NODES + 1)}  # the data has unmapped codes
    assert set(size["reference"]) == {"seconds", "matches_engine", "peak_rss_mb"}
    assert len(size["reference"]["seconds"]) == 1 and size["reference"]["matches_engine"] is True
    assert set(size["load"]) == {"rows", "seconds", "rows_per_s", "peak_rss_mb"}
    assert size["load"]["rows"] == 4000  # counted in the table after `pnldb load facts` of the 4,000-row file
    assert size["fact_rows_total"] == 2 * 2000 * (1 + 2 + 1)  # the date, 2 other dates, a second use case
    # the snapshot as an operator login entitled by its own grant, beside the superuser's (issue 18)
    assert {k: len(v) for k, v in size["entitled"].items()} == {"operator_s": 1, "superuser_s": 1}
    assert {k: len(v) for k, v in size["run_readers"].items()} == {"snapshot_s": 1, "verify_s": 1,
                                                                   "explain_first_1000_s": 1}
    assert {k: (v if k == "versions" else len(v)) for k, v in size["superseded"].items()} == {
        "versions": 5, "none_s": 1, "superseded_s": 1}
    # the slice again in five currencies (contract §8), side by side with it in one
    assert {k: (v if k == "currencies" else len(v)) for k, v in size["currencies"].items()} == {
        "currencies": 5, "one_s": 1, "five_s": 1, "mixed_s": 1}
    assert any(t["target"] == "a snapshot of books in 5 currencies within 1.2x of the same facts in one"
               for t in report["summary"]["targets"])
    # the snapshot with the rules laid out otherwise, each interleaved with the floor (issue 15)
    assert {layout: (v["rules"], len(v["floor_s"]), len(v["snapshot_s"])) for layout, v in size["layouts"].items()} \
        == {layout: (20, 1, 1) for layout in ("upper", "books", "measures", "in_lists", "absent")}
    assert [r["layout"] for r in report["summary"]["layouts"]] == list(generation.RULE_LAYOUTS)
    assert set(report["summary"]) == {"rows", "targets", "targets_missed", "layouts"}
    assert [set(row) for row in report["summary"]["rows"]] == [ROW_KEYS]
    assert report["summary"] == json.loads(json.dumps(summarize({**report, "summary": None})))
    # a fresh 30,000-node tree and a 1,000-deep chain, each loaded by the loader, then snapshot
    trees = report["hierarchies"]
    assert set(trees) == {"facts_per_scenario", "wide", "chain"} and trees["facts_per_scenario"] == 2000
    assert set(trees["wide"]) == {"nodes", "depth", "analyzed", "load_s", "first_snapshot_s", "snapshot_again_s",
                                  "result_rows"}
    assert {k: trees["wide"][k] for k in ("nodes", "depth", "analyzed", "result_rows")} == {
        "nodes": 30_000, "depth": 4, "analyzed": True, "result_rows": 3 * 30_000}  # 1 + 30 + 900 + 27,000 + 2,069
    assert set(trees["chain"]) == {"nodes", "depth", "analyzed", "load_s", "first_snapshot_s", "result_rows"}
    assert {k: trees["chain"][k] for k in ("nodes", "depth", "analyzed", "result_rows")} == {
        "nodes": 1001, "depth": 1000, "analyzed": True, "result_rows": 3 * 1001}
    assert all(trees[t][k] > 0 for t, k in (("wide", "load_s"), ("wide", "first_snapshot_s"),
                                             ("wide", "snapshot_again_s"), ("chain", "load_s"),
                                             ("chain", "first_snapshot_s")))
    assert _no_scratch_schema_left(db_url)


def test_bench_prints_its_table_progress_on_stderr_and_passes_its_checks(db_url):
    result = CliRunner().invoke(main, ["--dsn", db_url, "bench", *SMALL])
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("facts/scenario"))
    assert re.split(r"\s{2,}", lines[header]) == [
        "facts/scenario", "floor", "write floor", "snapshot", "x floor", "1 date alone", "x alone", "reference",
        "ref/engine", "load rows/s", "peak RSS"]
    assert set(lines[header + 1]) == {"-", " "} and lines[header + 3] == ""  # one row: the one size
    row = lines[header + 2].split()
    assert row[0] == "2,000" and len(re.split(r"\s{2,}", lines[header + 2].strip())) == 11
    assert ("correctness: root ties out to the in-scope facts at every size; engine equals the Python reference "
            "row for row where it ran") in lines
    targets = lines[lines.index("targets:") + 1:]
    assert [re.sub(r"^  \[(met|MISSED|n/a)\] ", "", t).split(":")[0] for t in targets] == [
        "create_snapshot within 3x the floor at >= 1,000,000 facts/scenario",
        "engine >= 10x faster than the Python reference",
        "pnldb process under 150 MB",
        "one date among 20 others and a second use case within 1.2x of that date alone",
        "a snapshot with 5 superseded versions of its slice in the table within 1.1x of one with none",
        "a snapshot of books in 5 currencies within 1.2x of the same facts in one",
        "verify_run of a run costs no more than a snapshot",
        "entitled operator snapshot ≤ 1.05x superuser",
        "explain_node of the root",
        "create_snapshot within 1.5x the floor in every rule layout at >= 1,000,000 facts/scenario",
        "the first snapshot after a fresh 30,000-node hierarchy load within 1.5x of the next"]
    assert any(re.fullmatch(r"2,000: create_snapshot as an operator login entitled to the use case by a grant of its "
                            r"own [0-9.]+ s, as the superuser [0-9.]+ s \([0-9.]+x\), interleaved", line)
               for line in lines)
    assert targets[-3] == ("  [n/a] explain_node of the root: its first 1,000 rows in under 1 s at >= 1,000,000 "
                           "facts/scenario: no size >= 1,000,000")
    assert "hierarchies loaded fresh by the hierarchy loader, 2,000 facts/scenario each:" in lines
    assert any(re.fullmatch(r"  a 30,000-node tree, 4 deep: load [0-9.]+ s \(analysed\), first snapshot [0-9.]+ s, "
                            r"the next [0-9.]+ s", line) for line in lines)
    assert any(re.fullmatch(r"  a 1,000-deep chain \(1,001 nodes\): load [0-9.]+ s, first snapshot [0-9.]+ s", line)
               for line in lines)
    assert targets[0] == ("  [n/a] create_snapshot within 3x the floor at >= 1,000,000 facts/scenario: "
                          "no size >= 1,000,000")
    progress = result.stderr.splitlines()
    assert "2,000 facts/scenario: generating the measured slice (4,000 facts)" in progress
    assert "2,000 facts/scenario: pnldb load facts (4,000 rows)" in progress
    assert "2,000 facts/scenario: generating 5 superseded versions of the slice and the current one" in progress
    assert "2,000 facts/scenario: dropping schema pnldb_bench" in progress
    assert progress[-3:] == ["hierarchies: loading a fresh 30,000-node tree, then its first snapshot",
                             "hierarchies: loading a 1,000-deep chain, then its first snapshot",
                             "hierarchies: dropping schema pnldb_bench"]
    assert _no_scratch_schema_left(db_url)


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
    assert result.stderr.strip().splitlines()[-1].startswith("pnldb: error: the engine's results differ from the "
                                                             "Python reference's: ")
    assert _no_scratch_schema_left(db_url)


def test_bad_sizes_are_refused():
    result = CliRunner().invoke(main, ["bench", "--sizes", "10,abc"])
    assert result.exit_code == 2
    assert result.stderr == ("pnldb: error: Invalid value for '--sizes': expected numbers separated by commas, "
                             "got '10,abc'\n")
    result = CliRunner().invoke(main, ["bench", "--sizes", "0"])
    assert result.exit_code == 2
    assert result.stderr == ("pnldb: error: Invalid value for '--sizes': sizes are positive numbers of facts "
                             "per scenario\n")


def test_the_timed_load_is_the_installed_command_and_the_bench_does_not_import_the_cli():
    usage = subprocess.run([sys.executable, "-m", "pnldb", "load", "facts", "--help"], capture_output=True, text=True)
    assert usage.returncode == 0, usage.stderr
    assert usage.stdout.startswith("Usage: pnldb load facts ")
    imported = subprocess.run([sys.executable, "-c", "import sys, pnldb.bench; print('pnldb.cli' in sys.modules)"],
                              capture_output=True, text=True)
    assert imported.stdout.strip() == "False", imported.stderr
