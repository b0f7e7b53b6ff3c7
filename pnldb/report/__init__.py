"""A calculation run as a report, rendered as a text tree, JSON or HTML.

`pnldb.api.fetch_report` returns {"run": get_run's JSON, "nodes": [...], "rules": [...]}, nodes in tree order
(depth first, children by node_id, __UNMAPPED__ last), each node with its ACTUAL, PRIOR and VARIANCE
values as Decimal. `render_text` (pnldb.report.text) and `render_html` (pnldb.report.html, the page in
pnldb/templates/report.html.j2) only format that; `report_json` is it as the CLI's --json prints it, and
`down_to` cuts a whole report at a depth as fetch_report(..., depth) does (the page keeps every node).
"""
from __future__ import annotations

from pnldb.report.html import render_html
from pnldb.report.text import display_width, render_text

__all__ = ["display_width", "down_to", "render_html", "render_text", "report_json"]


def report_json(report: dict) -> dict:
    """What `pnldb report --json` prints (money stays Decimal; pnldb.jsonfmt writes it exactly)."""
    return {"run": report["run"], "nodes": report["nodes"], "rules": report["rules"]}


def down_to(report: dict, depth: int | None) -> dict:
    """The report with the nodes deeper than `depth` left out, as fetch_report(..., depth) returns it."""
    if depth is None:
        return report
    return {**report, "nodes": [n for n in report["nodes"] if n["depth"] <= depth]}
