"""metadata_rules: predicates validated when written, sql_where derived, nodes checked, hostile text quoted."""
from __future__ import annotations

import json
import re
from decimal import Decimal

import psycopg
import pytest

from tests.builders import cond, facts, results, rule, snapshot, structure, use_case


@pytest.fixture
def uc(conn):
    structure(conn, "S", [("ROOT", None), ("A", "ROOT"), ("B", "ROOT")])
    return use_case(conn, "U", "S")


BAD_PREDICATES = [
    ([], "must be a JSON object"),
    ({"conditions": []}, "non-empty \"conditions\" list"),
    ({"conditions": "region = 'x'"}, "non-empty \"conditions\" list"),
    ({"conditions": [cond("r", "equals", "x")["conditions"][0]], "conjunction": "XOR"},
     "conjunction must be \"AND\" or \"OR\""),
    ({"conditions": [cond("r", "equals", "x")["conditions"][0]], "conjunction": 1}, "conjunction must be"),
    ({"conditions": [cond("r", "equals", "x")["conditions"][0]], "extra": 1}, "unknown key(s): extra"),
    (cond("region", "contains", "x"), "condition 1: unknown operator \"contains\""),
    (cond("region; DROP TABLE pnl.use_cases; --", "equals", "x"), "is not a plain identifier"),
    (cond("attributes->>'x'", "equals", "x"), "is not a plain identifier"),
    (cond("a" * 64, "equals", "x"), "is not a plain identifier"),
    (cond("region", "equals", 5), "region compares with strings, got 5"),
    (cond("region", "equals", {"nested": "x"}), "compares with strings"),
    (cond("region", "equals", ["x"]), "takes a single value, got a list"),
    (cond("region", "in", []), "needs a non-empty list"),
    (cond("region", "in", "x"), "needs a non-empty list"),
    (cond("region", "not_in", ["x", 1]), "compares with strings, got 1"),
    (cond("region", "greater_than", "x"), "greater_than applies to measures only"),
    (cond("category_code", "less_than", "x"), "less_than applies to measures only"),
    (cond("daily_amount", "greater_than", "100"), "daily_amount is a measure and compares with numbers, got \"100\""),
    (cond("daily_amount", "equals", True), "compares with numbers, got true"),
    (cond("daily_amount", "in", [1, None]), "compares with numbers, got null"),
    ({"conditions": [cond("r", "equals", "x")["conditions"][0], {"field": "r", "operator": "equals"}]},
     "condition 2: needs \"field\", \"operator\" and \"value\""),
    ({"conditions": [{"field": "r", "operator": "equals", "value": "x", "sql": "1=1"}]}, "condition 1: unknown key"),
    ({"conditions": ["region = 'x'"]}, "condition 1: must be an object"),
]


@pytest.mark.parametrize("predicate, message", BAD_PREDICATES, ids=[m for _, m in BAD_PREDICATES])
def test_an_invalid_predicate_is_refused_saying_which_condition_and_why(conn, uc, predicate, message):
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=re.escape(message)) as caught:
        conn.execute("INSERT INTO metadata_rules (use_case_id, node_id, predicate_json) VALUES (%s, 'A', %s::jsonb)",
                     (uc, json.dumps(predicate)))
    assert caught.value.diag.message_primary.startswith("rule on node 'A': predicate ")
    assert conn.execute("SELECT count(*) FROM metadata_rules").fetchone()[0] == 0


def test_a_rule_on_a_node_outside_the_structure_is_refused(conn, uc):
    with pytest.raises(psycopg.errors.ForeignKeyViolation, match="rule on node 'NOPE': no such node in structure S"):
        rule(conn, uc, "NOPE", cond("r", "equals", "x"))


def test_one_rule_per_node_per_use_case(conn, uc):
    rule(conn, uc, "A", cond("r", "equals", "x"))
    with pytest.raises(psycopg.errors.UniqueViolation, match="metadata_rules_one_rule_per_node"):
        rule(conn, uc, "A", cond("r", "equals", "y"))


