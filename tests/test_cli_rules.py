"""`pnldb rules list | delete` and `pnldb load rules --replace`, the rules-export layout, and who may write
rules: exact texts, exact JSON, all or none."""
from __future__ import annotations

import json
import uuid
from decimal import Decimal

import psycopg
import pytest
from builders import error_line, ok
from click.testing import CliRunner
from psycopg.conninfo import make_conninfo

from pnldb.cli import main
from tests.builders import backdate, structure, use_case

FX = {"conditions": [{"field": "book", "operator": "in", "value": ["FX_1", "FX_2"]}]}
RATES = {"conditions": [{"field": "strategy", "operator": "equals", "value": "Carry"},
                        {"field": "daily_amount", "operator": "greater_than", "value": -1000.5}], "conjunction": "OR"}
US = {"conditions": [{"field": "region", "operator": "not_equals", "value": "LATAM"}]}
FX_WHERE = "coalesce((attributes ->> 'book') IN ('FX_1', 'FX_2'), false)"


LISTED = """\
RULE  NODE      WHERE                                                                               LOGIC                 MODIFIED (UTC)       BY
  11  EU_FX     (coalesce((attributes ->> 'book') IN ('FX_1', 'FX_2'), false))                      FX desk: named books  2025-12-20 08:30:00  alice
  12  EU_RATES  (coalesce((attributes ->> 'strategy') = 'Carry', false) OR daily_amount > -1000.5)  -                     2025-12-21 17:05:09  bob
  13  US        (coalesce((attributes ->> 'region') <> 'LATAM', true))                              US without LATAM      2025-12-20 08:30:00  alice
3 rule(s) of use case 'Project Sterling'
"""  # noqa: E501


DELETED_ONE = """\
deleted 1 rule(s) of use case 'Project Sterling':
RULE  NODE      WHERE                                                                               LOGIC  MODIFIED (UTC)       BY
  12  EU_RATES  (coalesce((attributes ->> 'strategy') = 'Carry', false) OR daily_amount > -1000.5)  -      2025-12-21 17:05:09  bob
"""  # noqa: E501


def run(dsn, *args):
    return CliRunner().invoke(main, ["--dsn", dsn, *map(str, args)])


def write(tmp_path, rules, name="rules.json"):
    path = tmp_path / name
    path.write_text(rules if isinstance(rules, str) else json.dumps(rules), encoding="utf-8")
    return path


@pytest.fixture
def uc(conn):
    structure(conn, "S", [("ROOT", None), ("EU", "ROOT"), ("EU_FX", "EU"), ("EU_RATES", "EU"), ("US", "ROOT")])
    return use_case(conn, "Project Sterling", "S")


def put_rule(conn, uc, rule_id, node, predicate, logic, by="alice", at="2025-12-20 08:30:00+00"):
    conn.execute("""INSERT INTO metadata_rules (rule_id, use_case_id, node_id, predicate_json, logic_en,
                                                last_modified_by, created_at, last_modified_at)
                    VALUES (%s, %s, %s, %s::jsonb, %s, %s, %s, %s)""",
                 (rule_id, uc, node, json.dumps(predicate), logic, by, "2025-12-01 07:00:00+00", at))
    backdate(conn, "metadata_rules", "rule_id = %s", (rule_id,), last_modified_by=by,
             created_at="2025-12-01 07:00:00+00", last_modified_at=at)


@pytest.fixture
def three(conn, uc):
    put_rule(conn, uc, 11, "EU_FX", FX, "FX desk: named books")
    put_rule(conn, uc, 12, "EU_RATES", RATES, None, by="bob", at="2025-12-21 17:05:09.5+00")
    put_rule(conn, uc, 13, "US", US, "US without LATAM")
    return uc


def rules_now(conn):
    return conn.execute("SELECT node_id, predicate_json, logic_en, sql_where FROM metadata_rules "
                        "ORDER BY node_id").fetchall()


@pytest.fixture
def role_dsn(conn, db_url):
    """role_dsn('reader') -> the DSN of a new LOGIN role that is a member of pnl_reader (as in test_roles)."""
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


# --------------------------------------------------------------------------------------------------
# rules list

def test_rules_list_prints_the_rules_by_node_exactly(db_url, three):
    assert ok(run(db_url, "rules", "list", "--use-case", "Project Sterling")) == LISTED


