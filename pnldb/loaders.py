"""Loaders: hierarchies and facts from CSV, rules from JSON, and use-case creation.

Each loader validates its input in Python first and reports every problem with the line (and, for
facts, the column) it sits on, then writes in one transaction: all or nothing. Writes are set-based
(COPY). The connection must have the pnldb schema first on its search_path, as `pnldb.connect` and
the CLI set it up.

Money is `Decimal` (or its exact text) end to end, never a float.
"""
from __future__ import annotations

import csv
import datetime as dt
import json
import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import BinaryIO

import psycopg
from psycopg import sql as pgsql

from pnldb.errors import PnlError
from pnldb.jsonfmt import to_json

UNMAPPED = "__UNMAPPED__"
SCENARIOS = ("ACTUAL", "PRIOR")
MAX_REPORTED = 10  # problems quoted in one error message; the rest are counted

HIERARCHY_COLUMNS = ("node_id", "parent_node_id", "node_name")
FACT_REQUIRED = ("pnl_date", "category_code", "daily_amount", "wtd_amount", "ytd_amount", "scenario")
FACT_MEASURES = ("daily_amount", "wtd_amount", "ytd_amount")
FACT_OPTIONAL = ("use_case_id", "amount")
RULE_KEYS = ("node_id", "predicate_json", "logic_en")

Progress = Callable[[int], None]


# --------------------------------------------------------------------------------------------------
# use cases

def resolve_use_case(conn: psycopg.Connection, id_or_name) -> tuple[uuid.UUID, str, str]:
    """(use_case_id, name, structure_id) of the use case with this id or, failing that, this name."""
    text = str(id_or_name).strip()
    row = None
    try:
        as_uuid = uuid.UUID(text)
    except ValueError:
        as_uuid = None
    if as_uuid is not None:
        row = conn.execute("SELECT use_case_id, name, structure_id FROM use_cases WHERE use_case_id = %s",
                           (as_uuid,)).fetchone()
    if row is None:
        row = conn.execute("SELECT use_case_id, name, structure_id FROM use_cases WHERE name = %s",
                           (text,)).fetchone()
    if row is None:
        raise PnlError(f"unknown use case {_q(text)}; give a use-case id or exact name (see `pnldb use-case list`)")
    return row[0], row[1], row[2]


def create_use_case(conn: psycopg.Connection, name: str, structure_id: str,
                    description: str | None = None) -> dict:
    """Insert a use case; returns its row as a dict. Unknown structure or a taken name: PnlError."""
    name, structure_id = (name or "").strip(), (structure_id or "").strip()
    if not name:
        raise PnlError("use case name must not be blank")
    with conn.transaction():
        if conn.execute("SELECT 1 FROM hierarchy_structures WHERE structure_id = %s",
                        (structure_id,)).fetchone() is None:
            raise PnlError(f"unknown structure {_q(structure_id)}; load it first with "
                           f"pnldb load hierarchy FILE --structure {structure_id}")
        existing = conn.execute("SELECT use_case_id FROM use_cases WHERE name = %s", (name,)).fetchone()
        if existing is not None:
            raise PnlError(f"use case {_q(name)} already exists (id {existing[0]})")
        try:
            with conn.transaction():
                cur = conn.execute(
                    """INSERT INTO use_cases (name, structure_id, description) VALUES (%s, %s, %s)
                       RETURNING use_case_id, name, structure_id, description, status, created_at""",
                    (name, structure_id, description))
        except psycopg.errors.UniqueViolation:  # created concurrently since the check above
            raise PnlError(f"use case {_q(name)} already exists") from None
        names = [c.name for c in cur.description]
        return dict(zip(names, cur.fetchone()))


# --------------------------------------------------------------------------------------------------
# reading CSV: physical line numbers, encoding, NUL bytes, progress

class _BadLine(Exception):
    """A line that cannot even be read (encoding, NUL byte); carries the raw text if any."""

    def __init__(self, message: str, text: str | None = None):
        super().__init__(message)
        self.text = text


