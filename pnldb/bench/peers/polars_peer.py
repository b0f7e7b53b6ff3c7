"""The polars peer: the facts COPYed out as CSV (amounts as integer cents, only the attributes the rules
test) and parsed by polars' multi-threaded CSV reader from memory; the node and governing rule joined on
from a small frame; the facts sorted by governing rule and each rule's predicate evaluated as a polars
expression on its zero-copy slice; sums in int64 cents by group_by; the roll-up as a join with the
ancestor closure; the rows formatted and written as CSV by polars and COPYed back."""
from __future__ import annotations

import io

import numpy as np
import polars as pl

from pnldb.bench.checks import RESULT_COLUMNS
from pnldb.bench.peers import common
from pnldb.vocabulary import MEASURES, RESULT_VALUE_COLUMNS

REQUIRES = ("polars", "numpy")


def read_facts(conn, dsn, s, plan, use_case, pnl_date) -> pl.DataFrame:
    data = common.copy_out(conn, dsn, common.facts_select(conn, s, plan, use_case, pnl_date, cents=True))
    columns = common.fact_columns(plan)
    schema = {c: pl.Int64 if c in MEASURES else pl.String for c in columns}
    return pl.read_csv(io.BytesIO(data), has_header=False, schema=schema)


def _expression(condition: common.Condition) -> pl.Expr:
    column = pl.col(condition.column)
    if condition.kind == "text":
        values = sorted(condition.values)
        hit = column.eq(values[0]) if len(values) == 1 else column.is_in(values)
        return (~hit).fill_null(True) if condition.negated else hit.fill_null(False)
    if condition.operator == "greater_than":
        return column > condition.bound
    if condition.operator == "less_than":
        return column < condition.bound
    if not condition.values:
        return pl.lit(condition.negated)
    hit = column.is_in(sorted(condition.values))
    return ~hit if condition.negated else hit


def _predicate(conjunction: str, conditions: list[common.Condition]) -> pl.Expr:
    expressions = [_expression(c) for c in conditions]
    return (pl.all_horizontal(expressions) if conjunction == "AND" else pl.any_horizontal(expressions)).alias("ok")


def compute(df: pl.DataFrame, plan: common.Plan) -> pl.DataFrame:
    n = df.height
    for m in MEASURES:
        common.guard_cents(n, int(df[m].abs().max() or 0) if n else 0, "the polars peer")
    mapping = pl.DataFrame({"code": plan.node_ids[:-1], "node": range(len(plan.node_ids) - 1),
                            "rule": plan.governing[:-1]}, schema={"code": pl.String, "node": pl.Int64,
                                                                   "rule": pl.Int64})
    df = (df.join(mapping, on="code", how="left")
          .with_columns(pl.col("node").fill_null(plan.unmapped), pl.col("rule").fill_null(plan.governing[-1]))
          .sort("rule"))
    bounds = np.searchsorted(df["rule"].to_numpy(), np.arange(len(plan.rules) + 1))
    parts = [pl.Series("ok", np.ones(int(bounds[0]), dtype=bool))]
    for k, (conjunction, conditions) in enumerate(plan.rules):
        lo, hi = int(bounds[k]), int(bounds[k + 1])
        if lo < hi:
            parts.append(df.slice(lo, hi - lo).select(_predicate(conjunction, conditions)).to_series())
    df = df.with_columns(pl.concat(parts).alias("included"))

    groups = df.group_by("scenario", "node", "included").agg(pl.col(m).sum() for m in MEASURES)
    closure = pl.DataFrame(plan.closure, schema={"node": pl.Int64, "ancestor": pl.Int64}, orient="row")
    rolled = groups.join(closure, on="node").group_by("scenario", "ancestor").agg(
        *(pl.col(m).sum().alias(f"{m}_natural") for m in MEASURES),
        *(pl.when(pl.col("included")).then(0).otherwise(pl.col(m)).sum().alias(f"{m}_plug") for m in MEASURES))
    has_unmapped = (groups["node"] == plan.unmapped).any()
    keep = [i for i in plan.order if has_unmapped or i != plan.unmapped]
    nodes = pl.DataFrame({
        "ancestor": keep, "node_id": [plan.node_ids[i] for i in keep],
        "parent_node_id": [plan.node_ids[plan.parent[i]] if plan.parent[i] >= 0 else None for i in keep],
        "node_name": [plan.names[i] for i in keep], "depth": [plan.depth[i] for i in keep],
        "is_override": [plan.is_override[i] for i in keep]},
        schema={"ancestor": pl.Int64, "node_id": pl.String, "parent_node_id": pl.String, "node_name": pl.String,
                "depth": pl.Int32, "is_override": pl.Boolean})
    values = [f"{m}_{k}" for m in MEASURES for k in ("natural", "plug")]
    sides = {}
    for scenario in ("ACTUAL", "PRIOR"):
        side = nodes.join(rolled.filter(pl.col("scenario") == scenario).drop("scenario"), on="ancestor", how="left")
        sides[scenario] = side.with_columns(pl.col(v).fill_null(0) for v in values)
    variance = sides["ACTUAL"].with_columns(pl.col(v) - sides["PRIOR"][v] for v in values)
    frames = []
    for scenario, frame in (*sides.items(), ("VARIANCE", variance)):
        frames.append(frame.with_columns(
            pl.lit(scenario).alias("scenario"),
            *((pl.col(f"{m}_natural") - pl.col(f"{m}_plug")).alias(f"{m}_adjusted") for m in MEASURES),
            pl.all_horizontal(pl.col(f"{m}_plug") == 0 for m in MEASURES).alias("is_reconciled")))
    return pl.concat(frames)


def _money(name: str) -> pl.Expr:
    """Integer cents as numeric text: -1234 -> '-12.34'."""
    cents = pl.col(name)
    whole = cents.abs()
    return pl.concat_str(pl.when(cents < 0).then(pl.lit("-")).otherwise(pl.lit("")),
                         (whole // 100).cast(pl.String), pl.lit("."),
                         (whole % 100).cast(pl.String).str.zfill(2)).alias(name)


def to_csv(rows: pl.DataFrame) -> bytes:
    out = rows.select(RESULT_COLUMNS).with_columns(_money(c) for c in RESULT_VALUE_COLUMNS)
    buffer = io.BytesIO()
    out.write_csv(buffer, include_header=False)
    return buffer.getvalue()
