"""The bench's data: a scratch schema, generated inside the database, set-based and deterministic.

Values are hashes of generate_series indexes, so every run of the bench sees the same data:

* one structure of 10,111 nodes five levels deep: FIRM -> 10 regions RGnn -> 100 desks DKnnn ->
  1,000 sub-desks SDnnnn -> 9,000 books BKnnnn;
* N facts per scenario (ACTUAL, PRIOR) for the measured use case and COB date, 97.5% on books, the
  rest on sub-desks and desks and 0.5% on codes of no node (unmapped), with strategy, region, book and
  legal_entity attributes (some facts lack strategy or region);
* the same volume on 20 other COB dates of that use case and on the same date of a second use case,
  so the snapshot has to scope (capped by --scope-volume at the largest sizes);
* R rules on nodes at every depth, nested (rules on a node and on some of its descendants), with
  conditions on attributes, measures and category_code, AND and OR, every operator.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import random
import uuid
from pathlib import Path

import psycopg
from psycopg import sql as pgsql

from pnldb import schema as schema_mod
from pnldb.errors import PnlError

BENCH_SCHEMA = "pnldb_bench"
SCHEMA_MARKER = "pnldb bench scratch schema: created and dropped by `pnldb bench`"

STRUCTURE = "BENCH"
MAIN_USE_CASE = uuid.UUID("00000000-0000-4000-8000-00000000b001")
OTHER_USE_CASE = uuid.UUID("00000000-0000-4000-8000-00000000b002")
LOAD_USE_CASE = uuid.UUID("00000000-0000-4000-8000-00000000b003")
# the measured slice again, current behind superseded versions of it (see generate_superseded)
SUPERSEDED_USE_CASE = uuid.UUID("00000000-0000-4000-8000-00000000b004")
# the measured slice again, its facts spread over five currencies (see generate_currencies): each book in
# one of them, as a bank books, and, the worst case, every book in all five
CURRENCY_USE_CASE = uuid.UUID("00000000-0000-4000-8000-00000000b005")
MIXED_CURRENCY_USE_CASE = uuid.UUID("00000000-0000-4000-8000-00000000b006")
USE_CASE_NAMES = {MAIN_USE_CASE: "bench main", OTHER_USE_CASE: "bench other", LOAD_USE_CASE: "bench load",
                  SUPERSEDED_USE_CASE: "bench superseded", CURRENCY_USE_CASE: "bench currencies",
                  MIXED_CURRENCY_USE_CASE: "bench currencies mixed"}
# the five currencies (NULL: the reporting currency, USD), with the COB's rates into USD
BENCH_CURRENCIES = (None, "EUR", "GBP", "JPY", "CHF")
BENCH_RATES = {"EUR": "1.0825", "GBP": "1.2712", "JPY": "0.006731", "CHF": "1.1309"}
COB_DATE = dt.date(2025, 6, 30)

# The hierarchy: (id prefix, digits, name, children per parent); level 0 is the root.
LEVELS = (("FIRM", 0, "Firm", 1), ("RG", 2, "Region", 10), ("DK", 3, "Desk", 10),
          ("SD", 4, "Sub-desk", 10), ("BK", 4, "Book", 9))
STRATEGIES = ("MACRO", "RATES", "CREDIT", "EQUITY", "FX", "COMMODITIES", "ARBITRAGE", "HEDGE")
REGIONS = ("EMEA", "AMER", "APAC", "LATAM", "NORDICS", "JAPAN")
LEGAL_ENTITIES = ("LE1", "LE2", "LE3", "LE4")
UNMAPPED_CODES = 20
ATTRIBUTE_VARIANTS = 16  # attribute combinations per book


def level_counts() -> list[int]:
    counts, n = [], 1
    for _, _, _, fanout in LEVELS:
        n *= fanout
        counts.append(n)
    return counts


def node_id(level: int, number: int) -> str:
    prefix, digits, _, _ = LEVELS[level]
    return prefix if digits == 0 else f"{prefix}{number:0{digits}d}"


def parent_number(level: int, number: int) -> int:
    return (number - 1) // LEVELS[level][3] + 1


def node_count() -> int:
    return sum(level_counts())


def _hierarchy_sql(s: str) -> str:
    parts = [f"SELECT '{STRUCTURE}', '{node_id(0, 1)}', NULL::text, '{LEVELS[0][2]}'"]
    counts = level_counts()
    for level in range(1, len(LEVELS)):
        prefix, digits, name, fanout = LEVELS[level]
        pprefix, pdigits = LEVELS[level - 1][0], LEVELS[level - 1][1]
        parent = (f"'{pprefix}'" if pdigits == 0
                  else f"'{pprefix}' || lpad(((n - 1) / {fanout} + 1)::text, {pdigits}, '0')")
        parts.append(f"SELECT '{STRUCTURE}', '{prefix}' || lpad(n::text, {digits}, '0'), {parent}, "
                     f"'{name} ' || n FROM generate_series(1, {counts[level]}) n")
    return (f"INSERT INTO {s}.dim_hierarchy (structure_id, node_id, parent_node_id, node_name)\n"
            + "\nUNION ALL ".join(parts))


def _text_array(values) -> str:
    return "ARRAY[" + ", ".join(f"'{v}'" for v in values) + "]"


def _attributes_sql() -> str:
    """A temporary lookup (book, variant) -> attributes jsonb: building jsonb per fact costs more than
    inserting it, so each fact picks one of ATTRIBUTE_VARIANTS prepared combinations of its book."""
    books = level_counts()[-1]
    return f"""
