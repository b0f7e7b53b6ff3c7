"""Past one machine (issue 16): a coordinator with 2 PL/Proxy shards computes what a single server does;
loads become visible in one coordinator transaction; what never committed or was deleted is purged from
the shards; a shard of another version refuses; the shard login runs the shard functions and nothing else."""
from __future__ import annotations

import datetime as dt
import io
import json
import os
import time
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pnldb import api, cluster
from pnldb.cli import main
from pnldb.errors import PnlError
from tests.builders import COB, in_thread, load_sample, open_conn, structure, use_case

RESULT_COLUMNS = ("node_id, parent_node_id, node_name, depth, scenario, daily_natural, daily_adjusted, daily_plug, "
                  "wtd_natural, wtd_adjusted, wtd_plug, ytd_natural, ytd_adjusted, ytd_plug, is_override, "
                  "is_reconciled")


def _conn(url) -> psycopg.Connection:
    c = psycopg.connect(url, autocommit=True)
    c.execute("SET search_path TO pnl, public")
    return c


def _rows(c, run_id):
    return c.execute(f"SELECT {RESULT_COLUMNS} FROM fact_calculated_results WHERE calculation_run_id = %s "
                     "ORDER BY node_id, scenario", (run_id,)).fetchall()


def _shard_url(c, shard_no: int) -> str:
    server = c.execute("SELECT server FROM cluster_shards WHERE shard_no = %s", (shard_no,)).fetchone()[0]
    return make_conninfo(c.info.dsn, password=c.info.password or None, dbname=server.split("dbname=")[1])


def _link_login(c) -> tuple[str, str]:
    """The shard login and its password, from the coordinator's user mapping (a superuser reads it)."""
    options = c.execute("SELECT umoptions FROM pg_user_mappings WHERE srvname = 'pnl_shards'").fetchone()[0]
    login = dict(o.split("=", 1) for o in options)
    return login["user"], login["password"]


def test_a_coordinator_with_two_shards_computes_what_one_server_does(single_url, coordinator_url):
    with _conn(single_url) as single, _conn(coordinator_url) as coord:
        runs = {}
        for name, c in (("single", single), ("coordinator", coord)):
            uc = load_sample(c)
            runs[name] = (c, uc, c.execute("SELECT create_snapshot(%s, %s)", (uc, COB)).fetchone()[0])
        (s, s_uc, s_run), (k, k_uc, k_run) = runs["single"], runs["coordinator"]
        assert k.execute("SELECT status, error_message FROM calculation_runs WHERE id = %s",
                         (k_run,)).fetchone() == ("COMPLETED", None)
        assert _rows(k, k_run) == _rows(s, s_run) and len(_rows(k, k_run)) > 30
        # the coordinator keeps no fact; both shards hold some, and together all
        assert k.execute("SELECT count(*) FROM fact_pnl_entries").fetchone() == (0,)
        total = s.execute("SELECT count(*) FROM fact_pnl_entries").fetchone()[0]
        status = cluster.cluster_status(k)
        assert [sh["shard_no"] for sh in status["shards"]] == [0, 1]
        assert all(sh["facts"] > 0 for sh in status["shards"]) and sum(sh["facts"] for sh in status["shards"]) == total
        assert status["orphan_facts"] == 0 and status["queued_purges"] == 0
        # verify, explain and the fx guard read the shards
        assert api.verify_run(k, k_run)["reproduced"] is True
        explained = [api.explain_node(c, run, _root(c, run), "ACTUAL") for c, run in
                     ((s, s_run), (k, k_run))]
        assert _without_run(explained[0]) == _without_run(explained[1])
        assert k.execute("SELECT missing_fx_rates(%s, %s)", (k_uc, COB)).fetchone() == \
            s.execute("SELECT missing_fx_rates(%s, %s)", (s_uc, COB)).fetchone()
        k.execute("DELETE FROM fx_rates WHERE pnl_date = %s AND currency = 'EUR'", (COB,))
        assert k.execute("SELECT missing_fx_rates(%s, %s)", (k_uc, COB)).fetchone() == (["EUR"],)


def _root(c, run):
    return c.execute("SELECT node_id FROM fact_calculated_results WHERE calculation_run_id = %s AND depth = 0 "
                     "AND scenario = 'ACTUAL'", (run,)).fetchone()[0]


def _without_run(explained: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in ("run_id", "use_case_id")} for row in explained]


FACTS_HEADER = "pnl_date,category_code,daily_amount,wtd_amount,ytd_amount,scenario\n"