def _lines(binary: BinaryIO, progress: Progress | None) -> Iterator[str]:
    """Decoded lines (endings kept, as csv wants them); UTF-8 with an optional BOM."""
    pending = 0
    first = True
    for raw in binary:
        if progress is not None:
            pending += len(raw)
            if pending >= 1 << 20:
                progress(pending)
                pending = 0
        if first:
            first = False
            if raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
        if b"\x00" in raw:
            raise _BadLine("contains a NUL byte", raw.decode("utf-8", "replace"))
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _BadLine(f"is not valid UTF-8 (byte {exc.start + 1}: {raw[exc.start:exc.start + 1]!r})") from None
        yield line
    if progress is not None and pending:
        progress(pending)


def _open(source) -> tuple[BinaryIO, str, bool]:
    """(binary file, name for messages, whether we opened it)."""
    if isinstance(source, (str, Path)):
        try:
            return open(source, "rb"), str(source), True
        except OSError as exc:
            raise PnlError(f"cannot read {source}: {exc.strerror}") from None
    return source, getattr(source, "name", "<input>"), False


def _q(value: str, limit: int = 40) -> str:
    """A value quoted for a message: short, printable, on one line."""
    text = str(value)
    if len(text) > limit:
        text = text[:limit] + "..."
    if text.isprintable():
        return f"'{text}'"
    return repr(text)


def _report(name: str, what: str, problems: list[str], total: int) -> PnlError:
    shown = "; ".join(problems[:MAX_REPORTED])
    more = f"; and {total - MAX_REPORTED} more" if total > MAX_REPORTED else ""
    if total == 1:
        return PnlError(f"{name}: {shown}; nothing loaded")
    return PnlError(f"{name}: {total} {what}, nothing loaded: {shown}{more}")


def _header(reader, name: str, required: Iterable[str]) -> list[str]:
    try:
        header = next(reader)
    except StopIteration:
        raise PnlError(f"{name}: the file is empty; expected a header line") from None
    except _BadLine as exc:
        raise PnlError(f"{name}: line 1 (the header) {exc}") from None
    except csv.Error as exc:
        raise PnlError(f"{name}: line 1 (the header): {exc}") from None
    header = [h.strip() for h in header]
    seen = set()
    for i, col in enumerate(header):
        if not col:
            raise PnlError(f"{name}: line 1: column {i + 1} of the header has no name")
        if col in seen:
            raise PnlError(f"{name}: line 1: column {_q(col)} appears twice in the header")
        seen.add(col)
    missing = [c for c in required if c not in seen]
    if missing:
        raise PnlError(f"{name}: line 1: missing required column{'s' if len(missing) > 1 else ''} "
                       f"{', '.join(missing)} in the header (found: {', '.join(header)})")
    return header


def _nul_column(text: str | None, header: list[str]) -> str:
    """The column of the first cell holding a NUL, parsing the line on its own (best effort)."""
    if text:
        try:
            cells = next(csv.reader([text.rstrip("\r\n")]))
        except (csv.Error, StopIteration):
            cells = []
        for i, cell in enumerate(cells):
            if "\x00" in cell:
                return f", column {header[i]}" if i < len(header) else f", column {i + 1}"
    return ""


# --------------------------------------------------------------------------------------------------
# hierarchy

