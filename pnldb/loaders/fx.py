"""FX rates from CSV (contract §8): pnl_date, currency, reporting_currency, rate; every cell checked in
Python, then one set-based write under a table lock; all rows or none."""
from __future__ import annotations

import csv
import datetime as dt
import re
from decimal import Decimal, InvalidOperation

import psycopg

from pnldb.errors import PnlError
from pnldb.loaders.reading import (
    MAX_REPORTED,
    BadLine,
    is_blank_row,
    open_source,
    plural,
    problems_error,
    quoted,
    read_header,
    read_lines,
)

FX_REQUIRED = ("pnl_date", "currency", "reporting_currency", "rate")
_CURRENCY = re.compile(r"[A-Za-z]{3}", re.ASCII)
_RATE = re.compile(r"\+?(?:\d+\.?\d*|\.\d+)", re.ASCII)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)


class _Bad(Exception):
    pass


def _date(text: str) -> dt.date:
    s = text.strip()
    if not _DATE.fullmatch(s):
        raise _Bad(f"{quoted(text)} is not a date (expected YYYY-MM-DD)")
    try:
        return dt.date.fromisoformat(s)
    except ValueError:
        raise _Bad(f"{quoted(text)} is not a valid date") from None


def _currency(text: str) -> str:
    s = text.strip()
    if not _CURRENCY.fullmatch(s):
        raise _Bad(f"{quoted(text)} is not a currency code (three letters, such as EUR)")
    return s.upper()


def _rate(text: str) -> Decimal:
    s = text.strip()
    if not _RATE.fullmatch(s):
        raise _Bad(f"{quoted(text)} is not a rate (a plain decimal number such as 1.0825)")
    try:
        value = Decimal(s)
    except InvalidOperation:
        raise _Bad(f"{quoted(text)} is not a rate") from None
    if value <= 0:
        raise _Bad(f"{quoted(text)} is not positive; a rate is the value of one unit of currency in the "
                   "reporting currency")
    return value


def load_fx(conn: psycopg.Connection, source, replace: bool = False) -> dict:
    """Load FX rates from CSV: columns pnl_date, currency, reporting_currency, rate (any order, any case;
    codes stored upper-case), one unit of currency being worth rate units of reporting_currency on that
    COB. All rows or none; every problem names its line and column.

    A rate already loaded with another value is refused unless `replace`; loading the same rate again
    changes nothing. With `replace`, the file becomes the whole set of rates of each (pnl_date,
    reporting_currency) it has: rates of those that it does not list are removed, the others set. A rate
    of a closed unit (PENDING, SIGNED_OFF or LOCKED, contract §7) cannot be changed or removed: the
    database refuses, and nothing is loaded."""
    binary, fname, owned = open_source(source)
    try:
        with conn.transaction():
            return _load_fx(conn, binary, fname, replace)
    finally:
        if owned:
            binary.close()


