-- Privileges, re-stated on every install so that new objects start closed. Nobody but the owner gets
-- anything on the run tables beyond SELECT: runs are written by create_snapshot and removed by
-- delete_use_case, both SECURITY DEFINER with a pinned search_path.
REVOKE ALL ON SCHEMA {{ schema }} FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA {{ schema }} FROM PUBLIC;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA {{ schema }} FROM PUBLIC;
ALTER DEFAULT PRIVILEGES IN SCHEMA {{ schema }} REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;

GRANT USAGE ON SCHEMA {{ schema }} TO {{ roles.reader }};
GRANT SELECT ON {{ schema }}.v_calculation_runs, {{ schema }}.v_run_results, {{ schema }}.v_hierarchy_nodes,
                {{ schema }}.calculation_runs, {{ schema }}.fact_calculated_results, {{ schema }}.calculation_run_rules,
                {{ schema }}.calculation_run_inputs, {{ schema }}.use_cases, {{ schema }}.hierarchy_structures, {{ schema }}.dim_hierarchy,
                {{ schema }}.use_case_runs
    TO {{ roles.reader }};
GRANT EXECUTE ON FUNCTION {{ schema }}.get_run(uuid), {{ schema }}.list_runs(date, uuid, integer),
                          {{ schema }}.compare_runs(uuid, uuid, numeric), {{ schema }}.run_json({{ schema }}.calculation_runs),
                          {{ schema }}.predicate_sql(jsonb)
    TO {{ roles.reader }};

GRANT SELECT ON {{ schema }}.fact_pnl_entries, {{ schema }}.fact_loads, {{ schema }}.fact_load_slices,
                {{ schema }}.metadata_rules TO {{ roles.operator }};
GRANT EXECUTE ON FUNCTION {{ schema }}.create_snapshot(uuid, date, text, text) TO {{ roles.operator }};
-- The rules in force are operator data like the facts (readers see only the rules a run recorded).
GRANT EXECUTE ON FUNCTION {{ schema }}.list_rules(uuid) TO {{ roles.operator }};

GRANT INSERT, UPDATE, DELETE ON {{ schema }}.hierarchy_structures, {{ schema }}.dim_hierarchy,
                                {{ schema }}.metadata_rules
    TO {{ roles.admin }};
-- Facts are only ever added (contract §6); replacing a slice supersedes it through replace_facts.
GRANT INSERT ON {{ schema }}.fact_pnl_entries TO {{ roles.admin }};
GRANT INSERT, UPDATE ON {{ schema }}.use_cases TO {{ roles.admin }};
GRANT USAGE ON ALL SEQUENCES IN SCHEMA {{ schema }} TO {{ roles.admin }};
GRANT EXECUTE ON FUNCTION {{ schema }}.delete_use_case(uuid), {{ schema }}.use_case_footprint(uuid),
                          {{ schema }}.lock_use_case(uuid, boolean), {{ schema }}.lock_structure(text, boolean),
                          {{ schema }}.analyze_hierarchy(), {{ schema }}.open_fact_load(uuid, text),
                          {{ schema }}.replace_facts(uuid, date, text, text), {{ schema }}.analyze_facts(),
                          {{ schema }}.purge_superseded_facts(timestamptz) TO {{ roles.admin }};

-- Fact loads (contract §6): the loads of a use case and the duplicate check are read-only over facts
-- operators may read; the loaders call duplicate_fact_loads as their caller.
GRANT EXECUTE ON FUNCTION {{ schema }}.list_loads(uuid, date), {{ schema }}.duplicate_fact_loads(bigint)
    TO {{ roles.operator }};

-- Explaining and verifying a run read its facts, which readers may not: operators do. The reading's
-- predicate helpers run as the caller.
GRANT EXECUTE ON FUNCTION {{ schema }}.open_run_reading(uuid, text), {{ schema }}.run_facts(uuid, text, text, integer),
                          {{ schema }}.check_run_node(uuid, text, text, boolean, text),
                          {{ schema }}.explain_node(uuid, text, text, integer), {{ schema }}.explain_plug(uuid, text, text),
                          {{ schema }}.run_plug_rules(uuid),
                          {{ schema }}.explain_variance(uuid, text, text, text), {{ schema }}.run_rule_stats(uuid),
                          {{ schema }}.run_absent_fields(uuid), {{ schema }}.rule_attribute_fields(jsonb),
                          {{ schema }}.rules_included(bigint[], text[]),
                          {{ schema }}.rule_case_tree(bigint[], text[], integer, integer),
                          {{ schema }}.load_scenario_filter(bigint[], text[]), {{ schema }}.verify_run(uuid)
    TO {{ roles.operator }};

