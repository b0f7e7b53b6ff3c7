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
* currency (contract section 8): a fact's currency is its own, or the reporting currency when it has
  none; a fact in another currency is valued with the date's rate into the reporting currency (a
  missing one is an error naming every missing (currency, date)); per scenario, mapped node, currency
  and included flag the native sums times the rate are rounded to cents, half away from zero, and the
  values are sums of those; facts in the reporting currency are not rounded. `currency` is a predicate
  field; predicates compare native amounts;
* all arithmetic in Decimal, never float.

The work is one pass over the facts, aggregating per (scenario, node, currency, included) with a precomputed
node -> governing-rule map, then a roll-up of the sums along the tree, deepest nodes first.

The explanations of contract section 6 (`Explainer`: explain_node, explain_plug, explain_variance,
rule_stats) take the same inputs and the same per-fact path (`_governed_facts`: scope, mapping,
governing rule, inclusion) as the snapshot, so an explanation and the values it explains cannot
disagree about any fact.
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
from typing import Any, NamedTuple

MEASURES = ("daily", "wtd", "ytd")
UNMAPPED = "__UNMAPPED__"
UNMAPPED_NAME = "Unmapped"

SCENARIOS = ("ACTUAL", "PRIOR")
ROW_SCENARIOS = ("ACTUAL", "PRIOR", "VARIANCE")
KINDS = ("natural", "adjusted", "plug")

MEASURE_FIELDS = tuple(f"{m}_amount" for m in MEASURES)
CATEGORY_FIELD = "category_code"
CURRENCY_FIELD = "currency"
DEFAULT_REPORTING = "USD"
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
_ONE = Decimal(1)
_CENT = Decimal("0.01")
_ROUNDING = decimal.Context(prec=decimal.MAX_PREC, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN,
                            rounding=decimal.ROUND_HALF_UP)  # half away from zero, as round(numeric, 2)


class MissingRateError(LookupError):
    """A fact in a currency with no rate into the reporting currency for the date."""


class _Currency:
    """A reporting currency and the date's rates into it (currency -> Decimal)."""

    __slots__ = ("rates", "reporting")

    def __init__(self, reporting: str, rates: dict | None):
        self.reporting = reporting
        self.rates = dict(rates or {})

    def of(self, fact: dict) -> str:
        """The fact's currency: its own, else the reporting currency."""
        return fact.get("currency") or self.reporting

    def rate(self, currency: str) -> Decimal:
        return _ONE if currency == self.reporting else self.rates[currency]

    def convert(self, native: Decimal, currency: str) -> Decimal:
        """A group's native sum in the reporting currency: exact for the reporting currency, else times
        the rate and rounded to cents."""
        if currency == self.reporting:
            return native
        return (native * self.rates[currency]).quantize(_CENT, context=_ROUNDING)

    def check(self, currencies: Iterable[str], pnl_date) -> None:
        missing = sorted(c for c in set(currencies) if c != self.reporting and c not in self.rates)
        if missing:
            raise MissingRateError(f"no rate into {self.reporting} for "
                                   + ", ".join(f"({c}, {_norm_date(pnl_date)})" for c in missing))


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
    if field == CURRENCY_FIELD:
        return "currency"
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


def _compile_condition(index: int, condition: Any, reporting: str = DEFAULT_REPORTING) -> Callable[[dict], bool]:
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

    # Accessor: category_code, currency and measures are always present; an attribute may be missing (None).
    if kind == "attribute":
        get = partial(_attribute, key=field)
    elif kind == "currency":
        def get(fact, _reporting=reporting):
            return fact.get(CURRENCY_FIELD) or _reporting
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


def _attribute(fact: dict, key: str) -> str | None:
    """The fact's attribute `key` as text, like ``attributes ->> key``; None when the fact lacks it."""
    attributes = fact.get("attributes")
    return _attribute_text(attributes.get(key)) if attributes else None


