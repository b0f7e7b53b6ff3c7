"""`pnldb close status | check | submit | approve | reject | withdraw | signoff | reopen | lock | history`:
the close of a COB (contract §7), one SQL call each. `--json` prints the SQL's JSON exactly. A step
refused for its checks prints the refusal, then each failing check on its own line, and exits 1."""
from __future__ import annotations

import sys

import click
import psycopg

from pnldb import api
from pnldb import format as fmt
from pnldb.cli.common import echo_lines, json_option, pass_settings
from pnldb.cli.params import ISO_DATE
from pnldb.jsonfmt import from_sql_json


@click.group("close")
def close() -> None:
    """The close: check, submit, approve, sign off, reopen and lock COB dates; their status and history."""


def _step(call):
    """Runs a transition; a refusal for failing checks becomes one line per check on stderr, exit 1."""
    try:
        return call()
    except psycopg.errors.CheckViolation as exc:
        if not exc.diag.message_detail:
            raise
        click.echo(f"pnldb: error: {exc.diag.message_primary}", err=True)
        for line in exc.diag.message_detail.splitlines():
            click.echo(f"  {line}", err=True)
        sys.exit(1)


def _show_unit(text: str, as_json: bool) -> None:
    if as_json:
        click.echo(fmt.json_text(text))
        return
    unit = from_sql_json(text)
    echo_lines(fmt.key_values([
        ("use case", unit["use_case_name"]), ("COB date", unit["pnl_date"]), ("status", unit["status"]),
        ("official run", fmt.text(unit["official_run_id"])), ("version", fmt.text(unit["version"])),
        ("signed off by", fmt.text(unit["signed_off_by"])), ("pending run", fmt.text(unit["pending_run_id"])),
        ("submitted by", fmt.text(unit["submitted_by"])), ("restatement", "yes" if unit["restatement"] else "no"),
        ("locked through", fmt.text(unit["locked_through"])), ("policy", unit["signoff_policy"])]))


def _acks(values) -> dict[str, str]:
    acks = {}
    for value in values:
        code, sep, reason = value.partition("=")
        if not sep or not code.strip():
            raise click.BadParameter(f"{value!r} is not CODE=REASON", param_hint="--ack")
        acks[code.strip().upper()] = reason
    return acks


@close.command("status")
@click.option("--use-case", "use_case", metavar="ID_OR_NAME", help="Only this use case.")
@click.option("--from", "from_date", type=ISO_DATE, help="From this COB date on.")
@click.option("--to", "to_date", type=ISO_DATE, help="Up to this COB date.")
@json_option
@pass_settings
def status(settings, use_case, from_date, to_date, as_json) -> None:
    """The close units (use case, COB date) with their status, oldest date first."""
    conn = settings.conn
    use_case_id = api.resolve_use_case(conn, use_case)[0] if use_case else None
    text = api.list_cob_status_text(conn, use_case_id, from_date, to_date)
    if as_json:
        click.echo(fmt.json_text(text))
        return
    units = from_sql_json(text)["units"]
    if not units:
        click.echo("no COB dates")
        return
    echo_lines(fmt.table(
        ["USE CASE", "COB DATE", "STATUS", "OFFICIAL RUN", "VERSION", "SIGNED OFF BY", "PENDING RUN", "SUBMITTED BY"],
        [[u["use_case_name"], u["pnl_date"], u["status"], fmt.text(u["official_run_id"]), fmt.text(u["version"]),
          fmt.text(u["signed_off_by"]), fmt.text(u["pending_run_id"]), fmt.text(u["submitted_by"])] for u in units]))


@close.command("check")
@click.argument("run_id", type=click.UUID)
@json_option
@pass_settings
def check(settings, run_id, as_json) -> None:
    """The confirmation rules for a run; exit 1 when an ERROR check fails."""
    text = api.check_run_text(settings.conn, run_id)
    result = from_sql_json(text)
    if as_json:
        click.echo(fmt.json_text(text))
    else:
        echo_lines(fmt.table(
            ["CODE", "SEVERITY", "RESULT", "MESSAGE"],
            [[c["code"], c["severity"], {True: "pass", False: "FAIL", None: "-"}[c["passed"]], c["message"]]
             for c in result["checks"]]))
    if not result["passed"]:
        raise SystemExit(1)