CREATE TEMPORARY TABLE IF NOT EXISTS bench_attributes (book integer, variant integer, attributes jsonb,
                                                       PRIMARY KEY (book, variant));
TRUNCATE bench_attributes;
INSERT INTO bench_attributes
SELECT b, v, jsonb_strip_nulls(jsonb_build_object(
         'strategy', CASE WHEN h % 100 >= 3 THEN ({_text_array(STRATEGIES)})[1 + (h >> 8) % {len(STRATEGIES)}] END,
         'region', CASE WHEN (h >> 16) % 100 >= 2 THEN ({_text_array(REGIONS)})[1 + (h >> 24) % {len(REGIONS)}] END,
         'book', '{LEVELS[-1][0]}' || lpad(b::text, {LEVELS[-1][1]}, '0'),
         'legal_entity', ({_text_array(LEGAL_ENTITIES)})[1 + (h >> 32) % {len(LEGAL_ENTITIES)}]))
FROM generate_series(1, {books}) b, generate_series(0, {ATTRIBUTE_VARIANTS - 1}) v,
     LATERAL (SELECT hashint8extended(b * 64 + v, 7) & 9223372036854775807 AS h) x;
ANALYZE bench_attributes;
"""


def _facts_sql(s: str) -> str:
    """INSERT of facts %(first)s..%(last)s per scenario of one use case and date; %(salt)s varies the data."""
    books = level_counts()[-1]
    book_level, sub_level, desk_level = len(LEVELS) - 1, len(LEVELS) - 2, len(LEVELS) - 3
    per_sub = LEVELS[book_level][3]
    per_desk = per_sub * LEVELS[sub_level][3]

    def code(level, number_sql):
        prefix, digits = LEVELS[level][0], LEVELS[level][1]
        return f"'{prefix}' || lpad(({number_sql})::text, {digits}, '0')"

    return f"""
INSERT INTO {s}.fact_pnl_entries (use_case_id, load_id, pnl_date, scenario, category_code,
                                  amount, daily_amount, wtd_amount, ytd_amount, attributes)
