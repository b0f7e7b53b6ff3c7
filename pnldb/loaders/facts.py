"""P&L facts from CSV: every cell checked in Python while the good rows stream into a staging table with
COPY, then one INSERT under the use case's exclusive lock; all rows or none."""
from __future__ import annotations

import csv
import datetime as dt
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterable
from decimal import Decimal

import psycopg
from psycopg import sql as pgsql

from pnldb import format as fmt
from pnldb.errors import PnlError
from pnldb.loaders import fact_stage
from pnldb.loaders.reading import (
    MAX_REPORTED,
    BadLine,
    Progress,
    id_problem,
    is_blank_row,
    nul_column,
    open_source,
    plural,
    problems_error,
    quoted,
    read_header,
    read_lines,
)
from pnldb.vocabulary import FACT_MEASURES, MEASURES, SCENARIOS

FACT_REQUIRED = ("pnl_date", "category_code", *FACT_MEASURES, "scenario")
FACT_OPTIONAL = ("use_case_id", "amount", "currency")

_AMOUNT_FAST = re.compile(r"-?\d{1,16}(?:\.\d{1,2})?", re.ASCII)  # ASCII: '١٢٣' is no amount
_AMOUNT_SLOW = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_CURRENCY = re.compile(r"[A-Za-z]{3}", re.ASCII)
_CENT = Decimal("0.01")
MAX_LISTED = 10  # slices named in a refusal
# A load this large against the facts already there (rows loaded >= ANALYZE_FRACTION of them, and at
# least ANALYZE_MIN_ROWS) is followed by ANALYZE of the facts, in the load's transaction: the planner
# of the next snapshot would otherwise plan on the statistics of a much smaller table.
ANALYZE_MIN_ROWS = 10_000
ANALYZE_FRACTION = 0.1
_LIMIT = Decimal(10) ** 16


class _Bad(Exception):
    """One bad cell: the message names the value; the caller adds line and column."""


def parse_amount(text: str) -> Decimal:
    """A numeric(18,2) amount: at most 2 decimals (trailing zeros aside), |x| < 1e16."""
    s = text.strip()
    if not s:
        raise _Bad("is empty; expected an amount")
    if not _AMOUNT_SLOW.fullmatch(s):
        raise _Bad(f"{quoted(text)} is not a number")
    value = Decimal(s)
    if abs(value) >= _LIMIT:
        raise _Bad(f"{quoted(text)} is out of range for numeric(18,2) (|amount| must be below 1e16)")
    cents = value.quantize(_CENT)
    if cents != value:
        raise _Bad(f"{quoted(text)} has more than 2 decimal places")
    return cents


def _amount_text(text: str) -> str:
    """The exact text sent to PostgreSQL for an amount cell."""
    if _AMOUNT_FAST.fullmatch(text):
        return text
    return format(parse_amount(text), "f")


def _date_text(text: str) -> str:
    s = text.strip()
    if not _DATE.fullmatch(s):
        raise _Bad(f"{quoted(text)} is not a date (expected YYYY-MM-DD)")
    try:
        dt.date.fromisoformat(s)
    except ValueError:
        raise _Bad(f"{quoted(text)} is not a valid date") from None
    return s


def parse_currency(text: str) -> str | None:
    """A currency cell: three letters, stored upper-case; blank is None (the reporting currency)."""
    s = text.strip()
    if not s:
        return None
    if not _CURRENCY.fullmatch(s):
        raise _Bad(f"{quoted(text)} is not a currency code (three letters, such as EUR; blank for the use "
                   f"case's reporting currency)")
    return s.upper()


