"""What the peers share: the plan of a snapshot (the tree, the governing rule per node, the rules'
conditions in a neutral form, the ancestor closure), the SQL that reads the facts out, the COPY that
writes the rows back, the timing of a phase in wall time and total CPU (client and server), and the
comparison of a peer's rows with the engine's.

The plan is plain Python over ~10k nodes and ~1k rules, built with the reference's own tree and rule
validation (pnldb.reference): it is not where a snapshot's time goes. Everything per fact happens in
the peer's engine."""
from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from functools import partial

import psycopg

from pnldb import reference
from pnldb.bench.checks import RESULT_COLUMNS
from pnldb.errors import PnlError
from pnldb.vocabulary import MEASURES, RESULT_VALUE_COLUMNS, UNMAPPED, UNMAPPED_NAME

MEASURE_FIELDS = tuple(f"{m}_amount" for m in MEASURES)
# cents never reach this: numeric(18,2) holds less than 1e16 units, 1e18 cents
CENTS_BOUND = 1 << 62
INT64_MAX = (1 << 63) - 1


def table_name(peer: str) -> str:
    return f"bench_peer_{peer}"


# --------------------------------------------------------------------------------------------------
# The plan
# --------------------------------------------------------------------------------------------------

@dataclass
class Condition:
    """One condition of a rule, as a peer evaluates it.

    kind 'text': column is a text column of the facts (category_code, currency or an attribute's a<i>),
    values a frozenset of strings; a NULL (an absent attribute) is false for equals/in and true for
    not_equals/not_in. kind 'measure': column is daily/wtd/ytd in integer cents, and the comparison is
    in whole cents: greater_than 'cents > bound', less_than 'cents < bound', equals/in/not_equals/not_in
    against `values`, the compared numbers that are whole cents (a value with more decimals equals no
    numeric(18,2) amount)."""
    kind: str
    column: str
    operator: str
    values: frozenset = frozenset()
    bound: int = 0

    @property
    def negated(self) -> bool:
        return self.operator in ("not_equals", "not_in")


@dataclass
class Plan:
    reporting: str
    node_ids: list[str]  # index -> node id; the last one is __UNMAPPED__
    parent: list[int]  # index -> parent index (-1 for the root)
    names: list[str]
    depth: list[int]
    governing: list[int]  # index -> governing rule index, -1 for none
    is_override: list[bool]
    rules: list[tuple[str, list[Condition]]]  # rule index -> (conjunction, conditions)
    closure: list[tuple[int, int]]  # (node index, ancestor index), self included
    attributes: list[str]  # attribute keys the rules test, read as columns a0, a1, ...
    reads_currency: bool = False
    order: list[int] = field(default_factory=list)  # node indexes in the result rows' order

    @property
    def unmapped(self) -> int:
        return len(self.node_ids) - 1

    def code_index(self) -> dict[str, int]:
        return {n: i for i, n in enumerate(self.node_ids[:-1])}


def _cents(value: Decimal) -> Decimal:
    return value * 100


def _measure_condition(column: str, operator: str, value) -> Condition:
    values = value if isinstance(value, (list, tuple)) else [value]
    numbers = [Decimal(str(v)) if isinstance(v, float) else Decimal(v) for v in values]
    if operator == "greater_than":  # cents > v*100  <=>  cents > floor(v*100)
        bound = int(_cents(numbers[0]).to_integral_value(rounding=ROUND_FLOOR))
        return Condition("measure", column, operator, bound=max(-CENTS_BOUND, min(CENTS_BOUND, bound)))
    if operator == "less_than":  # cents < v*100  <=>  cents < ceil(v*100)
        bound = int(_cents(numbers[0]).to_integral_value(rounding=ROUND_CEILING))
        return Condition("measure", column, operator, bound=max(-CENTS_BOUND, min(CENTS_BOUND, bound)))
    whole = frozenset(int(c) for c in map(_cents, numbers) if c == c.to_integral_value() and abs(c) < CENTS_BOUND)
    return Condition("measure", column, operator, values=whole)


