"""Rules from a JSON list of {node_id, predicate_json, logic_en}: upserted (or, with replace, made the whole
rule set) all or none, every rejected rule reported with the database's reason."""
from __future__ import annotations

import json
import uuid
from decimal import Decimal

import psycopg

from pnldb.errors import PnlError
from pnldb.jsonfmt import to_json
from pnldb.loaders.reading import open_source, problems_error, quoted, source_name
from pnldb.vocabulary import FACT_MEASURES

RULE_KEYS = ("node_id", "predicate_json", "logic_en")
# The other metadata_rules columns (contract §1), as the original system's rules export (and
# `pnldb rules list --json`) writes them: accepted and ignored, the database owns them (sql_where is
# always derived from predicate_json). A use_case_id must be the use case loaded into.
EXPORT_KEYS = ("rule_id", "use_case_id", "sql_where", "created_at", "last_modified_by", "last_modified_at")
# Errors that say nothing about the rule being written (no right to write rules, a lock or statement
# timeout, a deadlock): raised as they are, not reported once per rule.
NOT_A_RULE_PROBLEM = (psycopg.errors.InsufficientPrivilege, psycopg.errors.LockNotAvailable,
                      psycopg.errors.QueryCanceled, psycopg.errors.DeadlockDetected,
                      psycopg.errors.SerializationFailure)
# Condition fields that are columns of a fact; any other field is an attribute key.
FACT_FIELDS = ("category_code", "currency", *FACT_MEASURES)
# Nesting of lists and objects in a rules file: a rule needs 6 levels (the list, a rule, its predicate,
# the conditions, a condition, an in list); anything much deeper is refused before it can exhaust a stack.
MAX_JSON_DEPTH = 32


def load_rules(conn: psycopg.Connection, source, use_case: tuple[uuid.UUID, str, str],
               replace: bool = False) -> dict:
    """Upsert rules of `use_case`, (use_case_id, name, structure_id) as pnldb.api.resolve_use_case finds
    it, from a JSON list of {node_id, predicate_json, logic_en}: all or none. With `replace` the file
    becomes the use case's whole rule set: rules on nodes the file does not name are deleted, in the
    same transaction.

    A rule without the logic_en key keeps the text it has (null sets it to null). The keys of the rules
    export (EXPORT_KEYS) are ignored and listed in `ignored_keys`. The database validates each rule
    (predicate, node of the structure). Each rule is written in its own savepoint so that every
    rejected rule is reported, with its reason, in one PnlError; if any is rejected nothing is written.

    A condition on an attribute key that no current fact of the use case carries (most likely misspelt:
    the rule would treat every fact as lacking it) does not stop the load; it is listed in
    `unknown_fields` as {node_id, field, suggestion}, the suggestion being a key present that differs
    only in case, else None. A use case without current facts yet (rules loaded first) has nothing to
    check against: no field is listed.
    """
    uc_id, uc_name, _ = use_case
    rules, ignored = _read_rules(source, uc_id, uc_name)
    fname = source_name(source)
    rejected: list[str] = []
    inserted = updated = 0
    removed: list[str] = []
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
            except NOT_A_RULE_PROBLEM:
                raise
            except psycopg.Error as exc:
                if conn.broken:
                    raise
                rejected.append(f"rule {i} (node {quoted(rule['node_id'])}): {_reason(exc, rule['node_id'])}")
                continue
            if row[0]:
                inserted += 1
            else:
                updated += 1
        if rejected:
            raise PnlError(f"{fname}: {len(rejected)} of {len(rules)} rules rejected, nothing loaded\n  "
                           + "\n  ".join(rejected))
        if replace:
            removed = [r[0] for r in conn.execute(
                """DELETE FROM metadata_rules WHERE use_case_id = %s AND NOT (node_id = ANY(%s::text[]))
                   RETURNING node_id""", (uc_id, [r["node_id"] for r in rules])).fetchall()]
            removed.sort()
        unknown = _unknown_fields(conn, uc_id, rules)
    return {"use_case_id": uc_id, "use_case_name": uc_name, "rules_loaded": len(rules),
            "inserted": inserted, "updated": updated, "replace": replace, "removed": len(removed),
            "removed_nodes": removed, "ignored_keys": ignored, "unknown_fields": unknown}


