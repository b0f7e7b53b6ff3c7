"""Pure-Python reference implementation of a snapshot (contract section 2), independent of any SQL.

The test suite uses it as an oracle for the SQL engine and `pnldb bench` times it. It follows the
contract's words:

* scope: facts of the use case and date, scenario ACTUAL or PRIOR, nothing else;
* mapping: a fact maps to the node whose node_id equals its category_code, else to the synthetic
  node ``__UNMAPPED__`` (name 'Unmapped', child of the root, depth 1, present only when needed);
* the governing rule of a fact is the rule on the deepest node among the fact's node and its
  ancestors that carries one (for ``__UNMAPPED__``: itself, then the root); ungoverned facts are
  included, governed facts are included exactly when the rule's predicate holds;
* natural / adjusted are sums at or below a node, plug = natural - adjusted, VARIANCE = ACTUAL - PRIOR;
* all arithmetic in Decimal, never float.

The work is one pass over the facts, aggregating per (scenario, node, included) with a precomputed
node -> governing-rule map, then a roll-up of the sums along the tree, deepest nodes first.
"""
from __future__ import annotations

import decimal
import json
import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import date
from decimal import Decimal
from functools import partial
from typing import Any

MEASURES = ("daily", "wtd", "ytd")
UNMAPPED = "__UNMAPPED__"
UNMAPPED_NAME = "Unmapped"

SCENARIOS = ("ACTUAL", "PRIOR")
ROW_SCENARIOS = ("ACTUAL", "PRIOR", "VARIANCE")
KINDS = ("natural", "adjusted", "plug")

MEASURE_FIELDS = tuple(f"{m}_amount" for m in MEASURES)
CATEGORY_FIELD = "category_code"
OPERATORS = ("equals", "not_equals", "in", "not_in", "greater_than", "less_than")
CONJUNCTIONS = ("AND", "OR")
PREDICATE_KEYS = frozenset({"conditions", "conjunction"})
CONDITION_KEYS = frozenset({"field", "operator", "value"})
IDENTIFIER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")

# Sums are exact: a context wide enough that adding numeric values never rounds, Inexact trapped.
_EXACT = decimal.Context(prec=decimal.MAX_PREC, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN,
                         traps=[decimal.InvalidOperation, decimal.Inexact, decimal.Overflow,
                                decimal.DivisionByZero])
_ZERO = Decimal(0)


class PredicateError(ValueError):
    """An invalid predicate; the message says which condition and why."""


# --------------------------------------------------------------------------------------------------
# Predicates
# --------------------------------------------------------------------------------------------------

def _is_number(value: Any) -> bool:
    """A JSON number: int, float or Decimal (json.loads(parse_float=Decimal)); not bool, not str."""
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


def _to_decimal(value: Any, where: str) -> Decimal:
    result = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    if not result.is_finite():
        raise PredicateError(f"{where}: value {value!r} is not a finite number")
    return result


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"boolean {json.dumps(value)}"
    if isinstance(value, str):
        return f"string {value!r}"
    if _is_number(value):
        return f"number {value}"
    if value is None:
        return "null"
    return f"{type(value).__name__} {value!r}"


def _field_kind(field: Any, where: str) -> str:
    if not isinstance(field, str):
        raise PredicateError(f"{where}: field must be a string, got {_describe(field)}")
    if field == CATEGORY_FIELD:
        return "category"
    if field in MEASURE_FIELDS:
        return "measure"
    if not IDENTIFIER_RE.fullmatch(field):
        raise PredicateError(
            f"{where}: field {field!r} is not a plain identifier "
            "(letters, digits and _, not starting with a digit, at most 63 characters)"
        )
    return "attribute"


def _check_scalar(value: Any, kind: str, field: str, where: str):
    """The comparison value of one scalar, as compared: Decimal on a measure, str otherwise."""
    if kind == "measure":
        if not _is_number(value):
            raise PredicateError(f"{where}: value on measure {field!r} must be a number, got {_describe(value)}")
        return _to_decimal(value, where)
    if not isinstance(value, str):
        raise PredicateError(f"{where}: value on {field!r} must be a string, got {_describe(value)}")
    return value


