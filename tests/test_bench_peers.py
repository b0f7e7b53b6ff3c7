"""`pnldb bench --peers`: each peer (pandas, polars, DuckDB) computes contract §2 exactly, its rows equal
the engine's row for row on a small schema with nested rules and every operator, absent attribute and
measure condition; a peer whose packages are missing is skipped with one line; the summary's peer table
and its target line, met and missed, on hand-made reports. Each peer's tests skip when the peer is not
installed (pip install 'pnldb[bench]'). No timing is asserted: timings depend on the machine."""
from __future__ import annotations

import copy
import importlib.util
import io

import pytest
from click.testing import CliRunner

from pnldb.bench import format_report, peers, summarize
from pnldb.bench.peers import common
from pnldb.bench.peers.runner import measure_peers
from pnldb.cli import main
from pnldb.errors import PnlError
from tests.builders import COB, EARLIER, facts, hand_made_report, rule, snapshot, structure, use_case

TREE = [("ROOT", None), ("EU", "ROOT"), ("US", "ROOT"), ("EU_RATES", "EU"), ("EU_FX", "EU"), ("US_EQ", "US"),
        ("B1", "EU_RATES"), ("B2", "EU_RATES"), ("B3", "EU_FX"), ("B4", "US_EQ"), ("B5", "US_EQ"), ("EMPTY", "US")]


def _conds(*conditions, conjunction: str = "AND") -> dict:
    return {"conditions": [{"field": f, "operator": o, "value": v} for f, o, v in conditions],
            "conjunction": conjunction}


# nested: ROOT > EU > EU_RATES > B1, and US > US_EQ > B4; every operator on text, measures and
# category_code; attributes some facts lack (region), that none has (desk_head), whole and fractional
# cents on measures, AND and OR
RULES = {
    "ROOT": _conds(("desk_head", "not_in", ["nobody", "anyone"])),  # no fact has desk_head: true
    "EU": _conds(("strategy", "not_in", ["HEDGE", "ARB"]), ("daily_amount", "greater_than", -500)),
    "EU_RATES": _conds(("region", "in", ["EMEA", "NORDICS"]), ("ytd_amount", "less_than", 1000.005),
                       conjunction="OR"),
    "B1": _conds(("legal_entity", "not_equals", "LE2"), ("category_code", "in", ["B1", "B2"])),
    "US": _conds(("region", "equals", "AMER")),  # facts without region: false
    "US_EQ": _conds(("wtd_amount", "greater_than", 10.005), ("strategy", "equals", "O'BRIEN"), conjunction="OR"),
    "B4": _conds(("daily_amount", "not_equals", 7.5), ("daily_amount", "not_in", [1, 2.25, 3.001]),
                 ("ytd_amount", "in", [0, 100.25, 5.001]), conjunction="OR"),
    "B5": _conds(("daily_amount", "equals", 12.345), ("category_code", "not_equals", "B4"), conjunction="OR"),
    "EU_FX": _conds(("category_code", "not_in", ["B3"]), ("wtd_amount", "equals", 20), conjunction="OR"),
    "EMPTY": _conds(("desk_head", "equals", "nobody")),
}


def _attrs(i: int) -> dict:
    attributes = {"strategy": ["RATES", "HEDGE", "O'BRIEN", "", "ARB", "FX"][i % 6],
                  "legal_entity": ["LE1", "LE2", "LE3"][i % 3], "book": f"BOOK{i % 4}"}
    if i % 5:
        attributes["region"] = ["EMEA", "AMER", "APAC", "NORDICS"][i % 4]
    if i % 7 == 0:
        attributes["region"] = None  # JSON null: absent, as in a predicate
    return attributes


def _amount(i: int, scale: int) -> str:
    cents = ((i * 7919 + scale * 104729) % 400001) - 200000
    return f"{cents / 100:.2f}" if i % 11 else f"{cents * 1000000003 // 100}.{abs(cents) % 100:02d}"