def load_hierarchy(conn: psycopg.Connection, source, structure_id: str, name: str | None = None) -> dict:
    """Create or replace structure `structure_id` from a CSV of node_id,parent_node_id,node_name.

    Rows may come in any order; a blank parent marks the root. The structure row is upserted (its
    name set to `name` when given, else kept, else the id) and its nodes replaced, in one transaction.
    Refuses, changing nothing, when the file is not one tree or when a rule sits on a node the file
    drops.
    """
    structure_id = (structure_id or "").strip()
    if not structure_id:
        raise PnlError("--structure must not be blank")
    nodes, lines = _read_hierarchy(source)
    problems = _check_tree(nodes, lines)
    fname = _open_name(source)
    if problems:
        raise _report(fname, "problems", problems, len(problems))

    with conn.transaction():
        existed = conn.execute(
            "SELECT name FROM hierarchy_structures WHERE structure_id = %s FOR UPDATE", (structure_id,)).fetchone()
        orphans = conn.execute(
            """SELECT r.node_id, u.name FROM metadata_rules r JOIN use_cases u USING (use_case_id)
               WHERE u.structure_id = %s AND NOT (r.node_id = ANY (%s::text[]))
               ORDER BY r.node_id, u.name""", (structure_id, list(nodes))).fetchall()
        if orphans:
            listed = ", ".join(f"node {_q(n)} (use case {_q(u)})" for n, u in orphans[:MAX_REPORTED])
            more = f" and {len(orphans) - MAX_REPORTED} more" if len(orphans) > MAX_REPORTED else ""
            raise PnlError(f"{fname}: cannot replace structure {structure_id}: rules sit on nodes the file "
                           f"drops: {listed}{more}; delete those rules or keep the nodes; nothing loaded")
        final_name = name if name else (existed[0] if existed else structure_id)
        conn.execute(
            """INSERT INTO hierarchy_structures (structure_id, name) VALUES (%s, %s)
               ON CONFLICT (structure_id) DO UPDATE SET name = EXCLUDED.name""", (structure_id, final_name))
        removed = conn.execute("DELETE FROM dim_hierarchy WHERE structure_id = %s", (structure_id,)).rowcount
        with conn.cursor() as cur:
            with cur.copy("COPY dim_hierarchy (structure_id, node_id, parent_node_id, node_name) FROM STDIN") as cp:
                for node_id, (parent, node_name) in nodes.items():
                    cp.write_row((structure_id, node_id, parent, node_name))
        root = next(n for n, (p, _) in nodes.items() if p is None)
    return {"structure_id": structure_id, "name": final_name, "nodes_loaded": len(nodes),
            "root": root, "replaced": existed is not None, "nodes_removed": removed}


def _open_name(source) -> str:
    return str(source) if isinstance(source, (str, Path)) else getattr(source, "name", "<input>")


def _read_hierarchy(source) -> tuple[dict[str, tuple[str | None, str]], dict[str, int]]:
    """{node_id: (parent or None, name)} and {node_id: line}; row-level problems raise at once."""
    binary, fname, owned = _open(source)
    problems: list[str] = []
    nodes: dict[str, tuple[str | None, str]] = {}
    lines: dict[str, int] = {}
    header: list[str] = []
    try:
        reader = csv.reader(_lines(binary, None))
        try:
            header = _header(reader, fname, HIERARCHY_COLUMNS)
            extra = [c for c in header if c not in HIERARCHY_COLUMNS]
            if extra:
                raise PnlError(f"{fname}: line 1: unexpected column{'s' if len(extra) > 1 else ''} "
                               f"{', '.join(extra)}; the header is node_id,parent_node_id,node_name")
            i_node, i_parent, i_name = (header.index(c) for c in HIERARCHY_COLUMNS)
            for row in reader:
                line = reader.line_num
                if not row:
                    continue
                if len(row) != len(header):
                    problems.append(f"line {line}: {len(row)} cells, expected {len(header)}")
                    continue
                node_id, parent, node_name = row[i_node].strip(), row[i_parent].strip(), row[i_name].strip()
                if not node_id:
                    problems.append(f"line {line}: node_id is blank")
                    continue
                if node_id == UNMAPPED:
                    problems.append(f"line {line}: node_id {UNMAPPED} is reserved for unmapped facts")
                    continue
                if not node_name:
                    problems.append(f"line {line}: node_name of node {_q(node_id)} is blank")
                if node_id in nodes:
                    problems.append(f"line {line}: node {_q(node_id)} already defined on line {lines[node_id]}")
                    continue
                nodes[node_id] = (parent or None, node_name)
                lines[node_id] = line
        except _BadLine as exc:
            col = _nul_column(exc.text, header) if exc.text is not None else ""
            problems.append(f"line {reader.line_num + 1}{col}: {exc}")
        except csv.Error as exc:
            problems.append(f"line {reader.line_num}: {exc}")
    finally:
        if owned:
            binary.close()
    if problems:
        raise _report(fname, "problems", problems, len(problems))
    if not nodes:
        raise PnlError(f"{fname}: no nodes; a structure needs at least a root")
    return nodes, lines