def load_facts(conn: psycopg.Connection, source, use_case: tuple[uuid.UUID, str, str], replace: bool = False,
               append: bool = False, progress: Progress | None = None,
               dates: Iterable[dt.date | str] | None = None) -> dict:
    """Load P&L facts from CSV into `use_case`, (use_case_id, name, structure_id) as
    pnldb.api.resolve_use_case finds it: all rows or none.

    Columns are matched by name, in any order: pnl_date, category_code, daily_amount, wtd_amount,
    ytd_amount, scenario are required; header names match in any case, and a scenario in any case is
    stored upper-case. use_case_id is optional (a blank cell means `use_case`, any other value must be
    that use case); amount is optional: the legacy column, stored as the file gives it (a blank cell
    means daily_amount); the summary's `amount_differs_rows` counts the rows where it is not
    daily_amount. currency is optional (contract §8): three letters, stored upper-case; blank means the
    use case's reporting currency; the summary's `missing_rates` lists the dates whose current facts
    are in a currency with no rate for that date into the reporting currency (snapshots of those
    dates are refused until `pnldb load fx` loads them). Every other column is a dimension, stored in
    `attributes` as a string under its lower-cased name (blank cells omitted, surrounding spaces
    trimmed). Rows of empty cells (Excel's ',,,,,,') are skipped like blank lines. The rows form one
    load (fact_loads), its source the file's name; a file of no rows opens no load (`load_id` None).

    No silent doubling (contract §6): a file with facts for a (pnl_date, scenario) slice that already has
    current facts is refused, naming the slices, unless `replace` or `append`. With `replace`, the
    current facts of the use case for exactly the slices in the file are superseded by it (kept for the
    runs that read them), in the same transaction, so reloading a corrected file is idempotent. With
    `append`, the file becomes one more current load of those slices beside the others, except that a
    slice whose rows are exactly those of a current load (duplicate_fact_loads) is refused, naming that
    load. `replace` and `append` exclude each other.

    `dates`, if given, are the only COB dates the file may have (the CLI requires them with --replace):
    a row of any other date is a bad row (line and column), and a date of `dates` with no row in the file
    is refused too. The summary's `replaced_slices` lists each replaced slice with its current facts
    before and after: rows and the sums of daily_amount, wtd_amount and ytd_amount.

    A load of at least ANALYZE_MIN_ROWS rows that is at least ANALYZE_FRACTION of the facts already
    there ends with ANALYZE of the facts (`analyzed` in the summary).

    `progress`, if given, is called with the number of bytes read since its previous call.
    """
    uc_id, uc_name, structure_id = use_case
    if replace and append:
        raise PnlError("replace and append exclude each other: replace supersedes the current facts of the "
                       "file's slices, append adds the file beside them; choose one")
    allowed = None if dates is None else {d.isoformat() if isinstance(d, dt.date) else _check_date_arg(d)
                                          for d in dates}
    if allowed is not None and not allowed:
        raise PnlError("dates: an empty list allows no row; give the COB dates the file is for")
    binary, fname, owned = open_source(source)
    try:
        with conn.transaction():
            return _load_facts(conn, binary, fname, uc_id, uc_name, structure_id, replace, append, progress,
                               allowed)
    finally:
        if owned:
            binary.close()


def _check_date_arg(text: str) -> str:
    try:
        return _date_text(text)
    except _Bad as exc:
        raise PnlError(f"dates: {exc}") from None