-- The close (contract §7). Everybody who reads runs reads the close; check_run is SECURITY DEFINER (it
-- reads the facts' loads), so approvers, who are readers, see the checks they approve. Operators submit
-- and withdraw; approvers (not admins) approve, reject, sign off, reopen, lock and set the controls.
-- The transitions' helpers run inside them as the owner: nobody else calls them.
GRANT SELECT ON {{ schema }}.v_official_runs, {{ schema }}.v_official_results, {{ schema }}.v_cob_status,
                {{ schema }}.v_close_events TO {{ roles.reader }};
GRANT EXECUTE ON FUNCTION {{ schema }}.cob_states(uuid, date[], timestamptz), {{ schema }}.frozen_units(uuid, date[]),
                          {{ schema }}.official_run(uuid, date, timestamptz), {{ schema }}.get_cob_status(uuid, date),
                          {{ schema }}.list_cob_status(uuid, date, date), {{ schema }}.close_history(uuid, date),
                          {{ schema }}.close_check_settings(uuid), {{ schema }}.check_run(uuid)
    TO {{ roles.reader }};
GRANT EXECUTE ON FUNCTION {{ schema }}.submit_run(uuid, text, jsonb), {{ schema }}.withdraw_run(uuid)
    TO {{ roles.operator }};
GRANT EXECUTE ON FUNCTION {{ schema }}.approve_run(uuid, text), {{ schema }}.reject_run(uuid, text),
                          {{ schema }}.sign_off_run(uuid, text, jsonb), {{ schema }}.reopen_cob(uuid, date, text),
                          {{ schema }}.lock_cob(uuid, date, text), {{ schema }}.set_check(uuid, text, text, jsonb),
                          {{ schema }}.set_signoff_policy(uuid, text)
    TO {{ roles.approver }};
-- Currency (contract §8): everyone who reads runs reads the rates and what each run used; admins load
-- the rates; operators ask which a date lacks.
GRANT SELECT ON {{ schema }}.fx_rates, {{ schema }}.calculation_run_fx TO {{ roles.reader }};
GRANT INSERT, UPDATE, DELETE ON {{ schema }}.fx_rates TO {{ roles.admin }};
GRANT EXECUTE ON FUNCTION {{ schema }}.missing_fx_rates(uuid, date) TO {{ roles.operator }};
{%- if sharded %}
-- A coordinator's facts (issue 16) are read through these, by whoever may read the facts.
GRANT EXECUTE ON FUNCTION {{ schema }}.shard_fact_rows(uuid, date, bigint[]),
                          {{ schema }}.shard_fact_currencies(uuid, date, bigint[], text[]),
                          {{ schema }}.shard_fact_groups(uuid, date, bigint[], bigint[], text[], text[], bigint[], text,
                                                         bigint[], jsonb[], text)
    TO {{ roles.operator }};
GRANT EXECUTE ON FUNCTION {{ schema }}.purge_shards() TO {{ roles.admin }};
{%- endif %}
-- Limits: everyone reads them; admins tune a value, and nothing else of a row.
GRANT SELECT ON {{ schema }}.limits TO {{ roles.reader }};
GRANT UPDATE (value) ON {{ schema }}.limits TO {{ roles.admin }};
GRANT EXECUTE ON FUNCTION {{ schema }}.limit_value(text) TO {{ roles.reader }};
-- Runs (issue 19): purging trial and FAILED runs is housekeeping that destroys history, as deleting a
-- use case or purging superseded facts is: admins only. runs_being_purged stays the owner's alone.
GRANT EXECUTE ON FUNCTION {{ schema }}.purge_runs(uuid, date) TO {{ roles.admin }};
-- Integrity (issue 18): whoever verifies a run checks its digest and its link of the chain, and a use
-- case's whole chain. use_cases_being_deleted stays the owner's alone.
GRANT EXECUTE ON FUNCTION {{ schema }}.run_digest({{ schema }}.calculation_runs), {{ schema }}.run_chain(uuid),
                          {{ schema }}.chain_problems(uuid, boolean), {{ schema }}.verify_chain(uuid)
    TO {{ roles.operator }};
-- Rule history (issue 18): whoever reads the rules in force reads what they said before; nobody writes it
-- but the rules' trigger.
GRANT SELECT ON {{ schema }}.rule_versions TO {{ roles.operator }};
-- Entitlements (issue 18): everyone asks what they are entitled to (the tables' policies and the views
-- do, as the caller) and reads its own grants; admins grant and revoke what they hold; the guards and the
-- creator's grant run inside them, as the owner.
GRANT SELECT ON {{ schema }}.use_case_grants TO {{ roles.reader }};
GRANT EXECUTE ON FUNCTION {{ schema }}.entitled_to_all_use_cases(), {{ schema }}.entitled_use_cases(),
                          {{ schema }}.list_use_case_grants(uuid)
    TO {{ roles.reader }};
GRANT EXECUTE ON FUNCTION {{ schema }}.grant_use_case(uuid, name), {{ schema }}.revoke_use_case(uuid, name)
    TO {{ roles.admin }};