SELECT %(use_case)s, %(load_id)s, %(pnl_date)s, g.scenario,
       CASE WHEN g.sel < 5 THEN 'UNMAPPED-' || lpad((g.sel * 4 + g.variant % 4)::text, 2, '0')
            WHEN g.sel < 20 THEN {code(sub_level, f"(g.book - 1) / {per_sub} + 1")}
            WHEN g.sel < 25 THEN {code(desk_level, f"(g.book - 1) / {per_desk} + 1")}
            ELSE {code(book_level, "g.book")} END,
       g.daily, g.daily, g.daily + g.wtd, g.daily + g.wtd + g.ytd, a.attributes
FROM (SELECT sc.scenario,
             1 + h1 % {books} AS book,
             (h1 >> 20) % 1000 AS sel,
             (h1 >> 32) % {ATTRIBUTE_VARIANTS} AS variant,
             (h2 % 2000001 - 1000000) * 0.01 AS daily,
             ((h2 >> 21) % 4000001 - 2000000) * 0.01 AS wtd,
             ((h2 >> 43) % 1000001 - 500000) * 0.1 AS ytd
      FROM (VALUES ('ACTUAL', 0), ('PRIOR', 1)) sc(scenario, k),
           LATERAL (SELECT hashint8extended(i, %(salt)s * 4 + sc.k) & 9223372036854775807 AS h1,
                           hashint8extended(i, %(salt)s * 4 + sc.k + 2) & 9223372036854775807 AS h2
                    FROM generate_series(%(first)s::bigint, %(last)s::bigint) i) h) g