def _compile_condition(index: int, condition: Any) -> Callable[[dict], bool]:
    where = f"conditions[{index}]"
    if not isinstance(condition, dict):
        raise PredicateError(f"{where}: a condition must be an object with field, operator and value, "
                             f"got {_describe(condition)}")
    extra = set(condition) - CONDITION_KEYS
    if extra:
        raise PredicateError(f"{where}: unknown key(s) {', '.join(sorted(map(repr, map(str, extra))))}; "
                             "a condition has exactly field, operator and value")
    missing = [k for k in ("field", "operator", "value") if k not in condition]
    if missing:
        raise PredicateError(f"{where}: missing {', '.join(missing)}")
    field, operator, value = condition["field"], condition["operator"], condition["value"]
    kind = _field_kind(field, where)
    if not isinstance(operator, str) or operator not in OPERATORS:
        raise PredicateError(f"{where}: unknown operator {operator!r}; expected one of {', '.join(OPERATORS)}")

    if operator in ("greater_than", "less_than"):
        if kind != "measure":
            raise PredicateError(f"{where}: operator {operator!r} applies only to a measure "
                                 f"({', '.join(MEASURE_FIELDS)}), not to {field!r}")
        operand = _check_scalar(value, kind, field, where)
    elif operator in ("equals", "not_equals"):
        if isinstance(value, (list, tuple)):
            raise PredicateError(f"{where}: operator {operator!r} takes a single value, not a list")
        operand = _check_scalar(value, kind, field, where)
    else:  # in, not_in: a scalar or a non-empty list of scalars
        if isinstance(value, (list, tuple)):
            if not value:
                raise PredicateError(f"{where}: operator {operator!r} needs a non-empty list of values")
            operand = frozenset(_check_scalar(v, kind, field, f"{where}.value[{i}]") for i, v in enumerate(value))
        else:
            operand = frozenset((_check_scalar(value, kind, field, where),))

    # Accessor: category_code and measures are always present; an attribute may be missing (None).
    if kind == "attribute":
        def get(fact, _key=field):
            attributes = fact.get("attributes")
            return _attribute_text(attributes.get(_key)) if attributes else None
    else:
        def get(fact, _key=field):
            return fact[_key]

    if operator == "equals":
        return lambda fact: (v := get(fact)) is not None and v == operand
    if operator == "not_equals":
        return lambda fact: (v := get(fact)) is None or v != operand
    if operator == "in":
        return lambda fact: (v := get(fact)) is not None and v in operand
    if operator == "not_in":
        return lambda fact: (v := get(fact)) is None or v not in operand
    if operator == "greater_than":
        return lambda fact: get(fact) > operand
    return lambda fact: get(fact) < operand  # less_than


def _attribute_text(value: Any) -> str | None:
    """An attribute value as text, like jsonb ->>: strings as they are, JSON null as missing."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, Decimal)):
        return str(value)
    return json.dumps(value, separators=(", ", ": "), default=str)


def compile_predicate(predicate: Any) -> Callable[[dict], bool]:
    """Validate a predicate and return a function fact -> bool. Raises PredicateError."""
    if not isinstance(predicate, dict):
        raise PredicateError(f"predicate must be an object with conditions, got {_describe(predicate)}")
    extra = set(predicate) - PREDICATE_KEYS
    if extra:
        raise PredicateError(f"predicate: unknown key(s) {', '.join(sorted(map(repr, map(str, extra))))}; "
                             "a predicate has conditions and an optional conjunction")
    conjunction = predicate.get("conjunction", "AND")
    if not isinstance(conjunction, str) or conjunction not in CONJUNCTIONS:
        raise PredicateError(f"predicate: conjunction must be 'AND' or 'OR', got {_describe(conjunction)}")
    if "conditions" not in predicate:
        raise PredicateError("predicate: conditions are missing; at least one condition is needed")
    conditions = predicate["conditions"]
    if not isinstance(conditions, (list, tuple)):
        raise PredicateError(f"predicate: conditions must be a list, got {_describe(conditions)}")
    if not conditions:
        raise PredicateError("predicate: conditions are empty; at least one condition is needed")
    tests = [_compile_condition(i, c) for i, c in enumerate(conditions)]
    if len(tests) == 1:
        return tests[0]
    if conjunction == "AND":
        return lambda fact: all(test(fact) for test in tests)
    return lambda fact: any(test(fact) for test in tests)


def validate_predicate(predicate: dict) -> None:
    """Raise PredicateError when the predicate breaks contract section 2, Predicates."""
    compile_predicate(predicate)


def evaluate_predicate(predicate: dict, fact: dict) -> bool:
    """Whether the fact satisfies the (valid) predicate; raises PredicateError on an invalid one."""
    return bool(compile_predicate(predicate)(fact))


# --------------------------------------------------------------------------------------------------
# Snapshot
# --------------------------------------------------------------------------------------------------

def _norm_use_case(value: Any) -> Any:
    """Use case ids compare as UUIDs when they parse as one (str vs uuid.UUID, any case), else as is."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return value