def build_plan(nodes: list[tuple], rules: list[tuple], reporting: str) -> Plan:
    """The plan from the structure's (node_id, parent_node_id, node_name) and the rules' (node_id,
    predicate): validated as the reference validates them (a bad tree or predicate raises)."""
    governance = reference._Governance(nodes, rules, reporting)
    order = governance.order
    node_ids = [*order, UNMAPPED]
    index = {n: i for i, n in enumerate(node_ids)}
    info = governance.info
    parent = [index[info[n][0]] if info[n][0] is not None else -1 for n in order] + [index[governance.root]]
    names = [info[n][1] for n in order] + [UNMAPPED_NAME]
    depth = [governance.depth[n] for n in order] + [1]
    rule_nodes = list(governance.rules)
    rule_index = {n: k for k, n in enumerate(rule_nodes)}
    governing = [-1 if governance.governing[n] is None else rule_index[governance.governing[n].node_id]
                 for n in node_ids]
    is_override = [n in governance.rules for n in node_ids]
    attributes: list[str] = []
    reads_currency = False
    compiled = []
    for node in rule_nodes:
        predicate = governance.rules[node].predicate
        conditions = []
        for c in predicate["conditions"]:
            name, operator, value = c["field"], c["operator"], c["value"]
            if name in MEASURE_FIELDS:
                conditions.append(_measure_condition(name.removesuffix("_amount"), operator, value))
                continue
            if name == "category_code":
                column = "code"
            elif name == "currency":
                column, reads_currency = "currency", True
            else:
                if name not in attributes:
                    attributes.append(name)
                column = f"a{attributes.index(name)}"
            values = frozenset(value if isinstance(value, (list, tuple)) else [value])
            conditions.append(Condition("text", column, operator, values=values))
        compiled.append((predicate.get("conjunction", "AND"), conditions))
    closure = []
    for i in range(len(node_ids)):
        a = i
        while a >= 0:
            closure.append((i, a))
            a = parent[a]
    rows_order = sorted(range(len(node_ids)), key=lambda i: (depth[i], node_ids[i]))
    return Plan(reporting, node_ids, parent, names, depth, governing, is_override, compiled, closure,
                attributes, reads_currency, rows_order)


def read_plan(conn: psycopg.Connection, s: str, use_case, pnl_date) -> Plan:
    """The use case's tree and rules, read with plain SQL."""
    found = conn.execute(f"SELECT structure_id, reporting_currency FROM {s}.use_cases WHERE use_case_id = %s",
                         (use_case,)).fetchone()
    if found is None:
        raise PnlError(f"use case {use_case} not found")
    nodes = conn.execute(f"SELECT node_id, parent_node_id, node_name FROM {s}.dim_hierarchy WHERE structure_id = %s",
                         (found[0],)).fetchall()
    exact = partial(json.loads, parse_float=Decimal)
    rules = [(n, exact(p)) for n, p in conn.execute(
        f"SELECT node_id, predicate_json::text FROM {s}.metadata_rules WHERE use_case_id = %s", (use_case,))]
    return build_plan(nodes, rules, found[1])


def facts_select(conn: psycopg.Connection, s: str, plan: Plan, use_case, pnl_date, cents: bool) -> str:
    """The SELECT of the current in-scope facts (contract §2 scope, §6 current facts) with exactly the
    columns the plan needs: scenario, code, the three amounts (integer cents, or numeric text), and each
    tested attribute as text (NULL when the fact lacks it); currency when a rule tests it."""
    def lit(value) -> str:
        return psycopg.sql.Literal(value).as_string(conn)

    amounts = [f"(f.{m}_amount * 100)::int8 AS {m}" if cents else f"f.{m}_amount AS {m}" for m in MEASURES]
    columns = ["f.scenario", "f.category_code AS code", *amounts]
    columns += [f"f.attributes ->> {lit(a)} AS a{i}" for i, a in enumerate(plan.attributes)]
    if plan.reads_currency:
        columns.append(f"coalesce(f.currency, {lit(plan.reporting)}) AS currency")
    return (f"SELECT {', '.join(columns)} FROM {s}.fact_pnl_entries f "
            f"WHERE f.use_case_id = {lit(str(use_case))}::uuid AND f.pnl_date = {lit(pnl_date)}::date "
            "AND f.scenario IN ('ACTUAL', 'PRIOR') AND EXISTS (SELECT 1 FROM "
            f"{s}.fact_load_slices ls WHERE ls.load_id = f.load_id AND ls.pnl_date = f.pnl_date "
            "AND ls.scenario = f.scenario AND ls.superseded_at IS NULL)")