JOIN bench_attributes a ON a.book = g.book AND a.variant = g.variant
""".replace(" % ", " %% ")  # modulo, not a placeholder


# Share of the rules per depth below the root (the root gets one rule when there are at least 2).
RULE_SHARES = (0.005, 0.05, 0.25)  # regions, desks, sub-desks; books take the rest


def _rule_nodes(count: int, rng: random.Random) -> list[tuple[int, int]]:
    """(level, number) of the nodes that carry a rule: every depth, deeper rules preferably below
    nodes that already carry one, so rules nest."""
    counts = level_counts()
    chosen: list[tuple[int, int]] = []
    if count <= 0:
        return chosen
    if count >= 2:
        chosen.append((0, 1))
    remaining = count - len(chosen)
    wanted = []
    for level, share in enumerate(RULE_SHARES, start=1):
        wanted.append(min(counts[level], max(1 if remaining >= 4 else 0, round(count * share))))
    wanted.append(max(0, remaining - sum(wanted)))
    ruled = {0: {1} if chosen else set()}
    for level, n in enumerate(wanted, start=1):
        n = min(n, counts[level])
        if n == 0:
            ruled[level] = set()
            continue
        above = sorted(ruled.get(level - 1, ()))
        fanout = LEVELS[level][3]
        # half of them among children of ruled parents (nested rules), the rest anywhere
        under = [c for p in above for c in range((p - 1) * fanout + 1, p * fanout + 1)]
        rng.shuffle(under)
        picked: list[int] = under[: n // 2]
        taken = set(picked)
        everything = list(range(1, counts[level] + 1))
        rng.shuffle(everything)
        for candidate in everything:
            if len(picked) >= n:
                break
            if candidate not in taken:
                picked.append(candidate)
                taken.add(candidate)
        ruled[level] = set(picked)
        chosen.extend((level, number) for number in sorted(picked))
    return chosen[:count]


def _descendant_codes(level: int, number: int, rng: random.Random, k: int) -> list[str]:
    """Some node ids at or below (level, number), for category_code conditions."""
    codes = [node_id(level, number)]
    lo = hi = number
    for deeper in range(level + 1, len(LEVELS)):
        fanout = LEVELS[deeper][3]
        lo, hi = (lo - 1) * fanout + 1, hi * fanout
        codes.extend(node_id(deeper, rng.randint(lo, hi)) for _ in range(2))
    rng.shuffle(codes)
    return sorted(set(codes[:k]))


def _conditions(level: int, number: int, rng: random.Random) -> list:
    """Condition makers, one per (field, operator) flavour; the first six cover every operator."""
    amount = lambda lo, hi: round(rng.uniform(lo, hi), 2)  # noqa: E731
    books = level_counts()[-1]
    book = lambda: node_id(len(LEVELS) - 1, rng.randint(1, books))  # noqa: E731
    return [
        ("strategy", lambda: {"operator": "not_in", "value": sorted(rng.sample(STRATEGIES, 2))}),
        ("daily_amount", lambda: {"operator": "greater_than", "value": amount(-9000, 3000)}),
        ("region", lambda: {"operator": "in", "value": sorted(rng.sample(REGIONS, 4))}),
        ("legal_entity", lambda: {"operator": "not_equals", "value": rng.choice(LEGAL_ENTITIES)}),
        ("ytd_amount", lambda: {"operator": "less_than", "value": amount(-20000, 60000)}),
        ("strategy", lambda: {"operator": "equals", "value": rng.choice(STRATEGIES)}),
        ("category_code", lambda: {"operator": "not_in", "value": _descendant_codes(level, number, rng, 3)}),
        ("wtd_amount", lambda: {"operator": "greater_than", "value": amount(-25000, 5000)}),
        ("strategy", lambda: {"operator": "in", "value": sorted(rng.sample(STRATEGIES, 3))}),
        ("region", lambda: {"operator": "not_in", "value": sorted(rng.sample(REGIONS, 2))}),
        ("daily_amount", lambda: {"operator": "less_than", "value": amount(-3000, 9000)}),
        ("book", lambda: {"operator": "not_in", "value": sorted({book() for _ in range(3)})}),
        ("region", lambda: {"operator": "equals", "value": rng.choice(REGIONS)}),
        ("strategy", lambda: {"operator": "not_equals", "value": rng.choice(STRATEGIES)}),
        ("category_code", lambda: {"operator": "in", "value": _descendant_codes(level, number, rng, 4)
                                   + [f"UNMAPPED-{rng.randint(0, UNMAPPED_CODES - 1):02d}"]}),
        ("daily_amount", lambda: {"operator": "not_equals", "value": amount(-100, 100)}),
        ("daily_amount", lambda: {"operator": "not_in", "value": [amount(-10, 10), amount(-10, 10)]}),
        ("ytd_amount", lambda: {"operator": "equals", "value": amount(-10, 10)}),
        ("wtd_amount", lambda: {"operator": "in", "value": [amount(-10, 10), 0]}),
        ("category_code", lambda: {"operator": "not_equals", "value": node_id(level, number)}),
        ("desk_head", lambda: {"operator": "equals", "value": "nobody"}),  # no fact has this attribute
        ("desk_head", lambda: {"operator": "not_in", "value": ["nobody", "anyone"]}),
    ]


def _in_list_conditions(level: int, number: int, rng: random.Random) -> list:
    """Long `in` / `not_in` lists, on attributes and on category_code."""
    books = level_counts()[-1]
    return [
        ("book", lambda: {"operator": "in", "value": sorted({node_id(len(LEVELS) - 1, rng.randint(1, books))
                                                               for _ in range(200)})}),
        ("category_code", lambda: {"operator": "not_in", "value": _descendant_codes(level, number, rng, 50)
                                   + [f"UNMAPPED-{i:02d}" for i in range(UNMAPPED_CODES)]}),
        ("strategy", lambda: {"operator": "not_in", "value": sorted(rng.sample(STRATEGIES, 3))}),
        ("legal_entity", lambda: {"operator": "in", "value": sorted(rng.sample(LEGAL_ENTITIES, 3))}),
    ]


def _some_nodes(count: int, rng: random.Random, levels: range) -> list[tuple[int, int]]:
    nodes = [(level, number) for level in levels for number in range(1, level_counts()[level] + 1)]
    return sorted(rng.sample(nodes, min(count, len(nodes))))


# The rule layouts the bench measures (issue 15): where the rules sit and what they test.
RULE_LAYOUTS = {
    "nested": "every level, nested, mixed conditions",
    "upper": "regions, desks and sub-desks only",
    "books": "books only",
    "measures": "nested, three measure conditions each",
    "in_lists": "nested, long in lists (200 books, 70 codes)",
    "absent": "nested, on attributes some facts lack",
}
_MEASURES = {"daily_amount", "wtd_amount", "ytd_amount"}
_SOMETIMES_ABSENT = {"strategy", "region", "desk_head"}  # 3%, 2% and every fact lack them


def make_rules(count: int, seed: int = 1, layout: str = "nested") -> list[dict]:
    """The bench's rules: [{node_id, predicate_json, logic_en}], the same for the same (count, seed,
    layout)."""
    if layout not in RULE_LAYOUTS:
        raise PnlError(f"unknown rule layout {layout!r}; the layouts are {', '.join(RULE_LAYOUTS)}")
    rng = random.Random(f"pnldb-bench-rules-{seed}" + ("" if layout == "nested" else f"-{layout}"))
    if layout == "upper":
        nodes = _some_nodes(count, rng, range(1, len(LEVELS) - 1))
    elif layout == "books":
        nodes = _some_nodes(count, rng, range(len(LEVELS) - 1, len(LEVELS)))
    else:
        nodes = _rule_nodes(count, rng)
    rules = []
    for index, (level, number) in enumerate(nodes):
        makers = _in_list_conditions(level, number, rng) if layout == "in_lists" else _conditions(level, number, rng)
        if layout == "measures":
            makers = [m for m in makers if m[0] in _MEASURES]
        elif layout == "absent":
            makers = [m for m in makers if m[0] in _SOMETIMES_ABSENT]
        fields = len({field for field, _ in makers})
        width = fields if layout == "measures" else min(fields, 1 + rng.randrange(3))
        picks = [index % len(makers)]  # the first rules go through every flavour in turn
        while len(picks) < width:
            pick = rng.randrange(len(makers))
            if makers[pick][0] not in {makers[p][0] for p in picks}:
                picks.append(pick)
        conditions = [{"field": makers[p][0], **makers[p][1]()} for p in picks]
        conjunction = "OR" if index % 5 in (1, 3) else "AND"
        rules.append({"node_id": node_id(level, number),
                      "predicate_json": {"conditions": conditions, "conjunction": conjunction},
                      "logic_en": f"bench rule {index + 1}: {len(conditions)} condition(s) joined by {conjunction}"})
    return rules


def _ident(*parts: str) -> pgsql.Composable:
    return pgsql.Identifier(*parts)


def prepare_schema(conn: psycopg.Connection, schema: str) -> None:
    """Drop a previous bench schema (only one this bench made: it carries the marker comment), then
    create and migrate a fresh one."""
    comment = conn.execute(
        "SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
    if comment is not None:
        if comment[0] != SCHEMA_MARKER:
            raise PnlError(f"schema {schema} exists and was not made by `pnldb bench`; refusing to touch it")
        drop_schema(conn, schema)
    conn.execute(pgsql.SQL("CREATE SCHEMA {}").format(_ident(schema)))
    conn.execute(pgsql.SQL("COMMENT ON SCHEMA {} IS {}").format(_ident(schema), pgsql.Literal(SCHEMA_MARKER)))
    with contextlib.redirect_stderr(open(os.devnull, "w")):
        schema_mod.create_roles(conn, schema)  # the bench's server is its own: it is the DBA too
        schema_mod.migrate(conn, schema)


def drop_schema(conn: psycopg.Connection, schema: str) -> None:
    # calculation runs refuse to be deleted except through their use case; DROP SCHEMA ... CASCADE
    # drops the tables without deleting rows, so nothing fires.
    conn.execute(pgsql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(_ident(schema)))


@contextlib.contextmanager
def bulk_mode(conn: psycopg.Connection, schema: str):
    """Bulk generation: the fact table's secondary indexes are dropped and built again afterwards (a
    sorted build beats a million scattered inserts). The triggers stay on: the facts form their loads
    the way any INSERT's do."""
    indexes = conn.execute(
        """SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i
           WHERE i.indrelid = %s::regclass AND NOT i.indisprimary
             AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)""",
        (f"{schema}.fact_pnl_entries",)).fetchall()
    for name, _ in indexes:
        conn.execute(f"DROP INDEX {name}")
    try:
        yield
    finally:
        for _, definition in indexes:
            conn.execute(definition)