def _norm_date(value: Any) -> Any:
    if isinstance(value, str):
        return date.fromisoformat(value)
    return value


def _build_tree(nodes: Iterable) -> tuple[dict, str, list[str], dict[str, int]]:
    """node_id -> (parent, name); the root; node ids parents-first; depth per node."""
    info: dict[str, tuple[Any, Any]] = {}
    for node_id, parent, name in nodes:
        if node_id == UNMAPPED:
            raise ValueError(f"node id {UNMAPPED!r} is reserved for the synthetic unmapped node")
        if node_id in info:
            raise ValueError(f"duplicate node id {node_id!r} in the structure")
        info[node_id] = (parent, name)
    if not info:
        raise ValueError("the structure has no nodes")
    roots = [n for n, (p, _) in info.items() if p is None]
    if len(roots) != 1:
        raise ValueError(f"the structure must have exactly one root, found {len(roots)}")
    children: dict[str, list[str]] = {}
    for node_id, (parent, _) in info.items():
        if parent is not None:
            if parent not in info:
                raise ValueError(f"node {node_id!r} has parent {parent!r}, which is not in the structure")
            children.setdefault(parent, []).append(node_id)
    root = roots[0]
    order, depth = [root], {root: 0}
    for node_id in order:  # breadth first: grows while iterating
        for child in children.get(node_id, ()):
            depth[child] = depth[node_id] + 1
            order.append(child)
    if len(order) != len(info):
        stray = sorted(set(info) - set(order), key=str)
        raise ValueError(f"nodes not reachable from the root (a cycle): {stray[:10]!r}")
    return info, root, order, depth


def _amount(fact: dict, field: str) -> Decimal:
    """An amount of a fact as an exact Decimal: a Decimal or an int; a float (inexact) or anything else
    is refused."""
    value = fact[field]
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    raise TypeError(f"fact {fact.get('category_code')!r} ({fact.get('scenario')}, {fact.get('pnl_date')}): "
                    f"{field} must be a Decimal (or an int), got {type(value).__name__} {value!r}; "
                    "amounts are exact, never float")