def _load_fx(conn, binary, fname, replace) -> dict:
    reader = csv.reader(read_lines(binary, None))
    header = read_header(reader, fname, FX_REQUIRED)
    col = {c: i for i, c in enumerate(header)}
    extra = [c for c in header if c not in FX_REQUIRED]
    if extra:
        raise PnlError(f"{fname}: line 1: unknown column{'s' if len(extra) > 1 else ''} {', '.join(extra)}; "
                       f"the columns are {', '.join(FX_REQUIRED)}")
    problems: list[str] = []
    total = 0
    rows: dict[tuple, tuple[int, Decimal]] = {}  # (date, currency, reporting) -> (line, rate)

    def bad(message: str) -> None:
        nonlocal total
        total += 1
        if len(problems) < MAX_REPORTED:
            problems.append(message)

    try:
        for row in reader:
            if not row or is_blank_row(row):
                continue
            line = reader.line_num
            if len(row) != len(header):
                bad(f"line {line}: {plural(len(row), 'cell')}, expected {len(header)} (as in the header)")
                continue
            column = "pnl_date"
            try:
                date = _date(row[col["pnl_date"]])
                column = "currency"
                currency = _currency(row[col["currency"]])
                column = "reporting_currency"
                reporting = _currency(row[col["reporting_currency"]])
                if reporting == currency:
                    raise _Bad(f"is {currency}, the same as currency; a currency needs no rate into itself")
                column = "rate"
                rate = _rate(row[col["rate"]])
            except _Bad as exc:
                bad(f"line {line}, column {column}: {exc}")
                continue
            key = (date, currency, reporting)
            if key in rows:
                bad(f"line {line}, column currency: the rate of {currency} into {reporting} on {date} is already "
                    f"on line {rows[key][0]}")
                continue
            rows[key] = (line, rate)
    except BadLine as exc:
        bad(f"line {reader.line_num + 1}: {exc}")
    except csv.Error as exc:
        bad(f"line {reader.line_num}: {exc}")
    if total:
        raise problems_error(fname, "bad rows", problems, total)

    keys = list(rows)
    dates = [k[0] for k in keys]
    currencies = [k[1] for k in keys]
    reportings = [k[2] for k in keys]
    lines = [rows[k][0] for k in keys]
    values = [rows[k][1] for k in keys]
    # one writer of rates at a time; snapshots only read them
    conn.execute("LOCK TABLE fx_rates IN SHARE ROW EXCLUSIVE MODE")
    file_rows = "unnest(%(d)s::date[], %(c)s::text[], %(r)s::text[], %(v)s::numeric[], %(l)s::int[]) " \
                "AS n (pnl_date, currency, reporting_currency, rate, line)"
    params = {"d": dates, "c": currencies, "r": reportings, "v": values, "l": lines}
    if not replace:
        conflicts = conn.execute(
            f"""SELECT n.line, n.currency, n.reporting_currency, n.pnl_date, x.rate, n.rate FROM {file_rows}
                JOIN fx_rates x USING (pnl_date, currency, reporting_currency)
                WHERE x.rate <> n.rate ORDER BY n.line""", params).fetchall()
        if conflicts:
            raise problems_error(fname, "rates already loaded with other values", [
                f"line {line}, column rate: the rate of {c} into {r} on {d} is already {old}, not {new}; use "
                f"--replace to replace the rates of that date" for line, c, r, d, old, new in conflicts],
                len(conflicts))
    try:
        removed = conn.execute(
            f"""DELETE FROM fx_rates x
                WHERE (x.pnl_date, x.reporting_currency) IN (SELECT n.pnl_date, n.reporting_currency FROM {file_rows})
                  AND NOT EXISTS (SELECT 1 FROM {file_rows} WHERE (n.pnl_date, n.currency, n.reporting_currency)
                                                                  = (x.pnl_date, x.currency, x.reporting_currency))""",
            params).rowcount if replace else 0
        changed = conn.execute(
            f"""UPDATE fx_rates x SET rate = n.rate, loaded_by = session_user, loaded_at = now() FROM {file_rows}
                WHERE (x.pnl_date, x.currency, x.reporting_currency) = (n.pnl_date, n.currency, n.reporting_currency)
                  AND x.rate <> n.rate""", params).rowcount
        added = conn.execute(
            f"""INSERT INTO fx_rates (pnl_date, currency, reporting_currency, rate)
                SELECT n.pnl_date, n.currency, n.reporting_currency, n.rate FROM {file_rows}
                ON CONFLICT DO NOTHING""", params).rowcount
    except psycopg.errors.ObjectNotInPrerequisiteState as exc:
        raise PnlError(f"{fname}: {exc.diag.message_primary}; nothing loaded") from None
    return {"rates_in_file": len(keys), "added": added, "replaced": changed, "removed": removed,
            "unchanged": len(keys) - added - changed, "replace": replace,
            "dates": sorted({d.isoformat() for d in dates})}