def generate_structure(conn: psycopg.Connection, schema: str, rules: list[dict]) -> None:
    s = pgsql.Identifier(schema).as_string(conn)
    conn.execute(f"INSERT INTO {s}.hierarchy_structures (structure_id, name) VALUES ('{STRUCTURE}', 'Bench structure')")
    conn.execute(_hierarchy_sql(s))
    for uc, name in USE_CASE_NAMES.items():
        conn.execute(f"INSERT INTO {s}.use_cases (use_case_id, name, structure_id) VALUES (%s, %s, '{STRUCTURE}')",
                     (uc, name))
    insert_rules(conn, s, MAIN_USE_CASE, rules)
    conn.execute(
        f"""INSERT INTO {s}.metadata_rules (use_case_id, node_id, predicate_json, logic_en)
            SELECT %s, node_id, predicate_json, logic_en FROM {s}.metadata_rules
            WHERE use_case_id = %s ORDER BY rule_id""", (OTHER_USE_CASE, MAIN_USE_CASE))
    conn.execute(
        f"""INSERT INTO {s}.metadata_rules (use_case_id, node_id, predicate_json, logic_en)
            SELECT %s, node_id, predicate_json, logic_en FROM {s}.metadata_rules
            WHERE use_case_id = %s ORDER BY rule_id""", (SUPERSEDED_USE_CASE, MAIN_USE_CASE))
    for copy in (CURRENCY_USE_CASE, MIXED_CURRENCY_USE_CASE):
        conn.execute(
            f"""INSERT INTO {s}.metadata_rules (use_case_id, node_id, predicate_json, logic_en)
                SELECT %s, node_id, predicate_json, logic_en FROM {s}.metadata_rules
                WHERE use_case_id = %s ORDER BY rule_id""", (copy, MAIN_USE_CASE))
    conn.execute(_attributes_sql())


