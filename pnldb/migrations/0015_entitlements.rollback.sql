-- The grants go with it: everyone who can read a table again reads every use case's rows.
{% for table in ["use_cases", "metadata_rules", "rule_versions", "fact_pnl_entries", "fact_loads",
                 "fact_load_slices", "calculation_runs", "close_checks", "close_events", "use_case_runs",
                 "calculation_run_rules", "calculation_run_inputs", "calculation_run_fx", "fact_calculated_results"] %}
DROP POLICY entitled ON {{ schema }}.{{ table }};
ALTER TABLE {{ schema }}.{{ table }} DISABLE ROW LEVEL SECURITY;
{% endfor %}
DROP POLICY created ON {{ schema }}.use_cases;
DROP TABLE {{ schema }}.use_case_grants;