def _load_facts(conn, binary, fname, uc_id, uc_name, structure_id, replace, append, progress, allowed) -> dict:
    binary, start, spool = _rereadable(binary)
    conn.execute("""SELECT set_config('work_mem', l.mb || 'MB', true)
                    FROM (SELECT limit_value('fact_load_work_mem_mb') AS mb) l
                    WHERE pg_size_bytes(current_setting('work_mem')) < l.mb * 1048576::bigint""")
    try:
        header, staged = _stage(conn, binary, start, fname, uc_id, uc_name, progress, allowed)
    finally:
        if spool is not None:
            spool.close()
    col = {c: i for i, c in enumerate(header)}
    dims = _dimensions(header)
    i_cur = col.get("currency")
    slices, codes, differs, stored = staged
    if allowed is not None:
        absent = sorted(allowed - {d for d, _ in slices})
        if absent:
            raise PnlError(f"{fname}: no row of {', '.join(absent)}, given with --date; nothing loaded. Give only "
                           f"the dates the file is for (a slice is replaced by the rows of the file, never emptied)")

    # Checked and staged; now the writes, under the use case's exclusive lock (see lock_use_case): one
    # loader at a time, after running snapshots of the use case, before the next ones.
    conn.execute("SELECT lock_use_case(%s, true)", (uc_id,))
    if conn.execute("SELECT 1 FROM use_cases WHERE use_case_id = %s", (uc_id,)).fetchone() is None:
        raise PnlError(f"use case {quoted(uc_name)} was deleted while {fname} was being read; nothing loaded")
    slice_dates = [d for d, _ in slices]
    slice_scens = [s for _, s in slices]
    # the slices of the file that already have current facts, with the loads that hold them
    before = conn.execute(
        """SELECT s.pnl_date, s.scenario, array_agg(s.load_id ORDER BY s.load_id),
                  sum(s.rows), sum(s.daily_sum), sum(s.wtd_sum), sum(s.ytd_sum)
           FROM fact_load_slices s
           JOIN unnest(%s::date[], %s::text[]) AS w (pnl_date, scenario) USING (pnl_date, scenario)
           WHERE s.use_case_id = %s AND s.superseded_at IS NULL
           GROUP BY s.pnl_date, s.scenario""",
        (slice_dates, slice_scens, uc_id)).fetchall() if slices else []
    existing = {(r[0].isoformat(), r[1]): r[2] for r in before}
    if existing and not replace and not append:
        raise _already_current(fname, uc_name, existing)

    load_id = None
    inserted = superseded = 0
    replaced: list[dict] = []
    analyzed = False
    superseded_loads: list[int] = []
    if slices:
        load_id = conn.execute("SELECT open_fact_load(%s, %s)", (uc_id, fname)).fetchone()[0]
        if replace and existing:
            superseded, superseded_loads = conn.execute(
                """WITH replaced AS (SELECT replace_facts(%s, s.pnl_date, s.scenario) AS r
                                     FROM unnest(%s::date[], %s::text[]) AS s (pnl_date, scenario))
                   SELECT coalesce(sum((e ->> 'rows')::bigint), 0),
                          coalesce(array_agg(DISTINCT (e ->> 'load_id')::bigint), '{}')
                   FROM replaced CROSS JOIN LATERAL jsonb_array_elements(replaced.r -> 'superseded') AS e""",
                (uc_id, slice_dates, slice_scens)).fetchone()
        inserted = _insert(conn, uc_id, load_id, dims, stored, sum(slices.values()))
        duplicates = conn.execute(
            "SELECT pnl_date, scenario, duplicate_of, loaded_at, loaded_by, source FROM duplicate_fact_loads(%s)",
            (load_id,)).fetchall()
        if duplicates:
            raise _duplicate(fname, duplicates)
        if replace and before:
            after = {(r[0].isoformat(), r[1]): r[2:] for r in conn.execute(
                """SELECT pnl_date, scenario, rows, daily_sum, wtd_sum, ytd_sum FROM fact_load_slices
                   WHERE load_id = %s""", (load_id,)).fetchall()}
            replaced = [_replaced_slice(r[0].isoformat(), r[1], r[3:], after[r[0].isoformat(), r[1]])
                        for r in sorted(before, key=lambda r: (r[0], r[1]))]
        analyzed = _analyze_if_large(conn, inserted)
    conn.execute("DROP TABLE pg_temp.pnldb_fact_stage")
    conn.execute("DROP TABLE IF EXISTS pg_temp.pnldb_fact_attributes")
    missing = [{"pnl_date": r[0].isoformat(), "currencies": r[1]} for r in conn.execute(
        """SELECT d, missing_fx_rates(%s, d) FROM unnest(%s::date[]) d
           WHERE cardinality(missing_fx_rates(%s, d)) > 0 ORDER BY d""",
        (uc_id, sorted(set(slice_dates)), uc_id)).fetchall()] if i_cur is not None and slices else []

    nodes = {r[0] for r in conn.execute(
        "SELECT node_id FROM dim_hierarchy WHERE structure_id = %s AND node_id = ANY (%s::text[])",
        (structure_id, list(codes))).fetchall()}
    unmapped = sorted(c for c in codes if c not in nodes)
    return {
        "use_case_id": uc_id,
        "use_case_name": uc_name,
        "load_id": load_id,
        "rows_loaded": inserted,
        "slices": [{"pnl_date": d, "scenario": s, "rows": n} for (d, s), n in sorted(slices.items())],
        "replace": replace,
        "append": append,
        "slices_replaced": len(existing) if replace else 0,
        "replaced_slices": replaced,
        "rows_superseded": superseded,
        "superseded_loads": sorted(superseded_loads),
        "slices_added_to": len(existing) if append else 0,
        "dimensions": dims,
        "unmapped_rows": sum(codes[c] for c in unmapped),
        "unmapped_codes": unmapped,
        "amount_differs_rows": differs,
        "missing_rates": missing,
        "analyzed": analyzed,
    }