def insert_rules(conn: psycopg.Connection, s: str, use_case: uuid.UUID, rules: list[dict]) -> None:
    """The rules of a use case, in one statement; the rule trigger validates each as it is inserted."""
    conn.execute(
        f"""INSERT INTO {s}.metadata_rules (use_case_id, node_id, predicate_json, logic_en)
            SELECT %s, r.node_id, r.predicate_json, r.logic_en
            FROM jsonb_to_recordset(%s::jsonb) AS r(node_id text, predicate_json jsonb, logic_en text)""",
        (use_case, json.dumps(rules)))


def generate_slice(conn: psycopg.Connection, schema: str, use_case: uuid.UUID, pnl_date: dt.date, size: int,
                   salt: int, chunk: int = 1_000_000) -> None:
    """`size` facts per scenario for one use case and date, in chunks of `chunk` indexes, as one load."""
    s = pgsql.Identifier(schema).as_string(conn)
    sql = _facts_sql(s)
    with conn.transaction():
        load_id = conn.execute(f"SELECT {s}.open_fact_load(%s, 'pnldb bench')", (use_case,)).fetchone()[0]
        for first in range(1, size + 1, chunk):
            last = min(size, first + chunk - 1)
            conn.execute(sql, {"use_case": use_case, "load_id": load_id, "pnl_date": pnl_date, "first": first,
                               "last": last, "salt": salt})