def _attribute_text(value: Any) -> str | None:
    """An attribute value as text, like jsonb ->>: strings as they are, JSON null as missing."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, Decimal)):
        return str(value)
    return json.dumps(value, separators=(", ", ": "), default=str)


def compile_predicate(predicate: Any, reporting_currency: str = DEFAULT_REPORTING) -> Callable[[dict], bool]:
    """Validate a predicate and return a function fact -> bool (a fact without a currency is in
    `reporting_currency`). Raises PredicateError."""
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
    tests = [_compile_condition(i, c, reporting_currency) for i, c in enumerate(conditions)]
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


class _Rule(NamedTuple):
    """A rule of the run, compiled: its id, the node it sits on, its text and its predicate."""
    rule_id: Any
    node_id: str
    logic_en: str | None
    predicate: dict
    holds: Callable[[dict], bool]


def _compile_rules(rules: Iterable, reporting: str = DEFAULT_REPORTING) -> dict[str, _Rule]:
    """node_id -> its rule, each validated and compiled once. A rule is (node_id, predicate), optionally
    followed by its rule_id (the node_id when not given: a use case has at most one rule per node) and
    its logic_en."""
    compiled: dict[str, _Rule] = {}
    ids: set = set()
    for rule in rules:
        node_id, predicate, *rest = rule
        if len(rest) > 2:
            raise ValueError(f"rule on node {node_id!r}: a rule is (node_id, predicate[, rule_id[, logic_en]]), "
                             f"got {len(rule)} items")
        rule_id = rest[0] if rest else node_id
        logic_en = rest[1] if len(rest) > 1 else None
        if node_id in compiled:
            raise ValueError(f"more than one rule on node {node_id!r}")
        if rule_id in ids:
            raise ValueError(f"more than one rule with rule_id {rule_id!r}")
        ids.add(rule_id)
        try:
            holds = compile_predicate(predicate, reporting)
        except PredicateError as exc:
            raise PredicateError(f"rule on node {node_id!r}: {exc}") from None
        compiled[node_id] = _Rule(rule_id, node_id, logic_en, predicate, holds)
    return compiled


class _Governance:
    """The structure's tree with its rules (contract section 2, steps 2 and 4), the one place that decides
    for the snapshot and for its explanations which node a fact maps to and which rule governs it.

    "A fact maps to the node of U's structure whose node_id equals its category_code (any node, leaf or
    not). A fact that maps to no node goes to a synthetic node __UNMAPPED__ (name 'Unmapped', child of
    the root)." "The rule that governs a fact is the rule on the deepest node among the fact's node and
    its ancestors that carries a rule." A rule on a node outside the structure governs nothing, except
    one on __UNMAPPED__, whose ancestors are itself and the root."""

    __slots__ = ("depth", "governing", "info", "order", "root", "rules")

    def __init__(self, nodes: Iterable, rules: Iterable, reporting: str = DEFAULT_REPORTING):
        self.info, self.root, self.order, self.depth = _build_tree(nodes)
        self.rules = _compile_rules(rules, reporting)
        # Governing rule per node, parents first: own rule, else the parent's governing rule.
        governing: dict[str, _Rule | None] = {}
        for node_id in self.order:
            parent = self.info[node_id][0]
            governing[node_id] = self.rules.get(node_id) or (governing[parent] if parent is not None else None)
        governing[UNMAPPED] = self.rules.get(UNMAPPED) or governing[self.root]
        self.governing = governing


def _governed_facts(governance: _Governance, facts: Iterable[dict], use_case_id, pnl_date) -> Iterator[tuple]:
    """Every fact in scope with what contract section 2 makes of it, as one tuple
    (position in `facts`, fact, scenario, mapped node id, governing _Rule or None, included, daily, wtd, ytd).

    Scope: "Facts of U with pnl_date = D, taken separately for scenario ACTUAL and PRIOR. No other use
    case, date or scenario ever leaks in." Inclusion: "A fact governed by no rule is included; a fact
    governed by rule R is included exactly when R's predicate is true for it." Amounts are exact Decimals
    (an int is taken exactly; a float is refused)."""
    info = governance.info
    # node -> (governing rule, its predicate), looked up once per fact
    governing = {node_id: (rule, rule.holds if rule is not None else None)
                 for node_id, rule in governance.governing.items()}
    unmapped = governing[UNMAPPED]
    want_uc, want_date = _norm_use_case(use_case_id), _norm_date(pnl_date)
    uc_seen: dict[Any, bool] = {}  # raw use_case_id -> in scope (avoids re-parsing UUIDs per fact)
    for position, fact in enumerate(facts):
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
            rule, holds = governing[node_id]
        else:
            node_id, (rule, holds) = UNMAPPED, unmapped
        d, w, y = fact["daily_amount"], fact["wtd_amount"], fact["ytd_amount"]
        if type(d) is not Decimal or type(w) is not Decimal or type(y) is not Decimal:
            d, w, y = (_amount(fact, f) for f in MEASURE_FIELDS)
        yield position, fact, scenario, node_id, rule, holds is None or holds(fact), d, w, y


def snapshot(nodes, facts, rules, use_case_id, pnl_date, reporting_currency: str = DEFAULT_REPORTING,
             rates: dict | None = None) -> list[dict]:
    """nodes: iterable of (node_id, parent_node_id, node_name) of the use case's structure (parent None = root).
    facts: iterable of dicts with keys use_case_id, pnl_date (datetime.date), scenario ('ACTUAL'|'PRIOR'),
           category_code (str), daily_amount, wtd_amount, ytd_amount (Decimal or int; a float is refused with
           a TypeError), attributes (dict str->str), optionally currency (None: the reporting currency).
           May contain facts of other use cases / dates: they must be ignored (scope).
    rules: iterable of (node_id, predicate_dict), optionally followed by rule_id and logic_en (see explain).
    reporting_currency, rates: the use case's reporting currency and the date's rates into it
      (currency -> Decimal); a fact in a currency without one raises MissingRateError.
    Returns one dict per (node, scenario) with keys: node_id, parent_node_id, node_name, depth (root = 0),
      scenario ('ACTUAL','PRIOR','VARIANCE'), for m in MEASURES: f"{m}_natural", f"{m}_adjusted", f"{m}_plug"
      (Decimal), is_override (bool), is_reconciled (bool)."""
    money = _Currency(reporting_currency, rates)
    governance = _Governance(nodes, rules, reporting_currency)
    info, root, order, depth = governance.info, governance.root, governance.order, governance.depth

    # One pass: native sums per (scenario, node, currency, included); then per (scenario, node) the
    # natural sums and the sums of what is excluded, of the groups converted one by one.
    groups: dict[tuple, list[Decimal]] = {}
    natural: dict[tuple[str, str], list[Decimal]] = {}
    excluded: dict[tuple[str, str], list[Decimal]] = {}
    reporting = money.reporting
    with decimal.localcontext(_EXACT):
        for _, fact, scenario, node_id, _, included, d, w, y in _governed_facts(
                governance, facts, use_case_id, pnl_date):
            key = (scenario, node_id, fact.get(CURRENCY_FIELD) or reporting, bool(included))
            sums = groups.get(key)
            if sums is None:
                groups[key] = [_ZERO + d, _ZERO + w, _ZERO + y]
            else:
                sums[0] += d
                sums[1] += w
                sums[2] += y
        money.check((key[2] for key in groups), pnl_date)
        for (scenario, node_id, currency, included), sums in groups.items():
            converted = [money.convert(v, currency) for v in sums]
            for target in (natural,) if included else (natural, excluded):
                into = target.setdefault((scenario, node_id), [_ZERO, _ZERO, _ZERO])
                for i in range(3):
                    into[i] += converted[i]

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
            is_override = node_id in governance.rules
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
# Explain (contract section 6, "Explain")
# --------------------------------------------------------------------------------------------------

EXPLAIN_NODE_COLUMNS = ("fact_id", "category_code", "mapped_node_id", "attributes", "currency",
                        *MEASURE_FIELDS, "rate", "included", "governing_rule_id", "governing_node_id")
EXPLAIN_PLUG_COLUMNS = ("rule_id", "rule_node_id", "logic_en", "facts_governed", "facts_excluded",
                        *(f"{m}_excluded" for m in MEASURES))
EXPLAIN_VARIANCE_COLUMNS = ("key", "actual", "prior", "variance", "change", "currency", "rate")
RULE_STATS_COLUMNS = (*EXPLAIN_PLUG_COLUMNS, "missing_fields")
BY_CHILD = "child"


def _by_abs_desc(rows: list[dict], column: str, then: Callable[[dict], Any]) -> list[dict]:
    """Rows ordered by abs(column) descending, then by `then` ascending (two stable sorts; copy_abs is
    exact whatever the context)."""
    rows.sort(key=then)
    rows.sort(key=lambda row: row[column].copy_abs(), reverse=True)  # reverse keeps equal rows in order
    return rows


class Explainer:
    """Why the snapshot of the same inputs has its values: the explanations of contract section 6 over
    the inputs `snapshot` takes (the facts a run read, its tree, its rules), taken apart by the same code
    that computes the snapshot: the same scope, mapping, governing rule and inclusion per fact.

    "Explain reads a run's own inputs: the facts of the loads it recorded (superseded since or not),
    the rules it recorded and the tree it recorded", so give it exactly those; it knows nothing of
    loads. The run's nodes are the structure's plus __UNMAPPED__ when some in-scope fact, of either
    scenario, maps to no node, as in the snapshot's rows.

    nodes, use_case_id, pnl_date: as for `snapshot`.
    facts: as for `snapshot`, each with an optional ``id`` (its fact_id; its position in `facts` when
      absent).
    rules: (node_id, predicate) or (node_id, predicate, rule_id) or (node_id, predicate, rule_id,
      logic_en); rule_id defaults to the node_id (a use case has at most one rule per node), logic_en to
      None.
    reporting_currency, rates: the run's reporting currency and the rates it used, as for `snapshot`.

    The rows are dicts with the contract's column names, money as exact Decimal; the facts are read
    once, so explaining many nodes of one run costs one pass over them per call."""

    def __init__(self, nodes, facts, rules, use_case_id, pnl_date, reporting_currency: str = DEFAULT_REPORTING,
                 rates: dict | None = None):
        self._money = money = _Currency(reporting_currency, rates)
        self._governance = governance = _Governance(nodes, rules, reporting_currency)
        self._facts = list(_governed_facts(governance, facts, use_case_id, pnl_date))
        money.check((money.of(placed[1]) for placed in self._facts), pnl_date)
        self.root = governance.root
        parents = {node_id: governance.info[node_id][0] for node_id in governance.order}
        if any(placed[3] == UNMAPPED for placed in self._facts):
            parents[UNMAPPED] = self.root
        self._parents = parents
        children: dict[str, list[str]] = {node_id: [] for node_id in parents}
        for node_id, parent in parents.items():
            if parent is not None:
                children[parent].append(node_id)
        self._children = children

    @property
    def node_ids(self) -> list[str]:
        """The run's nodes, parents first: the structure's, then __UNMAPPED__ when present."""
        return list(self._parents)

    def children(self, node_id: str) -> list[str]:
        """The node's children in the run's tree (__UNMAPPED__ is a child of the root when present)."""
        return list(self._children[self._node(node_id)])

    # ---------------------------------------------------------------------------------------------- checks

    def _node(self, node_id: str) -> str:
        if node_id not in self._parents:
            raise LookupError(f"node {node_id!r} is not a node of the run"
                              + (" (the run has no unmapped facts)" if node_id == UNMAPPED else ""))
        return node_id

    @staticmethod
    def _scenario(scenario: str) -> str:
        if scenario not in SCENARIOS:
            raise ValueError(f"scenario {scenario!r} is not one of {', '.join(SCENARIOS)}")
        return scenario

    def _at_or_below(self, node_id: str) -> dict[str, str]:
        """Node -> the node's child it lies under (itself for the node), for the nodes at or below it."""
        self._node(node_id)
        below = {node_id: node_id}
        for child in self._children[node_id]:
            stack = [child]
            while stack:
                current = stack.pop()
                below[current] = child
                stack.extend(self._children[current])
        return below

    def _in(self, node_id: str, scenario: str | None = None) -> Iterator[tuple]:
        """The governed facts mapped at or below the node (of one scenario, or both), with the node's
        child they lie under appended."""
        below = self._at_or_below(node_id)
        for placed in self._facts:
            under = below.get(placed[3])
            if under is not None and (scenario is None or placed[2] == scenario):
                yield (*placed, under)

    # ---------------------------------------------------------------------------------------------- explain

    def explain_node(self, node_id: str, scenario: str = "ACTUAL", max_rows: int | None = 1000) -> list[dict]:
        """explain_node (contract section 6): "one row per fact the run read that is mapped at or below
        the node: fact_id, category_code, mapped_node_id (__UNMAPPED__ for a fact of no node),
        attributes, currency, daily_amount, wtd_amount, ytd_amount (the fact's own, native amounts),
        rate (1 for the reporting currency), included boolean, governing_rule_id and governing_node_id
        (NULL when no rule governs the fact). Ordered by abs(daily_amount) descending, then fact_id;
        max_rows => NULL returns all." currency is the fact's own (None for the reporting currency). With
        all rows, per measure, grouped by (mapped node, currency, included) and each group converted as
        the snapshot converts: the sum is the node's natural value, the sum of the included groups its
        adjusted value, the sum of the others its plug, exactly."""
        scenario = self._scenario(scenario)
        if max_rows is not None and (isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 0):
            raise ValueError(f"max_rows must be a non-negative integer or None, got {max_rows!r}")
        rows = []
        for position, fact, _, mapped, rule, included, d, w, y, _ in self._in(node_id, scenario):
            attributes = fact.get("attributes")
            rows.append({
                "fact_id": fact.get("id", position), "category_code": fact["category_code"],
                "mapped_node_id": mapped, "attributes": dict(attributes) if attributes else {},
                "currency": fact.get(CURRENCY_FIELD), "daily_amount": d, "wtd_amount": w, "ytd_amount": y,
                "rate": self._money.rate(self._money.of(fact)),
                "included": bool(included),
                "governing_rule_id": None if rule is None else rule.rule_id,
                "governing_node_id": None if rule is None else rule.node_id,
            })
        _by_abs_desc(rows, "daily_amount", then=lambda row: row["fact_id"])
        return rows if max_rows is None else rows[:max_rows]

    def explain_plug(self, node_id: str, scenario: str = "ACTUAL") -> list[dict]:
        """explain_plug (contract section 6): "one row per rule of the run that sits at, below or above the
        node and governs any fact at or below it, plus the run's rules under the node that govern none
        (with zeros): rule_id, rule_node_id, logic_en, facts_governed, facts_excluded, daily_excluded,
        wtd_excluded, ytd_excluded ... The excluded sums add up to the node's plug exactly." Counts and
        sums are over the scenario's facts at or below the node; "under the node" is at or below it,
        the node's own rule included. Ordered by abs(daily_excluded) descending, then rule_id."""
        return [row for row, _ in self._plug(node_id, self._scenario(scenario))]

    def _plug(self, node_id: str, scenario: str) -> list[tuple[dict, list[dict]]]:
        """explain_plug's rows, each with the facts its rule governs (at or below the node, of the scenario)."""
        below = self._at_or_below(node_id)
        stats: dict[str, tuple[dict, list[dict]]] = {}

        def row_of(rule: _Rule) -> tuple[dict, list[dict]]:
            found = stats.get(rule.node_id)
            if found is None:
                found = stats[rule.node_id] = (
                    {"rule_id": rule.rule_id, "rule_node_id": rule.node_id, "logic_en": rule.logic_en,
                     "facts_governed": 0, "facts_excluded": 0, **{f"{m}_excluded": _ZERO for m in MEASURES}}, [])
            return found

        money = self._money
        # excluded native sums per (rule, mapped node, currency), converted as the snapshot converts
        native: dict[tuple, list[Decimal]] = {}
        with decimal.localcontext(_EXACT):
            for _, fact, _, mapped, rule, included, d, w, y, _ in self._in(node_id, scenario):
                if rule is None:
                    continue
                row, governed = row_of(rule)
                row["facts_governed"] += 1
                governed.append(fact)
                if not included:
                    row["facts_excluded"] += 1
                    sums = native.setdefault((rule.node_id, mapped, money.of(fact)), [_ZERO, _ZERO, _ZERO])
                    sums[0] += d
                    sums[1] += w
                    sums[2] += y
            for (rule_node, _, currency), sums in native.items():
                row = stats[rule_node][0]
                for m, value in zip(MEASURES, sums):
                    row[f"{m}_excluded"] += money.convert(value, currency)
        for rule in self._governance.rules.values():
            if rule.node_id in below:
                row_of(rule)
        ordered = sorted(stats.values(), key=lambda found: found[0]["rule_id"])
        ordered.sort(key=lambda found: found[0]["daily_excluded"].copy_abs(), reverse=True)
        return ordered

    def explain_variance(self, node_id: str, measure: str = "daily", by: str = BY_CHILD) -> list[dict]:
        """explain_variance (contract section 6): "breaks the node's adjusted ACTUAL - PRIOR variance down
        by 'child' (one row per child, plus one with the node's own id for facts mapped to the node
        itself), 'category_code', or any attribute key (facts lacking it under key NULL): key, actual,
        prior, variance, change ('NEW' when prior is 0 and actual is not, 'DROPPED' the reverse,
        'CHANGED', 'UNCHANGED'). The variances add up to the node's variance exactly."

        By 'child' every child has its row, zeros included, and the node's own id has one when any fact
        of either scenario is mapped to the node itself. By category_code or an attribute, a key has its
        row when any fact of either scenario at or below the node carries it, included or not (a key
        whose facts are all excluded has zeros). UNCHANGED when actual equals prior (zeros too).

        Currencies (contract sections 6 and 8): "In a run with other currencies, a breakdown by
        category_code or an attribute has one row per key and currency, in native amounts with rate, and
        adds up per currency." By child a row is in the reporting currency (rate 1), each child's groups
        (mapped node, currency) converted and rounded as the snapshot does. Every row carries `currency`
        (a fact's NULL currency is the reporting one) and `rate`. Ordered by abs(variance * rate)
        descending, then key (None last), then currency."""
        if measure not in MEASURES:
            raise ValueError(f"measure {measure!r} is not one of {', '.join(MEASURES)}")
        if not isinstance(by, str):
            raise ValueError(f"by must be 'child', 'category_code' or an attribute key, got {by!r}")
        index = 6 + MEASURES.index(measure)  # daily, wtd, ytd in a governed fact
        money = self._money
        by_child = by == BY_CHILD
        # (key, currency) -> [actual, prior]: by child in the reporting currency, else in native amounts
        sums: dict[tuple[str | None, str], list[Decimal]] = {}
        if by_child:
            for child in self._children[self._node(node_id)]:
                sums[(child, money.reporting)] = [_ZERO, _ZERO]
        # included native sums per (key, scenario, mapped node, currency); by child converted as the
        # snapshot converts, so the rows add up to the node's variance
        native: dict[tuple, Decimal] = {}
        with decimal.localcontext(_EXACT):
            for placed in self._in(node_id):
                fact, scenario, included, under = placed[1], placed[2], placed[5], placed[9]
                if by_child:
                    key = under
                elif by == CATEGORY_FIELD:
                    key = fact[CATEGORY_FIELD]
                else:
                    key = _attribute(fact, by)
                currency = money.of(fact)
                row = (key, money.reporting if by_child else currency)
                if row not in sums:
                    sums[row] = [_ZERO, _ZERO]
                if included:
                    group = (row, scenario, placed[3], currency)
                    native[group] = native.get(group, _ZERO) + placed[index]
            for (row, scenario, _, currency), value in native.items():
                sums[row][0 if scenario == "ACTUAL" else 1] += money.convert(value, currency) if by_child else value
            rows = []
            for (key, currency), (actual, prior) in sums.items():
                if actual == prior:
                    change = "UNCHANGED"
                elif prior == 0:
                    change = "NEW"
                elif actual == 0:
                    change = "DROPPED"
                else:
                    change = "CHANGED"
                rows.append({"key": key, "actual": actual, "prior": prior, "variance": actual - prior,
                             "change": change, "currency": currency, "rate": money.rate(currency)})
            rows.sort(key=lambda row: (-abs(row["variance"] * row["rate"]), row["key"] is None, row["key"] or "",
                                       row["currency"]))
        return rows

    def rule_stats(self, scenario: str = "ACTUAL") -> list[dict]:
        """run_rule_stats (contract section 6): "explain_plug at the root, plus missing_fields text[]: the
        condition fields of the rule that none of the facts it governs carries (a misspelt attribute
        excludes everything it governs; this is how a user finds it)." The fields are the attribute keys
        of the rule's conditions (not category_code, not a measure: every fact has those), each once, in
        alphabetical order; a fact carries a key when its attributes give it a value (a JSON null is
        missing, as in a predicate). A rule that governs no fact has none missing. explain_plug at the
        root takes its default scenario, ACTUAL."""
        rows = []
        for plug_row, governed in self._plug(self.root, self._scenario(scenario)):
            rule = self._governance.rules[plug_row["rule_node_id"]]
            fields = sorted({c["field"] for c in rule.predicate["conditions"]
                             if _field_kind(c["field"], "") == "attribute"})
            missing = [] if not governed else [
                field for field in fields if all(_attribute(fact, field) is None for fact in governed)]
            rows.append({**plug_row, "missing_fields": missing})
        return rows