def _day(version: int) -> bytes:
    """A day whose ACTUAL facts sum to version * 100 at the root, on codes of both shards."""
    return (FACTS_HEADER + "".join(f"{COB},{code},{version * 25},0,0,ACTUAL\n"
                                   for code in ("A", "B", "C", "D"))).encode()


@pytest.fixture
def coordinator(coordinator_url):
    with _conn(coordinator_url) as c:
        structure(c, "S", [("R", None), ("A", "R"), ("B", "R"), ("C", "R"), ("D", "R")])
        uc = use_case(c, "U", "S")
        api.load_facts(c, io.BytesIO(_day(1)), "U")
        yield c, uc, coordinator_url


def _root_daily(c, run) -> object:
    return c.execute("SELECT daily_natural FROM fact_calculated_results WHERE calculation_run_id = %s "
                     "AND node_id = 'R' AND scenario = 'ACTUAL'", (run,)).fetchone()[0]


def _half_way(c, url):
    """A --replace load of version 2 stopped half-way through the shards: shard 0 has its facts (committed
    there), shard 1's fact table is locked by another session. Returns (loader thread, outcome, loader
    pid, the session holding shard 1)."""
    lock = psycopg.connect(_shard_url(c, 1))
    lock.execute("LOCK TABLE pnl.fact_pnl_entries IN ACCESS EXCLUSIVE MODE")
    loader = open_conn(url, autocommit=True)
    pid = loader.info.backend_pid
    thread, outcome = in_thread(lambda: api.load_facts(loader, io.BytesIO(_day(2)), "U", replace=True))
    shard1 = conninfo_to_dict(_shard_url(c, 1))["dbname"]
    deadline = time.monotonic() + 20
    while not c.execute("SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = %s AND wait_event_type = "
                        "'Lock')", (shard1,)).fetchone()[0]:
        assert thread.is_alive() and time.monotonic() < deadline, outcome
        time.sleep(0.02)
    return thread, outcome, pid, lock, loader


def _codes_on_shard_0(c) -> int:
    """How many of the day's 4 codes hash to shard 0 (PL/Proxy's hashtext, masked to 2 shards)."""
    return c.execute("SELECT count(*) FROM unnest(ARRAY['A', 'B', 'C', 'D']) x WHERE hashtext(x) & 1 = 0").fetchone()[0]


def _uncommitted_on_shard_0(c) -> int:
    committed = [r[0] for r in c.execute("SELECT load_id FROM fact_loads")]
    with psycopg.connect(_shard_url(c, 0)) as shard:
        return shard.execute("SELECT count(*) FROM pnl.fact_pnl_entries WHERE load_id <> ALL (%s)",
                             (committed,)).fetchone()[0]


def test_a_snapshot_waiting_on_a_half_way_load_whose_loader_is_killed_sees_only_the_old_facts(coordinator):
    c, uc, url = coordinator
    before = c.execute("SELECT create_snapshot(%s, %s, 'before')", (uc, COB)).fetchone()[0]
    thread, outcome, pid, lock, loader = _half_way(c, url)
    # half-way: shard 0 holds facts of the new load, which the coordinator has not committed
    on_shard_0 = _codes_on_shard_0(c)
    assert 0 < on_shard_0 < 4 and _uncommitted_on_shard_0(c) == on_shard_0
    with open_conn(url, autocommit=True) as other:
        snap, snapped = in_thread(lambda: other.execute("SELECT create_snapshot(%s, %s, 'during')",
                                                        (uc, COB)).fetchone()[0])
        time.sleep(0.3)
        assert snap.is_alive()  # a snapshot waits for the load of its use case
        c.execute("SELECT pg_terminate_backend(%s)", (pid,))
        thread.join(20)
        lock.close()
        snap.join(30)
        during = snapped["value"]
    assert "error" in outcome
    loader.close()
    assert _root_daily(c, during) == _root_daily(c, before) == 100
    assert _rows(c, during) == _rows(c, before)
    # the dead load's facts on shard 0 are purged, once, and nothing any run reads goes with them
    orphans = cluster.cluster_status(c)["orphan_facts"]
    assert orphans >= on_shard_0  # shard 1's insert may have finished after its coordinator died
    assert cluster.purge_shards(c) == {"queued": 0, "orphan_loads": 1, "facts_deleted": orphans}
    assert cluster.cluster_status(c)["orphan_facts"] == 0
    assert cluster.purge_shards(c) == {"queued": 0, "orphan_loads": 0, "facts_deleted": 0}
    assert api.verify_run(c, before)["reproduced"] is True
    after = c.execute("SELECT create_snapshot(%s, %s, 'after')", (uc, COB)).fetchone()[0]
    assert _rows(c, after) == _rows(c, before)