def test_rules_list_json_is_exactly_the_sql_list_rules(conn, db_url, three):
    out = ok(run(db_url, "rules", "list", "--use-case", str(three), "--json"))
    sql = conn.execute("SELECT list_rules(%s)::text", (three,)).fetchone()[0]
    assert json.loads(out, parse_float=Decimal) == json.loads(sql, parse_float=Decimal)
    assert json.loads(out, parse_float=Decimal) == [
        {"rule_id": 11, "use_case_id": str(three), "node_id": "EU_FX", "predicate_json": FX,
         "sql_where": f"({FX_WHERE})", "logic_en": "FX desk: named books",
         "created_at": "2025-12-01T07:00:00.000000+00:00", "last_modified_by": "alice",
         "last_modified_at": "2025-12-20T08:30:00.000000+00:00"},
        {"rule_id": 12, "use_case_id": str(three), "node_id": "EU_RATES",
         "predicate_json": {**RATES, "conditions": [RATES["conditions"][0],
                                                    {**RATES["conditions"][1], "value": Decimal("-1000.5")}]},
         "sql_where": "(coalesce((attributes ->> 'strategy') = 'Carry', false) OR daily_amount > -1000.5)",
         "logic_en": None, "created_at": "2025-12-01T07:00:00.000000+00:00", "last_modified_by": "bob",
         "last_modified_at": "2025-12-21T17:05:09.500000+00:00"},
        {"rule_id": 13, "use_case_id": str(three), "node_id": "US", "predicate_json": US,
         "sql_where": "(coalesce((attributes ->> 'region') <> 'LATAM', true))", "logic_en": "US without LATAM",
         "created_at": "2025-12-01T07:00:00.000000+00:00", "last_modified_by": "alice",
         "last_modified_at": "2025-12-20T08:30:00.000000+00:00"},
    ]


def test_rules_list_of_a_use_case_without_rules_says_so(db_url, uc):
    assert ok(run(db_url, "rules", "list", "--use-case", "Project Sterling")) == (
        "use case 'Project Sterling' has no rules\n")
    assert ok(run(db_url, "rules", "list", "--use-case", "Project Sterling", "--json")) == "[]\n"


def test_rules_list_of_an_unknown_use_case_is_an_error(db_url, uc):
    assert error_line(run(db_url, "rules", "list", "--use-case", "Nope")) == (
        "pnldb: error: unknown use case 'Nope'; give a use-case id or exact name (see `pnldb use-case list`)")


# --------------------------------------------------------------------------------------------------
# rules delete

def test_rules_delete_one_prints_what_it_deleted(conn, db_url, three):
    out = ok(run(db_url, "rules", "delete", "--use-case", "Project Sterling", "EU_RATES"))
    assert out == DELETED_ONE
    assert [r[0] for r in rules_now(conn)] == ["EU_FX", "US"]


def test_rules_delete_several_at_once_json_is_the_deleted_rules_as_list_rules_shows_them(conn, db_url, three):
    before = json.loads(conn.execute("SELECT list_rules(%s)::text", (three,)).fetchone()[0], parse_float=Decimal)
    out = ok(run(db_url, "rules", "delete", "--use-case", "Project Sterling", "US", "EU_FX", "US", "--json"))
    assert json.loads(out, parse_float=Decimal) == [before[0], before[2]]
    assert [r[0] for r in rules_now(conn)] == ["EU_RATES"]


@pytest.mark.parametrize("nodes, message", [
    (["EU_FX", "EU"], "use case 'Project Sterling' has no rule on node 'EU'; nothing deleted "
                      "(see `pnldb rules list --use-case 'Project Sterling'`)"),
    (["NOPE", "US", "ROOT"], "use case 'Project Sterling' has no rule on nodes 'NOPE' (no node of structure S), "
                             "'ROOT'; nothing deleted (see `pnldb rules list --use-case 'Project Sterling'`)"),
])
def test_rules_delete_refuses_a_node_without_a_rule_naming_it_and_deletes_nothing(conn, db_url, three, nodes,
                                                                                   message):
    before = rules_now(conn)
    assert error_line(run(db_url, "rules", "delete", "--use-case", "Project Sterling", *nodes)) == (
        "pnldb: error: " + message)
    assert rules_now(conn) == before


def test_rules_delete_needs_a_node(db_url, three):
    result = run(db_url, "rules", "delete", "--use-case", "Project Sterling")
    assert result.exit_code == 2 and "Missing argument 'NODE...'" in result.stderr


# --------------------------------------------------------------------------------------------------
# who may read and write rules: the database decides