@close.command("submit")
@click.argument("run_id", type=click.UUID)
@click.option("--comment", help="A comment for the approver.")
@click.option("--ack", "acks", multiple=True, metavar="CODE=REASON",
              help="Acknowledge a failing WARNING check with a reason; repeatable.")
@json_option
@pass_settings
def submit(settings, run_id, comment, acks, as_json) -> None:
    """Submit a run as its COB's official number (operators); its date's facts freeze."""
    _show_unit(_step(lambda: api.submit_run_text(settings.conn, run_id, comment, _acks(acks))), as_json)


@close.command("approve")
@click.argument("run_id", type=click.UUID)
@click.option("--comment", help="A comment.")
@json_option
@pass_settings
def approve(settings, run_id, comment, as_json) -> None:
    """Approve a pending run (approvers; under FOUR_EYES neither its submitter nor its executor)."""
    _show_unit(_step(lambda: api.approve_run_text(settings.conn, run_id, comment)), as_json)


@close.command("reject")
@click.argument("run_id", type=click.UUID)
@click.option("--reason", required=True, help="Why (required).")
@json_option
@pass_settings
def reject(settings, run_id, reason, as_json) -> None:
    """Reject a pending run (approvers)."""
    _show_unit(api.reject_run_text(settings.conn, run_id, reason), as_json)


@close.command("withdraw")
@click.argument("run_id", type=click.UUID)
@json_option
@pass_settings
def withdraw(settings, run_id, as_json) -> None:
    """Withdraw a run you submitted."""
    _show_unit(api.withdraw_run_text(settings.conn, run_id), as_json)


@close.command("signoff")
@click.argument("run_id", type=click.UUID)
@click.option("--comment", help="A comment.")
@click.option("--ack", "acks", multiple=True, metavar="CODE=REASON",
              help="Acknowledge a failing WARNING check with a reason; repeatable.")
@json_option
@pass_settings
def signoff(settings, run_id, comment, acks, as_json) -> None:
    """Submit and approve at once: only under the SIMPLE policy (approvers)."""
    _show_unit(_step(lambda: api.sign_off_run_text(settings.conn, run_id, comment, _acks(acks))), as_json)


@close.command("reopen")
@click.option("--use-case", "use_case", metavar="ID_OR_NAME", required=True, help="The use case.")
@click.option("--date", "pnl_date", type=ISO_DATE, required=True, help="The signed-off COB date.")
@click.option("--reason", required=True, help="Why (required).")
@json_option
@pass_settings
def reopen(settings, use_case, pnl_date, reason, as_json) -> None:
    """Reopen a signed-off COB date: no official run, facts unfrozen (approvers)."""
    conn = settings.conn
    _show_unit(api.reopen_cob_text(conn, api.resolve_use_case(conn, use_case)[0], pnl_date, reason), as_json)


@close.command("lock")
@click.option("--use-case", "use_case", metavar="ID_OR_NAME", required=True, help="The use case.")
@click.option("--through", "through_date", type=ISO_DATE, required=True, help="Lock every date up to this one.")
@click.option("--reason", required=True, help="Why (required).")
@json_option
@pass_settings
def lock(settings, use_case, through_date, reason, as_json) -> None:
    """Lock every COB date up to --through for good (approvers); each must be signed off."""
    conn = settings.conn
    _show_unit(api.lock_cob_text(conn, api.resolve_use_case(conn, use_case)[0], through_date, reason), as_json)


@close.command("history")
@click.option("--use-case", "use_case", metavar="ID_OR_NAME", help="Only this use case.")
@click.option("--date", "pnl_date", type=ISO_DATE, help="Only this COB date.")
@json_option
@pass_settings
def history(settings, use_case, pnl_date, as_json) -> None:
    """Every step of the close, oldest first: who, when, what, why."""
    conn = settings.conn
    use_case_id = api.resolve_use_case(conn, use_case)[0] if use_case else None
    text = api.close_history_text(conn, use_case_id, pnl_date)
    if as_json:
        click.echo(fmt.json_text(text))
        return
    events = from_sql_json(text)["events"]
    if not events:
        click.echo("no close events")
        return
    echo_lines(fmt.table(
        ["AT (UTC)", "ACTOR", "USE CASE", "COB DATE", "ACTION", "RUN", "COMMENT"],
        [[fmt.timestamp(e["at"]), e["actor"], e["use_case_name"], fmt.text(e["pnl_date"]), e["action"],
          fmt.text(e["run_id"]), fmt.text(e["comment"])] for e in events]))
