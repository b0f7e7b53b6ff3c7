"""Runs: create_snapshot, list_runs, get_run, compare_runs, delete_use_case — one SQL call each."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from uuid import UUID

from pnldb.api.connection import call_json, call_rows


def create_snapshot(conn, use_case_id: UUID | str, pnl_date: dt.date, run_name: str | None = None,
                    triggered_by: str | None = None) -> dict:
    """Take a snapshot; returns the run as get_run reports it."""
    run_id = conn.execute("SELECT create_snapshot(%s::uuid, %s::date, %s, %s)",
                          (str(use_case_id), pnl_date, run_name, triggered_by)).fetchone()[0]
    return get_run(conn, run_id)


def list_runs(conn, pnl_date: dt.date | None = None, use_case_id: UUID | str | None = None,
              max_runs: int = 100) -> dict:
    return call_json(conn, "list_runs", pnl_date, None if use_case_id is None else str(use_case_id), max_runs)


def get_run(conn, run_id: UUID | str) -> dict:
    return call_json(conn, "get_run", str(run_id))


def delete_use_case(conn, use_case_id: UUID | str) -> dict:
    return call_json(conn, "delete_use_case", str(use_case_id))


def compare_runs(conn, run_a: UUID | str, run_b: UUID | str, tolerance: Decimal = Decimal(0)) -> list[dict]:
    return call_rows(conn, "SELECT * FROM compare_runs(%s::uuid, %s::uuid, %s::numeric)",
                     (str(run_a), str(run_b), tolerance))
