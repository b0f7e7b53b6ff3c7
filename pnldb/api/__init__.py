"""The Python API: the one way Python reaches the database, for the CLI, notebooks and schedulers alike.

Each SQL API function has a thin Python function of the same name that returns its JSON as Python
objects (dates as datetime.date, money as Decimal); its `*_text` variant returns the JSON text exactly
as the SQL wrote it (what `--json` prints). Beside them: the use-case services, the file loads
(pnldb.loaders, with the use case given by id or name) and setting a database up (create_roles, migrate,
render_sql, a throw-away EmbeddedPostgres)."""
from pnldb.api.close import (
    approve_run,
    approve_run_text,
    check_run,
    check_run_text,
    close_history,
    close_history_text,
    close_marks,
    get_cob_status,
    get_cob_status_text,
    list_cob_status,
    list_cob_status_text,
    lock_cob,
    lock_cob_text,
    official_run,
    reject_run,
    reject_run_text,
    reopen_cob,
    reopen_cob_text,
    set_check,
    set_check_text,
    set_signoff_policy,
    set_signoff_policy_text,
    sign_off_run,
    sign_off_run_text,
    submit_run,
    submit_run_text,
    withdraw_run,
    withdraw_run_text,
)
from pnldb.api.connection import DEFAULT_SCHEMA, connect, open_connection
from pnldb.api.database import EmbeddedPostgres, create_roles, installation_roles, migrate, render_sql, sql_files
from pnldb.api.explain import explain_node, explain_plug, explain_variance, run_absent_fields, run_rule_stats
from pnldb.api.loads import (
    list_loads,
    list_loads_text,
    load_facts,
    load_fx,
    load_hierarchy,
    load_rules,
    purge_superseded_facts,
    purge_superseded_facts_text,
)
from pnldb.api.reports import fetch_report
from pnldb.api.rules import delete_rules, delete_rules_text, list_rules, list_rules_text
from pnldb.api.runs import (
    compare_runs,
    create_snapshot,
    create_snapshot_text,
    delete_use_case,
    delete_use_case_text,
    get_run,
    get_run_text,
    list_runs,
    list_runs_text,
    purge_runs,
    purge_runs_text,
    run_root,
    verify_chain,
    verify_chain_text,
    verify_run,
    verify_run_text,
    verify_use_case,
)
from pnldb.api.use_cases import (
    create_use_case,
    find_use_case,
    grant_use_case,
    list_use_case_grants,
    list_use_cases,
    resolve_use_case,
    revoke_use_case,
    use_case_footprint,
    use_case_footprint_text,
    use_case_names,
)
from pnldb.cluster import cluster_status, init_cluster, purge_shards

__all__ = [
    "DEFAULT_SCHEMA", "EmbeddedPostgres", "compare_runs", "connect", "create_roles", "create_snapshot",
    "create_snapshot_text", "create_use_case", "delete_rules", "delete_rules_text", "delete_use_case",
    "delete_use_case_text", "explain_node", "explain_plug", "explain_variance", "fetch_report", "find_use_case",
    "get_run", "get_run_text", "installation_roles", "list_loads",
    "list_loads_text", "list_rules", "list_rules_text", "list_runs", "list_runs_text", "list_use_cases", "load_facts",
    "load_fx", "load_hierarchy", "load_rules", "migrate", "open_connection", "purge_runs",
    "purge_runs_text", "purge_superseded_facts", "purge_superseded_facts_text", "render_sql", "resolve_use_case",
    "run_absent_fields", "run_root", "run_rule_stats", "sql_files", "use_case_footprint", "use_case_footprint_text",
    "use_case_names", "verify_chain", "verify_chain_text", "verify_run", "verify_run_text", "verify_use_case",
]
# the close (contract §7)
__all__ += [
    "approve_run", "approve_run_text", "check_run", "check_run_text", "close_history", "close_history_text",
    "close_marks", "get_cob_status", "get_cob_status_text", "list_cob_status", "list_cob_status_text",
    "lock_cob", "lock_cob_text", "official_run", "reject_run", "reject_run_text", "reopen_cob",
    "reopen_cob_text", "set_check", "set_check_text", "set_signoff_policy", "set_signoff_policy_text",
    "sign_off_run", "sign_off_run_text", "submit_run", "submit_run_text", "withdraw_run", "withdraw_run_text",
]
# entitlements (issue 18)
__all__ += ["grant_use_case", "list_use_case_grants", "revoke_use_case"]
# past one machine (issue 16)
__all__ += ["cluster_status", "init_cluster", "purge_shards"]
