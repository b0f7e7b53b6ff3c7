"""Contention: snapshots from several sessions at once while facts are reloaded (--replace), rules are
edited and another use case is deleted under its own running snapshots. Every run that completes must
match the Python reference on exactly the facts and rules it saw; no deadlock; nothing orphaned."""
from __future__ import annotations

import io
import json
import random
import threading
import time
from decimal import Decimal

import psycopg

from pnldb import api, reference
from tests.builders import COB, structure, use_case

NODES = [("ROOT", None), ("EMEA", "ROOT"), ("AMER", "ROOT")] + [
    (f"{region}_{i}", region) for region in ("EMEA", "AMER") for i in range(4)]
BOOKS = [n for n, p in NODES if p not in (None, "ROOT")]
SECONDS = 6


def facts_csv(version: int) -> str:
    """Version `version` of the day's facts: its root ACTUAL daily total is exactly version * 1000.00."""
    rng = random.Random(version)
    lines = ["pnl_date,category_code,daily_amount,wtd_amount,ytd_amount,scenario,book,version"]
    amounts = [Decimal(rng.randint(-5000, 5000)) / 100 for _ in range(39)]
    amounts.append(Decimal(version * 1000) - sum(amounts))
    for i, amount in enumerate(amounts):
        code = (BOOKS + ["UNMAPPED_X"])[i % (len(BOOKS) + 1)]
        lines.append(f"{COB},{code},{amount},{amount * 2},{amount * 3},ACTUAL,{rng.choice('xyz')},v{version}")
        lines.append(f"{COB},{code},{-amount},{amount},{amount},PRIOR,{rng.choice('xyz')},v{version}")
    return "\n".join(lines) + "\n"


def facts_as_reference(version: int, uc) -> list[dict]:
    rows = []
    for line in facts_csv(version).splitlines()[1:]:
        date, code, daily, wtd, ytd, scenario, book, tag = line.split(",")
        rows.append({"use_case_id": uc, "pnl_date": date, "scenario": scenario, "category_code": code,
                     "daily_amount": Decimal(daily), "wtd_amount": Decimal(wtd), "ytd_amount": Decimal(ytd),
                     "attributes": {"book": book, "version": tag}})
    return rows


PREDICATES = [
    {"conditions": [{"field": "book", "operator": "equals", "value": "x"}]},
    {"conditions": [{"field": "book", "operator": "not_in", "value": ["y"]},
                    {"field": "daily_amount", "operator": "greater_than", "value": -10}], "conjunction": "OR"},
    {"conditions": [{"field": "daily_amount", "operator": "less_than", "value": 20}]},
]