def explain_node(nodes, facts, rules, use_case_id, pnl_date, node_id, scenario="ACTUAL", max_rows=1000):
    """Explainer(nodes, facts, rules, use_case_id, pnl_date).explain_node(node_id, scenario, max_rows)."""
    return Explainer(nodes, facts, rules, use_case_id, pnl_date).explain_node(node_id, scenario, max_rows)


def explain_plug(nodes, facts, rules, use_case_id, pnl_date, node_id, scenario="ACTUAL"):
    """Explainer(nodes, facts, rules, use_case_id, pnl_date).explain_plug(node_id, scenario)."""
    return Explainer(nodes, facts, rules, use_case_id, pnl_date).explain_plug(node_id, scenario)


def explain_variance(nodes, facts, rules, use_case_id, pnl_date, node_id, measure="daily", by=BY_CHILD):
    """Explainer(nodes, facts, rules, use_case_id, pnl_date).explain_variance(node_id, measure, by)."""
    return Explainer(nodes, facts, rules, use_case_id, pnl_date).explain_variance(node_id, measure, by)


def rule_stats(nodes, facts, rules, use_case_id, pnl_date, scenario="ACTUAL"):
    """Explainer(nodes, facts, rules, use_case_id, pnl_date).rule_stats(scenario)."""
    return Explainer(nodes, facts, rules, use_case_id, pnl_date).rule_stats(scenario)