def test_a_half_way_load_that_finishes_becomes_current_whole(coordinator):
    c, uc, url = coordinator
    before = c.execute("SELECT create_snapshot(%s, %s, 'before')", (uc, COB)).fetchone()[0]
    thread, outcome, _pid, lock, loader = _half_way(c, url)
    assert _uncommitted_on_shard_0(c) == _codes_on_shard_0(c)
    lock.close()
    thread.join(30)
    loader.close()
    assert outcome["value"]["rows_loaded"] == 4 and outcome["value"]["rows_superseded"] == 4
    after = c.execute("SELECT create_snapshot(%s, %s, 'after')", (uc, COB)).fetchone()[0]
    assert (_root_daily(c, before), _root_daily(c, after)) == (100, 200)
    assert cluster.cluster_status(c)["orphan_facts"] == 0


def test_deleting_a_use_case_purges_its_facts_from_the_shards(coordinator):
    c, uc, _url = coordinator
    summary = api.delete_use_case(c, uc)
    assert summary["facts_purged"] == 4
    assert c.execute("SELECT count(*) FROM shard_purges").fetchone() == (0,)
    assert sum(s["facts"] for s in cluster.cluster_status(c)["shards"]) == 0


def test_purging_superseded_facts_removes_them_from_the_shards_once_committed(coordinator):
    c, uc, _url = coordinator
    api.load_facts(c, io.BytesIO(_day(2)), "U", replace=True)
    purged = api.purge_superseded_facts(c, dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1))
    assert (purged["slices_purged"], purged["facts_purged"]) == (1, 4)
    assert c.execute("SELECT count(*) FROM shard_purges").fetchone() == (0,)
    assert sum(s["facts"] for s in cluster.cluster_status(c)["shards"]) == 4  # version 2's, the current ones
    run = c.execute("SELECT create_snapshot(%s, %s)", (uc, COB)).fetchone()[0]
    assert _root_daily(c, run) == 200


def test_each_shard_has_the_coordinators_statistics_on_its_facts(coordinator):
    """Migration 0019's statistics size a snapshot's slice; each shard plans the scan of its own facts."""
    c, _, _ = coordinator
    definitions = ("SELECT stxname, stxkind::text, pg_get_statisticsobjdef_columns(oid) FROM pg_statistic_ext "
                   "WHERE stxrelid = 'pnl.fact_pnl_entries'::regclass")
    expected = [("fact_pnl_entries_slices", "{f,m}", "use_case_id, pnl_date, load_id")]
    assert c.execute(definitions).fetchall() == expected
    for shard_no in (0, 1):
        with psycopg.connect(_shard_url(c, shard_no)) as shard:
            assert shard.execute(definitions).fetchall() == expected


def test_a_shard_of_another_version_refuses_to_answer(coordinator):
    c, uc, _url = coordinator
    with psycopg.connect(_shard_url(c, 1), autocommit=True) as shard:
        shard.execute("UPDATE pg_proc SET prosrc = replace(prosrc, %s, 'f00f00f00f00f00f') "
                      "WHERE proname = 'shard_check'", (cluster.schema_mod.shard_layer_version(),))
    runs = c.execute("SELECT count(*) FROM calculation_runs").fetchone()
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState,
                       match="this shard runs pnldb shard layer f00f00f00f00f00f, the coordinator "
                             f"{cluster.schema_mod.shard_layer_version()}: a shard answers only a coordinator of "
                             "its own version"):
        c.execute("SELECT create_snapshot(%s, %s)", (uc, COB))
    assert c.execute("SELECT count(*) FROM calculation_runs").fetchone() == runs


