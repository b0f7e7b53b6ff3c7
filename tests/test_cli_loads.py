"""`pnldb loads list | purge`: exact tables, exact JSON (the SQL API's), data on stdout and messages on
stderr, and who may call them."""
from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal

import pytest
from builders import error_line, ok
from click.testing import CliRunner
from psycopg.conninfo import make_conninfo

from pnldb import api
from pnldb.cli import main
from tests.builders import COB, EARLIER, TRADING_TREE, backdate, snapshot, structure, use_case


def run(dsn, *args):
    return CliRunner().invoke(main, ["--dsn", dsn, *map(str, args)])


def put_load(conn, uc, at, by, source, rows, pnl_date=COB, replacing=None) -> int:
    """A load at a fixed time, as a loader writes it: (scenario, category_code, daily) rows; `replacing` a
    scenario supersedes that scenario's current facts of pnl_date first."""
    with conn.transaction():
        load_id = conn.execute("INSERT INTO fact_loads (use_case_id, loaded_at, loaded_by, source) "
                               "VALUES (%s, %s, %s, %s) RETURNING load_id", (uc, at, by, source)).fetchone()[0]
        if replacing:
            conn.execute("SELECT replace_facts(%s, %s, %s)", (uc, pnl_date, replacing))
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO fact_pnl_entries (use_case_id, load_id, pnl_date, scenario, category_code, "
                            "daily_amount, wtd_amount, ytd_amount) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                            [(uc, load_id, pnl_date, s, c, Decimal(d), Decimal(d), Decimal(d)) for s, c, d in rows])
    backdate(conn, "fact_loads", "load_id = %s", (load_id,), loaded_at=at, loaded_by=by)
    return load_id


@pytest.fixture
def uc(conn):
    structure(conn, "TRADING", TRADING_TREE)
    return use_case(conn, "Project Sterling", "TRADING")


@pytest.fixture
def history(conn, uc):
    """Load 1 (COB ACTUAL and PRIOR), load 2 (the day before), load 3 replacing COB ACTUAL."""
    put_load(conn, uc, "2025-12-24 09:00:00+00", "alice", "feed.csv",
             [("ACTUAL", "RATES_1", "100.00"), ("ACTUAL", "FX_1", "-5.50"), ("PRIOR", "RATES_1", "90.00")])
    put_load(conn, uc, "2025-12-24 09:30:00+00", "alice", "early.csv", [("ACTUAL", "RATES_1", "1.00")],
             pnl_date=EARLIER)
    put_load(conn, uc, "2025-12-24 18:00:00+01", "bob", "fix.csv", [("ACTUAL", "RATES_1", "94.50")],
             replacing="ACTUAL")
    return uc


LISTED = """\
LOAD  LOADED AT (UTC)      BY     SOURCE     DATE        SCENARIO  ROWS  STATE
   3  2025-12-24 17:00:00  bob    fix.csv    2025-12-24  ACTUAL       1  current
   2  2025-12-24 09:30:00  alice  early.csv  2025-12-23  ACTUAL       1  current
   1  2025-12-24 09:00:00  alice  feed.csv   2025-12-24  ACTUAL       2  superseded by 3
   1  2025-12-24 09:00:00  alice  feed.csv   2025-12-24  PRIOR        1  current
"""


def test_loads_list_prints_every_slice_of_every_load_newest_first(db_url, history):
    result = run(db_url, "loads", "list", "--use-case", "Project Sterling")
    assert ok(result) == LISTED
    assert result.stderr == "3 load(s) of use case 'Project Sterling', newest first\n"


def test_loads_list_of_a_date(db_url, history):
    result = run(db_url, "loads", "list", "--use-case", str(history), "--date", COB)
    assert ok(result) == (
        "LOAD  LOADED AT (UTC)      BY     SOURCE    DATE        SCENARIO  ROWS  STATE\n"
        "   3  2025-12-24 17:00:00  bob    fix.csv   2025-12-24  ACTUAL       1  current\n"
        "   1  2025-12-24 09:00:00  alice  feed.csv  2025-12-24  ACTUAL       2  superseded by 3\n"
        "   1  2025-12-24 09:00:00  alice  feed.csv  2025-12-24  PRIOR        1  current\n")
    assert result.stderr == "2 load(s) of use case 'Project Sterling' for 2025-12-24, newest first\n"


def test_loads_list_json_is_exactly_the_sql_list_loads(conn, db_url, history):
    for args, sql_args in ((), (None,)), (("--date", EARLIER), (EARLIER,)):
        out = ok(run(db_url, "loads", "list", "--use-case", "Project Sterling", "--json", *args))
        sql = conn.execute("SELECT list_loads(%s, %s)::text", (history, *sql_args)).fetchone()[0]
        assert json.loads(out, parse_float=Decimal) == json.loads(sql, parse_float=Decimal)
    assert json.loads(out)["loads"] == [
        {"load_id": 2, "loaded_at": "2025-12-24T09:30:00.000000+00:00", "loaded_by": "alice", "source": "early.csv",
         "rows": 1, "slices": [{"pnl_date": "2025-12-23", "scenario": "ACTUAL", "rows": 1, "current": True,
                                "superseded_at": None, "superseded_by": None, "purged_at": None}]}]


def test_loads_list_of_a_use_case_without_loads_says_so_on_stderr(db_url, uc):
    result = run(db_url, "loads", "list", "--use-case", "Project Sterling")
    assert ok(result) == "" and result.stderr == "use case 'Project Sterling' has no fact loads\n"
    result = run(db_url, "loads", "list", "--use-case", "Project Sterling", "--date", COB)
    assert ok(result) == "" and result.stderr == (
        "use case 'Project Sterling' has no fact loads for 2025-12-24\n")
    assert json.loads(ok(run(db_url, "loads", "list", "--use-case", "Project Sterling", "--json")))["loads"] == []


def test_loads_list_of_an_unknown_use_case_is_an_error(db_url, uc):
    assert error_line(run(db_url, "loads", "list", "--use-case", "Nope")) == (
        "pnldb: error: unknown use case 'Nope'; give a use-case id or exact name (see `pnldb use-case list`)")


def test_loads_list_after_cli_loads_shows_the_file_and_who_loaded_it(conn, db_url, uc, tmp_path):
    path = tmp_path / "facts.csv"
    path.write_text("pnl_date,category_code,daily_amount,wtd_amount,ytd_amount,scenario\n"
                    f"{COB},RATES_1,1,1,1,ACTUAL\n{COB},RATES_1,2,2,2,PRIOR\n")
    ok(run(db_url, "load", "facts", path, "--use-case", "Project Sterling"))
    path.write_text("pnl_date,category_code,daily_amount,wtd_amount,ytd_amount,scenario\n"
                    f"{COB},RATES_1,3,3,3,ACTUAL\n")
    ok(run(db_url, "load", "facts", path, "--use-case", "Project Sterling", "--replace", "--date", COB))
    rows = [line.split() for line in ok(run(db_url, "loads", "list", "--use-case", "Project Sterling")).splitlines()]
    me = conn.info.user
    assert [r[:1] + r[3:] for r in rows[1:]] == [
        ["2", me, str(path), str(COB), "ACTUAL", "1", "current"],
        ["1", me, str(path), str(COB), "ACTUAL", "1", "superseded", "by", "2"],
        ["1", me, str(path), str(COB), "PRIOR", "1", "current"]]


def test_a_load_that_emptied_a_slice_has_a_line_of_its_own(conn, db_url, history):
    with conn.transaction():
        conn.execute("SELECT replace_facts(%s, %s)", (history, EARLIER))
    out = ok(run(db_url, "loads", "list", "--use-case", "Project Sterling", "--date", EARLIER))
    lines = out.splitlines()
    assert lines[1].split()[0] == "4" and lines[1].split()[-5:] == ["-", "-", "0", "no", "facts"]
    assert lines[1].endswith("  no facts") and lines[2].endswith("  superseded by 4")


# --------------------------------------------------------------------------------------------------
# purge

def test_purge_prints_its_counts_and_the_list_shows_purged(conn, db_url, history):
    run_id = snapshot(conn, history, EARLIER)  # reads load 2
    put_load(conn, history, "2025-12-25 08:00:00+00", "bob", "early2.csv", [("ACTUAL", "RATES_1", "2.00")],
             pnl_date=EARLIER, replacing="ACTUAL")
    result = run(db_url, "loads", "purge", "--older-than", "2999-01-01")
    assert ok(result) == ("superseded before 2999-01-01 00:00:00 UTC:\n"
                          "  slices purged         1\n"
                          "  facts purged          2\n"
                          "  slices kept for runs  1\n")
    listed = ok(run(db_url, "loads", "list", "--use-case", "Project Sterling")).splitlines()
    assert [line.split("  ")[-1] for line in listed[1:]] == [
        "current", "current", "superseded by 4", "purged", "current"]
    assert conn.execute("SELECT count(*) FROM fact_pnl_entries WHERE load_id = 1 AND scenario = 'ACTUAL'"
                        ).fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM calculation_run_inputs i JOIN fact_pnl_entries f USING (load_id) "
                        "WHERE i.calculation_run_id = %s", (run_id,)).fetchone()[0] == 1  # what the run read

    again = json.loads(ok(run(db_url, "loads", "purge", "--older-than", "2999-01-01T00:00:00+02:00", "--json")))
    assert again == {"older_than": again["older_than"], "slices_purged": 0, "facts_purged": 0,
                     "slices_kept_for_runs": 1, "slices_kept_frozen": 0}
    assert dt.datetime.fromisoformat(again["older_than"]) == dt.datetime(2998, 12, 31, 22, tzinfo=dt.UTC)
    # the Python API reads the same counts
    counts = api.purge_superseded_facts(conn, dt.datetime(2999, 1, 1, tzinfo=dt.UTC))
    assert (counts["slices_purged"], counts["slices_kept_for_runs"]) == (0, 1)


