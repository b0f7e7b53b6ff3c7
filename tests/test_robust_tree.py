"""Robustness of the hierarchy (issue 19, items 2 and 4): tree edits of one structure serialise, so two
concurrent halves of a cycle cannot both commit; a snapshot refuses a structure whose nodes are not all
reached from its root; the depth of a tree has a limit, refused at load with a clear error; the tree
check is linear (a 3,000-deep chain loads in well under a second where it took ten minutes); the
loader analyses dim_hierarchy after a large load."""
from __future__ import annotations

import io

import psycopg
import pytest
from builders import (
    facts,
    in_thread,
    open_conn,
    results,
    snapshot,
    structure,
    table_counts,
    use_case,
    wait_until_blocked,
)

from pnldb import api
from pnldb.errors import PnlError


def chain_csv(n: int, prefix: str = "N") -> io.BytesIO:
    """A chain of n nodes, N0 the root at depth 0 down to N{n-1} at depth n - 1."""
    lines = ["node_id,parent_node_id,node_name", f"{prefix}0,,root"]
    lines += [f"{prefix}{i},{prefix}{i - 1},node {i}" for i in range(1, n)]
    return io.BytesIO(("\n".join(lines) + "\n").encode())


def parents(conn, structure_id: str) -> dict:
    return dict(conn.execute("SELECT node_id, parent_node_id FROM dim_hierarchy WHERE structure_id = %s",
                             (structure_id,)).fetchall())


@pytest.fixture
def two_branches(conn):
    structure(conn, "S", [("ROOT", None), ("A", "ROOT"), ("B", "ROOT")])


# ---------------------------------------------------------------------------------------- write skew

@pytest.mark.parametrize("isolation", ["READ COMMITTED", "REPEATABLE READ"])
def test_two_concurrent_halves_of_a_cycle_cannot_both_commit(conn, db_url, two_branches, isolation):
    first, second = open_conn(db_url, autocommit=False), open_conn(db_url, autocommit=False)
    try:
        for c in (first, second):
            c.execute(f"SET TRANSACTION ISOLATION LEVEL {isolation}")
        first.execute("UPDATE dim_hierarchy SET parent_node_id = 'B' WHERE structure_id = 'S' AND node_id = 'A'")
        pid = second.info.backend_pid
        thread, outcome = in_thread(lambda: second.execute(
            "UPDATE dim_hierarchy SET parent_node_id = 'A' WHERE structure_id = 'S' AND node_id = 'B'"))
        wait_until_blocked(conn, pid, thread)  # the second edit waits for the first's structure lock
        first.commit()
        thread.join(30)
        assert not thread.is_alive()
        error = outcome.get("error")
        if isolation == "READ COMMITTED":  # the check, run after the wait, sees the first edit
            assert isinstance(error, psycopg.errors.IntegrityConstraintViolation), outcome
            assert "hierarchy S has a cycle: B -> A -> B" in str(error)
        else:  # its snapshot cannot: the structure's lock refuses a transaction older than the other edit
            assert isinstance(error, psycopg.errors.SerializationFailure), outcome
            assert str(error).startswith("structure 'S' changed after this transaction's snapshot was taken: "
                                         "an edit of its hierarchy committed since")
            assert "Start a new transaction and try again" in error.diag.message_hint
        second.rollback()
    finally:
        first.close()
        second.close()
    assert parents(conn, "S") == {"ROOT": None, "A": "B", "B": "ROOT"}


def test_edits_of_different_structures_do_not_wait_for_each_other(conn, db_url, two_branches):
    structure(conn, "T", [("TROOT", None), ("X", "TROOT")])
    first, second = open_conn(db_url, autocommit=False), open_conn(db_url, autocommit=False)
    try:
        first.execute("UPDATE dim_hierarchy SET parent_node_id = 'B' WHERE structure_id = 'S' AND node_id = 'A'")
        second.execute("SET lock_timeout = '2s'")
        second.execute("UPDATE dim_hierarchy SET node_name = 'X again' WHERE structure_id = 'T' AND node_id = 'X'")
        second.commit()
        first.commit()
    finally:
        first.close()
        second.close()
    assert parents(conn, "S")["A"] == "B"


