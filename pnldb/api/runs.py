"""Runs: create_snapshot, list_runs, get_run, compare_runs, delete_use_case — one SQL call each — and
the root of a run's results."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from uuid import UUID

import psycopg
from psycopg import sql as pgsql

from pnldb.api.connection import call_json_text, call_rows, purge_shards_if_committed
from pnldb.jsonfmt import from_sql_json
from pnldb.vocabulary import RESULT_VALUE_COLUMNS


def create_snapshot(conn, use_case_id: UUID | str, pnl_date: dt.date, run_name: str | None = None,
                    triggered_by: str | None = None) -> dict:
    """Take a snapshot; returns the run as get_run reports it."""
    return from_sql_json(create_snapshot_text(conn, use_case_id, pnl_date, run_name, triggered_by))


def create_snapshot_text(conn, use_case_id: UUID | str, pnl_date: dt.date, run_name: str | None = None,
                         triggered_by: str | None = None) -> str:
    run_id = conn.execute("SELECT create_snapshot(%s::uuid, %s::date, %s, %s)",
                          (str(use_case_id), pnl_date, run_name, triggered_by)).fetchone()[0]
    return get_run_text(conn, run_id)


def list_runs(conn, pnl_date: dt.date | None = None, use_case_id: UUID | str | None = None,
              max_runs: int = 100) -> dict:
    return from_sql_json(list_runs_text(conn, pnl_date, use_case_id, max_runs))


def list_runs_text(conn, pnl_date: dt.date | None = None, use_case_id: UUID | str | None = None,
                   max_runs: int = 100) -> str:
    # Cast: psycopg sends a large Python int as bigint, and list_runs(..., bigint) does not exist; out of
    # range should say so.
    return conn.execute("SELECT list_runs(%s::date, %s::uuid, %s::integer)::text",
                        (pnl_date, None if use_case_id is None else str(use_case_id), max_runs)).fetchone()[0]


def get_run(conn, run_id: UUID | str) -> dict:
    return from_sql_json(get_run_text(conn, run_id))


def get_run_text(conn, run_id: UUID | str) -> str:
    return call_json_text(conn, "get_run", str(run_id))


def delete_use_case(conn, use_case_id: UUID | str) -> dict:
    return from_sql_json(delete_use_case_text(conn, use_case_id))


def delete_use_case_text(conn, use_case_id: UUID | str) -> str:
    deleted = call_json_text(conn, "delete_use_case", str(use_case_id))
    purge_shards_if_committed(conn)
    return deleted


def compare_runs(conn, run_a: UUID | str, run_b: UUID | str, tolerance: Decimal = Decimal(0)) -> list[dict]:
    return call_rows(conn, "SELECT * FROM compare_runs(%s::uuid, %s::uuid, %s::numeric)",
                     (str(run_a), str(run_b), tolerance))


def run_root(conn, run_id: UUID | str) -> dict[str, dict]:
    """The root node's values in a run, by scenario: {"ACTUAL": {"daily_natural": Decimal, ...}, ...}."""
    columns = pgsql.SQL(", ").join(pgsql.Identifier(c) for c in RESULT_VALUE_COLUMNS)
    rows = call_rows(conn, pgsql.SQL("SELECT scenario, {} FROM fact_calculated_results "
                                     "WHERE calculation_run_id = %s::uuid AND depth = 0").format(columns),
                     (str(run_id),))
    return {row.pop("scenario"): row for row in rows}



def verify_run(conn, run_id: UUID | str) -> dict:
    """Recompute the run from the inputs it recorded and compare every result row (contract §6):
    {"run_id", "reproduced", "rows_checked", "mismatch_count", "mismatches": [at most 20]}, and check its
    digest and its link of the chain (issue 18): "digest", "digest_ok", "chain_seq", "previous_run_id",
    "chain_ok", "chain_problem" (digest_ok and chain_ok None for a run taken before digests)."""
    return from_sql_json(verify_run_text(conn, run_id))


def verify_run_text(conn, run_id: UUID | str) -> str:
    return call_json_text(conn, "verify_run", str(run_id))