def test_sql_where_is_derived_and_cannot_be_set_by_hand(conn, uc):
    rule_id = rule(conn, uc, "A", {"conditions": [
        {"field": "region", "operator": "in", "value": ["EMEA", "APAC"]},
        {"field": "daily_amount", "operator": "greater_than", "value": 1.5},
        {"field": "category_code", "operator": "not_equals", "value": "X"}], "conjunction": "OR"})
    expected = ("(coalesce((attributes ->> 'region') IN ('EMEA', 'APAC'), false) OR daily_amount > 1.5 "
                "OR category_code <> 'X')")
    assert conn.execute("SELECT sql_where FROM metadata_rules").fetchone()[0] == expected
    conn.execute("UPDATE metadata_rules SET sql_where = 'true' WHERE rule_id = %s", (rule_id,))
    assert conn.execute("SELECT sql_where FROM metadata_rules").fetchone()[0] == expected
    conn.execute("""INSERT INTO metadata_rules (use_case_id, node_id, predicate_json, sql_where)
                    VALUES (%s, 'B', '{"conditions": [{"field": "r", "operator": "equals", "value": "x"}]}', 'true')""",
                 (uc,))
    assert conn.execute("SELECT sql_where FROM metadata_rules WHERE node_id = 'B'").fetchone()[0] == \
        "(coalesce((attributes ->> 'r') = 'x', false))"


def test_updating_a_rule_revalidates_it_and_stamps_who_and_when(conn, uc, login):
    rule_id = rule(conn, uc, "A", cond("r", "equals", "x"), "first")
    created = conn.execute("SELECT predicate_json, logic_en, sql_where, last_modified_by, last_modified_at "
                           "FROM metadata_rules").fetchone()
    assert created[3] == conn.info.user
    admin = login("admin")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="non-empty \"conditions\" list"):
        admin.execute("""UPDATE metadata_rules SET predicate_json = '{"conditions": []}' WHERE rule_id = %s""",
                      (rule_id,))
    assert conn.execute("SELECT predicate_json, logic_en, sql_where, last_modified_by, last_modified_at "
                        "FROM metadata_rules").fetchone() == created
    # another role, in a later transaction: now() of the update is not the creation's now()
    with admin.transaction():
        admin.execute("UPDATE metadata_rules SET predicate_json = %s::jsonb WHERE rule_id = %s",
                      (json.dumps(cond("r", "equals", "y")), rule_id))
        updated_at = admin.execute("SELECT now()").fetchone()[0]
    sql_where, by, at = conn.execute("SELECT sql_where, last_modified_by, last_modified_at "
                                     "FROM metadata_rules").fetchone()
    assert sql_where == "(coalesce((attributes ->> 'r') = 'y', false))"
    assert (by, at) == (admin.info.user, updated_at) and at > created[4]
    # who and when are the database's, whatever the writer sends (issue 18)
    with conn.transaction():
        conn.execute("UPDATE metadata_rules SET logic_en = 'why', last_modified_by = 'loader for alice', "
                     "last_modified_at = '2000-01-01' WHERE rule_id = %s", (rule_id,))
        updated_at = conn.execute("SELECT now()").fetchone()[0]
    assert conn.execute("SELECT last_modified_by, last_modified_at FROM metadata_rules").fetchone() == \
        (conn.info.user, updated_at)


HOSTILE_VALUES = [
    "O'Brien", "'; DROP TABLE pnl.fact_pnl_entries; --", "back\\slash", "$$dollar$$", "/* comment */",
    "ünïcødé ✓ 漢字", "x" * 5000, "%s %(x)s {}", "\n\t newline",
]


@pytest.mark.parametrize("value", HOSTILE_VALUES, ids=range(len(HOSTILE_VALUES)))
def test_hostile_values_are_quoted_and_match_exactly(conn, uc, value):
    facts(conn, uc, [("ACTUAL", "A", "1", "1", "1", {"book": value}),
                     ("ACTUAL", "A", "2", "2", "2", {"book": value + "!"})])
    rule(conn, uc, "A", cond("book", "equals", value))
    res = results(conn, snapshot(conn, uc))
    assert res[("A", "ACTUAL")]["daily_adjusted"] == Decimal("1.00")
    assert conn.execute("SELECT count(*) FROM fact_pnl_entries").fetchone()[0] == 2
    stored = conn.execute("SELECT predicate_json FROM metadata_rules").fetchone()[0]
    assert stored["conditions"][0]["value"] == value


def test_numbers_in_measure_conditions_are_exact_decimals(conn, uc):
    facts(conn, uc, [("ACTUAL", "A", "0.30", "0", "0", {}), ("ACTUAL", "A", "0.31", "0", "0", {})])
    rule(conn, uc, "A", {"conditions": [{"field": "daily_amount", "operator": "in", "value": [0.3, 1e3]}]})
    assert results(conn, snapshot(conn, uc))[("A", "ACTUAL")]["daily_adjusted"] == Decimal("0.30")