# --------------------------------------------------------------------------------------------------
# From the database
# --------------------------------------------------------------------------------------------------

_FACT_COLUMNS = ("use_case_id", "pnl_date", "scenario", "category_code",
                 "daily_amount", "wtd_amount", "ytd_amount", "attributes", "currency")


def snapshot_from_database(conn, use_case_id, pnl_date, schema="pnl") -> list[dict]:
    """Reads the use case's structure nodes (pnl.use_cases.structure_id -> pnl.dim_hierarchy), its reporting
    currency and the date's rates into it (pnl.fx_rates), the current facts
    of that use case and date (pnl.fact_pnl_entries of a load whose slice (date, scenario) in pnl.fact_load_slices
    nothing superseded: contract section 6, "A snapshot reads only current facts"), and its rules
    (pnl.metadata_rules: node_id, predicate_json) with
    psycopg 3 (conn is a psycopg.Connection), then calls snapshot(). Stream facts with a server-side cursor
    (conn.cursor(name=...)) or fetchmany so 1e5-1e6 facts don't need a giant list twice; numeric columns arrive
    as Decimal; attributes jsonb arrives as dict."""
    from psycopg import sql
    from psycopg.types.json import set_json_loads

    exact_json = partial(json.loads, parse_float=Decimal)  # JSON numbers exact, never float
    table = partial(sql.Identifier, schema)
    with conn.transaction():  # a server-side cursor lives in a transaction, autocommit or not
        with conn.cursor() as cur:
            cur.execute(sql.SQL("SELECT structure_id, reporting_currency FROM {} WHERE use_case_id = %s").format(
                table("use_cases")), (use_case_id,))
            found = cur.fetchone()
            if found is None:
                raise LookupError(f"use case {use_case_id} not found in schema {schema}")
            reporting = found[1]
            cur.execute(sql.SQL("SELECT currency, rate FROM {} WHERE pnl_date = %s AND reporting_currency = %s")
                        .format(table("fx_rates")), (pnl_date, reporting))
            rates = dict(cur.fetchall())
            cur.execute(sql.SQL("SELECT node_id, parent_node_id, node_name FROM {} WHERE structure_id = %s")
                        .format(table("dim_hierarchy")), (found[0],))
            nodes = cur.fetchall()
            cur.execute(sql.SQL("SELECT node_id, predicate_json::text FROM {} WHERE use_case_id = %s")
                        .format(table("metadata_rules")), (use_case_id,))
            rules = [(node_id, exact_json(text)) for node_id, text in cur.fetchall()]
            # a coordinator's facts are on its shards (pnldb.cluster): the rows they return, every column
            cur.execute("SELECT to_regprocedure(%s) IS NOT NULL", (f"{schema}.shard_fact_rows(uuid, date, bigint[])",))
            sharded = cur.fetchone()[0]
        source = (sql.SQL("{}.shard_fact_rows(%s, %s, NULL)").format(sql.Identifier(schema)) if sharded
                  else table("fact_pnl_entries"))

        facts_cur = conn.cursor(name="pnldb_reference_facts")
        set_json_loads(exact_json, facts_cur)
        facts_cur.itersize = 10_000

        def facts() -> Iterator[dict]:
            columns = _FACT_COLUMNS
            for row in facts_cur:
                yield dict(zip(columns, row))

        with facts_cur:
            facts_cur.execute(
                sql.SQL("SELECT {} FROM {} f WHERE f.use_case_id = %s AND f.pnl_date = %s AND EXISTS ("
                        "SELECT 1 FROM {} s WHERE s.load_id = f.load_id AND s.pnl_date = f.pnl_date "
                        "AND s.scenario = f.scenario AND s.superseded_at IS NULL)").format(
                    sql.SQL(", ").join(sql.Identifier("f", c) for c in _FACT_COLUMNS), source,
                    table("fact_load_slices")),
                (use_case_id, pnl_date) * (2 if sharded else 1),
            )
            return snapshot(nodes, facts(), rules, use_case_id, pnl_date, reporting, rates)
