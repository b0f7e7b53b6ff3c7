"""The close (contract §7): checks, transitions, status and history — one SQL call each. Each returns
the SQL JSON as Python objects; its `*_text` variant the JSON text exactly as the SQL wrote it."""
from __future__ import annotations

import datetime as dt
import json
from uuid import UUID

from pnldb.api.connection import call_json_text
from pnldb.jsonfmt import from_sql_json


def _id(value: UUID | str | None) -> str | None:
    return None if value is None else str(value)


def _call(conn, query: str, args) -> str:
    return conn.execute(query, args).fetchone()[0]


def check_run_text(conn, run_id: UUID | str) -> str:
    return call_json_text(conn, "check_run", str(run_id))


def submit_run_text(conn, run_id: UUID | str, comment: str | None = None,
                    acknowledgements: dict[str, str] | None = None) -> str:
    return _call(conn, "SELECT submit_run(%s::uuid, %s, %s::jsonb)::text",
                 (str(run_id), comment, json.dumps(acknowledgements or {})))


def approve_run_text(conn, run_id: UUID | str, comment: str | None = None) -> str:
    return _call(conn, "SELECT approve_run(%s::uuid, %s)::text", (str(run_id), comment))


def reject_run_text(conn, run_id: UUID | str, reason: str) -> str:
    return _call(conn, "SELECT reject_run(%s::uuid, %s)::text", (str(run_id), reason))


def withdraw_run_text(conn, run_id: UUID | str) -> str:
    return call_json_text(conn, "withdraw_run", str(run_id))


def sign_off_run_text(conn, run_id: UUID | str, comment: str | None = None,
                      acknowledgements: dict[str, str] | None = None) -> str:
    return _call(conn, "SELECT sign_off_run(%s::uuid, %s, %s::jsonb)::text",
                 (str(run_id), comment, json.dumps(acknowledgements or {})))


def reopen_cob_text(conn, use_case_id: UUID | str, pnl_date: dt.date, reason: str) -> str:
    return _call(conn, "SELECT reopen_cob(%s::uuid, %s::date, %s)::text", (str(use_case_id), pnl_date, reason))


def lock_cob_text(conn, use_case_id: UUID | str, through_date: dt.date, reason: str) -> str:
    return _call(conn, "SELECT lock_cob(%s::uuid, %s::date, %s)::text", (str(use_case_id), through_date, reason))


def get_cob_status_text(conn, use_case_id: UUID | str, pnl_date: dt.date) -> str:
    return _call(conn, "SELECT get_cob_status(%s::uuid, %s::date)::text", (str(use_case_id), pnl_date))


def list_cob_status_text(conn, use_case_id: UUID | str | None = None, from_date: dt.date | None = None,
                         to_date: dt.date | None = None) -> str:
    return _call(conn, "SELECT list_cob_status(%s::uuid, %s::date, %s::date)::text",
                 (_id(use_case_id), from_date, to_date))


def close_history_text(conn, use_case_id: UUID | str | None = None, pnl_date: dt.date | None = None) -> str:
    return _call(conn, "SELECT close_history(%s::uuid, %s::date)::text", (_id(use_case_id), pnl_date))


def set_check_text(conn, use_case_id: UUID | str, code: str, severity: str, params: dict | None = None) -> str:
    return _call(conn, "SELECT set_check(%s::uuid, %s, %s, %s::jsonb)::text",
                 (str(use_case_id), code, severity, json.dumps(params or {})))


def set_signoff_policy_text(conn, use_case_id: UUID | str, policy: str) -> str:
    return _call(conn, "SELECT set_signoff_policy(%s::uuid, %s)::text", (str(use_case_id), policy))


def official_run(conn, use_case_id: UUID | str, pnl_date: dt.date, as_of: dt.datetime | None = None) -> UUID | None:
    """The run that was official at as_of (now by default), or None."""
    return conn.execute("SELECT official_run(%s::uuid, %s::date, %s::timestamptz)",
                        (str(use_case_id), pnl_date, as_of)).fetchone()[0]


def close_marks(conn, run_ids: list) -> dict[str, str]:
    """{run id: 'OFFICIAL' | 'PENDING'} for those of the runs that are their unit's official or pending run."""
    ids = [str(r) for r in run_ids]
    rows = conn.execute("SELECT official_run_id::text, pending_run_id::text FROM v_cob_status "
                        "WHERE official_run_id = ANY (%s::uuid[]) OR pending_run_id = ANY (%s::uuid[])",
                        (ids, ids)).fetchall()
    marks = {}
    for official, pending in rows:
        if official:
            marks[official] = "OFFICIAL"
        if pending:
            marks[pending] = "PENDING"
    return marks


def _parsed(text_function):
    def parsed(*args, **kwargs):
        return from_sql_json(text_function(*args, **kwargs))
    parsed.__name__ = text_function.__name__.removesuffix("_text")
    parsed.__doc__ = f"{text_function.__name__.removesuffix('_text')}(...) of the SQL API, as Python objects."
    return parsed


check_run = _parsed(check_run_text)
submit_run = _parsed(submit_run_text)
approve_run = _parsed(approve_run_text)
reject_run = _parsed(reject_run_text)
withdraw_run = _parsed(withdraw_run_text)
sign_off_run = _parsed(sign_off_run_text)
reopen_cob = _parsed(reopen_cob_text)
lock_cob = _parsed(lock_cob_text)
get_cob_status = _parsed(get_cob_status_text)
list_cob_status = _parsed(list_cob_status_text)
close_history = _parsed(close_history_text)
set_check = _parsed(set_check_text)
set_signoff_policy = _parsed(set_signoff_policy_text)