def _rows(n: int, date=COB) -> list[tuple]:
    codes = ["B1", "B2", "B3", "B4", "B5", "EU_RATES", "US", "ROOT", "NOWHERE", "EU", "US_EQ"]
    rows = []
    for i in range(n):
        daily = ["7.50", "1.00", "2.25", "3.00", "12.35", "-500.00", "-499.99", "0.00"][i % 8] if i % 3 == 0 \
            else _amount(i, 1)
        wtd = ["10.01", "10.00", "20.00"][i % 3] if i % 4 == 0 else _amount(i, 2)
        ytd = ["1000.00", "1000.01", "100.25", "0.00", "5.00"][i % 5] if i % 2 == 0 else _amount(i, 3)
        rows.append((["ACTUAL", "PRIOR"][i % 2 if i % 9 else 0], codes[i % len(codes)], daily, wtd, ytd, _attrs(i),
                     date))
    return rows


@pytest.fixture
def peer_db(conn):
    """A use case with the tree, the rules and facts on its date, on another date and of another use case."""
    structure(conn, "PEERS", TREE)
    uc = use_case(conn, "peers", "PEERS")
    other = use_case(conn, "other", "PEERS")
    for node, predicate in RULES.items():
        rule(conn, uc, node, predicate)
    facts(conn, uc, _rows(400))
    facts(conn, uc, _rows(50, EARLIER))
    facts(conn, other, _rows(60))
    return conn, uc


def _run_peer(conn, dsn, peer: str, uc) -> None:
    module = pytest.importorskip(f"pnldb.bench.peers.{peer}_peer", reason=f"peer {peer} not installed")
    common.create_table(conn, "pnl", peer)
    clock = common.Clock(common.postmaster_pid(conn))
    rows = common.run_peer(module, peer, conn, dsn, "pnl", uc, COB, clock)
    timings = clock.result()
    assert set(timings) >= {"read_s", "compute_s", "write_s", "wall_s", "cpu_s"} and rows > 0


@pytest.mark.parametrize("peer", peers.PEERS)
def test_each_peer_writes_exactly_the_engines_rows(peer_db, db_url, peer):
    conn, uc = peer_db
    for module in peers.REQUIRES[peer]:
        pytest.importorskip(module)
    _run_peer(conn, db_url, peer, uc)
    run_id = snapshot(conn, uc)
    assert common.compare_with_engine(conn, "pnl", peer, run_id) == {"rows": 3 * (len(TREE) + 1),
                                                                      "matches_engine": True}
    # the rows carry what the contract says: the unmapped node, a rule's exclusions, nonzero plugs
    row = conn.execute(f"SELECT count(*) FILTER (WHERE node_id = '__UNMAPPED__'), count(*) FILTER (WHERE NOT "
                       f"is_reconciled), count(*) FILTER (WHERE is_override) FROM pnl.{common.table_name(peer)}"
                       ).fetchone()
    assert row[0] == 3 and row[1] > 0 and row[2] == 3 * len(RULES)


@pytest.mark.parametrize("peer", peers.PEERS)
def test_each_peer_reads_through_psycopg_when_there_is_no_dsn_for_psql(peer_db, peer):
    conn, uc = peer_db
    for module in peers.REQUIRES[peer]:
        pytest.importorskip(module)
    _run_peer(conn, None, peer, uc)
    assert common.compare_with_engine(conn, "pnl", peer, snapshot(conn, uc))["matches_engine"]


def test_a_peer_row_that_differs_from_the_engines_fails_the_comparison(peer_db, db_url):
    conn, uc = peer_db
    pytest.importorskip("polars")
    _run_peer(conn, db_url, "polars", uc)
    run_id = snapshot(conn, uc)
    conn.execute("UPDATE pnl.bench_peer_polars SET ytd_plug = ytd_plug + 0.01 WHERE node_id = 'B4' "
                 "AND scenario = 'ACTUAL'")
    with pytest.raises(PnlError, match=r"peer polars's rows differ from the engine's: 39 engine rows, 39 polars "
                                       r"rows, 1 engine row\(s\) and 1 polars row\(s\) without an equal"):
        common.compare_with_engine(conn, "pnl", "polars", run_id)