def test_an_edit_counts_as_a_change_of_its_structure_and_a_rename_is_no_edit_of_the_tree(conn, db_url,
                                                                                         two_branches):
    def version():
        return conn.execute("SELECT version FROM lock_rows WHERE lock_kind = 'structure' AND lock_key = 'S' "
                            "AND NOT gate").fetchone()[0]

    before = version()
    conn.execute("UPDATE dim_hierarchy SET parent_node_id = 'B' WHERE structure_id = 'S' AND node_id = 'A'")
    assert version() == before + 1
    # renaming moves no node: it neither waits for a tree edit in progress nor counts as a change of the tree
    editor = open_conn(db_url, autocommit=False)
    try:
        editor.execute("UPDATE dim_hierarchy SET parent_node_id = 'ROOT' WHERE structure_id = 'S' AND node_id = 'A'")
        conn.execute("SET lock_timeout = '2s'")
        conn.execute("UPDATE dim_hierarchy SET node_name = 'renamed' WHERE structure_id = 'S' AND node_id = 'B'")
        editor.rollback()
    finally:
        editor.close()
    assert version() == before + 1


def test_a_long_cycle_is_named_by_its_ends(conn):
    nodes = [("ROOT", None)] + [(f"C{i:02d}", "ROOT" if i == 0 else f"C{i - 1:02d}") for i in range(30)]
    structure(conn, "S", nodes)
    with pytest.raises(psycopg.errors.IntegrityConstraintViolation) as caught:
        conn.execute("UPDATE dim_hierarchy SET parent_node_id = 'C29' WHERE node_id = 'C00'")
    assert str(caught.value).splitlines()[0] == (
        "hierarchy S has a cycle: C00 -> C29 -> C28 -> C27 -> C26 -> C25 -> C24 -> C23 -> C22 -> C21 -> ... 11 more "
        "-> C09 -> C08 -> C07 -> C06 -> C05 -> C04 -> C03 -> C02 -> C01 -> C00")


def test_a_cycle_below_a_dangling_parent_is_still_refused(conn):
    # nodes inserted children first (the parent FK waits for commit) are tops until their parent comes
    structure(conn, "S", [("ROOT", None)])
    with conn.transaction():
        conn.execute("INSERT INTO dim_hierarchy (structure_id, node_id, parent_node_id, node_name) "
                     "VALUES ('S', 'Y', 'X', 'y'), ('S', 'Z', 'Y', 'z')")
        conn.execute("INSERT INTO dim_hierarchy (structure_id, node_id, parent_node_id, node_name) "
                     "VALUES ('S', 'X', 'ROOT', 'x')")
    with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="cycle: X -> Z -> Y -> X"):
        conn.execute("UPDATE dim_hierarchy SET parent_node_id = 'Z' WHERE node_id = 'X'")
    assert parents(conn, "S") == {"ROOT": None, "X": "ROOT", "Y": "X", "Z": "Y"}


# ---------------------------------------------------------------------------------- unreachable nodes

@pytest.fixture
def booked(conn, two_branches):
    uc = use_case(conn, "Book", "S")
    facts(conn, uc, [("ACTUAL", "A", "10.00", "10.00", "10.00", {}), ("ACTUAL", "B", "5.00", "5.00", "5.00", {}),
                     ("PRIOR", "A", "1.00", "1.00", "1.00", {})])
    return uc


def without_triggers(conn, statement: str) -> None:
    """A write the tree checks never see: session_replication_role = replica skips ordinary triggers
    (and the deferred parent FK, which is a trigger too)."""
    with conn.transaction():
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute(statement)


def test_a_snapshot_refuses_nodes_its_root_does_not_reach_and_writes_nothing(conn, booked):
    without_triggers(conn, "UPDATE dim_hierarchy SET parent_node_id = CASE node_id WHEN 'A' THEN 'B' ELSE 'A' END "
                           "WHERE structure_id = 'S' AND node_id IN ('A', 'B')")
    before = table_counts(conn)
    with pytest.raises(psycopg.errors.DataCorrupted) as caught:
        snapshot(conn, booked)
    assert str(caught.value).splitlines()[0] == (
        'use case "Book": 2 nodes of structure S cannot be reached from its root ROOT: A, B; nothing written')
    assert "parent links go round in a cycle" in caught.value.diag.message_hint
    assert "pnldb load hierarchy FILE --structure S" in caught.value.diag.message_hint
    assert table_counts(conn) == before
    assert conn.execute("SELECT count(*) FROM calculation_runs").fetchone() == (0,)


