"""pnldb: P&L snapshots inside PostgreSQL."""
from pnldb.api import (
    compare_runs,
    connect,
    create_snapshot,
    delete_use_case,
    explain_node,
    explain_plug,
    explain_variance,
    get_run,
    list_runs,
    run_rule_stats,
)
from pnldb.errors import PnlError

__all__ = ["PnlError", "compare_runs", "connect", "create_snapshot", "delete_use_case", "explain_node", "explain_plug",
           "explain_variance", "get_run", "list_runs", "run_rule_stats"]