def snapshot(nodes, facts, rules, use_case_id, pnl_date) -> list[dict]:
    """nodes: iterable of (node_id, parent_node_id, node_name) of the use case's structure (parent None = root).
    facts: iterable of dicts with keys use_case_id, pnl_date (datetime.date), scenario ('ACTUAL'|'PRIOR'),
           category_code (str), daily_amount, wtd_amount, ytd_amount (Decimal or int; a float is refused with
           a TypeError), attributes (dict str->str).
           May contain facts of other use cases / dates: they must be ignored (scope).
    rules: iterable of (node_id, predicate_dict).
    Returns one dict per (node, scenario) with keys: node_id, parent_node_id, node_name, depth (root = 0),
      scenario ('ACTUAL','PRIOR','VARIANCE'), for m in MEASURES: f"{m}_natural", f"{m}_adjusted", f"{m}_plug"
      (Decimal), is_override (bool), is_reconciled (bool)."""
    info, root, order, depth = _build_tree(nodes)

    # Rules: validated and compiled once. A rule on a node outside the structure governs nothing,
    # except one on __UNMAPPED__, whose ancestors are itself and the root.
    compiled: dict[str, Callable[[dict], bool]] = {}
    for node_id, predicate in rules:
        if node_id in compiled:
            raise ValueError(f"more than one rule on node {node_id!r}")
        try:
            compiled[node_id] = compile_predicate(predicate)
        except PredicateError as exc:
            raise PredicateError(f"rule on node {node_id!r}: {exc}") from None

    # Governing rule per node, parents first: own rule, else the parent's governing rule.
    governing: dict[str, Callable[[dict], bool] | None] = {}
    for node_id in order:
        parent = info[node_id][0]
        governing[node_id] = compiled.get(node_id) or (governing[parent] if parent is not None else None)
    unmapped_rule = compiled.get(UNMAPPED) or governing[root]

    # One pass: per (scenario, node) the natural sums and the sums of what is excluded.
    want_uc, want_date = _norm_use_case(use_case_id), _norm_date(pnl_date)
    uc_seen: dict[Any, bool] = {}  # raw use_case_id -> in scope (avoids re-parsing UUIDs per fact)
    natural: dict[tuple[str, str], list[Decimal]] = {}
    excluded: dict[tuple[str, str], list[Decimal]] = {}
    with decimal.localcontext(_EXACT):
        for fact in facts:
            scenario = fact["scenario"]
            if scenario != "ACTUAL" and scenario != "PRIOR":
                continue
            if _norm_date(fact["pnl_date"]) != want_date:
                continue
            raw_uc = fact["use_case_id"]
            try:
                ok = uc_seen[raw_uc]
            except KeyError:
                ok = uc_seen[raw_uc] = _norm_use_case(raw_uc) == want_uc
            except TypeError:  # unhashable
                ok = _norm_use_case(raw_uc) == want_uc
            if not ok:
                continue
            node_id = fact["category_code"]
            if node_id in info:
                rule = governing[node_id]
            else:
                node_id, rule = UNMAPPED, unmapped_rule
            d, w, y = fact["daily_amount"], fact["wtd_amount"], fact["ytd_amount"]
            if type(d) is not Decimal or type(w) is not Decimal or type(y) is not Decimal:
                d, w, y = (_amount(fact, f) for f in MEASURE_FIELDS)
            key = (scenario, node_id)
            sums = natural.get(key)
            if sums is None:
                natural[key] = [_ZERO + d, _ZERO + w, _ZERO + y]
            else:
                sums[0] += d
                sums[1] += w
                sums[2] += y
            if rule is not None and not rule(fact):
                sums = excluded.get(key)
                if sums is None:
                    excluded[key] = [_ZERO + d, _ZERO + w, _ZERO + y]
                else:
                    sums[0] += d
                    sums[1] += w
                    sums[2] += y

        has_unmapped = any(node_id == UNMAPPED for _, node_id in natural)
        parents = {node_id: info[node_id][0] for node_id in order}
        all_nodes = list(order)
        if has_unmapped:
            parents[UNMAPPED] = root
            depth = dict(depth)
            depth[UNMAPPED] = 1
            all_nodes.append(UNMAPPED)

        # Roll-up, deepest first: each node's totals are its own facts plus its children's totals.
        rolled: dict[str, dict[str, list[list[Decimal]]]] = {}
        for scenario in SCENARIOS:
            nat = {n: list(natural.get((scenario, n), (_ZERO,) * 3)) for n in all_nodes}
            exc = {n: list(excluded.get((scenario, n), (_ZERO,) * 3)) for n in all_nodes}
            for node_id in sorted(all_nodes, key=lambda n: depth[n], reverse=True):
                parent = parents[node_id]
                if parent is not None:
                    pn, pe, cn, ce = nat[parent], exc[parent], nat[node_id], exc[node_id]
                    for i in range(3):
                        pn[i] += cn[i]
                        pe[i] += ce[i]
            rolled[scenario] = {"nat": nat, "exc": exc}

        rows: list[dict] = []
        for node_id in sorted(all_nodes, key=lambda n: (depth[n], n)):
            if node_id == UNMAPPED:
                parent, name = root, UNMAPPED_NAME
            else:
                parent, name = info[node_id]
            is_override = node_id in compiled
            values: dict[str, dict[str, Decimal]] = {}
            for scenario in SCENARIOS:
                nat, exc = rolled[scenario]["nat"][node_id], rolled[scenario]["exc"][node_id]
                row_values = {}
                for i, m in enumerate(MEASURES):
                    row_values[f"{m}_natural"] = nat[i]
                    row_values[f"{m}_adjusted"] = nat[i] - exc[i]
                    row_values[f"{m}_plug"] = exc[i]
                values[scenario] = row_values
            values["VARIANCE"] = {k: values["ACTUAL"][k] - values["PRIOR"][k] for k in values["ACTUAL"]}
            for scenario in ROW_SCENARIOS:
                v = values[scenario]
                row = {"node_id": node_id, "parent_node_id": parent, "node_name": name,
                       "depth": depth[node_id], "scenario": scenario}
                row.update(v)
                row["is_override"] = is_override
                row["is_reconciled"] = all(v[f"{m}_plug"] == 0 for m in MEASURES)
                rows.append(row)
    return rows