def test_rule_writes_are_admin_only_and_a_reader_is_refused_by_the_database(conn, db_url, three, role_dsn, tmp_path):
    before = rules_now(conn)
    path = write(tmp_path, [{"node_id": "EU", "predicate_json": US}])
    for group in ("reader", "operator"):
        dsn = role_dsn(group)
        assert error_line(run(dsn, "rules", "delete", "--use-case", "Project Sterling", "US")) == (
            "pnldb: error: permission denied for table metadata_rules")
        assert error_line(run(dsn, "load", "rules", path, "--use-case", "Project Sterling", "--replace")) == (
            "pnldb: error: permission denied for table metadata_rules")
        assert rules_now(conn) == before
    admin = role_dsn("admin")
    assert json.loads(ok(run(admin, "rules", "delete", "--use-case", "Project Sterling", "US", "--json")))[0][
        "node_id"] == "US"
    assert ok(run(admin, "load", "rules", path, "--use-case", "Project Sterling")) == ""
    assert [r[0] for r in rules_now(conn)] == ["EU", "EU_FX", "EU_RATES"]


def test_an_operator_lists_the_rules_in_force_and_a_reader_is_refused(conn, db_url, three, role_dsn):
    assert ok(run(role_dsn("operator"), "rules", "list", "--use-case", "Project Sterling")) == LISTED
    assert error_line(run(role_dsn("reader"), "rules", "list", "--use-case", "Project Sterling")) == (
        "pnldb: error: permission denied for function list_rules")


# --------------------------------------------------------------------------------------------------
# load rules --replace

def test_load_rules_replace_makes_the_file_the_whole_rule_set(conn, db_url, three, tmp_path):
    eu = {"conditions": [{"field": "legal_entity", "operator": "not_equals", "value": "GM_IRELAND_DAC"}]}
    path = write(tmp_path, [
        {"node_id": "EU", "predicate_json": eu, "logic_en": "EU without the run-off entity"},
        {"node_id": "EU_FX", "predicate_json": US},
    ])
    result = run(db_url, "load", "rules", path, "--use-case", "Project Sterling", "--replace", "--json")
    assert result.stderr == (f"replaced the rules of use case 'Project Sterling' with the 2 rules of {path} "
                             "(1 added, 1 replaced, 2 removed: EU_RATES, US)\n")
    summary = json.loads(ok(result))
    assert summary == {"use_case_id": str(three), "use_case_name": "Project Sterling", "rules_loaded": 2,
                       "inserted": 1, "updated": 1, "replace": True, "removed": 2,
                       "removed_nodes": ["EU_RATES", "US"], "ignored_keys": [], "unknown_fields": []}
    assert rules_now(conn) == [
        ("EU", eu, "EU without the run-off entity",
         "(coalesce((attributes ->> 'legal_entity') <> 'GM_IRELAND_DAC', true))"),
        ("EU_FX", US, "FX desk: named books", "(coalesce((attributes ->> 'region') <> 'LATAM', true))"),
    ]


def test_load_rules_without_replace_keeps_the_rules_the_file_does_not_name(conn, db_url, three, tmp_path):
    path = write(tmp_path, [{"node_id": "EU", "predicate_json": US}])
    result = run(db_url, "load", "rules", path, "--use-case", "Project Sterling")
    assert ok(result) == "" and result.stderr == "loaded 1 rules into use case 'Project Sterling' (1 new, 0 updated)\n"
    assert [r[0] for r in rules_now(conn)] == ["EU", "EU_FX", "EU_RATES", "US"]


def test_load_rules_replace_with_a_bad_rule_changes_nothing(conn, db_url, three, tmp_path):
    before = rules_now(conn)
    path = write(tmp_path, [
        {"node_id": "EU", "predicate_json": US},
        {"node_id": "EU_FX", "predicate_json": {"conditions": [{"field": "book", "operator": "like", "value": "FX%"}]}},
    ])
    result = run(db_url, "load", "rules", path, "--use-case", "Project Sterling", "--replace")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.splitlines() == [
        f"pnldb: error: {path}: 1 of 2 rules rejected, nothing loaded",
        "  rule 2 (node 'EU_FX'): predicate condition 1: unknown operator \"like\"; "
        "use one of equals, not_equals, in, not_in, greater_than, less_than",
    ]
    assert rules_now(conn) == before


def test_rules_list_json_loads_back_with_replace(conn, db_url, three, tmp_path):
    before = rules_now(conn)
    exported = write(tmp_path, ok(run(db_url, "rules", "list", "--use-case", "Project Sterling", "--json")))
    ok(run(db_url, "rules", "delete", "--use-case", "Project Sterling", "US"))
    result = run(db_url, "load", "rules", exported, "--use-case", "Project Sterling", "--replace")
    assert ok(result) == ""
    assert result.stderr.splitlines()[1] == (f"replaced the rules of use case 'Project Sterling' with the 3 rules of "
                                             f"{exported} (1 added, 2 replaced, 0 removed)")
    assert rules_now(conn) == before


# --------------------------------------------------------------------------------------------------
# the original system's rules export