def generate_superseded(conn: psycopg.Connection, schema: str, size: int, versions: int, salt: int) -> None:
    """SUPERSEDED_USE_CASE on COB_DATE: `versions` loads of the slice, each superseding the one before
    (replace_facts), then a last one with the measured slice's own data (the same salt), current."""
    s = pgsql.Identifier(schema).as_string(conn)
    for version in range(versions + 1):
        with conn.transaction():
            conn.execute(f"SELECT {s}.replace_facts(%s, %s, NULL, %s)",
                         (SUPERSEDED_USE_CASE, COB_DATE, f"bench version {version + 1}"))
            generate_slice(conn, schema, SUPERSEDED_USE_CASE, COB_DATE, size,
                           salt=salt if version == versions else salt + 100 + version)


def generate_currencies(conn: psycopg.Connection, schema: str) -> None:
    """CURRENCY_USE_CASE and MIXED_CURRENCY_USE_CASE on COB_DATE: the measured slice's facts (generate it
    first), the same amounts and attributes, each in one load; CURRENCY_USE_CASE's books (category codes)
    each in one of BENCH_CURRENCIES (by a hash of the code: PostgreSQL's hash partitioning keeps it
    stable), MIXED_CURRENCY_USE_CASE's facts in BENCH_CURRENCIES in turn, so every book has all five,
    five times the groups to round; and the COB's rates."""
    s = pgsql.Identifier(schema).as_string(conn)
    with conn.transaction():
        for uc, currency_index in ((CURRENCY_USE_CASE, "abs(hashtextextended(f.category_code, 0)) %% 5"),
                                   (MIXED_CURRENCY_USE_CASE, "f.id %% 5")):
            conn.execute(
                f"""INSERT INTO {s}.fact_pnl_entries (use_case_id, pnl_date, scenario, category_code, currency,
                                                     daily_amount, wtd_amount, ytd_amount, amount, attributes)
                    SELECT %(uc)s, f.pnl_date, f.scenario, f.category_code,
                           (%(currencies)s::text[])[1 + {currency_index}],
                           f.daily_amount, f.wtd_amount, f.ytd_amount, f.amount, f.attributes
                    FROM {s}.fact_pnl_entries f WHERE f.use_case_id = %(main)s AND f.pnl_date = %(cob)s
                    ORDER BY f.id""",
                {"uc": uc, "currencies": list(BENCH_CURRENCIES), "main": MAIN_USE_CASE, "cob": COB_DATE})
        conn.execute(
            f"""INSERT INTO {s}.fx_rates (pnl_date, currency, reporting_currency, rate)
                SELECT %s, r.key, 'USD', r.value::numeric FROM jsonb_each_text(%s::jsonb) r
                ON CONFLICT DO NOTHING""", (COB_DATE, json.dumps(BENCH_RATES)))


def other_slices(other_dates: int) -> list[tuple[uuid.UUID, dt.date]]:
    """The data a snapshot of (MAIN_USE_CASE, COB_DATE) must leave out: the same use case on the
    business days before, and the second use case on the same date."""
    dates, day = [], COB_DATE
    while len(dates) < other_dates:
        day -= dt.timedelta(days=1)
        if day.weekday() < 5:
            dates.append(day)
    return [(MAIN_USE_CASE, d) for d in dates] + [(OTHER_USE_CASE, COB_DATE)]


def export_csv(conn: psycopg.Connection, s: str, path: Path) -> int:
    """The measured slice as a CSV for `pnldb load facts`, streamed to disk."""
    dims = ("strategy", "region", "book", "legal_entity")
    select = ("SELECT pnl_date, category_code, daily_amount, wtd_amount, ytd_amount, scenario, "
              + ", ".join(f"attributes ->> '{d}' AS {d}" for d in dims)
              + f" FROM {s}.fact_pnl_entries WHERE use_case_id = '{MAIN_USE_CASE}' AND pnl_date = '{COB_DATE}'"
              + " ORDER BY id")
    with path.open("wb") as out, conn.cursor().copy(f"COPY ({select}) TO STDOUT WITH (FORMAT csv, HEADER)") as copy:
        for chunk in copy:
            out.write(chunk)
    return path.stat().st_size
