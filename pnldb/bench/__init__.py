"""`pnldb bench`: snapshots at growing sizes against the bare-aggregate floor.

Everything happens in a scratch schema (``pnldb_bench``) that the bench creates, migrates and drops, so
it never touches real data: on an embedded PostgreSQL by default, or on --dsn.

* generation: the hierarchy, facts and rules, generated in the database, deterministic;
* measurement: the floor, create_snapshot, the write floor, the Python reference and `pnldb load facts`,
  timed;
* checks: the root ties out to the facts, the engine equals the reference; a wrong answer fails the bench;
* summary: medians, ratios, the targets and the table;
* orchestration: the server, one size after another, the report dict (`run_bench`).
"""
from __future__ import annotations

from pnldb.bench.orchestration import Options, Progress, run_bench
from pnldb.bench.summary import format_report, summarize

__all__ = ["Options", "Progress", "format_report", "run_bench", "summarize"]