def export_rule(uc, rule_id, node, predicate, logic):
    return {"rule_id": rule_id, "use_case_id": str(uc), "node_id": node, "predicate_json": predicate,
            "sql_where": "1 = 1 OR true", "logic_en": logic, "created_at": "2024-03-01T09:15:00Z",
            "last_modified_by": "legacy_etl", "last_modified_at": "2024-06-30T18:00:00.123Z"}


def test_the_rules_export_layout_is_accepted_with_one_notice_and_sql_where_is_derived(conn, db_url, uc, tmp_path):
    path = write(tmp_path, [export_rule(uc, 901, "EU_FX", FX, "FX desk: named books"),
                            export_rule(uc, 902, "US", US, None)], name="export.json")
    result = run(db_url, "load", "rules", path, "--use-case", "Project Sterling")
    assert ok(result) == ""
    assert result.stderr.splitlines() == [
        f"note: {path}: ignored the rules-export key(s) created_at, last_modified_at, last_modified_by, rule_id, "
        "sql_where, use_case_id (the database sets them; sql_where is derived from predicate_json)",
        "loaded 2 rules into use case 'Project Sterling' (2 new, 0 updated)",
    ]
    rows = conn.execute("SELECT rule_id, node_id, sql_where, logic_en, last_modified_by, created_at > '2025-01-01' "
                        "FROM metadata_rules ORDER BY node_id").fetchall()
    me = conn.info.user  # who loaded, not the export's last_modified_by
    assert [r[1:] for r in rows] == [
        ("EU_FX", f"({FX_WHERE})", "FX desk: named books", me, True),
        ("US", "(coalesce((attributes ->> 'region') <> 'LATAM', true))", None, me, True),
    ]
    assert {r[0] for r in rows}.isdisjoint({901, 902})


def test_an_unknown_key_is_still_refused_beside_the_export_keys(conn, db_url, uc, tmp_path):
    rule = {**export_rule(uc, 901, "EU_FX", FX, None), "sql": "1=1"}
    path = write(tmp_path, [rule])
    assert error_line(run(db_url, "load", "rules", path, "--use-case", "Project Sterling")) == (
        f"pnldb: error: {path}: rule 1: unknown key sql (expected node_id, predicate_json, logic_en); nothing loaded")
    assert rules_now(conn) == []


def test_a_rule_of_another_use_case_is_refused_naming_it(conn, db_url, uc, tmp_path):
    other = use_case(conn, "Other", "S")
    path = write(tmp_path, [export_rule(uc, 901, "EU_FX", FX, None), export_rule(other, 902, "US", US, None)])
    assert error_line(run(db_url, "load", "rules", path, "--use-case", "Project Sterling")) == (
        f"pnldb: error: {path}: rule 2 (node 'US'): use_case_id '{other}' is not the use case loaded into "
        f"('Project Sterling', {uc}); remove use_case_id to load the rule here; nothing loaded")
    assert rules_now(conn) == []


# --------------------------------------------------------------------------------------------------
# a rejected rule is named once

def test_a_rejected_rule_is_named_once_even_with_quotes_and_backslashes_in_its_node(conn, db_url, uc, tmp_path):
    node = "O'Brien\\desk"
    path = write(tmp_path, [{"node_id": "EU", "predicate_json": US}, {"node_id": node, "predicate_json": US}])
    result = run(db_url, "load", "rules", path, "--use-case", "Project Sterling")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"pnldb: error: {path}: 1 of 2 rules rejected, nothing loaded",
        "  rule 2 (node 'O'Brien\\desk'): no such node in structure S of the use case",
    ]


# --------------------------------------------------------------------------------------------------
# the use-case lock

def test_rule_deletes_and_replaces_wait_for_a_running_snapshot(conn, db_url, three, tmp_path):
    impatient = make_conninfo(db_url, options="-c lock_timeout=300ms")
    before = rules_now(conn)
    path = write(tmp_path, [{"node_id": "EU", "predicate_json": US}])
    with psycopg.connect(db_url) as snapshot:  # holds the use-case lock shared, as create_snapshot does
        snapshot.execute("SELECT pnl.lock_use_case(%s, false)", (three,))
        for args in (("rules", "delete", "--use-case", "Project Sterling", "US"),
                     ("load", "rules", path, "--use-case", "Project Sterling", "--replace")):
            line = error_line(run(impatient, *args))  # one error naming the holder (take_lock)
            assert line.startswith('pnldb: error: use case "Project Sterling" is locked by another session: role '
                                   f'{conn.info.user} (pid {snapshot.info.backend_pid}, idle in transaction since ')
            assert "gave up after 300 ms. Hint: nothing was written." in line, line
        assert rules_now(conn) == before
    ok(run(impatient, "rules", "delete", "--use-case", "Project Sterling", "US"))
    assert [r[0] for r in rules_now(conn)] == ["EU_FX", "EU_RATES"]
