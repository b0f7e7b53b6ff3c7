"""Loaders: hierarchies, facts and FX rates from CSV, rules from JSON.

Each loader validates its input in Python first and reports every problem with the line (and, for
facts, the column) it sits on, then writes in one transaction: all or nothing. Writes are set-based
(COPY). The connection must have the pnldb schema first on its search_path, as `pnldb.connect` and
the CLI set it up. Callers reach them through pnldb.api, which also resolves a use case given by id
or name.

Money is `Decimal` (or its exact text) end to end, never a float.
"""
from pnldb.loaders.facts import load_facts, parse_amount
from pnldb.loaders.fx import load_fx
from pnldb.loaders.hierarchy import load_hierarchy
from pnldb.loaders.rules import load_rules

__all__ = ["load_facts", "load_fx", "load_hierarchy", "load_rules", "parse_amount"]