def copy_out(conn: psycopg.Connection, dsn: str | None, select: str) -> bytes:
    """`COPY (select) TO STDOUT` as CSV bytes, by psql when it is installed (libpq's C loop hands over
    the rows at a fraction of the client CPU of a Python loop over psycopg's rows, measured: 0.3 s
    against 1.5 s for 2M rows), else by psycopg."""
    command = f"COPY ({select}) TO STDOUT WITH (FORMAT csv)"
    psql = shutil.which("psql")
    if psql and dsn:
        done = subprocess.run([psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-c", command],
                              capture_output=True)
        if done.returncode != 0:
            raise PnlError(f"psql could not read the facts: {done.stderr.decode(errors='replace').strip()}")
        return done.stdout
    chunks = []
    with conn.cursor().copy(command) as copy:
        for chunk in copy:
            chunks.append(chunk)
    return b"".join(chunks)


def fact_columns(plan: Plan) -> list[str]:
    return ["scenario", "code", *MEASURES, *(f"a{i}" for i in range(len(plan.attributes)))] + (
        ["currency"] if plan.reads_currency else [])


def check_currencies(conn: psycopg.Connection, s: str, plan: Plan, use_case, pnl_date) -> None:
    """The peers value facts in the reporting currency only (contract §8's conversion is the engine's):
    a slice with facts in another currency is refused, naming how many."""
    other = conn.execute(
        f"""SELECT count(*) FROM {s}.fact_pnl_entries WHERE use_case_id = %s AND pnl_date = %s
            AND currency IS NOT NULL AND currency <> %s""", (use_case, pnl_date, plan.reporting)).fetchone()[0]
    if other:
        raise PnlError(f"the peers compute facts in the reporting currency only; {other:,} facts of the slice are "
                       "in another currency")


def copy_csv(conn: psycopg.Connection, s: str, peer: str, data: bytes) -> None:
    """The rows (CSV, RESULT_COLUMNS, no header) into the peer's scratch table, replacing its rows, in
    one transaction (TRUNCATE then COPY: with wal_level minimal the COPY skips the WAL)."""
    with conn.transaction():
        conn.execute(f"TRUNCATE {s}.{table_name(peer)}")
        with conn.cursor().copy(f"COPY {s}.{table_name(peer)} ({', '.join(RESULT_COLUMNS)}) "
                                "FROM STDIN WITH (FORMAT csv)") as copy:
            copy.write(data)


def create_table(conn: psycopg.Connection, s: str, peer: str) -> None:
    numeric = set(RESULT_VALUE_COLUMNS)
    types = {"depth": "integer", "is_override": "boolean", "is_reconciled": "boolean"}
    columns = ", ".join(f"{c} {types.get(c, 'numeric' if c in numeric else 'text')}" for c in RESULT_COLUMNS)
    conn.execute(f"DROP TABLE IF EXISTS {s}.{table_name(peer)}")
    conn.execute(f"CREATE TABLE {s}.{table_name(peer)} ({columns})")


def guard_cents(n: int, max_abs: int, what: str) -> None:
    """Integer cents in int64 are exact as long as no sum can leave int64: refuse otherwise."""
    if n * max_abs > INT64_MAX:
        raise PnlError(f"{what}: {n:,} amounts of up to {max_abs:,} cents could overflow int64 sums; "
                       "this peer's integer-cent arithmetic would not be exact")


def compare_with_engine(conn: psycopg.Connection, s: str, peer: str, run_id) -> dict:
    """The peer's rows equal the engine's run row for row (EXCEPT ALL both ways, exact numeric
    equality); a mismatch raises."""
    listed = ", ".join(RESULT_COLUMNS)
    ref = f"{s}.{table_name(peer)}"
    engine_rows, peer_rows, only_engine, only_peer, engine_row, peer_row = conn.execute(
        f"""WITH engine AS (SELECT {listed} FROM {s}.fact_calculated_results WHERE calculation_run_id = %s),
                 only_engine AS (SELECT {listed} FROM engine EXCEPT ALL SELECT {listed} FROM {ref}),
                 only_peer AS (SELECT {listed} FROM {ref} EXCEPT ALL SELECT {listed} FROM engine)
            SELECT (SELECT count(*) FROM engine), (SELECT count(*) FROM {ref}),
                   (SELECT count(*) FROM only_engine), (SELECT count(*) FROM only_peer),
                   (SELECT row_to_json(x)::text FROM (SELECT * FROM only_engine ORDER BY node_id, scenario LIMIT 1) x),
                   (SELECT row_to_json(x)::text FROM (SELECT * FROM only_peer ORDER BY node_id, scenario LIMIT 1) x)""",
        (run_id,)).fetchone()
    if only_engine or only_peer or engine_rows != peer_rows:
        raise PnlError(f"peer {peer}'s rows differ from the engine's: {engine_rows} engine rows, {peer_rows} {peer} "
                       f"rows, {only_engine} engine row(s) and {only_peer} {peer} row(s) without an equal; first "
                       f"engine row without an equal: {engine_row}; first {peer} row without an equal: {peer_row}")
    return {"rows": peer_rows, "matches_engine": True}


# --------------------------------------------------------------------------------------------------
# Wall time and total CPU
# --------------------------------------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()  # fields from 3 (state) on


def process_cpu(pid: int) -> float:
    """Seconds of CPU (utime+stime) process `pid` has used; 0 once it is gone."""
    fields = _stat(pid)
    return 0.0 if fields is None else (int(fields[11]) + int(fields[12])) / _TICK


def postmaster_pid(conn: psycopg.Connection) -> int | None:
    """The server's postmaster, when it runs on this machine (the backend's parent); None otherwise."""
    fields = _stat(conn.info.backend_pid)
    host = conn.info.host or ""
    if fields is None or not (host.startswith("/") or host in ("localhost", "127.0.0.1", "::1")):
        return None
    return int(fields[1])


def server_cpu(postmaster: int | None) -> float | None:
    """Seconds of CPU the server has used: utime+stime of the postmaster's live children, plus the
    postmaster's own and its cutime+cstime (exited backends and parallel workers it reaped)."""
    if postmaster is None:
        return None
    own = _stat(postmaster)
    if own is None:
        return None
    ticks = sum(int(own[i]) for i in (11, 12, 13, 14))  # utime stime cutime cstime
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None and fields[1] == str(postmaster):
                ticks += int(fields[11]) + int(fields[12])
    return ticks / _TICK


def client_cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class Clock:
    """Wall time and total CPU (this process and the server) from its start, phase by phase."""

    def __init__(self, postmaster: int | None):
        self.postmaster = postmaster
        self.phases: dict[str, float] = {}
        self._wall = self._mark = time.perf_counter()
        self._client = client_cpu()
        self._server = server_cpu(postmaster)

    def phase(self, name: str) -> None:
        now = time.perf_counter()
        self.phases[f"{name}_s"] = now - self._mark
        self._mark = now

    def result(self) -> dict:
        wall = time.perf_counter() - self._wall
        client = client_cpu() - self._client
        server_now = server_cpu(self.postmaster)
        server = None if server_now is None or self._server is None else server_now - self._server
        return {**self.phases, "wall_s": wall, "client_cpu_s": client, "server_cpu_s": server,
                "cpu_s": None if server is None else client + server}


def run_peer(module, peer: str, conn: psycopg.Connection, dsn: str | None, s: str, use_case, pnl_date,
             clock: Clock) -> int:
    """One timed run of a peer module (its read_facts, compute and to_csv): read, compute, write back."""
    plan = read_plan(conn, s, use_case, pnl_date)
    facts = module.read_facts(conn, dsn, s, plan, use_case, pnl_date)
    clock.phase("read")
    rows = module.compute(facts, plan)
    del facts  # the facts' memory goes before the rows are formatted
    data = module.to_csv(rows)
    clock.phase("compute")
    copy_csv(conn, s, peer, data)
    clock.phase("write")
    return len(rows)
