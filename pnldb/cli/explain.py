"""`pnldb explain RUN_ID NODE_ID`: why a node of a run has its values, from the run's own inputs
(contract §6): the facts behind it (explain_node), the rules behind its plug (explain_plug), or its
variance broken down (explain_variance).

stdout has the table (or with --json the rows exactly as the SQL API returned them), --csv FILE gets
every row, and stderr one summary line that reconciles: the sums of all the rows, whatever --limit shows.
"""
from __future__ import annotations

import csv
from decimal import Decimal
from functools import partial

import click

from pnldb import api
from pnldb import format as fmt
from pnldb.cli.common import echo_lines, emit_json, json_option, pass_settings
from pnldb.errors import PnlError
from pnldb.jsonfmt import to_json
from pnldb.vocabulary import FACT_MEASURES, MEASURES, SCENARIOS

FACTS, RULE = "facts", "rule"
# the SQL functions' columns, the header of a CSV file even when there are no rows
FACT_COLUMNS = ("fact_id", "category_code", "mapped_node_id", "attributes", "currency", *FACT_MEASURES, "rate",
                "included", "governing_rule_id", "governing_node_id")
RULE_COLUMNS = ("rule_id", "rule_node_id", "logic_en", "facts_governed", "facts_excluded",
                *(f"{m}_excluded" for m in MEASURES))
VARIANCE_COLUMNS = ("key", "actual", "prior", "variance", "change", "currency", "rate")


@click.command(short_help="Why a node of a run has its values: facts, rules or variance.")
@click.argument("run_id", type=click.UUID)
@click.argument("node_id")
@click.option("--scenario", type=click.Choice(SCENARIOS),
              help=f"The scenario of --by {FACTS} and {RULE}; default {SCENARIOS[0]}.")
@click.option("--by", "by", default=FACTS, show_default=True, metavar=f"{FACTS}|{RULE}|child|category_code|ATTR",
              help=f"{FACTS}: the facts at or below the node; {RULE}: the rules behind its plug; child, "
                   "category_code or an attribute key: its adjusted variance broken down that way.")
@click.option("--measure", type=click.Choice(MEASURES), default=MEASURES[0], show_default=True,
              help="The measure of the summary, and of the variance breakdown.")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, metavar="N",
              help="Show at most N rows (the largest first), in the table and in --json.")
@json_option
@click.option("--csv", "csv_file", type=click.Path(dir_okay=False), metavar="FILE", help="Write every row to FILE.")
@pass_settings
def explain(settings, run_id, node_id, scenario, by, measure, limit, as_json, csv_file) -> None:
    """Why node NODE_ID of run RUN_ID has its values, read from what the run read (its facts, rules and
    tree as they were), with a summary line on stderr that adds up to the node's values."""
    conn = settings.conn
    if by in (FACTS, RULE):
        scenario = scenario or SCENARIOS[0]
        if by == FACTS:
            rows = api.explain_node(conn, run_id, node_id, scenario, max_rows=None)
            reporting = api.get_run(conn, run_id)["reporting_currency"]
            columns, summary = FACT_COLUMNS, _fact_summary(rows, measure, reporting)
            lines = partial(_fact_lines, reporting=reporting)
        else:
            rows = api.explain_plug(conn, run_id, node_id, scenario)
            columns, lines, summary = RULE_COLUMNS, _rule_lines, _rule_summary(rows, measure)
        scope = f"{scenario} {measure}"
    else:
        if scenario is not None:
            raise click.UsageError(f"--scenario applies to --by {FACTS} and {RULE}; a variance is "
                                   f"{' - '.join(SCENARIOS)}")
        rows = api.explain_variance(conn, run_id, node_id, measure, by)
        columns, summary = VARIANCE_COLUMNS, _variance_summary(rows, by)
        lines = partial(_variance_lines, by=by, native=_in_other_currencies(rows, None))
        scope = f"{measure} adjusted"
    shown = rows[:limit]

    if csv_file:
        _write_csv(csv_file, columns, rows)
    if as_json:
        emit_json(shown)
    elif shown:
        echo_lines(lines(shown))
    else:
        click.echo("no rows")
    click.echo(f"node {node_id} in run {run_id}, {scope}: {summary}, showing {fmt.count(len(shown))}", err=True)
    if csv_file:
        click.echo(f"wrote {fmt.count(len(rows))} row(s) to {csv_file}", err=True)


def _in_other_currencies(rows: list[dict], reporting: str | None) -> bool:
    """Whether any row is in another currency than the run's reporting one (a NULL currency is that one;
    variance rows carry it, rate 1)."""
    return any(r["currency"] not in (None, reporting) and r["rate"] != 1 for r in rows)