def _check_tree(nodes: dict[str, tuple[str | None, str]], lines: dict[str, int]) -> list[str]:
    """Unknown parents, roots other than exactly one, cycles; each problem names its line(s)."""
    problems: list[str] = []
    roots = [n for n, (p, _) in nodes.items() if p is None]
    for node_id, (parent, _) in nodes.items():
        if parent is not None and parent not in nodes:
            problems.append(f"line {lines[node_id]}: parent_node_id {_q(parent)} of node {_q(node_id)} "
                            f"is not a node of the file")
    if len(roots) > 1:
        first = roots[0]
        for other in roots[1:]:
            problems.append(f"line {lines[other]}: node {_q(other)} has no parent, but {_q(first)} "
                            f"(line {lines[first]}) is already the root")
    # cycles: walk up from every node; a walk that meets its own trail has found a cycle
    state: dict[str, int] = {}  # 1 = on the current trail, 2 = leads to a root or a dead end
    for start in nodes:
        if start in state:
            continue
        trail = []
        node = start
        while node is not None and node in nodes and node not in state:
            state[node] = 1
            trail.append(node)
            node = nodes[node][0]
        if node is not None and state.get(node) == 1:
            cycle = trail[trail.index(node):]
            shown = " -> ".join(f"{_q(n)} (line {lines[n]})" for n in cycle)
            problems.append(f"cycle: {shown} -> {_q(node)}")
        for n in trail:
            state[n] = 2
    if not roots and not any(p.startswith("cycle") for p in problems):
        problems.append("no root: every node has a parent")
    return problems


# --------------------------------------------------------------------------------------------------
# facts

_AMOUNT_FAST = re.compile(r"-?\d{1,16}(?:\.\d{1,2})?")
_AMOUNT_SLOW = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_CENT = Decimal("0.01")
_LIMIT = Decimal(10) ** 16


class _Bad(Exception):
    """One bad cell: the message names the value; the caller adds line and column."""


def parse_amount(text: str) -> Decimal:
    """A numeric(18,2) amount: at most 2 decimals (trailing zeros aside), |x| < 1e16."""
    s = text.strip()
    if not s:
        raise _Bad("is empty; expected an amount")
    if not _AMOUNT_SLOW.fullmatch(s):
        raise _Bad(f"{_q(text)} is not a number")
    value = Decimal(s)
    if abs(value) >= _LIMIT:
        raise _Bad(f"{_q(text)} is out of range for numeric(18,2) (|amount| must be below 1e16)")
    cents = value.quantize(_CENT)
    if cents != value:
        raise _Bad(f"{_q(text)} has more than 2 decimal places")
    return cents


def _amount_text(text: str) -> str:
    """The exact text sent to PostgreSQL for an amount cell."""
    if _AMOUNT_FAST.fullmatch(text):
        return text
    return format(parse_amount(text), "f")


def _date_text(text: str) -> str:
    s = text.strip()
    if not _DATE.fullmatch(s):
        raise _Bad(f"{_q(text)} is not a date (expected YYYY-MM-DD)")
    try:
        dt.date.fromisoformat(s)
    except ValueError:
        raise _Bad(f"{_q(text)} is not a valid date") from None
    return s


def load_facts(conn: psycopg.Connection, source, use_case, replace: bool = False,
               progress: Progress | None = None) -> dict:
    """Load P&L facts from CSV into use case `use_case` (id or name): all rows or none.

    Columns are matched by name, in any order: pnl_date, category_code, daily_amount, wtd_amount,
    ytd_amount, scenario are required; use_case_id is optional (a blank cell means `use_case`, any
    other value must be that use case); amount is optional (the legacy copy of daily_amount: blank,
    or equal to daily_amount); every other column is a dimension, stored in `attributes` as a string
    (blank cells omitted, surrounding spaces trimmed). With `replace`, existing facts of the use case
    for exactly the (pnl_date, scenario) slices in the file are deleted first, in the same
    transaction, so reloading a corrected file is idempotent.

    `progress`, if given, is called with the number of bytes read since its previous call.
    """
    uc_id, uc_name, structure_id = resolve_use_case(conn, use_case)
    binary, fname, owned = _open(source)
    try:
        with conn.transaction():
            return _load_facts(conn, binary, fname, uc_id, uc_name, structure_id, replace, progress)
    finally:
        if owned:
            binary.close()