def _dimensions(header: list[str]) -> list[str]:
    """The file's dimension columns (neither required nor optional), in the file's order."""
    return [c for c in header if c not in FACT_REQUIRED and c not in FACT_OPTIONAL]


def _rereadable(binary):
    """(a file that can be read again from `start`, start, the spool to close): an unseekable source
    (a pipe) is spooled to a temporary file on disk as it is read, so memory stays flat."""
    try:
        if binary.seekable():
            return binary, binary.tell(), None
    except (AttributeError, OSError, ValueError):
        pass
    spool = tempfile.TemporaryFile()  # noqa: SIM115 (closed by the caller, once the file is staged)
    shutil.copyfileobj(binary, spool, fact_stage.BLOCK)
    spool.seek(0)
    return spool, 0, spool


def _create_stage(conn, header: list[str]) -> list[str]:
    """The stage: a text column per column of the file; the stage's names for the file's columns, in order."""
    dims = _dimensions(header)
    named = {"use_case_id": "uc"}
    names = [named.get(c) or (c if c in FACT_REQUIRED or c in FACT_OPTIONAL else f"d{dims.index(c)}")
             for c in header]
    conn.execute("DROP TABLE IF EXISTS pg_temp.pnldb_fact_stage")
    # The stage of a large file does not fit the default 8 MB of temporary buffers; more, for this session,
    # if no temporary table was used in it yet (afterwards the setting has no effect).
    conn.execute("SET LOCAL temp_buffers = '256MB'")
    conn.execute(pgsql.SQL(
        "CREATE TEMP TABLE pnldb_fact_stage (pnl_date text, scenario text, category_code text, daily_amount numeric, "
        "wtd_amount numeric, ytd_amount numeric, amount numeric, currency text, uc text{dims}) ON COMMIT DROP").format(
        dims=pgsql.SQL("").join(pgsql.SQL(", {} text").format(pgsql.Identifier(f"d{k}"))
                                for k in range(len(dims)))))
    return names


def _stage(conn, binary, start, fname, uc_id, uc_name, progress, allowed):
    """The file staged and checked: (header, (slices, codes, amount_differs_rows, stored)); its problems raised.
    A good file goes in by fact_stage; anything that way is not sure of, the row checks' way (_row_stage)."""
    first = binary.readline()
    # the raw bytes are UTF-8, as the connection must then read them
    sendable = (first.endswith(b"\n") and b'"' not in first and b"\r" not in first[:-2]
                and conn.info.encoding == "utf-8")
    if sendable:
        try:
            header = read_header(csv.reader(read_lines(iter([first]), None)), fname, FACT_REQUIRED)
        except PnlError:
            sendable = False
    reported = False
    if sendable:
        names = _create_stage(conn, header)

        def counted(n: int) -> None:
            nonlocal reported
            reported = True
            progress(n)
        if progress is not None:
            counted(len(first))
        staged = fact_stage.stage(conn, binary, names, _checks(uc_id, uc_name, allowed), "amount" in header,
                                  counted if progress is not None else None)
        if staged is not None:
            return header, staged
    binary.seek(start)
    return _row_stage(conn, binary, fname, uc_id, uc_name, None if reported else progress, allowed)


def _checks(uc_id, uc_name, allowed) -> fact_stage.Checks:
    """The row checks of the cells fact_stage checks per distinct value."""
    def date(text: str) -> str:
        d = _date_text(text)
        if allowed is not None and d not in allowed:
            raise _Bad("not a date given with --date")
        return d

    def scenario(text: str) -> str:
        sc = text.strip().upper()
        if sc not in SCENARIOS:
            raise _Bad("not a scenario")
        return sc
    return fact_stage.Checks(_Bad, date, scenario, parse_currency,
                             lambda text: _check_use_case_cell(text, uc_id, uc_name))


