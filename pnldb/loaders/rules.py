"""Rules from a JSON list of {node_id, predicate_json, logic_en}: upserted all or none, every rejected rule
reported with the database's reason."""
from __future__ import annotations

import json
import uuid
from decimal import Decimal

import psycopg

from pnldb.errors import PnlError
from pnldb.jsonfmt import to_json
from pnldb.loaders.reading import open_source, problems_error, quoted, source_name

RULE_KEYS = ("node_id", "predicate_json", "logic_en")


def load_rules(conn: psycopg.Connection, source, use_case: tuple[uuid.UUID, str, str]) -> dict:
    """Upsert rules of `use_case`, (use_case_id, name, structure_id) as pnldb.api.resolve_use_case finds
    it, from a JSON list of {node_id, predicate_json, logic_en}: all or none.

    A rule without the logic_en key keeps the text it has (null sets it to null). The database
    validates each rule (predicate, node of the structure). Each rule is written in its
    own savepoint so that every rejected rule is reported, with its reason, in one PnlError; if any
    is rejected nothing is written.
    """
    uc_id, uc_name, _ = use_case
    rules = _read_rules(source)
    fname = source_name(source)
    rejected: list[str] = []
    inserted = updated = 0
    with conn.transaction():
        for i, rule in enumerate(rules, start=1):
            try:
                with conn.transaction():
                    row = conn.execute(
                        """INSERT INTO metadata_rules (use_case_id, node_id, predicate_json, logic_en)
                           VALUES (%s, %s, %s::jsonb, %s)
                           ON CONFLICT (use_case_id, node_id) DO UPDATE
                           SET predicate_json = EXCLUDED.predicate_json,
                                   logic_en = CASE WHEN %s THEN EXCLUDED.logic_en ELSE metadata_rules.logic_en END
                           RETURNING (xmax = 0)""",
                        (uc_id, rule["node_id"], to_json(rule["predicate_json"], indent=None),
                         rule.get("logic_en"), "logic_en" in rule)).fetchone()
            except psycopg.Error as exc:
                diag = getattr(exc, "diag", None)
                reason = (diag.message_primary if diag else None) or str(exc).strip().splitlines()[0]
                rejected.append(f"rule {i} (node {quoted(rule['node_id'])}): {' '.join(reason.split())}")
                continue
            if row[0]:
                inserted += 1
            else:
                updated += 1
        if rejected:
            raise PnlError(f"{fname}: {len(rejected)} of {len(rules)} rules rejected, nothing loaded\n  "
                           + "\n  ".join(rejected))
    return {"use_case_id": uc_id, "use_case_name": uc_name, "rules_loaded": len(rules),
            "inserted": inserted, "updated": updated}


def _read_rules(source) -> list[dict]:
    binary, fname, owned = open_source(source)
    try:
        raw = binary.read()
    finally:
        if owned:
            binary.close()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PnlError(f"{fname}: not valid UTF-8 (byte {exc.start + 1})") from None
    try:
        rules = json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise PnlError(f"{fname}: not valid JSON: line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    if not isinstance(rules, list):
        raise PnlError(f"{fname}: expected a JSON list of rules "
                       f"({{\"node_id\", \"predicate_json\", \"logic_en\"}}), got a {_json_type(rules)}")
    problems = []
    seen: dict[str, int] = {}
    for i, rule in enumerate(rules, start=1):
        if not isinstance(rule, dict):
            problems.append(f"rule {i}: expected an object, got a {_json_type(rule)}")
            continue
        unknown = sorted(set(rule) - set(RULE_KEYS))
        if unknown:
            problems.append(f"rule {i}: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
                            f"(expected {', '.join(RULE_KEYS)})")
        node = rule.get("node_id")
        if not isinstance(node, str) or not node.strip():
            problems.append(f"rule {i}: node_id must be a non-blank string")
        elif node in seen:
            problems.append(f"rule {i}: node {quoted(node)} already has rule {seen[node]} in this file")
        else:
            seen[node] = i
        if not isinstance(rule.get("predicate_json"), dict):
            problems.append(f"rule {i}: predicate_json must be an object, got "
                            f"{_json_type(rule.get('predicate_json')) if 'predicate_json' in rule else 'nothing'}")
        if rule.get("logic_en") is not None and not isinstance(rule["logic_en"], str):
            problems.append(f"rule {i}: logic_en must be a string")
    if problems:
        raise problems_error(fname, "problems", problems, len(problems))
    return rules


def _json_type(value) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"
