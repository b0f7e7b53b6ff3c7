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
    list_loads,
    list_runs,
    purge_runs,
    purge_superseded_facts,
    run_rule_stats,
    verify_chain,
    verify_run,
    verify_use_case,
)
from pnldb.api.close import (
    approve_run,
    check_run,
    get_cob_status,
    lock_cob,
    official_run,
    reject_run,
    reopen_cob,
    set_check,
    set_signoff_policy,
    sign_off_run,
    submit_run,
    withdraw_run,
)
from pnldb.errors import PnlError

__all__ = ["PnlError", "compare_runs", "connect", "create_snapshot", "delete_use_case", "explain_node", "explain_plug",
           "explain_variance", "get_run", "list_loads", "list_runs", "purge_runs", "purge_superseded_facts",
           "run_rule_stats", "verify_chain", "verify_run", "verify_use_case"]
# the close (contract §7)
__all__ += [
    "approve_run", "check_run", "get_cob_status", "lock_cob", "official_run", "reject_run", "reopen_cob",
    "set_check", "set_signoff_policy", "sign_off_run", "submit_run", "withdraw_run",
]