def _row_stage(conn, binary, fname, uc_id, uc_name, progress, allowed):
    """The file read the csv module's way and checked cell by cell in Python, writing the good rows into the
    stage: the way that reports every problem with its line and column, and stages a good file fact_stage
    cannot read as is."""
    reader = csv.reader(read_lines(binary, progress))
    header = read_header(reader, fname, FACT_REQUIRED)
    _create_stage(conn, header)
    ncols = len(header)
    col = {c: i for i, c in enumerate(header)}
    dims = _dimensions(header)
    i_date, i_cat, i_scen = col["pnl_date"], col["category_code"], col["scenario"]
    i_daily, i_wtd, i_ytd = (col[m] for m in FACT_MEASURES)
    i_uc, i_amount, i_cur = col.get("use_case_id"), col.get("amount"), col.get("currency")
    i_dims = [col[d] for d in dims]

    stage_cols = [pgsql.Identifier(f"d{k}") for k in range(len(dims))]
    copy_cols = [pgsql.Identifier(c) for c in ("pnl_date", "scenario", "category_code", *FACT_MEASURES)]
    if i_amount is not None:
        copy_cols.append(pgsql.Identifier("amount"))
    if i_cur is not None:
        copy_cols.append(pgsql.Identifier("currency"))
    currencies: dict[str, str | None] = {"": None}  # every currency cell seen -> its stored form

    problems: list[str] = []
    bad_rows = 0
    good_dates: dict[str, str] = {}
    good_ucs = {"", str(uc_id)}
    # every scenario cell seen -> its stored form; one dict lookup per row, whatever the case in the file
    scenarios = {s: s for s in SCENARIOS}
    slices: dict[tuple[str, str], int] = {}
    codes: dict[str, int] = {}
    fast_amount = _AMOUNT_FAST.fullmatch

    def bad(line: int, column: str, message: str) -> None:
        nonlocal bad_rows
        bad_rows += 1
        if len(problems) < MAX_REPORTED:
            problems.append(f"line {line}, column {column}: {message}")

    copy_sql = pgsql.SQL("COPY pnldb_fact_stage ({}) FROM STDIN").format(pgsql.SQL(", ").join(copy_cols + stage_cols))
    with conn.cursor() as cur, cur.copy(copy_sql) as cp:
        write = cp.write_row
        try:
            for row in reader:
                if len(row) != ncols:
                    if not row or is_blank_row(row):
                        continue  # a blank line, or Excel's empty trailing rows
                    line = reader.line_num
                    bad_rows += 1
                    if len(problems) < MAX_REPORTED:
                        problems.append(f"line {line}: {plural(len(row), 'cell')}, expected {ncols} (as in the header)")
                    continue
                # the cheap checks first; anything unusual goes the slow way and may fail there
                c = -1
                try:
                    if i_uc is not None and row[i_uc] not in good_ucs:
                        c = i_uc
                        _check_use_case_cell(row[i_uc], uc_id, uc_name)
                        good_ucs.add(row[i_uc])
                    c = i_date
                    d = good_dates.get(row[i_date])
                    if d is None:
                        d = _date_text(row[i_date])
                        if allowed is not None and d not in allowed:
                            raise _Bad(f"{d} is not a date given with --date ({', '.join(sorted(allowed))}); "
                                       f"remove the row or give its date too")
                        good_dates[row[i_date]] = d
                    c = i_scen
                    sc = scenarios.get(row[i_scen])
                    if sc is None:
                        sc = row[i_scen].strip().upper()
                        if sc not in SCENARIOS:
                            raise _Bad(f"{quoted(row[i_scen])} is not a scenario (expected {' or '.join(SCENARIOS)})")
                        scenarios[row[i_scen]] = sc
                    c = i_cat
                    cat = row[i_cat].strip()
                    if not cat:
                        raise _Bad("is blank; expected a node_id of the structure")
                    if len(cat) > 250:  # checked in bytes, only where it could matter
                        problem = id_problem(cat)
                        if problem:
                            raise _Bad(problem)
                    c = i_daily
                    daily = row[i_daily]
                    if not fast_amount(daily):
                        daily = _amount_text(daily)
                    c = i_wtd
                    wtd = row[i_wtd]
                    if not fast_amount(wtd):
                        wtd = _amount_text(wtd)
                    c = i_ytd
                    ytd = row[i_ytd]
                    if not fast_amount(ytd):
                        ytd = _amount_text(ytd)
                    if i_amount is not None:
                        c = i_amount
                        amount = row[i_amount]
                        if not fast_amount(amount):
                            amount = _amount_text(amount) if amount.strip() else None
                    if i_cur is not None:
                        c = i_cur
                        if row[i_cur] in currencies:
                            currency = currencies[row[i_cur]]
                        else:
                            currency = currencies[row[i_cur]] = parse_currency(row[i_cur])
                except _Bad as exc:
                    if is_blank_row(row):
                        continue  # Excel's empty trailing rows
                    bad(reader.line_num, header[c], str(exc))
                    continue
                if bad_rows:
                    continue  # keep validating, stop writing
                key = (d, sc)
                slices[key] = slices.get(key, 0) + 1
                codes[cat] = codes.get(cat, 0) + 1
                if i_cur is not None:
                    head = (d, sc, cat, daily, wtd, ytd, amount, currency) if i_amount is not None else \
                        (d, sc, cat, daily, wtd, ytd, currency)
                    write((*head, *[row[i] for i in i_dims]))
                elif i_amount is not None:
                    write((d, sc, cat, daily, wtd, ytd, amount, *[row[i] for i in i_dims]))
                elif i_dims:
                    write((d, sc, cat, daily, wtd, ytd, *[row[i] for i in i_dims]))
                else:
                    write((d, sc, cat, daily, wtd, ytd))
        except BadLine as exc:
            column = nul_column(exc.text, header) if exc.text is not None else ""
            bad_rows += 1
            problems.append(f"line {reader.line_num + 1}{column}: {exc}")
        except csv.Error as exc:
            bad_rows += 1
            problems.append(f"line {reader.line_num}: {exc}")
    if bad_rows:
        raise problems_error(fname, "bad rows", problems, bad_rows)
    # amount is the legacy column: kept as the file says (old exports carry their own), daily_amount if blank
    differs = conn.execute("SELECT count(*) FROM pnldb_fact_stage WHERE amount <> daily_amount"
                           ).fetchone()[0] if i_amount is not None else 0
    return header, (slices, codes, differs, {})


