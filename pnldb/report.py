"""A calculation run as a report, rendered as a text tree, JSON or HTML.

`pnldb.api.fetch_report` returns {"run": get_run's JSON, "nodes": [...], "rules": [...]}, nodes in tree order
(depth first, children by node_id, __UNMAPPED__ last), each node with its ACTUAL, PRIOR and VARIANCE
values as Decimal. `render_text` and `render_html` only format that; `report_json` is it as the CLI's
--json prints it.
"""
from __future__ import annotations

import datetime as dt
import unicodedata
from decimal import Decimal

import jinja2

from pnldb.api.reports import fetch_report  # noqa: F401  (re-exported until the report split)
from pnldb.jsonfmt import to_json
from pnldb.vocabulary import KINDS, MEASURES

UNMAPPED = "__UNMAPPED__"
SCENARIOS = ("ACTUAL", "PRIOR", "VARIANCE")
VALUE_COLUMNS = tuple(f"{m}_{k}" for m in MEASURES for k in KINDS)
TEXT_WIDTH = 160  # the text report aims to fit this many columns
RULE_MARK, PLUG_MARK = "*", "~"
LEGEND = (f"{RULE_MARK} a rule sits on the node    {PLUG_MARK} plug is non-zero (adjusted differs from natural "
          f"in ACTUAL or PRIOR)    values are adjusted")


def report_json(report: dict) -> dict:
    """What `pnldb report --json` prints (money stays Decimal; pnldb.jsonfmt writes it exactly)."""
    return {"run": report["run"], "nodes": report["nodes"], "rules": report["rules"]}


def has_plug(node: dict) -> bool:
    return any(node[s] is not None and node[s][f"{m}_plug"] for s in ("ACTUAL", "PRIOR") for m in MEASURES)


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


# --------------------------------------------------------------------------------------------------
# text

def _clean(text) -> str:
    """Text from the database made safe for a terminal: control and format characters become U+FFFD."""
    return "".join("\ufffd" if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") else c for c in str(text))


def _char_width(c: str) -> int:
    if unicodedata.combining(c):
        return 0
    return 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1


def display_width(text: str) -> int:
    return sum(_char_width(c) for c in text)


def _truncate(text: str, width: int) -> str:
    if display_width(text) <= width:
        return text
    out, used = [], 0
    for c in text:
        w = _char_width(c)
        if used + w > width - 1:
            break
        out.append(c)
        used += w
    return "".join(out) + "…"


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - display_width(text))


# (gap between the columns of a group, gap between groups): the first layout that fits TEXT_WIDTH wins
LAYOUTS = ((2, 4), (1, 3))
MIN_NAME = 12