def verify_chain(conn, use_case_id: UUID | str) -> dict:
    """A use case's chain of runs checked, digests recomputed (sql/0572): {"use_case_id", "intact",
    "links_checked", "runs_checked", "unlinked_runs", "head", "first_broken", "problems": [at most 20]}."""
    return from_sql_json(verify_chain_text(conn, use_case_id))


def verify_chain_text(conn, use_case_id: UUID | str) -> str:
    return call_json_text(conn, "verify_chain", str(use_case_id))


def run_is_sound(verdict: dict) -> str | None:
    """What is wrong with a run by its verify_run verdict, None when nothing is."""
    if verdict["digest_ok"] is False:
        return "its digest is not that of its rows: changed after it completed"
    if verdict["chain_ok"] is False:
        return verdict["chain_problem"]
    if verdict.get("tree_problem"):
        return verdict["tree_problem"]
    if not verdict["reproduced"]:
        return f"not reproduced: {verdict['mismatch_count']} mismatches in {verdict['rows_checked']} result rows"
    return None


def _verified(conn, run_id: str) -> dict:
    """{"problem", "unverifiable"} of one run: unverifiable is why verify_run refused it (a run taken before
    runs recorded their inputs), else None."""
    try:
        with conn.transaction():
            return {"problem": run_is_sound(verify_run(conn, run_id)), "unverifiable": None}
    except psycopg.errors.ObjectNotInPrerequisiteState as exc:
        return {"problem": None, "unverifiable": exc.diag.message_primary}


def verify_use_case(conn, use_case_id: UUID | str) -> dict:
    """Every COMPLETED run of the use case verified (verify_run) and its chain (verify_chain), runs in chain
    order: {"use_case_id", "intact", "chain": verify_chain's verdict, "runs": [{"run_id", "pnl_date",
    "run_name", "chain_seq", "problem", "unverifiable"}], "first_broken": {"run_id", "chain_seq", "problem"} or
    None}. A run verify_run cannot recompute (taken before runs recorded their inputs) is unverifiable, not
    broken.
    The first broken link is the earliest in the chain, a purged link or a run taken around the triggers
    included."""
    chain = verify_chain(conn, use_case_id)
    runs = conn.execute(
        "SELECT r.id::text, r.pnl_date, r.run_name, r.chain_seq FROM calculation_runs r "
        "WHERE r.use_case_id = %s AND r.status = 'COMPLETED' ORDER BY r.chain_seq NULLS FIRST, r.executed_at, r.id",
        (str(use_case_id),)).fetchall()
    checked = [{"run_id": run_id, "pnl_date": pnl_date, "run_name": name, "chain_seq": seq,
                **_verified(conn, run_id)} for run_id, pnl_date, name, seq in runs]
    chained_problems = {p["run_id"]: p for p in chain["problems"]}
    for run in checked:  # a run written around the triggers: verify_run does not see it is outside the chain
        if run["problem"] is None and run["run_id"] in chained_problems:
            run["problem"] = chained_problems[run["run_id"]]["problem"]
    broken = [(r["chain_seq"] or 0, i, r["run_id"], r["chain_seq"], r["problem"]) for i, r in enumerate(checked)
              if r["problem"] is not None]
    broken += [(p["chain_seq"] or 0, -1, p["run_id"], p["chain_seq"], p["problem"]) for p in chain["problems"]
               if p["purged"]]
    first = min(broken, key=lambda b: (b[3] is None, b[0], b[1]), default=None)
    return {"use_case_id": str(use_case_id), "intact": first is None, "chain": chain, "runs": checked,
            "first_broken": None if first is None else {"run_id": first[2], "chain_seq": first[3],
                                                        "problem": first[4]}}


def purge_runs(conn, use_case_id: UUID | str, before: dt.date) -> dict:
    """Remove the use case's trial and FAILED runs of COB dates before `before` (never an official, pending
    or locked one); the counts: {"use_case_id", "before", "runs_purged", "trial_runs_purged",
    "failed_runs_purged", "results_purged", "runs_kept_official", "runs_kept_pending", "runs_kept_locked"}."""
    return from_sql_json(purge_runs_text(conn, use_case_id, before))


def purge_runs_text(conn, use_case_id: UUID | str, before: dt.date) -> str:
    return conn.execute("SELECT purge_runs(%s::uuid, %s::date)::text", (str(use_case_id), before)).fetchone()[0]