def test_the_shard_login_runs_the_shard_functions_and_nothing_else(coordinator, login):
    c, uc, _url = coordinator
    user, password = _link_login(c)
    as_link = make_conninfo(_shard_url(c, 0), user=user, password=password)
    with psycopg.connect(as_link, autocommit=True) as shard:
        version = cluster.schema_mod.shard_layer_version()
        assert shard.execute("SELECT count(*) FROM pnl.shard_fact_rows(%s, %s, NULL, NULL)",
                             (version, uc)).fetchone()[0] > 0
        for forbidden in ("SELECT count(*) FROM pnl.fact_pnl_entries",
                          "DELETE FROM pnl.fact_pnl_entries",
                          "INSERT INTO pnl.fact_pnl_entries (id) VALUES (1)",
                          "SELECT pnl.predicate_sql('{}')",
                          "CREATE TABLE pnl.x (i int)"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                shard.execute(forbidden)
    # what the shard login runs runs as the shard's login-less owner, who is no superuser and owns its schema only
    with psycopg.connect(_shard_url(c, 0), autocommit=True) as shard:
        assert shard.execute("SELECT DISTINCT r.rolname, r.rolsuper, r.rolcanlogin FROM pg_proc p "
                             "JOIN pg_roles r ON r.oid = p.proowner WHERE p.pronamespace = 'pnl'::regnamespace"
                             ).fetchall() == [(cluster.shard_owner_role(user), False, False)]
    # nobody else logs in to a shard; the coordinator's logins cannot reach the proxies
    admin = login("admin")
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        psycopg.connect(make_conninfo(_shard_url(c, 0), user=admin.info.user, password="pw"))
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        admin.execute("SELECT * FROM pnl_shards.shard_loads('x')")
    assert admin.execute("SELECT umoptions FROM pg_user_mappings WHERE srvname = 'pnl_shards'").fetchall() == [(None,)]


def _require_passwords_of(c, role: str) -> None:
    """The test server trusts loopback logins: make it ask `role` for its password, as a real server would
    (the line goes with the test's server)."""
    hba = Path(c.execute("SHOW hba_file").fetchone()[0])
    if os.environ.get("PNLDB_TEST_DSN") or not os.access(hba, os.W_OK):
        pytest.skip("the test server is not the embedded one: its pg_hba.conf is left alone")
    hba.write_text(f"host all {role} 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
    c.execute("SELECT pg_reload_conf()")
    time.sleep(0.2)


def test_shard_credentials_never_appear_in_errors(coordinator):
    c, uc, url = coordinator
    user, password = _link_login(c)
    _require_passwords_of(c, user)
    c.execute(f"ALTER ROLE \"{user}\" PASSWORD 'changed-behind-its-back'")
    with _conn(url) as fresh:  # a new session: PL/Proxy connects to the shards again
        with pytest.raises(psycopg.Error, match="password authentication failed") as refused:
            fresh.execute("SELECT create_snapshot(%s, %s)", (uc, COB))
        with pytest.raises(psycopg.Error) as status:
            cluster.cluster_status(fresh)
    for error in (refused.value, status.value):
        assert password not in str(error) and "password=" not in str(error)
        assert password not in str(error.diag.context) and password not in str(error.diag.message_detail)


@pytest.fixture
def server_log(server_url):
    """The embedded server's log, with every statement of this login's new sessions written to it."""
    with psycopg.connect(server_url, autocommit=True) as admin:
        log = Path(admin.execute("SHOW data_directory").fetchone()[0]).parent / "Postgresql.log"  # testing.postgresql
        if os.environ.get("PNLDB_TEST_DSN") or not log.exists():
            pytest.skip("the test server is not the embedded one: its log is not here to read")
        admin.execute("ALTER ROLE CURRENT_USER SET log_statement = 'all'")
        try:
            yield log
        finally:
            admin.execute("ALTER ROLE CURRENT_USER RESET log_statement")


def test_shard_credentials_never_reach_the_server_log(server_log, coordinator_url):
    with _conn(coordinator_url) as c:
        _user, password = _link_login(c)
        assert f'CREATE DATABASE "{c.info.dbname}_shard0"' in server_log.read_text()  # init's statements are there
        assert password not in server_log.read_text()


def test_cluster_init_refuses_what_it_cannot_make(single_url, coordinator_url):
    with _conn(single_url) as c:
        with pytest.raises(PnlError, match=r"--shards 3: a cluster has a power of two of shards"):
            cluster.init_cluster(c, 3)
        load_sample(c)
        with pytest.raises(PnlError, match="has facts: make the cluster on a new installation"):
            cluster.init_cluster(c, 2)
    with _conn(coordinator_url) as c, pytest.raises(PnlError, match="is already a coordinator of 2 shards"):
        cluster.init_cluster(c, 2)


def test_cluster_status_and_purge_from_the_cli(coordinator):
    _c, _uc, url = coordinator
    status = CliRunner().invoke(main, ["--dsn", url, "cluster", "status"])
    assert status.exit_code == 0, status.stderr
    assert [line.split("\t")[0] for line in status.stdout.splitlines()] == ["shard 0", "shard 1"]
    assert status.stderr == "orphan facts 0, queued purges 0\n"
    purged = CliRunner().invoke(main, ["--dsn", url, "cluster", "purge", "--json"])
    assert purged.exit_code == 0, purged.stderr
    assert json.loads(purged.stdout) == {"queued": 0, "orphan_loads": 0, "facts_deleted": 0}
