"""Loaders: hierarchies and facts from CSV, rules from JSON, and use-case creation.

Each loader validates its input in Python first and reports every problem with the line (and, for
facts, the column) it sits on, then writes in one transaction: all or nothing. Writes are set-based
(COPY). The connection must have the pnldb schema first on its search_path, as `pnldb.connect` and
the CLI set it up.

Money is `Decimal` (or its exact text) end to end, never a float.
"""
from pnldb.loaders.facts import load_facts, parse_amount
from pnldb.loaders.hierarchy import load_hierarchy
from pnldb.loaders.rules import load_rules
from pnldb.loaders.use_cases import create_use_case, resolve_use_case

__all__ = ["create_use_case", "load_facts", "load_hierarchy", "load_rules", "parse_amount", "resolve_use_case"]