def render_text(report: dict, depth: int | None = None) -> str:
    run, nodes = report["run"], report["nodes"]
    lines = [f"{_pad(label, 14)} {_clean(value)}" for label, value in header_fields(run)]
    lines.append("")
    if not nodes:
        reason = "the run failed" if run["status"] == "FAILED" else f"the run is {run['status']}"
        lines.append(f"no results: {reason}" if run["status"] != "COMPLETED" else "no results")
        return "\n".join(lines) + "\n"

    sub = ("actual", "prior", "variance")
    cells = [[money(adjusted(n, s, m)) for m in MEASURES for s in SCENARIOS] for n in nodes]
    widths = [max(len(sub[i % 3]), *(len(row[i]) for row in cells)) for i in range(len(MEASURES) * 3)]
    heads = [("  " * n["depth"] + _clean(n["node_id"]), _clean(n["node_name"])) for n in nodes]
    full = [head if name == head.strip() else f"{head}  {name}" for head, name in heads]
    mark_width = 3
    full_width = max(max(display_width(f) for f in full), len("node"))
    head_width = max(max(display_width(h) for h, _ in heads), len("node"))

    def numbers_width(gap: int, group_gap: int) -> int:
        return sum(widths) + 2 * gap * len(MEASURES) + group_gap * len(MEASURES)

    gap, group_gap = LAYOUTS[-1]
    for candidate in LAYOUTS:
        if mark_width + full_width + numbers_width(*candidate) <= TEXT_WIDTH:
            gap, group_gap = candidate
            break
    label_width = max(min(full_width, TEXT_WIDTH - mark_width - numbers_width(gap, group_gap)), head_width)
    # a name that does not fit is cut, or left out when less than MIN_NAME of it would show
    labels = [f if display_width(f) <= label_width
              else _truncate(f, label_width) if label_width - display_width(h) - 2 >= MIN_NAME else h
              for f, (h, _) in zip(full, heads)]

    def group(values: list[str], g: int) -> str:
        return (" " * gap).join(v.rjust(w) for v, w in zip(values[g * 3:g * 3 + 3], widths[g * 3:g * 3 + 3]))

    def row(mark: str, label: str, values: list[str]) -> str:
        return (mark.ljust(mark_width) + _pad(label, label_width)
                + "".join(" " * group_gap + group(values, g) for g in range(len(MEASURES)))).rstrip()

    group_widths = [sum(widths[g * 3:g * 3 + 3]) + 2 * gap for g in range(len(MEASURES))]
    lines.append(" " * (mark_width + label_width)
                 + "".join(" " * group_gap + f" {m} ".center(w, "-") for m, w in zip(MEASURES, group_widths)))
    lines.append(row("", "node", [sub[i % 3] for i in range(len(widths))]))
    for node, label, values in zip(nodes, labels, cells):
        lines.append(row(markers(node), label, values))
    lines.append("")
    lines.append(LEGEND + (f"    tree cut below depth {depth}" if depth is not None else ""))
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------------
# HTML

