"""`pnldb runs list | show | diff | verify`: the runs of the SQL API (list_runs, get_run, compare_runs,
verify_run).

Human output is an aligned table; `--json` prints exactly the SQL API's JSON (for `runs diff`, a list
of compare_runs rows as objects).
"""
from __future__ import annotations

import json
from decimal import Decimal

import click

from pnldb import api
from pnldb import format as fmt
from pnldb.api.runs import run_is_sound
from pnldb.cli import common
from pnldb.cli.common import echo_lines, emit_json, json_option, pass_settings
from pnldb.cli.params import DECIMAL, ISO_DATE
from pnldb.errors import PnlError
from pnldb.jsonfmt import from_sql_json
from pnldb.report.fields import header_fields


@click.group("runs")
def runs() -> None:
    """Calculation runs: list, show, compare, verify."""


@runs.command("list")
@click.option("--date", "pnl_date", type=ISO_DATE, help="Only runs of this COB date.")
@click.option("--use-case", "use_case", metavar="ID_OR_NAME", help="Only runs of this use case (id or name).")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True, help="At most this many runs.")
@json_option
@pass_settings
def list_runs(settings, pnl_date, use_case, limit, as_json) -> None:
    """Runs, newest first."""
    conn = settings.conn
    use_case_id = api.resolve_use_case(conn, use_case)[0] if use_case else None
    result = api.list_runs_text(conn, pnl_date, use_case_id, limit)
    if as_json:
        click.echo(fmt.json_text(result))
        return
    data = from_sql_json(result)
    if not data["runs"]:
        click.echo("no runs")
        return
    names = api.use_case_names(conn, [r["use_case_id"] for r in data["runs"]])
    marks = api.close_marks(conn, [r["id"] for r in data["runs"]])  # the close (§7): official and pending runs
    echo_lines(fmt.table(
        ["RUN ID", "COB DATE", "USE CASE", "RUN NAME", "STATUS", "CLOSE", "EXECUTED (UTC)", "DURATION", "BY"],
        [[r["id"], r["pnl_date"], names.get(r["use_case_id"], r["use_case_id"]), r["run_name"], r["status"],
          marks.get(str(r["id"]), ""), fmt.timestamp(r["executed_at"]), fmt.duration(r["duration_ms"]),
          r["triggered_by"]] for r in data["runs"]],
        align="lllllllrl"))
    shown, total = len(data["runs"]), data["total"]
    more = f" (newest first; --limit {total} to see all)" if total > shown else ""
    click.echo(f"{fmt.count(shown)} of {fmt.count(total)} run(s){more}")


@runs.command("show")
@click.argument("run_id", type=click.UUID)
@json_option
@pass_settings
def show_run(settings, run_id, as_json) -> None:
    """One run with its results count."""
    result = api.get_run_text(settings.conn, run_id)
    if as_json:
        click.echo(fmt.json_text(result))
        return
    # the report's header fields, so that `runs show` and `report` call everything by the same words
    echo_lines(fmt.key_values(header_fields(json.loads(result, parse_float=Decimal))))


@runs.command("diff")
@click.argument("run_a", type=click.UUID)
@click.argument("run_b", type=click.UUID)
@click.option("--tolerance", type=DECIMAL, default="0", show_default=True,
              help="Show only differences larger than this (absolute).")
@json_option
@pass_settings
def diff_runs(settings, run_a, run_b, tolerance, as_json) -> None:
    """Compare the adjusted values of two runs of one use case; difference = B - A."""
    conn = settings.conn
    notes: list[str] = []

    def on_notice(diag) -> None:
        if diag.severity_nonlocalized == "NOTICE" and diag.message_primary:
            notes.append(diag.message_primary)

    conn.add_notice_handler(on_notice)
    try:
        rows = api.compare_runs(conn, run_a, run_b, tolerance)
    finally:
        conn.remove_notice_handler(on_notice)

    if as_json:
        for note in notes:
            click.echo(f"pnldb: note: {fmt.clean(note)}", err=True)
        emit_json(rows)
        return
    runs_ = [api.get_run(conn, r) for r in (run_a, run_b)]
    echo_lines(fmt.key_values(
        (f"run {side}", f"{r['run_name']} ({r['pnl_date']}, {r['id']})") for side, r in zip("AB", runs_)))
    for note in notes:
        click.echo(f"note: {fmt.clean(note)}")
    click.echo(f"use case {fmt.clean(runs_[0]['use_case_name'])}; adjusted values; difference = B - A; "
               f"shown where |difference| > {tolerance}")
    if not rows:
        click.echo("no differences")
        return
    click.echo()
    echo_lines(fmt.table(
        ["NODE", "SCENARIO", "MEASURE", "A", "B", "DIFFERENCE"],
        [[r["node_id"], r["scenario"], r["measure"], fmt.money(r["value_a"]), fmt.money(r["value_b"]),
          fmt.money(r["difference"])] for r in rows],
        align="lllrrr"))
    click.echo(f"{fmt.count(len(rows))} difference(s)")