def _unknown_fields(conn: psycopg.Connection, uc_id: uuid.UUID, rules: list[dict]) -> list[dict]:
    """The rules' attribute fields that no current fact of the use case carries (none if it has no facts)."""
    wanted: dict[tuple[str, str], None] = {}  # (node_id, field) in file order, once each
    for rule in rules:
        for condition in rule["predicate_json"].get("conditions", []):
            field = condition.get("field") if isinstance(condition, dict) else None
            if isinstance(field, str) and field not in FACT_FIELDS:
                wanted[rule["node_id"], field] = None
    if not wanted:
        return []
    # one pass over the use case's current facts: the keys that match a field in any case
    has_facts, keys = conn.execute(
        """SELECT EXISTS (SELECT 1 FROM fact_load_slices s WHERE s.use_case_id = %(uc)s AND s.superseded_at IS NULL),
                  coalesce((SELECT array_agg(DISTINCT k.key ORDER BY k.key)
                            FROM fact_load_slices s
                            JOIN fact_pnl_entries f
                              ON f.load_id = s.load_id AND f.pnl_date = s.pnl_date AND f.scenario = s.scenario
                            CROSS JOIN LATERAL jsonb_object_keys(f.attributes) AS k (key)
                            WHERE s.use_case_id = %(uc)s AND s.superseded_at IS NULL
                              AND lower(k.key) = ANY (%(lowered)s::text[])), '{}')""",
        {"uc": uc_id, "lowered": sorted({field.lower() for _, field in wanted})}).fetchone()
    if not has_facts:
        return []
    present = set(keys)
    by_lower: dict[str, str] = {}
    for key in keys:  # sorted: the first of several spellings is suggested
        by_lower.setdefault(key.lower(), key)
    return [{"node_id": node, "field": field, "suggestion": by_lower.get(field.lower())}
            for node, field in wanted if field not in present]


def _reason(exc: psycopg.Error, node: str) -> str:
    """The database's reason, on one line, without the trigger's own "rule on node 'X': " (the caller
    names the rule already)."""
    diag = getattr(exc, "diag", None)
    reason = " ".join(((diag.message_primary if diag else None) or str(exc).strip().splitlines()[0]).split())
    prefix = f"rule on node {' '.join(_sql_literal(node)[:120].split())}: "
    return reason[len(prefix):] if reason.startswith(prefix) else reason


def _sql_literal(text: str) -> str:
    """PostgreSQL's quote_literal(text), as rule_is_valid quotes the node in its messages."""
    body = text.replace("'", "''")
    if "\\" in text:
        return "E'" + body.replace("\\", "\\\\") + "'"
    return f"'{body}'"


def _read_rules(source, uc_id: uuid.UUID, uc_name: str) -> tuple[list[dict], list[str]]:
    """The rules of the file, checked for shape, and the export keys it carries (sorted)."""
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
    too_deep = PnlError(f"{fname}: lists and objects nested more than {MAX_JSON_DEPTH} levels deep; a rules file "
                        f"needs 6 (the list, a rule, its predicate_json, the conditions, a condition, an in list)")
    try:
        rules = json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise PnlError(f"{fname}: not valid JSON: line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise too_deep from None
    if _depth(rules) > MAX_JSON_DEPTH:
        raise too_deep
    if not isinstance(rules, list):
        raise PnlError(f"{fname}: expected a JSON list of rules "
                       f"({{\"node_id\", \"predicate_json\", \"logic_en\"}}), got a {_json_type(rules)}")
    problems = []
    seen: dict[str, int] = {}
    ignored: set[str] = set()
    for i, rule in enumerate(rules, start=1):
        if not isinstance(rule, dict):
            problems.append(f"rule {i}: expected an object, got a {_json_type(rule)}")
            continue
        unknown = sorted(set(rule) - set(RULE_KEYS) - set(EXPORT_KEYS))
        ignored.update(set(rule) & set(EXPORT_KEYS))
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
        if rule.get("use_case_id") is not None and _as_uuid(rule["use_case_id"]) != uc_id:
            named = f" (node {quoted(node)})" if isinstance(node, str) else ""
            problems.append(f"rule {i}{named}: use_case_id {quoted(rule['use_case_id'])} is not the use case "
                            f"loaded into ({quoted(uc_name)}, {uc_id}); remove use_case_id to load the rule here")
    if problems:
        raise problems_error(fname, "problems", problems, len(problems))
    return rules, sorted(ignored)


def _depth(value) -> int:
    """How deeply lists and objects nest in `value` (a scalar is 0), without recursion."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, level)
        if level <= MAX_JSON_DEPTH:
            stack.extend((child, level + 1) for child in children)
    return deepest


def _as_uuid(value) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if isinstance(value, str) else None
    except ValueError:
        return None


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