def test_purge_needs_a_timestamp(db_url, history):
    result = run(db_url, "loads", "purge", "--older-than", "yesterday")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == ("pnldb: error: Invalid value for '--older-than': 'yesterday' is not a timestamp: write "
                             "it ISO 8601, e.g. 2025-12-24 or 2025-12-24T18:00:00+01:00 (UTC unless an offset is "
                             "given)\n")
    assert run(db_url, "loads", "purge").exit_code == 2


# --------------------------------------------------------------------------------------------------
# who may list and purge: the database decides

@pytest.fixture
def role_dsn(conn, db_url):
    made = []

    def make(group: str) -> str:
        name = f"t_{group}_{uuid.uuid4().hex[:8]}"
        conn.execute(f"CREATE ROLE {name} LOGIN PASSWORD 'pw' IN ROLE pnl_{group}")
        made.append(name)
        return make_conninfo(db_url, user=name, password="pw")

    yield make
    for name in made:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (name,))
        conn.execute(f"DROP ROLE {name}")


def test_operators_list_loads_admins_purge_and_readers_do_neither(db_url, history, role_dsn):
    assert ok(run(role_dsn("operator"), "loads", "list", "--use-case", "Project Sterling")) == LISTED
    assert error_line(run(role_dsn("reader"), "loads", "list", "--use-case", "Project Sterling")) == (
        "pnldb: error: permission denied for function list_loads")
    assert error_line(run(role_dsn("operator"), "loads", "purge", "--older-than", "2000-01-01")) == (
        "pnldb: error: permission denied for function purge_superseded_facts")
    assert "slices purged         0" in ok(run(role_dsn("admin"), "loads", "purge", "--older-than", "2000-01-01"))