def _replaced_slice(pnl_date: str, scenario: str, old, new) -> dict:
    """One replaced slice: its current facts before and after the load, rows and sums per measure."""
    out = {"pnl_date": pnl_date, "scenario": scenario, "old_rows": old[0], "new_rows": new[0]}
    for k, m in enumerate(MEASURES):
        out[f"old_{m}_sum"] = old[k + 1]
        out[f"new_{m}_sum"] = new[k + 1]
    return out


def _analyze_if_large(conn: psycopg.Connection, inserted: int) -> bool:
    """ANALYZE the facts (analyze_facts) when this load is large against what was there before it."""
    if inserted < ANALYZE_MIN_ROWS:
        return False
    estimate = conn.execute(
        "SELECT greatest(c.reltuples, 0) FROM pg_class c WHERE c.oid = 'fact_pnl_entries'::regclass").fetchone()[0]
    if inserted < ANALYZE_FRACTION * estimate:
        return False
    conn.execute("SELECT analyze_facts()")
    return True


def _slice_names(keys) -> str:
    """'2025-12-24 ACTUAL, 2025-12-24 PRIOR', the first MAX_LISTED of them."""
    keys = list(keys)
    listed = ", ".join(f"{d} {s}" for d, s in keys[:MAX_LISTED])
    return listed + (f" and {len(keys) - MAX_LISTED} more" if len(keys) > MAX_LISTED else "")


def _already_current(fname: str, uc_name: str, existing: dict[tuple[str, str], list[int]]) -> PnlError:
    keys = sorted(existing)
    parts = []
    for d, s in keys[:MAX_LISTED]:
        loads = existing[d, s]
        parts.append(f"{d} {s} (load{'s' if len(loads) > 1 else ''} {', '.join(map(str, loads))})")
    more = f" and {len(keys) - MAX_LISTED} more" if len(keys) > MAX_LISTED else ""
    return PnlError(
        f"{fname}: use case {quoted(uc_name)} already has current facts for "
        f"{plural(len(keys), 'slice')} of the file: {', '.join(parts)}{more}; nothing loaded. Use --replace to "
        f"supersede them with this file, or --append to add it as another load beside them")


def _duplicate(fname: str, duplicates) -> PnlError:
    """The file's rows for some slices are exactly those of current loads: one clause per such load."""
    by_load: dict[int, list] = {}
    for pnl_date, scenario, load, loaded_at, loaded_by, source in duplicates:
        by_load.setdefault(load, [loaded_at, loaded_by, source, []])[3].append((pnl_date.isoformat(), scenario))
    clauses = [f"its rows for {_slice_names(keys)} are exactly those of current load {load} (loaded "
               f"{fmt.timestamp(loaded_at)} UTC by {loaded_by}, source {quoted(source) if source else 'none'})"
               for load, (loaded_at, loaded_by, source, keys) in by_load.items()]
    which = f"load {next(iter(by_load))}" if len(by_load) == 1 else "those loads"
    return PnlError(f"{fname}: already loaded: {'; '.join(clauses)}; nothing loaded, not even with --append. "
                    f"Use --replace to supersede {which} with this file")


