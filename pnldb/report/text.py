"""The report as a text tree for a terminal: the header, then actual, prior and variance per measure,
aligned by display width (wide and combining characters count as they show) within TEXT_WIDTH."""
from __future__ import annotations

import unicodedata

from pnldb.report.fields import PLUG_MARK, RULE_MARK, adjusted, header_fields, markers, money
from pnldb.vocabulary import MEASURES, RESULT_SCENARIOS

TEXT_WIDTH = 160  # the text report aims to fit this many columns
LEGEND = (f"{RULE_MARK} a rule sits on the node    {PLUG_MARK} plug is non-zero (adjusted differs from natural "
          f"in ACTUAL or PRIOR)    values are adjusted")
# (gap between the columns of a group, gap between groups): the first layout that fits TEXT_WIDTH wins
LAYOUTS = ((2, 4), (1, 3))
MIN_NAME = 12


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


def render_text(report: dict, depth: int | None = None) -> str:
    run, nodes = report["run"], report["nodes"]
    lines = [f"{_pad(label, 14)} {_clean(value)}" for label, value in header_fields(run)]
    lines.append("")
    if not nodes:
        reason = "the run failed" if run["status"] == "FAILED" else f"the run is {run['status']}"
        lines.append(f"no results: {reason}" if run["status"] != "COMPLETED" else "no results")
        return "\n".join(lines) + "\n"

    sub = tuple(s.lower() for s in RESULT_SCENARIOS)
    cells = [[money(adjusted(n, s, m)) for m in MEASURES for s in RESULT_SCENARIOS] for n in nodes]
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
