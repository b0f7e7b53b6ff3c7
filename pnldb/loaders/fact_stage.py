"""The way a good fact file goes in: its bytes, unparsed, in 1 MB blocks into one COPY (FORMAT csv) of the
stage (text columns), then one set-based pass that checks what the row checks of pnldb.loaders.facts check
cell by cell. Nothing here explains a problem: whenever this way is not sure the file is good (a block it
cannot send as is, COPY refusing a row, a bad value found), stage() returns None and the caller reads the
file again the row checks' way, which either reports the problems with their lines and columns (the same
messages as always) or, for a good file this way cannot read, stages its rows itself.

A block is sent as is when PostgreSQL's CSV reader and the csv module cannot read it differently and each
physical line is one row: no double quote, no NUL, no lone carriage return, no blank line before the last
row, no line reading `\\.`, valid UTF-8.

The checks, exactly those of the row checks:
- amounts: blank, not a number, more than 2 decimal places, |x| >= 1e16 (NaN and the infinities included),
  in SQL on the cells trimmed as str.strip() trims them;
- pnl_date, scenario, currency and use_case_id: the distinct cells of the file, each checked once by the
  row checks' own functions; category_code: blank or too long, in SQL; the counts per distinct value give
  the slices and codes of the summary without another pass;
- a cell longer than the csv module's field limit (the row checks refuse it);
- a row whose every cell is blank (Excel's trailing ',,,,') is skipped (deleted from the stage).
Cells stored otherwise than the file writes them (' 2025-12-24', 'actual', 'eur', ' BOOK_1') are rewritten
in the stage from the row checks' own answers.
"""
from __future__ import annotations

import csv
import re
from collections.abc import Callable

import psycopg
from psycopg import sql as pgsql

from pnldb.loaders.reading import id_problem
from pnldb.vocabulary import FACT_MEASURES

BLOCK = 1 << 20  # bytes read and sent at a time
FIELD_LIMIT = csv.field_size_limit()  # the csv module refuses a longer cell: so must this way in
# The characters str.strip() removes (none lies above U+3000): the SQL must trim exactly as Python does.
WHITESPACE = "".join(c for c in map(chr, range(0x3001)) if c.isspace())
_END_OF_DATA = re.compile(rb"(?:^|\n)\\\.\r?(?:\n|$)")


class Unsure(Exception):
    """This way cannot tell: the file is read again the row checks' way."""


class Checks:
    """What the row checks check per distinct value, each a function of the raw cell raising `bad`."""

    def __init__(self, bad: type[Exception], date: Callable[[str], str], scenario: Callable[[str], str],
                 currency: Callable[[str], str | None], use_case: Callable[[str], None]):
        self.bad, self.date, self.scenario, self.currency, self.use_case = bad, date, scenario, currency, use_case


def stage(conn: psycopg.Connection, binary, columns: list[str], checks: Checks, has_amount: bool,
          progress) -> tuple[dict, dict, int, dict] | None:
    """Stage the rest of `binary` (after its header line) into pnldb_fact_stage, whose columns for the file's
    columns, in order, are `columns`, and check it: (slices, codes, amount_differs_rows, stored), `stored`
    the SQL expression of a stage column over `s` where a cell is stored otherwise than the file writes it;
    or None when this way cannot tell (nothing staged)."""
    copy = pgsql.SQL("COPY pnldb_fact_stage ({}) FROM STDIN (FORMAT csv)").format(
        pgsql.SQL(", ").join(map(pgsql.Identifier, columns)))
    try:
        with conn.transaction():  # a savepoint: a file this way cannot tell about leaves nothing staged
            with conn.cursor() as cur, cur.copy(copy) as cp:
                for block in _blocks(binary, progress):
                    cp.write(block)
            # hashed, both grouping sets in one pass: the planner, not knowing the stage, would sort it
            sort = conn.execute("SELECT current_setting('enable_sort')").fetchone()[0]
            conn.execute("SELECT set_config('enable_sort', 'off', true)")
            groups = conn.execute(_groups_sql(columns, has_amount), {"ws": WHITESPACE}).fetchall()
            conn.execute("SELECT set_config('enable_sort', %s, true)", (sort,))
            return _verdict(conn, columns, checks, groups)
    except (Unsure, psycopg.errors.DataError):
        return None


def _blocks(binary, progress):
    """The file's remaining bytes in blocks cut after a line end, each checked to be sendable as is; blank
    lines at the end are dropped (the csv module's way skips them too)."""
    pending = rest = b""
    while True:
        data = binary.read(BLOCK)
        if progress is not None and data:
            progress(len(data))
        if not data:
            pending = (pending + rest).rstrip(b"\r\n")
            if pending:
                _check_block(pending)
                yield pending
            return
        cut = data.rfind(b"\n")
        if cut < 0:
            rest += data
            continue
        if pending:
            _check_block(pending)
            yield pending
        pending, rest = rest + data[:cut + 1], data[cut + 1:]


def _check_block(block: bytes) -> None:
    if b'"' in block:
        raise Unsure("quotes")
    if b"\x00" in block:
        raise Unsure("a NUL byte")
    if not block.isascii():
        try:
            block.decode("utf-8")
        except UnicodeDecodeError:
            raise Unsure("not UTF-8") from None
    crs = block.count(b"\r")
    if crs and crs != block.count(b"\r\n"):
        raise Unsure("a carriage return not ending a line")
    if block.startswith((b"\n", b"\r\n")) or b"\n\n" in block or b"\n\r\n" in block:
        raise Unsure("a blank line")
    if b"\\." in block and _END_OF_DATA.search(block):
        raise Unsure("a line of \\.")