def _check_use_case_cell(text: str, uc_id: uuid.UUID, uc_name: str) -> None:
    s = text.strip()
    if not s:
        return
    try:
        if uuid.UUID(s) == uc_id:
            return
    except ValueError:
        raise _Bad(f"{quoted(text)} is not a use case id (a uuid)") from None
    raise _Bad(f"{quoted(text)} is not the use case being loaded ({uc_name}, {uc_id})")


def _insert(conn, uc_id, load_id, dims: list[str], stored: dict[str, pgsql.Composable], rows: int) -> int:
    """The `rows` staged rows into the facts, one INSERT, in the file's order; `stored`: the SQL expression of
    a stage column where cells are stored otherwise than staged (fact_stage.stage). Each distinct combination
    of dimension cells gets its attributes built once (building a jsonb costs more than the rest of a row),
    joined back by a hash on the cells (the stage probing: its order kept), unless there are so many that
    building each row's costs less."""
    cells = [pgsql.Identifier(f"d{k}") for k in range(len(dims))]
    attributes, join = _attributes_sql(dims, cells), pgsql.SQL("")
    if dims:
        keys = pgsql.SQL(", ").join(pgsql.SQL("coalesce({}, '') AS {}").format(c, c) for c in cells)
        conn.execute(pgsql.SQL("DROP TABLE IF EXISTS pg_temp.pnldb_fact_attributes; "
                               "CREATE TEMP TABLE pnldb_fact_attributes ON COMMIT DROP AS "
                               "SELECT {keys}, NULL::jsonb AS attributes FROM pnldb_fact_stage "
                               "GROUP BY {keys_only}").format(
            keys=keys, keys_only=pgsql.SQL(", ").join(pgsql.SQL("coalesce({}, '')").format(c) for c in cells)))
        distinct = conn.execute("SELECT count(*) FROM pnldb_fact_attributes").fetchone()[0]
        if distinct * 4 <= rows:
            conn.execute(pgsql.SQL("UPDATE pnldb_fact_attributes SET attributes = {}").format(attributes))
            conn.execute("ANALYZE pnldb_fact_attributes")
            attributes = pgsql.SQL("a.attributes")
            join = pgsql.SQL(" JOIN pnldb_fact_attributes a ON {}").format(pgsql.SQL(" AND ").join(
                pgsql.SQL("a.{c} = coalesce(s.{c}, '')").format(c=c) for c in cells))
    return conn.execute(pgsql.SQL(
        """INSERT INTO fact_pnl_entries (use_case_id, load_id, pnl_date, scenario, category_code, currency,
                                         daily_amount, wtd_amount, ytd_amount, amount, attributes)
           SELECT %(uc)s, %(load)s, ({pnl_date})::date, {scenario}, {category_code}, {currency}, s.daily_amount,
                  s.wtd_amount, s.ytd_amount, coalesce(s.amount, s.daily_amount), {attributes}
           FROM pnldb_fact_stage s{join}""").format(
        attributes=attributes, join=join, **{c: stored.get(c, pgsql.SQL("s.{}").format(pgsql.Identifier(c)))
                                             for c in ("pnl_date", "scenario", "category_code", "currency")}),
        {"uc": uc_id, "load": load_id}).rowcount


def _attributes_sql(dims: list[str], cells: list[pgsql.Identifier]) -> pgsql.Composable:
    """jsonb of the non-blank, trimmed dimension cells; keys are the header names, as literals."""
    if not dims:
        return pgsql.SQL("'{}'::jsonb")
    pairs = [pgsql.SQL("{}, NULLIF(btrim({}), '')").format(pgsql.Literal(d), c) for d, c in zip(dims, cells)]
    chunks = [pairs[i:i + 50] for i in range(0, len(pairs), 50)]  # 100 arguments per function call
    return pgsql.SQL(" || ").join(
        pgsql.SQL("jsonb_strip_nulls(jsonb_build_object({}))").format(pgsql.SQL(", ").join(chunk))
        for chunk in chunks)
