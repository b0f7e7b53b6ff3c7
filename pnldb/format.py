"""Output for people: aligned tables, money, counts, durations, timestamps, text made safe for a terminal
(`clean`); and the SQL API's JSON text.

Money is always Decimal, never float: thousands separators and two decimals (`1,234,567.89`,
`-1,234.00`). Any command may reuse these helpers.
"""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from decimal import ROUND_HALF_UP, Decimal, localcontext

from pnldb.jsonfmt import to_json
from pnldb.terminal import clean  # every table and key-value list is cleaned; commands use fmt.clean for the rest

CENT = Decimal("0.01")
MISSING = "-"


def money(value) -> str:
    """`1,234,567.89`; negatives `-1,234.00`; rounded half up to the cent; None as `-`."""
    if value is None:
        return MISSING
    amount = value if isinstance(value, Decimal) else Decimal(str(value))
    with localcontext() as context:
        context.prec = max(context.prec, len(amount.as_tuple().digits) + 3)  # numeric(38, 2) and beyond
        amount = amount.quantize(CENT, rounding=ROUND_HALF_UP)
        if amount == 0:
            amount = abs(amount)  # never print -0.00
        return f"{amount:,.2f}"


def count(value) -> str:
    """An integer count with thousands separators; None as `-`."""
    return MISSING if value is None else f"{int(value):,}"


def duration(ms) -> str:
    """Milliseconds below a second (`850 ms`), seconds with two decimals above (`1.25 s`); None as `-`."""
    if ms is None:
        return MISSING
    if ms < 1000:
        return f"{ms} ms"
    return f"{(Decimal(ms) / 1000).quantize(CENT, rounding=ROUND_HALF_UP):,} s"


def timestamp(value) -> str:
    """`2025-12-24 09:00:01` in UTC, from a datetime or the API's ISO 8601 text; None as `-`."""
    if value is None:
        return MISSING
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%d %H:%M:%S")


def text(value) -> str:
    return MISSING if value is None else str(value)


def table(headers: Sequence[str], rows: Iterable[Sequence], align: str | None = None, gap: str = "  ",
          rule: bool = False) -> list[str]:
    """Lines of an aligned table: a header row, a line of dashes under it if `rule`, then the rows.
    `align` has one letter per column, `l` or `r` (default all left); cells are str()-ed, None shown as
    `-`, made safe for a terminal (`clean`). No trailing blanks."""
    cells = [[clean(text(c)) for c in row] for row in rows]
    align = align or "l" * len(headers)
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row)]

    def line(row):
        parts = [c.rjust(w) if a == "r" else c.ljust(w) for c, w, a in zip(row, widths, align)]
        return gap.join(parts).rstrip()

    dashes = [gap.join("-" * w for w in widths)] if rule else []
    return [line(list(headers))] + dashes + [line(row) for row in cells]


def key_values(pairs: Iterable[tuple[str, object]], indent: str = "", align: str = "l") -> list[str]:
    """Lines `key   value` with the values aligned: left (`l`), or right (`r`, for numbers); values made
    safe for a terminal (`clean`)."""
    pairs = [(k, clean(text(v))) for k, v in pairs]
    width = max((len(k) for k, _ in pairs), default=0)
    value_width = max((len(v) for _, v in pairs), default=0) if align == "r" else 0
    return [f"{indent}{k.ljust(width)}  {v.rjust(value_width)}".rstrip() for k, v in pairs]


def json_text(sql_json: str) -> str:
    """The SQL API's jsonb text, pretty-printed with every value exactly as SQL wrote it: numbers keep
    their digits (Decimal, never float), strings (dates, timestamps, ids) stay as they are."""
    return to_json(json.loads(sql_json, parse_float=Decimal))