def test_a_snapshot_refuses_a_second_root(conn, booked):
    without_triggers(conn, "UPDATE dim_hierarchy SET parent_node_id = NULL WHERE structure_id = 'S' AND node_id = 'B'")
    with pytest.raises(psycopg.errors.DataCorrupted,
                       match=r'use case "Book": its structure S has 2 roots \(B, ROOT\), a tree has one; '
                             r'nothing written'):
        snapshot(conn, booked)
    assert conn.execute("SELECT count(*) FROM calculation_runs").fetchone() == (0,)


def test_a_snapshot_of_a_whole_tree_shows_every_node(conn, booked):
    run = results(conn, snapshot(conn, booked))
    assert {node for node, _ in run} == {"ROOT", "A", "B"}
    assert run[("ROOT", "ACTUAL")]["daily_natural"] == 15


# ------------------------------------------------------------------------------------------ depth

def test_the_depth_limit_is_a_documented_limits_row_of_64(conn):
    assert conn.execute("SELECT value, description FROM limits WHERE name = 'max_hierarchy_depth'").fetchone() == (
        64, "deepest node of a structure, counted from its root (depth 0); a load or edit reaching deeper is refused")


def test_a_file_one_level_too_deep_is_refused_at_load_naming_line_node_depth_and_limit(conn, login):
    admin = login("admin")
    summary = api.load_hierarchy(admin, chain_csv(65), "DEEP")  # N64 at depth 64: the limit itself
    assert (summary["nodes_loaded"], summary["depth"]) == (65, 64)
    with pytest.raises(PnlError) as caught:
        api.load_hierarchy(admin, chain_csv(67, prefix="M"), "DEEPER")
    assert str(caught.value) == (
        "<input>: line 68: node 'M66' is at depth 66 (the root is at 0), deeper than the limit of 64 levels; "
        "2 nodes are deeper than the limit; make the tree shallower, or have an admin raise the limit "
        "(UPDATE limits SET value = 66 WHERE name = 'max_hierarchy_depth'); nothing loaded")
    assert conn.execute("SELECT count(*) FROM hierarchy_structures WHERE structure_id = 'DEEPER'").fetchone() == (0,)


def test_the_tree_trigger_refuses_an_insert_too_deep_for_writers_that_bypass_the_loader(conn, login):
    admin = login("admin")
    api.load_hierarchy(admin, chain_csv(65), "DEEP")
    with pytest.raises(psycopg.errors.ProgramLimitExceeded) as caught:
        admin.execute("INSERT INTO dim_hierarchy (structure_id, node_id, parent_node_id, node_name) "
                      "VALUES ('DEEP', 'N65', 'N64', 'too deep')")
    assert str(caught.value).splitlines()[0] == (
        "hierarchy DEEP: node 'N65' is at depth 65 (the root is at 0), deeper than the limit of 64 levels; "
        "nothing written")
    assert caught.value.diag.message_hint == (
        "make the tree shallower, or have an admin raise the limit: UPDATE pnl.limits SET value = N "
        "WHERE name = 'max_hierarchy_depth'")
    # moving a subtree down counts the depth of everything under it
    api.load_hierarchy(admin, chain_csv(40, prefix="P"), "MOVE")
    admin.execute("INSERT INTO dim_hierarchy (structure_id, node_id, parent_node_id, node_name) "
                  "SELECT 'MOVE', 'Q' || i, CASE WHEN i = 0 THEN 'P0' ELSE 'Q' || (i - 1) END, 'q' "
                  "FROM generate_series(0, 29) i")
    with pytest.raises(psycopg.errors.ProgramLimitExceeded, match="node 'Q25' is at depth 65"):
        admin.execute("UPDATE dim_hierarchy SET parent_node_id = 'P39' WHERE structure_id = 'MOVE' AND node_id = 'Q0'")
    conn.execute("UPDATE limits SET value = 100 WHERE name = 'max_hierarchy_depth'")
    admin.execute("UPDATE dim_hierarchy SET parent_node_id = 'P39' WHERE structure_id = 'MOVE' AND node_id = 'Q0'")
    assert conn.execute("SELECT max(depth) FROM v_hierarchy_nodes WHERE structure_id = 'MOVE'").fetchone() == (69,)