def _load_facts(conn, binary, fname, uc_id, uc_name, structure_id, replace, progress) -> dict:
    reader = csv.reader(_lines(binary, progress))
    header = _header(reader, fname, FACT_REQUIRED)
    ncols = len(header)
    col = {c: i for i, c in enumerate(header)}
    dims = [c for c in header if c not in FACT_REQUIRED and c not in FACT_OPTIONAL]
    i_date, i_cat, i_scen = col["pnl_date"], col["category_code"], col["scenario"]
    i_daily, i_wtd, i_ytd = (col[m] for m in FACT_MEASURES)
    i_uc, i_amount = col.get("use_case_id"), col.get("amount")
    i_dims = [col[d] for d in dims]

    stage_cols = [pgsql.Identifier(f"d{k}") for k in range(len(dims))]
    conn.execute("DROP TABLE IF EXISTS pg_temp.pnldb_fact_stage")
    conn.execute(pgsql.SQL(
        "CREATE TEMP TABLE pnldb_fact_stage (pnl_date date, scenario text, category_code text, "
        "daily_amount numeric, wtd_amount numeric, ytd_amount numeric{dims}) ON COMMIT DROP").format(
        dims=pgsql.SQL("").join(pgsql.SQL(", {} text").format(c) for c in stage_cols)))

    problems: list[str] = []
    bad_rows = 0
    good_dates: dict[str, str] = {}
    good_ucs = {"", str(uc_id)}
    scenarios = set(SCENARIOS)
    slices: dict[tuple[str, str], int] = {}
    codes: dict[str, int] = {}
    fast_amount = _AMOUNT_FAST.fullmatch

    def bad(line: int, column: str, message: str) -> None:
        nonlocal bad_rows
        bad_rows += 1
        if len(problems) < MAX_REPORTED:
            problems.append(f"line {line}, column {column}: {message}")

    with conn.cursor() as cur, cur.copy(pgsql.SQL("COPY pnldb_fact_stage FROM STDIN")) as cp:
        write = cp.write_row
        try:
            for row in reader:
                if len(row) != ncols:
                    if not row:
                        continue  # blank line
                    line = reader.line_num
                    bad_rows += 1
                    if len(problems) < MAX_REPORTED:
                        problems.append(f"line {line}: {len(row)} cells, expected {ncols} (as in the header)")
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
                        d = good_dates[row[i_date]] = _date_text(row[i_date])
                    c = i_scen
                    sc = row[i_scen]
                    if sc not in scenarios:
                        sc = sc.strip()
                        if sc not in scenarios:
                            raise _Bad(f"{_q(row[i_scen])} is not a scenario (expected ACTUAL or PRIOR)")
                    c = i_cat
                    cat = row[i_cat].strip()
                    if not cat:
                        raise _Bad("is blank; expected a node_id of the structure")
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
                    if i_amount is not None and row[i_amount] and row[i_amount] != daily:
                        c = i_amount
                        _check_legacy_amount(row[i_amount], daily)
                except _Bad as exc:
                    bad(reader.line_num, header[c], str(exc))
                    continue
                if bad_rows:
                    continue  # keep validating, stop writing
                key = (d, sc)
                slices[key] = slices.get(key, 0) + 1
                codes[cat] = codes.get(cat, 0) + 1
                if i_dims:
                    write((d, sc, cat, daily, wtd, ytd, *[row[i] for i in i_dims]))
                else:
                    write((d, sc, cat, daily, wtd, ytd))
        except _BadLine as exc:
            column = _nul_column(exc.text, header) if exc.text is not None else ""
            bad_rows += 1
            problems.append(f"line {reader.line_num + 1}{column}: {exc}")
        except csv.Error as exc:
            bad_rows += 1
            problems.append(f"line {reader.line_num}: {exc}")
    if bad_rows:
        raise _report(fname, "bad rows", problems, bad_rows)

    # Checked and staged; now the writes, under the use case's exclusive lock (see lock_use_case): one
    # loader at a time, after running snapshots of the use case, before the next ones.
    conn.execute("SELECT lock_use_case(%s, true)", (uc_id,))
    if conn.execute("SELECT 1 FROM use_cases WHERE use_case_id = %s", (uc_id,)).fetchone() is None:
        raise PnlError(f"use case {_q(uc_name)} was deleted while {fname} was being read; nothing loaded")
    slice_dates = [d for d, _ in slices]
    slice_scens = [s for _, s in slices]
    existing = {(r[0].isoformat(), r[1]) for r in conn.execute(
        """SELECT s.pnl_date, s.scenario FROM unnest(%s::date[], %s::text[]) AS s (pnl_date, scenario)
           WHERE EXISTS (SELECT 1 FROM fact_pnl_entries f WHERE f.use_case_id = %s
                         AND f.pnl_date = s.pnl_date AND f.scenario = s.scenario)""",
        (slice_dates, slice_scens, uc_id)).fetchall()} if slices else set()
    deleted = 0
    if replace and existing:
        deleted = conn.execute(
            """DELETE FROM fact_pnl_entries f USING unnest(%s::date[], %s::text[]) AS s (pnl_date, scenario)
               WHERE f.use_case_id = %s AND f.pnl_date = s.pnl_date AND f.scenario = s.scenario""",
            (slice_dates, slice_scens, uc_id)).rowcount

    inserted = conn.execute(pgsql.SQL(
        """INSERT INTO fact_pnl_entries (use_case_id, pnl_date, scenario, category_code,
                                         daily_amount, wtd_amount, ytd_amount, amount, attributes)
           SELECT %s, pnl_date, scenario, category_code, daily_amount, wtd_amount, ytd_amount, daily_amount,
                  {attributes}
           FROM pnldb_fact_stage""").format(attributes=_attributes_sql(dims, stage_cols)), (uc_id,)).rowcount
    conn.execute("DROP TABLE pg_temp.pnldb_fact_stage")

    nodes = {r[0] for r in conn.execute(
        "SELECT node_id FROM dim_hierarchy WHERE structure_id = %s AND node_id = ANY (%s::text[])",
        (structure_id, list(codes))).fetchall()}
    unmapped = sorted(c for c in codes if c not in nodes)
    return {
        "use_case_id": uc_id,
        "use_case_name": uc_name,
        "rows_loaded": inserted,
        "slices": [{"pnl_date": d, "scenario": s, "rows": n} for (d, s), n in sorted(slices.items())],
        "replace": replace,
        "slices_replaced": len(existing) if replace else 0,
        "rows_deleted": deleted,
        "slices_added_to": 0 if replace else len(existing),
        "dimensions": dims,
        "unmapped_rows": sum(codes[c] for c in unmapped),
        "unmapped_codes": unmapped,
    }