@runs.command("verify")
@click.argument("run_id", type=click.UUID, required=False)
@click.option("--all", "every_run", is_flag=True, help="Verify every run of --use-case and its chain of digests.")
@click.option("--use-case", "use_case", metavar="ID_OR_NAME", help="With --all: the use case (id or name).")
@json_option
@pass_settings
def verify(settings, run_id, every_run, use_case, as_json) -> None:
    """Recompute a run from the inputs it recorded (its loads' facts, rules and tree) and compare every
    result row; check its digest and its link to the previous run of its use case. With --all
    --use-case U, every COMPLETED run of U and the whole chain, naming the first broken link. Exit status
    0 when all holds, 1 when not (or on an error)."""
    if every_run or use_case:
        if run_id is not None or not (every_run and use_case):
            raise PnlError("give either a RUN_ID, or --all with --use-case ID_OR_NAME (every run of the use case)")
        verify_all(settings.conn, use_case, as_json)
        return
    if run_id is None:
        raise PnlError("give a RUN_ID to verify, or --all --use-case ID_OR_NAME for every run of a use case")
    text = api.verify_run_text(settings.conn, run_id)
    verdict = from_sql_json(text)
    if as_json:
        click.echo(fmt.json_text(text))
    elif verdict["mismatches"]:
        echo_lines(fmt.table(["NODE", "SCENARIO", "COLUMN", "STORED", "RECOMPUTED"],
                             [(m["node_id"], m["scenario"], m["column"], fmt.text(m["stored"]),
                               fmt.text(m["recomputed"])) for m in verdict["mismatches"]]))
    rows = fmt.count(verdict["rows_checked"])
    tampered = run_is_sound({**verdict, "reproduced": True})  # the digest or the chain
    if tampered is not None:
        click.echo(f"run {run_id}: TAMPERED: {fmt.clean(tampered)}", err=True)
    if verdict["reproduced"] and tampered is None:
        click.echo(f"run {run_id}: reproduced: all {rows} result rows recomputed from its recorded inputs", err=True)
        if verdict["digest_ok"] is None:
            click.echo(f"run {run_id}: no digest (taken before digests were kept)", err=True)
        return
    if verdict["reproduced"]:
        raise SystemExit(1)
    shown = len(verdict["mismatches"])
    more = f" (showing {shown})" if shown < verdict["mismatch_count"] else ""
    click.echo(f"run {run_id}: NOT reproduced: {fmt.count(verdict['mismatch_count'])} mismatches in "
               f"{rows} result rows{more}", err=True)
    if verdict.get("tree_problem"):
        click.echo(f"run {run_id}: {fmt.clean(verdict['tree_problem'])}", err=True)
    raise SystemExit(1)


def verify_all(conn, use_case: str, as_json: bool) -> None:
    use_case_id, name, _ = api.resolve_use_case(conn, use_case)
    report = api.verify_use_case(conn, use_case_id)
    if as_json:
        click.echo(json.dumps(report, default=str, indent=2))
    else:
        echo_lines(fmt.table(["PLACE", "RUN ID", "COB DATE", "RUN NAME", "VERIFIED"],
                             [[r["chain_seq"] or "-", r["run_id"], r["pnl_date"], fmt.clean(r["run_name"]),
                               "BROKEN" if r["problem"] is not None else
                               "not verifiable" if r["unverifiable"] else "ok"] for r in report["runs"]],
                             align="rllll"))
    chain, first = report["chain"], report["first_broken"]
    counted = f"{fmt.count(len(report['runs']))} runs, {fmt.count(chain['links_checked'])} links of the chain"
    if first is None:
        head = chain["head"]
        tail = f"; head: run {head['run_id']} (place {head['chain_seq']}), digest {head['digest']}" if head else ""
        click.echo(f"use case '{fmt.clean(name)}': intact: {counted}{tail}", err=True)
        return
    place = f" (place {first['chain_seq']} of the chain)" if first["chain_seq"] is not None else ""
    click.echo(f"use case '{fmt.clean(name)}': BROKEN ({counted}); first broken link: run {first['run_id']}{place}: "
               f"{fmt.clean(first['problem'])}", err=True)
    raise SystemExit(1)


@runs.command("purge")
@click.option("--use-case", "use_case", required=True, metavar="ID_OR_NAME", help="Use case of the runs (id or name).")
@click.option("--before", "before", required=True, type=ISO_DATE, help="Purge the runs of COB dates before this.")
@click.option("--yes", is_flag=True, help="Do not ask; required when stdin is not a terminal.")
@json_option
@pass_settings
def purge(settings, use_case, before, yes, as_json) -> None:
    """Remove the trial and FAILED runs of COB dates before --before, with their results (purge_runs).
    Official runs (also those a restatement superseded), pending runs and the runs of locked dates are
    kept. Recorded in the close history."""
    conn = settings.conn
    use_case_id, name, _ = api.resolve_use_case(conn, use_case)
    if not yes:
        if not common.stdin_is_a_terminal():
            raise PnlError(f"not purging runs of use case '{fmt.clean(name)}' without confirmation: stdin is not "
                           "a terminal; pass --yes")
        if not click.confirm(f"Remove the trial and FAILED runs of use case '{fmt.clean(name)}' of COB dates "
                             f"before {before}?", default=False, err=True):
            raise PnlError("not confirmed: nothing purged")
    result = api.purge_runs_text(conn, use_case_id, before)
    if as_json:
        click.echo(fmt.json_text(result))
        return
    data = from_sql_json(result)
    click.echo(f"runs of use case '{fmt.clean(name)}' of COB dates before {before}:")
    echo_lines(fmt.key_values([("runs purged", fmt.count(data["runs_purged"])),
                               ("  trial", fmt.count(data["trial_runs_purged"])),
                               ("  FAILED", fmt.count(data["failed_runs_purged"])),
                               ("results purged", fmt.count(data["results_purged"])),
                               ("kept official", fmt.count(data["runs_kept_official"])),
                               ("kept pending", fmt.count(data["runs_kept_pending"])),
                               ("kept locked", fmt.count(data["runs_kept_locked"]))],
                              indent="  ", align="r"))