def test_concurrent_snapshots_reloads_rule_edits_and_a_delete(conn, db_url):
    structure(conn, "S", NODES)
    conn.execute("UPDATE limits SET value = 1000000 WHERE name = 'max_runs_per_date'")  # as many runs as time allows
    main_uc, doomed_uc = use_case(conn, "Main", "S"), use_case(conn, "Doomed", "S")
    api.load_facts(conn, io.BytesIO(facts_csv(1).encode()), "Main")
    api.load_facts(conn, io.BytesIO(facts_csv(2).encode()), "Doomed")
    for node, predicate in zip(("EMEA", "EMEA_1", "ROOT"), PREDICATES):
        for uc in (main_uc, doomed_uc):
            conn.execute("INSERT INTO metadata_rules (use_case_id, node_id, predicate_json) VALUES (%s, %s, %s)",
                         (uc, node, json.dumps(predicate)))

    stop = time.monotonic() + SECONDS
    errors, expected_errors, summaries = [], [], []
    counts = {"snapshots": 0, "reloads": 0, "rule_edits": 0, "reads": 0}
    lock = threading.Lock()

    def session(work):
        def run():
            try:
                with psycopg.connect(db_url, autocommit=True) as mine:
                    mine.execute("SET search_path TO pnl")
                    mine.execute("SET lock_timeout = '20s'")
                    work(mine)
            except Exception as exc:
                errors.append(exc)
        return threading.Thread(target=run)

    def snapshots(uc):
        def work(mine):
            while time.monotonic() < stop:
                try:
                    mine.execute("SELECT create_snapshot(%s, %s)", (uc, COB))
                    with lock:
                        counts["snapshots"] += 1
                except psycopg.errors.NoDataFound as exc:  # the doomed use case is gone
                    expected_errors.append(exc)
                    return
        return work

    def reloads(mine):
        version = 2
        while time.monotonic() < stop:
            version += 1
            api.load_facts(mine, io.BytesIO(facts_csv(version).encode()), "Main", replace=True)
            with lock:
                counts["reloads"] += 1

    def rule_edits(mine):
        rng = random.Random(9)
        while time.monotonic() < stop:
            mine.execute("UPDATE metadata_rules SET predicate_json = %s WHERE use_case_id = %s AND node_id = %s",
                         (json.dumps(rng.choice(PREDICATES)), main_uc, rng.choice(["EMEA", "EMEA_1", "ROOT"])))
            with lock:
                counts["rule_edits"] += 1
            time.sleep(0.01)

    def reads(mine):
        while time.monotonic() < stop:
            for run in mine.execute("SELECT list_runs(max_runs => 5)").fetchone()[0]["runs"]:
                try:
                    mine.execute("SELECT get_run(%s)", (run["id"],))
                except psycopg.errors.NoDataFound as exc:  # listed, then deleted with the doomed use case
                    if run["use_case_id"] != str(doomed_uc):
                        raise
                    expected_errors.append(exc)
            with lock:
                counts["reads"] += 1

    def delete_later(mine):
        time.sleep(SECONDS / 2)
        summaries.append(api.delete_use_case(mine, doomed_uc))  # on a coordinator, then purges the shards

    threads = [session(snapshots(main_uc)) for _ in range(4)] + [
        session(snapshots(doomed_uc)), session(snapshots(doomed_uc)),
        session(reloads), session(rule_edits), session(reads), session(delete_later)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=SECONDS + 60)
    assert not any(t.is_alive() for t in threads), "a session is stuck"
    assert errors == []
    assert counts["snapshots"] >= 8 and counts["reloads"] >= 2 and counts["rule_edits"] >= 2, counts  # no starvation

    # the delete's summary is what it removed, and nothing of the doomed use case is left anywhere
    [summary] = summaries
    assert conn.execute("SELECT count(*) FROM use_cases WHERE use_case_id = %s", (doomed_uc,)).fetchone()[0] == 0
    assert summary["facts_purged"] == 80 and summary["rules_purged"] == 3
    for table, column in (("fact_pnl_entries", "use_case_id"), ("metadata_rules", "use_case_id"),
                          ("calculation_runs", "use_case_id")):
        assert conn.execute(f"SELECT count(*) FROM {table} WHERE {column} = %s", (doomed_uc,)).fetchone()[0] == 0
    if conn.execute("SELECT to_regprocedure('shard_fact_rows(uuid, date, bigint[])') IS NOT NULL").fetchone()[0]:
        # a coordinator's shards: purged once the delete committed
        assert conn.execute("SELECT count(*) FROM shard_fact_rows(%s, NULL, NULL)", (doomed_uc,)).fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM shard_purges").fetchone()[0] == 0
    assert conn.execute("""SELECT count(*) FROM fact_calculated_results x WHERE x.calculation_run_id IS NOT NULL
        AND NOT EXISTS (SELECT 1 FROM calculation_runs r WHERE r.id = x.calculation_run_id)""").fetchone()[0] == 0
    assert conn.execute("""SELECT count(*) FROM calculation_run_rules x
        WHERE NOT EXISTS (SELECT 1 FROM calculation_runs r WHERE r.id = x.calculation_run_id)""").fetchone()[0] == 0

    # every completed run matches the reference on exactly the facts version and rules it saw
    runs = conn.execute("SELECT id, status FROM calculation_runs WHERE use_case_id = %s", (main_uc,)).fetchall()
    assert runs and all(status == "COMPLETED" for _, status in runs)
    columns = [f"{m}_{k}" for m in reference.MEASURES for k in ("natural", "adjusted", "plug")]
    for run_id, _ in runs:
        total = conn.execute("SELECT daily_natural FROM fact_calculated_results WHERE calculation_run_id = %s "
                             "AND node_id = 'ROOT' AND scenario = 'ACTUAL'", (run_id,)).fetchone()[0]
        version = int(total / 1000)
        assert total == version * 1000
        rules = [(node, json.loads(text, parse_float=Decimal)) for node, text in conn.execute(
            "SELECT node_id, predicate_json::text FROM calculation_run_rules WHERE calculation_run_id = %s", (run_id,))]
        expected = {(r["node_id"], r["scenario"]): [r[c] for c in columns] for r in reference.snapshot(
            [(n, p, f"Name of {n}") for n, p in NODES], facts_as_reference(version, main_uc), rules, main_uc, COB)}
        got = {(r[0], r[1]): list(r[2:]) for r in conn.execute(
            f"SELECT node_id, scenario, {', '.join(columns)} FROM fact_calculated_results "
            "WHERE calculation_run_id = %s", (run_id,))}
        assert got == expected, f"run {run_id} (facts v{version}) differs from the reference"