def _check_use_case_cell(text: str, uc_id: uuid.UUID, uc_name: str) -> None:
    s = text.strip()
    if not s:
        return
    try:
        if uuid.UUID(s) == uc_id:
            return
    except ValueError:
        raise _Bad(f"{_q(text)} is not a use case id (a uuid)") from None
    raise _Bad(f"{_q(text)} is not the use case being loaded ({uc_name}, {uc_id})")


def _check_legacy_amount(text: str, daily: str) -> None:
    if not text.strip():
        return
    amount = parse_amount(text)
    if amount != Decimal(daily):
        raise _Bad(f"{_q(text)} differs from daily_amount {daily}; amount is the legacy copy of "
                   f"daily_amount: leave it blank or equal")


def _attributes_sql(dims: list[str], stage_cols: list[pgsql.Identifier]) -> pgsql.Composable:
    """jsonb of the non-blank, trimmed dimension cells; keys are the header names, as literals."""
    if not dims:
        return pgsql.SQL("'{}'::jsonb")
    pairs = [pgsql.SQL("{}, NULLIF(btrim({}), '')").format(pgsql.Literal(d), c) for d, c in zip(dims, stage_cols)]
    chunks = [pairs[i:i + 50] for i in range(0, len(pairs), 50)]  # 100 arguments per function call
    return pgsql.SQL(" || ").join(
        pgsql.SQL("jsonb_strip_nulls(jsonb_build_object({}))").format(pgsql.SQL(", ").join(chunk))
        for chunk in chunks)