# --------------------------------------------------------------------------------------------------
# From the database
# --------------------------------------------------------------------------------------------------

_FACT_COLUMNS = ("use_case_id", "pnl_date", "scenario", "category_code",
                 "daily_amount", "wtd_amount", "ytd_amount", "attributes")


def snapshot_from_database(conn, use_case_id, pnl_date, schema="pnl") -> list[dict]:
    """Reads the use case's structure nodes (pnl.use_cases.structure_id -> pnl.dim_hierarchy), the facts of that
    use case and date (pnl.fact_pnl_entries), and its rules (pnl.metadata_rules: node_id, predicate_json) with
    psycopg 3 (conn is a psycopg.Connection), then calls snapshot(). Stream facts with a server-side cursor
    (conn.cursor(name=...)) or fetchmany so 1e5-1e6 facts don't need a giant list twice; numeric columns arrive
    as Decimal; attributes jsonb arrives as dict."""
    from psycopg import sql
    from psycopg.types.json import set_json_loads

    exact_json = partial(json.loads, parse_float=Decimal)  # JSON numbers exact, never float
    table = partial(sql.Identifier, schema)
    with conn.transaction():  # a server-side cursor lives in a transaction, autocommit or not
        with conn.cursor() as cur:
            cur.execute(sql.SQL("SELECT structure_id FROM {} WHERE use_case_id = %s").format(table("use_cases")),
                        (use_case_id,))
            found = cur.fetchone()
            if found is None:
                raise LookupError(f"use case {use_case_id} not found in schema {schema}")
            cur.execute(sql.SQL("SELECT node_id, parent_node_id, node_name FROM {} WHERE structure_id = %s")
                        .format(table("dim_hierarchy")), (found[0],))
            nodes = cur.fetchall()
            cur.execute(sql.SQL("SELECT node_id, predicate_json::text FROM {} WHERE use_case_id = %s")
                        .format(table("metadata_rules")), (use_case_id,))
            rules = [(node_id, exact_json(text)) for node_id, text in cur.fetchall()]

        facts_cur = conn.cursor(name="pnldb_reference_facts")
        set_json_loads(exact_json, facts_cur)
        facts_cur.itersize = 10_000

        def facts() -> Iterator[dict]:
            columns = _FACT_COLUMNS
            for row in facts_cur:
                yield dict(zip(columns, row))

        with facts_cur:
            facts_cur.execute(
                sql.SQL("SELECT {} FROM {} WHERE use_case_id = %s AND pnl_date = %s").format(
                    sql.SQL(", ").join(map(sql.Identifier, _FACT_COLUMNS)), table("fact_pnl_entries")),
                (use_case_id, pnl_date),
            )
            return snapshot(nodes, facts(), rules, use_case_id, pnl_date)