def test_the_peers_run_in_their_own_processes_interleaved_with_the_engine(peer_db, db_url):
    conn, uc = peer_db
    ready = tuple(p for p in peers.PEERS if not peers.missing_modules(p))
    if not ready:
        pytest.skip("no peer installed")
    run_id = snapshot(conn, uc)
    measured = measure_peers(conn, db_url, "pnl", "pnl", run_id, ready, 2, lambda _: None, "test",
                             use_case=uc, pnl_date=COB)
    assert len(measured["engine"]["wall_s"]) == 2 and len(measured["engine"]["cpu_s"]) == 2
    for peer in ready:
        got = measured["peers"][peer]
        assert got["matches_engine"] is True and got["rows"] == 3 * (len(TREE) + 1)
        assert all(len(got[phase]) == 2 for phase in ("read_s", "compute_s", "write_s", "wall_s", "cpu_s"))
        assert got["peak_rss_mb"] > 0
    # the scratch tables are gone
    assert conn.execute("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'bench_peer_%'").fetchone()[0] == 0


def test_the_peers_refuse_a_slice_with_facts_in_another_currency(peer_db):
    conn, uc = peer_db
    conn.execute("INSERT INTO pnl.fx_rates (pnl_date, currency, reporting_currency, rate) "
                 "VALUES (%s, 'EUR', 'USD', 1.1)", (COB,))
    conn.execute("INSERT INTO pnl.fact_pnl_entries (use_case_id, pnl_date, scenario, category_code, currency, "
                 "daily_amount, wtd_amount, ytd_amount, amount, attributes) "
                 "VALUES (%s, %s, 'ACTUAL', 'B1', 'EUR', 1, 1, 1, 1, '{}')", (uc, COB))
    plan = common.read_plan(conn, "pnl", uc, COB)
    with pytest.raises(PnlError, match="the peers compute facts in the reporting currency only; 1 facts"):
        common.check_currencies(conn, "pnl", plan, uc, COB)


# ------------------------------------------------------------------------------------------ the plan

def test_measure_conditions_compare_whole_cents_exactly():
    plan = common.build_plan([("R", None, "Root")], [("R", _conds(
        ("daily_amount", "greater_than", 10.005), ("daily_amount", "less_than", -0.001),
        ("wtd_amount", "in", [10, 10.001, -2.5]), ("ytd_amount", "not_equals", 1e30)))], "USD")
    (_, conditions), = plan.rules
    assert [(c.operator, c.bound, c.values) for c in conditions] == [
        ("greater_than", 1000, frozenset()),  # > 10.005 is >= 10.01: cents > 1000
        ("less_than", 0, frozenset()),  # < -0.001 is <= -0.01: cents < 0
        ("in", 0, frozenset({1000, -250})),  # 10.001 equals no numeric(18,2) amount
        ("not_equals", 0, frozenset()),  # 1e30 is no amount either: not_equals is true for all
    ]


def test_the_int64_cents_guard_refuses_sums_that_could_overflow():
    common.guard_cents(9, 10 ** 18, "peer")  # 9e18 < 2^63 - 1
    with pytest.raises(PnlError, match="10 amounts of up to 1,000,000,000,000,000,000 cents could overflow int64"):
        common.guard_cents(10, 10 ** 18, "peer")


# ------------------------------------------------------------------------------------------ skipping

def test_a_peer_whose_package_is_missing_is_skipped_with_one_line(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "polars" else real(name, *a))
    stream = io.StringIO()
    ready, skipped = peers.available(("polars",), stream=stream)
    assert ready == ()
    assert stream.getvalue() == "peer polars skipped: pip install 'pnldb[bench]' (polars not installed)\n"
    assert skipped == {"polars": "peer polars skipped: pip install 'pnldb[bench]' (polars not installed)"}


def test_the_peers_option_takes_names_or_all_and_refuses_others():
    assert peers.parse_peers("") == ()
    assert peers.parse_peers("all") == ("pandas", "polars", "duckdb")
    assert peers.parse_peers("duckdb, pandas,duckdb") == ("duckdb", "pandas")
    result = CliRunner().invoke(main, ["bench", "--peers", "pandas,spark"])
    assert result.exit_code == 2
    assert "unknown peer(s) spark; the peers are pandas, polars, duckdb (or 'all')" in result.output


# ------------------------------------------------------------------------------------------ summary

