"""Loads from files: the loaders of pnldb.loaders, with the use case given by id or name."""
from __future__ import annotations

import psycopg

from pnldb import loaders
from pnldb.api.use_cases import resolve_use_case
from pnldb.loaders import load_hierarchy
from pnldb.loaders.reading import Progress

__all__ = ["load_facts", "load_hierarchy", "load_rules"]


def load_facts(conn: psycopg.Connection, source, use_case, replace: bool = False, append: bool = False,
               progress: Progress | None = None) -> dict:
    """Load P&L facts from CSV into use case `use_case` (id or name): all rows or none. Into slices that
    already have current facts only with `replace` (supersede them) or `append` (one more load beside
    them). See pnldb.loaders.load_facts for the columns, `replace`, `append` and `progress`."""
    return loaders.load_facts(conn, source, resolve_use_case(conn, use_case), replace=replace, append=append,
                              progress=progress)


def load_rules(conn: psycopg.Connection, source, use_case, replace: bool = False) -> dict:
    """Upsert rules from a JSON list of {node_id, predicate_json, logic_en} into use case `use_case`
    (id or name): all or none; with `replace` the file becomes its whole rule set. See
    pnldb.loaders.load_rules."""
    return loaders.load_rules(conn, source, resolve_use_case(conn, use_case), replace=replace)