# --------------------------------------------------------------------------------------------------
# rules

def load_rules(conn: psycopg.Connection, source, use_case) -> dict:
    """Upsert rules from a JSON list of {node_id, predicate_json, logic_en}: all or none.

    A rule without the logic_en key keeps the text it has (null sets it to null). The database
    validates each rule (predicate, node of the structure). Each rule is written in its
    own savepoint so that every rejected rule is reported, with its reason, in one PnlError; if any
    is rejected nothing is written.
    """
    uc_id, uc_name, _ = resolve_use_case(conn, use_case)
    rules = _read_rules(source)
    fname = _open_name(source)
    rejected: list[str] = []
    inserted = updated = 0
    with conn.transaction():
        for i, rule in enumerate(rules, start=1):
            try:
                with conn.transaction():
                    row = conn.execute(
                        """INSERT INTO metadata_rules (use_case_id, node_id, predicate_json, logic_en)
                           VALUES (%s, %s, %s::jsonb, %s)
                           ON CONFLICT (use_case_id, node_id) DO UPDATE
                           SET predicate_json = EXCLUDED.predicate_json,
                                   logic_en = CASE WHEN %s THEN EXCLUDED.logic_en ELSE metadata_rules.logic_en END
                           RETURNING (xmax = 0)""",
                        (uc_id, rule["node_id"], to_json(rule["predicate_json"], indent=None),
                         rule.get("logic_en"), "logic_en" in rule)).fetchone()
            except psycopg.Error as exc:
                diag = getattr(exc, "diag", None)
                reason = (diag.message_primary if diag else None) or str(exc).strip().splitlines()[0]
                rejected.append(f"rule {i} (node {_q(rule['node_id'])}): {' '.join(reason.split())}")
                continue
            if row[0]:
                inserted += 1
            else:
                updated += 1
        if rejected:
            raise PnlError(f"{fname}: {len(rejected)} of {len(rules)} rules rejected, nothing loaded\n  "
                           + "\n  ".join(rejected))
    return {"use_case_id": uc_id, "use_case_name": uc_name, "rules_loaded": len(rules),
            "inserted": inserted, "updated": updated}


def _read_rules(source) -> list[dict]:
    binary, fname, owned = _open(source)
    try:
        raw = binary.read()
    finally:
        if owned:
            binary.close()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PnlError(f"{fname}: not valid UTF-8 (byte {exc.start + 1})") from None
    try:
        rules = json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise PnlError(f"{fname}: not valid JSON: line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    if not isinstance(rules, list):
        raise PnlError(f"{fname}: expected a JSON list of rules "
                       f"({{\"node_id\", \"predicate_json\", \"logic_en\"}}), got a {_json_type(rules)}")
    problems = []
    seen: dict[str, int] = {}
    for i, rule in enumerate(rules, start=1):
        if not isinstance(rule, dict):
            problems.append(f"rule {i}: expected an object, got a {_json_type(rule)}")
            continue
        unknown = sorted(set(rule) - set(RULE_KEYS))
        if unknown:
            problems.append(f"rule {i}: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
                            f"(expected {', '.join(RULE_KEYS)})")
        node = rule.get("node_id")
        if not isinstance(node, str) or not node.strip():
            problems.append(f"rule {i}: node_id must be a non-blank string")
        elif node in seen:
            problems.append(f"rule {i}: node {_q(node)} already has rule {seen[node]} in this file")
        else:
            seen[node] = i
        if not isinstance(rule.get("predicate_json"), dict):
            problems.append(f"rule {i}: predicate_json must be an object, got "
                            f"{_json_type(rule.get('predicate_json')) if 'predicate_json' in rule else 'nothing'}")
        if rule.get("logic_en") is not None and not isinstance(rule["logic_en"], str):
            problems.append(f"rule {i}: logic_en must be a string")
    if problems:
        raise _report(fname, "problems", problems, len(problems))
    return rules


def _json_type(value) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"