def _blank_sql(columns: list[str]) -> pgsql.Composable:
    """A row of blank cells only, as facts.is_blank_row sees it (an amount is blank only if NULL: a cell of
    spaces is no number to COPY). daily_amount first: it is NULL in few rows."""
    ordered = sorted(columns, key=lambda c: c != "daily_amount")
    return pgsql.SQL(" AND ").join(
        pgsql.SQL("{} IS NULL").format(pgsql.Identifier(c)) if c in FACT_MEASURES or c == "amount" else
        pgsql.SQL("coalesce(btrim({}, %(ws)s), '') = ''").format(pgsql.Identifier(c)) for c in ordered)


def _groups_sql(columns: list[str], has_amount: bool) -> pgsql.Composable:
    """One pass over the stage: rows per distinct (use_case_id, pnl_date, scenario, currency) and per distinct
    category_code, with the bad amounts, the rows whose amount differs from daily_amount, whether a cell is
    over the csv module's field limit, and whether the row is blank."""
    def bad(m: str) -> pgsql.Composable:
        v = pgsql.Identifier(m)
        # NaN and the infinities too: NaN sorts above every number
        return pgsql.SQL("{v} >= 1e16 OR {v} <= -1e16 OR (scale({v}) > 2 AND {v} <> round({v}, 2))").format(v=v)
    bad_amounts = [pgsql.SQL("{} IS NULL OR ").format(pgsql.Identifier(m)) + bad(m) for m in FACT_MEASURES]
    if has_amount:
        bad_amounts.append(bad("amount"))
    texts = [c for c in columns if c not in FACT_MEASURES and c != "amount"]
    # octet_length is the stored size, free; a cell that long in bytes may be shorter in characters, and
    # the row checks decide
    long = pgsql.SQL(" OR ").join(pgsql.SQL("octet_length({}) > {}").format(pgsql.Identifier(c), FIELD_LIMIT)
                                  for c in texts)
    differs = pgsql.SQL("count(*) FILTER (WHERE amount <> daily_amount)") if has_amount else pgsql.SQL("0")
    blank = _blank_sql(columns)
    return pgsql.SQL(
        """SELECT GROUPING(category_code) = 0, {blank}, uc, pnl_date, scenario, currency, category_code, count(*),
                  count(*) FILTER (WHERE {bad}), {differs}, coalesce(bool_or({long}), false)
           FROM pnldb_fact_stage
           GROUP BY GROUPING SETS (({blank}, uc, pnl_date, scenario, currency), ({blank}, category_code))""").format(
        bad=pgsql.SQL(" OR ").join(pgsql.SQL("({})").format(b) for b in bad_amounts), differs=differs,
        blank=blank, long=long)


def _verdict(conn, columns: list[str], checks: Checks, groups) -> tuple[dict, dict, int, dict]:
    """The row checks' verdict on each distinct value; Unsure at the first bad one."""
    renamed: dict[str, dict] = {"pnl_date": {}, "scenario": {}, "currency": {}}
    slices: dict[tuple[str, str], int] = {}
    codes: dict[str, int] = {}
    differs = 0
    blanks = False
    seen: dict[tuple[str, str | None], object] = {}

    def verdict(column: str, text: str | None, check):
        key = (column, text)
        if key not in seen:
            try:
                seen[key] = check("" if text is None else text)
            except checks.bad:
                raise Unsure(f"a bad {column}") from None
        return seen[key]

    padded = False
    for is_code, blank, uc, pnl_date, scenario, currency, raw_code, rows, bad_amounts, amount_differs, long in groups:
        if blank:
            blanks = True
            continue
        if long or bad_amounts:
            raise Unsure("a bad cell")
        if is_code:
            code = "" if raw_code is None else raw_code.strip()
            if not code:
                raise Unsure("a blank category_code")
            if id_problem(code) is not None:
                raise Unsure("a long category_code")
            codes[code] = codes.get(code, 0) + rows
            padded = padded or code != raw_code
            continue
        differs += amount_differs
        if "uc" in columns:
            verdict("uc", uc, checks.use_case)
        d = verdict("pnl_date", pnl_date, checks.date)
        sc = verdict("scenario", scenario, checks.scenario)
        if "currency" in columns:
            cur = verdict("currency", currency, checks.currency)
            if cur != currency and not (cur is None and currency is None):
                renamed["currency"][currency] = cur
        if d != pnl_date:
            renamed["pnl_date"][pnl_date] = d
        if sc != scenario:
            renamed["scenario"][scenario] = sc
        slices[d, sc] = slices.get((d, sc), 0) + rows
    if blanks:  # Excel's empty trailing rows: skipped
        conn.execute(pgsql.SQL("DELETE FROM pnldb_fact_stage WHERE {}").format(_blank_sql(columns)),
                     {"ws": WHITESPACE})
    # cells stored otherwise than the file writes them, rewritten as the stage is inserted (an UPDATE of
    # the stage would move its rows out of the file's order)
    stored: dict[str, pgsql.Composable] = {}
    if padded:
        stored["category_code"] = pgsql.SQL("btrim(s.category_code, {})").format(pgsql.Literal(WHITESPACE))
    for column, values in renamed.items():
        if values:
            stored[column] = pgsql.SQL("CASE s.{} {} ELSE s.{} END").format(
                pgsql.Identifier(column),
                pgsql.SQL(" ").join(pgsql.SQL("WHEN {} THEN {}").format(pgsql.Literal(raw), pgsql.Literal(value))
                                    for raw, value in values.items()),
                pgsql.Identifier(column))
    return slices, codes, differs, stored