def _with_peers(engine_wall: float, engine_cpu: float | None) -> dict:
    report = copy.deepcopy(hand_made_report())
    report["peers_skipped"] = {"duckdb": "peer duckdb skipped: pip install 'pnldb[bench]' (duckdb not installed)"}
    for size in report["sizes"]:
        size["peers"] = {
            "engine": {"wall_s": [engine_wall, engine_wall + 1, engine_wall - 1],
                       "cpu_s": [engine_cpu] * 3, "client_cpu_s": [0.0] * 3,
                       "server_cpu_s": [engine_cpu] * 3},
            "peers": {
                "pandas": {"read_s": [1.0, 2.0, 3.0], "compute_s": [1.0] * 3, "write_s": [0.5] * 3,
                           "wall_s": [4.0, 4.5, 5.0], "cpu_s": [6.0] * 3, "client_cpu_s": [3.0] * 3,
                           "server_cpu_s": [3.0] * 3, "rows": 33, "matches_engine": True, "peak_rss_mb": 300.0},
                "polars": {"read_s": [1.0] * 3, "compute_s": [0.5] * 3, "write_s": [0.5] * 3,
                           "wall_s": [6.0] * 3, "cpu_s": [5.0] * 3, "client_cpu_s": [2.0] * 3,
                           "server_cpu_s": [3.0] * 3, "rows": 33, "matches_engine": True, "peak_rss_mb": 200.0}}}
    return report


def _peer_target(summary: dict, n: int) -> dict:
    (found,) = [t for t in summary["targets"] if t["target"] == "engine >= 2x faster than the fastest peer "
                f"(wall and CPU) at {n:,} facts/scenario"]
    return found


def test_the_peer_target_is_met_when_the_engine_is_twice_as_fast_in_wall_and_cpu():
    summary = summarize(_with_peers(2.0, 2.5))
    target = _peer_target(summary, 100_000)
    # fastest peer by wall: pandas 4.5 s (2.25x); by CPU: polars 5 s (2x)
    assert target == {"target": "engine >= 2x faster than the fastest peer (wall and CPU) at 100,000 facts/scenario",
                      "met": True, "measured": "wall 2.25x (fastest pandas 4.500 s, engine 2.000 s), CPU 2.00x "
                                               "(fastest polars 5.000 s, engine 2.500 s)"}
    engine, pandas_row, polars_row = [r for r in summary["peers"] if r["facts_per_scenario"] == 100_000]
    assert engine["who"] == "engine" and engine["wall_s"] == 2.0 and engine["cpu_s"] == 2.5
    assert pandas_row["read_s"] == 2.0 and pandas_row["wall_x_engine"] == 2.25 and pandas_row["cpu_x_engine"] == 2.4
    assert polars_row["compute_s"] == 0.5 and polars_row["cpu_x_engine"] == 2.0 and polars_row["rows"] == 33
    text = format_report({**_with_peers(2.0, 2.5), "summary": summary})
    assert "[met] engine >= 2x faster than the fastest peer (wall and CPU) at 100,000 facts/scenario" in text
    assert "peer duckdb skipped: pip install 'pnldb[bench]' (duckdb not installed)" in text
    assert any(line.split()[:3] == ["100,000", "pandas", "2.000"] and "2.25x" in line for line in text.splitlines())


def test_the_peer_target_is_missed_when_either_wall_or_cpu_falls_short():
    summary = summarize(_with_peers(2.0, 3.0))  # CPU: polars 5 s against 3 s, 1.67x
    assert _peer_target(summary, 1_000_000)["met"] is False
    assert "CPU 1.67x (fastest polars 5.000 s, engine 3.000 s)" in _peer_target(summary, 1_000_000)["measured"]
    summary = summarize(_with_peers(3.0, 1.0))  # wall: pandas 4.5 s against 3 s, 1.5x
    assert _peer_target(summary, 100_000)["met"] is False
    text = format_report({**_with_peers(3.0, 1.0), "summary": summary})
    assert "[MISSED] engine >= 2x faster than the fastest peer (wall and CPU) at 100,000 facts/scenario: wall 1.50x" \
        in text


def test_without_the_servers_cpu_the_peer_target_is_not_judged():
    summary = summarize(_with_peers(1.0, None))
    target = _peer_target(summary, 100_000)
    assert target["met"] is None and "CPU n/a (the server's CPU is not readable from here)" in target["measured"]


def test_a_report_without_peers_has_no_peer_rows_nor_target():
    summary = summarize(hand_made_report())
    assert "peers" not in summary
    assert not [t for t in summary["targets"] if "fastest peer" in t["target"]]
