"""The report as one self-contained HTML page: pnldb/templates/report.html.j2 (inline CSS and JS, no
external resource), filled with view data prepared here; autoescaped, so every database text is escaped."""
from __future__ import annotations

import jinja2

from pnldb.jsonfmt import to_json
from pnldb.report.fields import PLUG_MARK, RULE_MARK, has_plug, header_fields, money
from pnldb.vocabulary import MEASURES, RESULT_SCENARIOS

TEMPLATE = "report.html.j2"
_ENV = jinja2.Environment(loader=jinja2.PackageLoader("pnldb", "templates"), autoescape=True,
                          undefined=jinja2.StrictUndefined, trim_blocks=False, auto_reload=False)


def _cell(node: dict, scenario: str, measure: str) -> dict:
    row = node[scenario]
    if row is None:
        return {"adjusted": "n/a", "natural": None, "plug": None, "negative": False, "title": "no row"}
    adj, nat, plug = (row[f"{measure}_{k}"] for k in ("adjusted", "natural", "plug"))
    return {"adjusted": money(adj), "natural": money(nat), "plug": money(plug) if plug else None,
            "negative": adj is not None and adj < 0,
            "title": f"{scenario} {measure}: natural {money(nat)}, adjusted {money(adj)}, plug {money(plug)}"}


def render_html(report: dict, depth: int | None = None) -> str:
    """A self-contained page (inline CSS and JS, no external resource); every database text is escaped.

    Every node of `report` is in the page; with `depth`, the nodes at that depth and deeper start
    collapsed (what the page's "down to depth" button does), so what is deeper starts hidden."""
    nodes = report["nodes"]
    rules_by_node = {r["node_id"]: r for r in report["rules"]}
    index = {n["node_id"]: i for i, n in enumerate(nodes)}
    parents = {n["parent_node_id"] for n in nodes}
    view_nodes = []
    for n in nodes:
        rule = rules_by_node.get(n["node_id"])
        view_nodes.append({
            "node_id": n["node_id"], "node_name": n["node_name"], "depth": n["depth"],
            "is_override": n["is_override"], "has_plug": has_plug(n),
            "has_children": n["node_id"] in parents,
            "collapsed": depth is not None and n["depth"] >= depth and n["node_id"] in parents,
            "hidden": depth is not None and n["depth"] > depth,
            "rule_text": (rule["logic_en"] or rule["sql_where"]) if rule else "a rule sits on this node",
            "cells": [_cell(n, s, m) for m in MEASURES for s in RESULT_SCENARIOS],
        })
    names = {n["node_id"]: n["node_name"] for n in nodes}
    plugs = _plug_sections(report.get("plug_rules", []), index, names)
    plugged = {p["node_id"] for p in plugs}
    for view in view_nodes:
        view["plug_anchor"] = index[view["node_id"]] if view["node_id"] in plugged else None
    rules = [{**r, "anchor": index.get(r["node_id"]), "node_name": names.get(r["node_id"]),
              "predicate": to_json(r["predicate_json"], indent=None)}
             for r in report["rules"]]
    return _ENV.get_template(TEMPLATE).render(
        run=report["run"], header=header_fields(report["run"]), nodes=view_nodes, rules=rules,
        plugs=plugs, plugs_note=report.get("plugs_note"),
        measures=MEASURES, scenarios=RESULT_SCENARIOS, depth=depth,
        max_depth=max((n["depth"] for n in nodes), default=0),
        rule_mark=RULE_MARK, plug_mark=PLUG_MARK)


def _plug_sections(plug_rules: list[dict], index: dict[str, int], names: dict[str, str]) -> list[dict]:
    """One section per node with plugs by rule (run_plug_rules' rows), in the tree's order."""
    by_node: dict[str, list[dict]] = {}
    for row in plug_rules:
        if row["node_id"] in index:
            by_node.setdefault(row["node_id"], []).append({
                **row, "rule_anchor": index.get(row["rule_node_id"]),
                **{f"{m}_money": money(row[f"{m}_excluded"]) for m in MEASURES}})
    return [{"node_id": node_id, "node_name": names[node_id], "anchor": index[node_id], "rows": rows}
            for node_id, rows in sorted(by_node.items(), key=lambda item: index[item[0]])]
