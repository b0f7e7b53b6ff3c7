"""The pandas peer: the facts COPYed out as CSV (amounts as integer cents, only the attributes the rules
test), parsed by pyarrow's multi-threaded CSV reader with every text column dictionary-encoded, handed
to pandas as categoricals; the rules evaluated on numpy views of the facts sorted by governing rule (one
contiguous slice per rule, text conditions as lookup tables over the category codes); sums in int64
cents by pandas groupby; the roll-up as a merge with the ancestor closure; the rows COPYed back as CSV."""
from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from pnldb.bench.checks import RESULT_COLUMNS
from pnldb.bench.peers import common
from pnldb.vocabulary import MEASURES, RESULT_VALUE_COLUMNS

REQUIRES = ("pandas", "pyarrow", "numpy")


def read_facts(conn, dsn, s, plan, use_case, pnl_date) -> pd.DataFrame:
    data = common.copy_out(conn, dsn, common.facts_select(conn, s, plan, use_case, pnl_date, cents=True))
    columns = common.fact_columns(plan)
    types = {c: pa.int64() if c in MEASURES else pa.dictionary(pa.int32(), pa.string()) for c in columns}
    table = pacsv.read_csv(pa.BufferReader(data), read_options=pacsv.ReadOptions(column_names=columns),
                           convert_options=pacsv.ConvertOptions(column_types=types, strings_can_be_null=True,
                                                                quoted_strings_can_be_null=False))
    return table.to_pandas()


def _text_mask(categories: dict[str, int], condition: common.Condition) -> np.ndarray:
    """A lookup table over the column's categories (slot 0: NULL), indexed by code + 1."""
    lut = np.zeros(len(categories) + 1, dtype=bool)
    lut[[categories[v] + 1 for v in condition.values if v in categories]] = True
    return ~lut if condition.negated else lut


def included_mask(df: pd.DataFrame, plan: common.Plan, rule: np.ndarray) -> np.ndarray:
    """Per fact: included (no rule, or its governing rule's predicate holds), evaluated rule by rule on
    the facts sorted by governing rule."""
    order = np.argsort(rule, kind="stable")
    bounds = np.searchsorted(rule[order], np.arange(len(plan.rules) + 1))
    sorted_cols: dict[str, np.ndarray] = {}
    categories: dict[str, dict[str, int]] = {}

    def column(name: str) -> np.ndarray:
        if name not in sorted_cols:
            values = df[name]
            raw = values.cat.codes.to_numpy().astype(np.int32) + 1 if name not in MEASURES else values.to_numpy()
            sorted_cols[name] = raw[order]
        return sorted_cols[name]

    included_sorted = np.ones(len(rule), dtype=bool)
    for k, (conjunction, conditions) in enumerate(plan.rules):
        lo, hi = bounds[k], bounds[k + 1]
        if lo == hi:
            continue
        masks = []
        for c in conditions:
            values = column(c.column)[lo:hi]
            if c.kind == "text":
                if c.column not in categories:
                    categories[c.column] = {v: i for i, v in enumerate(df[c.column].cat.categories.tolist())}
                masks.append(_text_mask(categories[c.column], c)[values])
            elif c.operator == "greater_than":
                masks.append(values > c.bound)
            elif c.operator == "less_than":
                masks.append(values < c.bound)
            else:
                hit = np.isin(values, np.fromiter(c.values, dtype=np.int64, count=len(c.values)))
                masks.append(~hit if c.negated else hit)
        combined = masks[0] if len(masks) == 1 else (
            np.logical_and.reduce(masks) if conjunction == "AND" else np.logical_or.reduce(masks))
        included_sorted[lo:hi] = combined
    included = np.empty_like(included_sorted)
    included[order] = included_sorted
    return included


def compute(df: pd.DataFrame, plan: common.Plan) -> pd.DataFrame:
    n = len(df)
    for m in MEASURES:
        values = df[m].to_numpy()
        common.guard_cents(n, int(np.abs(values).max()) if n else 0, "the pandas peer")
    code = df["code"].cat
    index = plan.code_index()
    of_category = np.array([index.get(c, plan.unmapped) for c in code.categories], dtype=np.int64)
    node = of_category[code.codes.to_numpy()] if n else np.zeros(0, dtype=np.int64)
    governing = np.asarray(plan.governing, dtype=np.int64)
    rule = governing[node]
    included = included_mask(df, plan, rule)
    scenario = (df["scenario"].astype(str) == "PRIOR").to_numpy().astype(np.int64)

    groups = pd.DataFrame({"scenario": scenario, "node": node, "included": included,
                           **{m: df[m].to_numpy() for m in MEASURES}}).groupby(
        ["scenario", "node", "included"], sort=False, as_index=False).sum()
    for m in MEASURES:
        groups[f"{m}_excluded"] = np.where(groups["included"], 0, groups[m])
    closure = pd.DataFrame(plan.closure, columns=["node", "ancestor"])
    rolled = groups.merge(closure, on="node").groupby(["scenario", "ancestor"], sort=False).agg(
        {**{m: "sum" for m in MEASURES}, **{f"{m}_excluded": "sum" for m in MEASURES}})

    count = len(plan.node_ids)
    natural = np.zeros((2, count, 3), dtype=np.int64)
    excluded = np.zeros((2, count, 3), dtype=np.int64)
    sc = rolled.index.get_level_values("scenario").to_numpy()
    an = rolled.index.get_level_values("ancestor").to_numpy()
    natural[sc, an] = rolled[list(MEASURES)].to_numpy()
    excluded[sc, an] = rolled[[f"{m}_excluded" for m in MEASURES]].to_numpy()
    has_unmapped = bool((node == plan.unmapped).any())
    nodes = np.array([i for i in plan.order if has_unmapped or i != plan.unmapped], dtype=np.int64)

    adjusted = natural - excluded
    values = {"ACTUAL": (natural[0], adjusted[0], excluded[0]), "PRIOR": (natural[1], adjusted[1], excluded[1])}
    values["VARIANCE"] = tuple(a - p for a, p in zip(values["ACTUAL"], values["PRIOR"]))
    node_ids = np.array(plan.node_ids, dtype=object)
    parents = np.array([plan.node_ids[p] if p >= 0 else None for p in plan.parent], dtype=object)
    frames = []
    for scenario, (nat, adj, plug) in values.items():
        frame = pd.DataFrame({"node_id": node_ids[nodes], "parent_node_id": parents[nodes],
                              "node_name": np.array(plan.names, dtype=object)[nodes],
                              "depth": np.asarray(plan.depth)[nodes], "scenario": scenario})
        for i, m in enumerate(MEASURES):
            frame[f"{m}_natural"] = nat[nodes, i]
            frame[f"{m}_adjusted"] = adj[nodes, i]
            frame[f"{m}_plug"] = plug[nodes, i]
        frame["is_override"] = np.asarray(plan.is_override)[nodes]
        frame["is_reconciled"] = (plug[nodes] == 0).all(axis=1)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def _money(cents: pd.Series) -> pd.Series:
    """Integer cents as numeric text: -1234 -> '-12.34'."""
    whole = cents.abs()
    sign = np.where(cents < 0, "-", "")
    return sign + (whole // 100).astype(str) + "." + (whole % 100).astype(str).str.zfill(2)


def to_csv(rows: pd.DataFrame) -> bytes:
    out = rows[RESULT_COLUMNS].copy()
    for column in RESULT_VALUE_COLUMNS:
        out[column] = _money(out[column])
    buffer = io.StringIO()
    out.to_csv(buffer, index=False, header=False)
    return buffer.getvalue().encode()
