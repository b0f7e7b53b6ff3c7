"""What the text and the HTML report both show: the run's header fields, the node marks, money."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from pnldb.vocabulary import MEASURES, SCENARIOS

RULE_MARK, PLUG_MARK = "*", "~"


def has_plug(node: dict) -> bool:
    return any(node[s] is not None and node[s][f"{m}_plug"] for s in SCENARIOS for m in MEASURES)


def markers(node: dict) -> str:
    return (RULE_MARK if node["is_override"] else " ") + (PLUG_MARK if has_plug(node) else " ")


def money(value: Decimal | None) -> str:
    """1,234,567.89 — exact on Decimal; n/a for a value never computed."""
    return "n/a" if value is None else f"{value:,.2f}"


def adjusted(node: dict, scenario: str, measure: str) -> Decimal | None:
    row = node[scenario]
    return None if row is None else row[f"{measure}_adjusted"]


def _executed_at(run: dict) -> str:
    text = run.get("executed_at")
    try:
        return dt.datetime.fromisoformat(text).astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (TypeError, ValueError):
        return str(text)


def header_fields(run: dict) -> list[tuple[str, str]]:
    fields = [
        ("run", f"{run['id']}  {run['run_name']}"),
        ("use case", f"{run['use_case_name']}  ({run['use_case_id']})"),
        ("COB date", str(run["pnl_date"])),
        *((("currency", f"{run['reporting_currency']} (every value)"),) if run.get("reporting_currency") else ()),
        ("status", str(run["status"])),
        ("triggered by", str(run["triggered_by"])),
        ("executed at", _executed_at(run)),
        ("duration", "n/a" if run.get("duration_ms") is None else f"{run['duration_ms']:,} ms"),
        ("rules applied", str(run.get("rules_applied"))),
        ("result rows", f"{run.get('results_count', 0):,}"),
    ]
    if run.get("error_message"):
        fields.append(("error", run["error_message"]))
    return fields
