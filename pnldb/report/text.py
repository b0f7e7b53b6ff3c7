"""The report as a text tree for a terminal: the header, then actual, prior and variance per measure,
aligned by display width (wide and combining characters count as they show) within a given width."""
from __future__ import annotations

import unicodedata

from pnldb.report.fields import PLUG_MARK, RULE_MARK, adjusted, header_fields, markers, money
from pnldb.terminal import clean
from pnldb.vocabulary import MEASURES, RESULT_SCENARIOS

TEXT_WIDTH = 160  # the width when the caller gives none (the CLI's when stdout is no terminal)
LEGEND_PARTS = (f"{RULE_MARK} a rule sits on the node",
                f"{PLUG_MARK} plug is non-zero (adjusted differs from natural in ACTUAL or PRIOR)",
                "values are adjusted")
LEGEND = "    ".join(LEGEND_PARTS)
GAP = 2  # blanks between the figures of a measure; never fewer, so figures never run together
GROUP_GAPS = (4, 3)  # blanks between measures: the first that lets the node ids fit wins
MIN_NAME = 12
MARK_WIDTH = 3
LABEL_INDENT = 15  # header values start in this column


def _char_width(c: str) -> int:
    if unicodedata.combining(c):
        return 0
    return 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1


def display_width(text: str) -> int:
    return sum(_char_width(c) for c in text)


def _take(text: str, width: int) -> str:
    """The longest start of `text` that shows in `width` columns."""
    out, used = [], 0
    for c in text:
        used += _char_width(c)
        if used > width:
            break
        out.append(c)
    return "".join(out)


def _truncate(text: str, width: int) -> str:
    return text if display_width(text) <= width else _take(text, width - 1) + "…"


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - display_width(text))


def _wrap(text: str, width: int) -> list[str]:
    """Words packed into lines of at most `width` columns; a word longer than a line is split."""
    width = max(width, 2)
    lines, line = [], ""
    for word in text.split(" "):
        candidate = f"{line} {word}" if line else word
        if display_width(candidate) <= width:
            line = candidate
            continue
        if line:
            lines.append(line.rstrip())
        while display_width(word) > width:
            head = _take(word, width)
            lines.append(head)
            word = word[len(head):]
        line = word
    return [*lines, line.rstrip()]


def _pack(parts: list[str], width: int, sep: str = "    ") -> list[str]:
    """The parts on as few lines as fit, `sep` between them; a part longer than a line is wrapped."""
    lines: list[str] = []
    for part in parts:
        if lines and display_width(lines[-1] + sep + part) <= width:
            lines[-1] += sep + part
        else:
            lines.extend(_wrap(part, width))
    return lines


def render_text(report: dict, depth: int | None = None, width: int = TEXT_WIDTH) -> str:
    """Every line fits `width` columns, except where figures alone are wider (they are never cut): the
    measures go side by side when the node ids fit next to them, else one below the other; node names,
    then node ids, are cut to fit."""
    run, nodes = report["run"], report["nodes"]
    lines = []
    for label, value in header_fields(run):
        wrapped = _wrap(clean(value), max(width - LABEL_INDENT, 24))  # no 1-letter columns when very narrow
        lines.append(f"{_pad(label, LABEL_INDENT - 1)} {wrapped[0]}".rstrip())
        lines.extend(" " * LABEL_INDENT + more for more in wrapped[1:])
    lines.append("")
    if not nodes:
        reason = "the run failed" if run["status"] == "FAILED" else f"the run is {run['status']}"
        lines.append(f"no results: {reason}" if run["status"] != "COMPLETED" else "no results")
        return "\n".join(lines) + "\n"

    sub = tuple(s.lower() for s in RESULT_SCENARIOS)
    cells = [[money(adjusted(n, s, m)) for m in MEASURES for s in RESULT_SCENARIOS] for n in nodes]
    widths = [max(len(sub[i % 3]), *(len(row[i]) for row in cells)) for i in range(len(MEASURES) * 3)]
    group_widths = [sum(widths[g * 3:g * 3 + 3]) + 2 * GAP for g in range(len(MEASURES))]
    heads = [("  " * n["depth"] + clean(n["node_id"]), clean(n["node_name"])) for n in nodes]
    full = [head if name == head.strip() else f"{head}  {name}" for head, name in heads]
    full_width = max(max(display_width(f) for f in full), len("node"))
    head_width = max(max(display_width(h) for h, _ in heads), len("node"))

    def numbers_width(groups: list[int], group_gap: int) -> int:
        return sum(group_gap + group_widths[g] for g in groups)

    def blocks_of(per_block: int) -> list[list[int]]:
        return [list(range(len(MEASURES)))[i:i + per_block] for i in range(0, len(MEASURES), per_block)]

    # the fewest blocks whose widest line fits with the node ids whole; else one measure a block, ids cut
    layout = None
    for per_block in range(len(MEASURES), 0, -1):
        for group_gap in GROUP_GAPS:
            blocks = blocks_of(per_block)
            if all(MARK_WIDTH + head_width + numbers_width(b, group_gap) <= width for b in blocks):
                layout = blocks, group_gap
                break
        if layout:
            break
    blocks, group_gap = layout or (blocks_of(1), GROUP_GAPS[-1])

    def label(f: str, h: str, label_width: int) -> str:
        """A name that does not fit is cut, or left out when less than MIN_NAME of it would show."""
        if display_width(f) <= label_width:
            return f
        if label_width - display_width(h) - 2 >= MIN_NAME:
            return _truncate(f, label_width)
        return _truncate(h, label_width)

    for number, groups in enumerate(blocks):
        # the column keeps room for its heading however narrow the terminal
        label_width = max(min(full_width, width - MARK_WIDTH - numbers_width(groups, group_gap)), len("node"))

        def group(values: list[str], g: int) -> str:
            return (" " * GAP).join(v.rjust(w) for v, w in zip(values[g * 3:g * 3 + 3], widths[g * 3:g * 3 + 3]))

        def row(mark: str, text: str, values: list[str], groups=groups, label_width=label_width) -> str:
            return (mark.ljust(MARK_WIDTH) + _pad(text, label_width)
                    + "".join(" " * group_gap + group(values, g) for g in groups)).rstrip()

        if number:
            lines.append("")
        lines.append(" " * (MARK_WIDTH + label_width) + "".join(
            " " * group_gap + f" {MEASURES[g]} ".center(group_widths[g], "-") for g in groups))
        lines.append(row("", "node", [sub[i % 3] for i in range(len(widths))]))
        for node, f, (h, _), values in zip(nodes, full, heads, cells):
            lines.append(row(markers(node), label(f, h, label_width), values))
    lines.append("")
    lines.extend(_pack([*LEGEND_PARTS, *([f"tree cut below depth {depth}"] if depth is not None else [])], width))
    return "\n".join(lines) + "\n"