def _per_currency(rows: list[dict], reporting: str | None, native: bool) -> list[tuple[str, list[dict]]]:
    """The rows by currency when some are in other currencies (native amounts add up only within one), the
    reporting currency first; else all the rows under no label."""
    if not native:
        return [("", rows)]
    grouped: dict[str, list[dict]] = {}
    for r in rows:
        grouped.setdefault(r["currency"] or reporting, []).append(r)
    return sorted(((f"{currency} ", group) for currency, group in grouped.items()),
                  key=lambda item: (item[1][0]["rate"] != 1, item[0]))


def _fact_summary(rows: list[dict], measure: str, reporting: str) -> str:
    amount = f"{measure}_amount"
    native = _in_other_currencies(rows, reporting)
    parts = []
    for label, group in _per_currency(rows, reporting, native):
        natural = sum((r[amount] for r in group), start=0)
        adjusted = sum((r[amount] for r in group if r["included"]), start=0)
        parts.append(f"{label}natural {fmt.money(natural)} = adjusted {fmt.money(adjusted)} "
                     f"+ plug {fmt.money(natural - adjusted)}")
    converted = (f" (native amounts; in {reporting} each group of one node, currency and included flag is "
                 "its sum times its rate rounded to cents, as the run converts)") if native else ""
    excluded = sum(1 for r in rows if not r["included"])
    return f"{'; '.join(parts)}{converted}; {fmt.count(len(rows))} fact(s), {fmt.count(excluded)} excluded"


def _rule_summary(rows: list[dict], measure: str) -> str:
    plug = sum((r[f"{measure}_excluded"] for r in rows), start=0)
    governed = sum(r["facts_governed"] for r in rows)
    excluded = sum(r["facts_excluded"] for r in rows)
    return (f"plug {fmt.money(plug)} = the exclusions of {fmt.count(len(rows))} rule(s); "
            f"{fmt.count(excluded)} of {fmt.count(governed)} governed fact(s) excluded")


def _variance_summary(rows: list[dict], by: str) -> str:
    native = _in_other_currencies(rows, None)
    parts = []
    for label, group in _per_currency(rows, None, native):
        actual = sum((r["actual"] for r in group), start=0)
        prior = sum((r["prior"] for r in group), start=0)
        parts.append(f"{label}variance {fmt.money(actual - prior)} = actual {fmt.money(actual)} "
                     f"- prior {fmt.money(prior)}")
    per_currency = " (native amounts, adding up per currency)" if native else ""
    return f"{'; '.join(parts)}{per_currency}; by {by}, {fmt.count(len(rows))} key(s)"


def _attributes(attributes: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in attributes.items())


def _fact_lines(rows: list[dict], reporting: str) -> list[str]:
    """With facts in other currencies, each fact's currency and rate after its node (amounts are native)."""
    native = _in_other_currencies(rows, reporting)
    return fmt.table(
        ["FACT", "CATEGORY", "NODE", *(["CCY", "RATE"] if native else []), *(m.upper() for m in MEASURES),
         "INCLUDED", "RULE", "RULE NODE", "ATTRIBUTES"],
        [[r["fact_id"], r["category_code"], r["mapped_node_id"],
          *([r["currency"] or reporting, r["rate"]] if native else []), *(fmt.money(r[m]) for m in FACT_MEASURES),
          "yes" if r["included"] else "no", r["governing_rule_id"], r["governing_node_id"],
          _attributes(r["attributes"])] for r in rows],
        align="rll" + ("lr" if native else "") + "r" * len(MEASURES) + "lrll")


def _rule_lines(rows: list[dict]) -> list[str]:
    return fmt.table(
        ["RULE", "RULE NODE", "GOVERNED", "EXCLUDED", *(f"{m.upper()} EXCLUDED" for m in MEASURES), "LOGIC"],
        [[r["rule_id"], r["rule_node_id"], fmt.count(r["facts_governed"]), fmt.count(r["facts_excluded"]),
          *(fmt.money(r[f"{m}_excluded"]) for m in MEASURES), r["logic_en"]] for r in rows],
        align="rlrr" + "r" * len(MEASURES) + "l")


def _variance_lines(rows: list[dict], by: str, native: bool) -> list[str]:
    """With rows in other currencies (by category_code or an attribute), each row's currency and rate."""
    return fmt.table(
        [by.upper(), *(["CCY"] if native else []), "ACTUAL", "PRIOR", "VARIANCE", *(["RATE"] if native else []),
         "CHANGE"],
        [[r["key"], *([r["currency"]] if native else []), fmt.money(r["actual"]), fmt.money(r["prior"]),
          fmt.money(r["variance"]), *([r["rate"]] if native else []), r["change"]]
         for r in rows],
        align="l" + ("l" if native else "") + "rrr" + ("r" if native else "") + "l")


def _csv_value(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return to_json(value, indent=None)
    return str(value)


def _write_csv(path: str, columns: tuple[str, ...], rows: list[dict]) -> None:
    try:
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(columns)
            writer.writerows([_csv_value(r[c]) for c in columns] for r in rows)
    except OSError as exc:
        raise PnlError(f"cannot write {path}: {exc.strerror or exc}") from None