def test_a_snapshot_of_a_chain_as_deep_as_the_limit_adds_up(conn, login):
    api.load_hierarchy(login("admin"), chain_csv(65), "DEEP")
    uc = use_case(conn, "Deep", "DEEP")
    facts(conn, uc, [("ACTUAL", "N64", "1.00", "2.00", "3.00", {}), ("ACTUAL", "N32", "10.00", "20.00", "30.00", {}),
                     ("ACTUAL", "N0", "100.00", "0", "0", {}), ("PRIOR", "N64", "0.50", "0", "0", {})])
    run = results(conn, snapshot(conn, uc))
    assert len(run) == 65 * 3
    assert run[("N64", "ACTUAL")]["depth"] == 64
    assert [run[(n, "ACTUAL")]["daily_natural"] for n in ("N0", "N32", "N33", "N64")] == [111, 11, 1, 1]
    assert run[("N0", "VARIANCE")]["daily_natural"] == 110.5
    assert run[("N64", "ACTUAL")]["parent_node_id"] == "N63"


# ------------------------------------------------------------------------------------ linear, analyse

def test_a_chain_of_3000_loads_in_seconds(conn, login):
    # the old check walked up from every node with its path: n^3.7, ten minutes for this chain
    conn.execute("UPDATE limits SET value = 5000 WHERE name = 'max_hierarchy_depth'")
    admin = login("admin")
    admin.execute("SET statement_timeout = '20s'")
    summary = api.load_hierarchy(admin, chain_csv(3000), "CHAIN")
    assert (summary["nodes_loaded"], summary["depth"]) == (3000, 2999)
    with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match=r"cycle: N0 -> N2999 -> N2998 -> .* "
                                                                            r"-> N1 -> N0"):
        admin.execute("UPDATE dim_hierarchy SET parent_node_id = 'N2999' WHERE node_id = 'N0'")
    with pytest.raises(psycopg.errors.ProgramLimitExceeded, match="node 'N5001' is at depth 5001"):
        admin.execute("INSERT INTO dim_hierarchy (structure_id, node_id, parent_node_id, node_name) "
                      "SELECT 'CHAIN', 'N' || i, 'N' || (i - 1), 'n' FROM generate_series(3000, 5100) i")


def test_a_large_load_analyses_dim_hierarchy_and_a_small_one_does_not(conn, login):
    admin = login("admin")

    def wide(n):
        rows = ["node_id,parent_node_id,node_name", "W,,root"] + [f"W{i},W,w{i}" for i in range(n - 1)]
        return io.BytesIO(("\n".join(rows) + "\n").encode())

    assert api.load_hierarchy(admin, wide(999), "SMALL")["analyzed"] is False
    summary = api.load_hierarchy(admin, wide(1000), "BIG")
    assert summary["analyzed"] is True
    assert conn.execute("SELECT reltuples FROM pg_class WHERE oid = 'pnl.dim_hierarchy'::regclass").fetchone() == (
        1999,)
    # replacing it with a small file counts the removed nodes too
    assert api.load_hierarchy(admin, wide(2), "BIG")["analyzed"] is True


def test_a_node_or_parent_id_longer_than_an_id_may_be_is_refused_with_line_and_column(conn):
    long_id = "é" * 501  # 1,002 bytes
    text = f"node_id,parent_node_id,node_name\nROOT,,Root\n{long_id},ROOT,Long\nB,{'x' * 9000},B\n"
    with pytest.raises(PnlError) as info:
        api.load_hierarchy(conn, io.BytesIO(text.encode()), "LONG_IDS", "Long ids")
    assert str(info.value).splitlines()[1:] == [
        f"  line 3, column node_id: '{'é' * 40}...' is 1,002 bytes long; an id is at most 1,000 bytes (UTF-8)",
        f"  line 4, column parent_node_id: '{'x' * 40}...' is 9,000 bytes long; an id is at most 1,000 bytes (UTF-8)"]
    assert conn.execute("SELECT count(*) FROM dim_hierarchy WHERE structure_id = 'LONG_IDS'").fetchone() == (0,)