HTML_TEMPLATE = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>pnldb report: {{ run.use_case_name }} / {{ run.run_name }} / {{ run.pnl_date }}</title>
<style>
:root { --fg: #1d2330; --muted: #667085; --line: #e4e7ec; --head: #f4f6f9; --neg: #b42318; --rule: #6941c6; --plug: #b54708; }
* { box-sizing: border-box; }
body { margin: 0; padding: 1.5rem 2rem 3rem; color: var(--fg); font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
h1 { font-size: 1.4rem; margin: 0 0 .2rem; }
h1 .run-name { color: var(--muted); font-weight: 500; }
h2 { font-size: 1.1rem; margin: 2rem 0 .6rem; }
dl.header { display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1.2rem; margin: 1rem 0; }
dl.header dt { color: var(--muted); }
dl.header dd { margin: 0; }
.status-COMPLETED { color: #067647; font-weight: 600; }
.status-FAILED, .error { color: var(--neg); font-weight: 600; }
.error { background: #fef3f2; border: 1px solid #fecdca; padding: .6rem .8rem; border-radius: 6px; white-space: pre-wrap; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .92em; }
.toolbar { margin: .4rem 0 .6rem; display: flex; gap: .4rem; flex-wrap: wrap; align-items: center; }
.toolbar button { font: inherit; padding: .2rem .6rem; border: 1px solid var(--line); background: #fff; border-radius: 4px; cursor: pointer; }
.toolbar button:hover { background: var(--head); }
.legend { color: var(--muted); margin: .3rem 0; }
table { border-collapse: collapse; }
table.tree { font-variant-numeric: tabular-nums; }
table.tree th, table.tree td { padding: .22rem .6rem; border-bottom: 1px solid var(--line); }
table.tree thead th { background: var(--head); position: sticky; top: 0; z-index: 1; }
table.tree thead tr:nth-child(2) th { top: 1.75rem; font-weight: 500; color: var(--muted); }
table.tree th.group { text-align: center; border-left: 2px solid #d0d5dd; }
table.tree .first { border-left: 2px solid #d0d5dd; }
table.tree td.num { text-align: right; white-space: nowrap; vertical-align: top; }
table.tree td.num small { display: block; color: var(--plug); font-size: .8em; }
table.tree td.node { white-space: nowrap; }
table.tree tr.d0 td { font-weight: 600; background: #fafbfc; }
table.tree tr.d1 td.node { font-weight: 600; }
table.tree tr:hover td { background: #f5f8ff; }
.neg { color: var(--neg); }
.tog { display: inline-block; width: 1.2em; border: 0; background: none; padding: 0; cursor: pointer; font: inherit; color: var(--muted); }
.tog::before { content: "\25BE"; }
tr.collapsed .tog::before { content: "\25B8"; }
.leaf { display: inline-block; width: 1.2em; }
.nid { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .9em; }
.nname { color: var(--muted); margin-left: .5em; }
.mark { display: inline-block; margin-left: .35em; padding: 0 .3em; border-radius: 3px; font-weight: 700; font-size: .85em; }
.mark.rule { color: #fff; background: var(--rule); }
.mark.plug { color: #fff; background: var(--plug); }
table.rules th, table.rules td { padding: .3rem .6rem; border: 1px solid var(--line); text-align: left; vertical-align: top; }
table.rules th { background: var(--head); }
table.rules td code { white-space: pre-wrap; word-break: break-word; }
footer { margin-top: 2rem; color: var(--muted); font-size: .85em; }
</style>
</head>
<body>
<header>
<h1>{{ run.use_case_name }} <span class="run-name">{{ run.run_name }}</span></h1>
<dl class="header">
{%- for label, value in header %}
<dt>{{ label }}</dt><dd{% if label == "status" %} class="status-{{ value }}"{% endif %}>{% if label == "error" %}<span class="error">{{ value }}</span>{% else %}{{ value }}{% endif %}</dd>
{%- endfor %}
</dl>
</header>

<section id="tree">
<h2>P&amp;L tree{% if depth is not none %} <small>(down to depth {{ depth }})</small>{% endif %}</h2>
{%- if not nodes %}
<p class="empty">No results: {% if run.status == "FAILED" %}the run failed.{% elif run.status != "COMPLETED" %}the run is {{ run.status }}.{% else %}the run has no result rows.{% endif %}</p>
{%- else %}
<div class="toolbar" id="toolbar">
<button type="button" data-show="all">expand all</button>
<button type="button" data-show="0">collapse all</button>
{%- for d in range(1, max_depth) %}
<button type="button" data-show="{{ d }}">down to depth {{ d }}</button>
{%- endfor %}
</div>
<p class="legend"><span class="mark rule">{{ rule_mark }}</span> a rule sits on the node (hover for its logic) &nbsp;
<span class="mark plug">{{ plug_mark }}</span> plug is non-zero in ACTUAL or PRIOR &nbsp;
Values are adjusted; the plug (natural &minus; adjusted) is shown beneath where it is not zero; hover a value for natural, adjusted and plug.</p>
<table class="tree">
<thead>
<tr><th rowspan="2">node</th>{% for m in measures %}<th class="group" colspan="3">{{ m }}</th>{% endfor %}</tr>
<tr>{% for m in measures %}{% for s in scenarios %}<th{% if loop.first %} class="first"{% endif %}>{{ s | lower }}</th>{% endfor %}{% endfor %}</tr>
</thead>
<tbody>
{%- for n in nodes %}
<tr id="n{{ loop.index0 }}" class="d{{ n.depth if n.depth < 2 else 'n' }}" data-d="{{ n.depth }}">
<td class="node" style="padding-left: {{ '%.1f' | format(0.6 + 1.3 * n.depth) }}em">
{%- if n.has_children %}<button type="button" class="tog" aria-label="collapse or expand"></button>{% else %}<span class="leaf"></span>{% endif -%}
<span class="nid">{{ n.node_id }}</span>{% if n.node_name != n.node_id %}<span class="nname">{{ n.node_name }}</span>{% endif %}
{%- if n.is_override %}<span class="mark rule" title="{{ n.rule_text }}">{{ rule_mark }}</span>{% endif %}
{%- if n.has_plug %}<span class="mark plug" title="plug is non-zero">{{ plug_mark }}</span>{% endif -%}
</td>
{%- for cell in n.cells %}
<td class="num{% if loop.index0 % 3 == 0 %} first{% endif %}{% if cell.negative %} neg{% endif %}" title="{{ cell.title }}">{{ cell.adjusted }}{% if cell.plug %}<small>plug {{ cell.plug }}</small>{% endif %}</td>
{%- endfor %}
</tr>
{%- endfor %}
</tbody>
</table>
{%- endif %}
</section>

<section id="rules">
<h2>Rules the run applied</h2>
{%- if not rules %}
<p class="empty">No rules were applied.</p>
{%- else %}
<table class="rules">
<thead><tr><th>rule</th><th>node</th><th>logic</th><th>sql_where</th><th>predicate_json</th></tr></thead>
<tbody>
{%- for r in rules %}
<tr>
<td>{{ r.rule_id }}</td>
<td>{% if r.anchor is not none %}<a href="#n{{ r.anchor }}">{% endif %}<span class="nid">{{ r.node_id }}</span>{% if r.anchor is not none %}</a>{% endif %}{% if r.node_name %}<br><span class="nname">{{ r.node_name }}</span>{% endif %}</td>
<td>{{ r.logic_en if r.logic_en is not none else "" }}</td>
<td><code>{{ r.sql_where }}</code></td>
<td><code>{{ r.predicate }}</code></td>
</tr>
{%- endfor %}
</tbody>
</table>
{%- endif %}
</section>
<footer>pnldb report &middot; run {{ run.id }} &middot; money is exact decimal &middot; self-contained page, no network needed</footer>

<script>
(function () {
  "use strict";
  var rows = Array.prototype.slice.call(document.querySelectorAll("table.tree tbody tr"));
  function refresh() {
    var cut = Infinity;
    rows.forEach(function (row) {
      var d = +row.getAttribute("data-d");
      if (d > cut) { row.hidden = true; return; }
      cut = Infinity;
      row.hidden = false;
      if (row.classList.contains("collapsed")) { cut = d; }
    });
  }
  rows.forEach(function (row) {
    var tog = row.querySelector(".tog");
    if (!tog) { return; }
    tog.addEventListener("click", function () {
      row.classList.toggle("collapsed");
      tog.setAttribute("aria-expanded", row.classList.contains("collapsed") ? "false" : "true");
      refresh();
    });
  });
  var toolbar = document.getElementById("toolbar");
  if (toolbar) {
    toolbar.addEventListener("click", function (event) {
      var show = event.target.getAttribute && event.target.getAttribute("data-show");
      if (show === null || show === undefined) { return; }
      var limit = show === "all" ? Infinity : +show;
      rows.forEach(function (row) {
        var collapse = +row.getAttribute("data-d") >= limit && row.querySelector(".tog") !== null;
        row.classList.toggle("collapsed", collapse);
      });
      refresh();
    });
  }
})();
</script>
</body>
</html>
"""

_ENV = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=False)
_TEMPLATE = _ENV.from_string(HTML_TEMPLATE)


def _cell(node: dict, scenario: str, measure: str) -> dict:
    row = node[scenario]
    if row is None:
        return {"adjusted": "n/a", "plug": None, "negative": False, "title": "no row"}
    adj, nat, plug = (row[f"{measure}_{k}"] for k in ("adjusted", "natural", "plug"))
    return {"adjusted": money(adj), "plug": money(plug) if plug else None,
            "negative": adj is not None and adj < 0,
            "title": f"{scenario} {measure}: natural {money(nat)}, adjusted {money(adj)}, plug {money(plug)}"}


def render_html(report: dict, depth: int | None = None) -> str:
    """A self-contained page (inline CSS and JS, no external resource); every database text is escaped."""
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
            "rule_text": (rule["logic_en"] or rule["sql_where"]) if rule else "a rule sits on this node",
            "cells": [_cell(n, s, m) for m in MEASURES for s in SCENARIOS],
        })
    names = {n["node_id"]: n["node_name"] for n in nodes}
    rules = [{**r, "anchor": index.get(r["node_id"]), "node_name": names.get(r["node_id"]),
              "predicate": to_json(r["predicate_json"], indent=None)}
             for r in report["rules"]]
    return _TEMPLATE.render(
        run=report["run"], header=header_fields(report["run"]), nodes=view_nodes, rules=rules,
        measures=MEASURES, scenarios=SCENARIOS, depth=depth,
        max_depth=max((n["depth"] for n in nodes), default=0),
        rule_mark=RULE_MARK, plug_mark=PLUG_MARK)
