{%- set labels = {"daily": "daily", "wtd": "week-to-date", "ytd": "year-to-date"} -%}
-- Results of calculation runs for reporting tools: one row per run and node, the ADJUSTED values of the
-- ACTUAL, PRIOR and VARIANCE rows side by side for each measure (contract §3), plus, for ACTUAL, the
-- natural value and the plug, so a report can show what the rules took out. Legacy (pre-4.2) results
-- hang off use_case_runs and are not shown here. Values are in the run's reporting currency, the last
-- column (columns are only ever added at the end). Only the use cases the session's login is entitled to.
CREATE OR REPLACE VIEW {{ schema }}.v_run_results AS
SELECT x.calculation_run_id,
       r.use_case_id,
       r.pnl_date,
       x.node_id,
       x.parent_node_id,
       x.node_name,
       x.depth,
       x.is_override,
{%- for m in measures %}
       max(x.{{ m }}_adjusted) FILTER (WHERE x.scenario = 'ACTUAL') AS {{ m }}_actual,
       max(x.{{ m }}_adjusted) FILTER (WHERE x.scenario = 'PRIOR') AS {{ m }}_prior,
       max(x.{{ m }}_adjusted) FILTER (WHERE x.scenario = 'VARIANCE') AS {{ m }}_variance,
{%- endfor %}
{%- for m in measures %}
       max(x.{{ m }}_natural) FILTER (WHERE x.scenario = 'ACTUAL') AS {{ m }}_actual_natural,
       max(x.{{ m }}_plug) FILTER (WHERE x.scenario = 'ACTUAL') AS {{ m }}_actual_plug,
{%- endfor %}
       bool_and(x.is_reconciled) FILTER (WHERE x.scenario = 'ACTUAL') AS actual_is_reconciled,
       r.reporting_currency
FROM {{ schema }}.fact_calculated_results x
JOIN {{ schema }}.calculation_runs r ON r.id = x.calculation_run_id
WHERE ((SELECT {{ schema }}.entitled_to_all_use_cases()) OR r.use_case_id = ANY ((SELECT {{ schema }}.entitled_use_cases())::uuid[]))
GROUP BY x.calculation_run_id, r.use_case_id, r.pnl_date, r.reporting_currency, x.node_id, x.parent_node_id, x.node_name, x.depth, x.is_override;

COMMENT ON VIEW {{ schema }}.v_run_results IS
    'One row per calculation run and hierarchy node: adjusted ACTUAL, PRIOR and VARIANCE values side by side for each measure (daily, wtd, ytd), plus ACTUAL natural value and plug. Filter on calculation_run_id (see v_calculation_runs); order by depth for a top-down tree.';
COMMENT ON COLUMN {{ schema }}.v_run_results.calculation_run_id IS 'Run id (v_calculation_runs.id).';
COMMENT ON COLUMN {{ schema }}.v_run_results.use_case_id IS 'Use case of the run.';
COMMENT ON COLUMN {{ schema }}.v_run_results.pnl_date IS 'COB date of the run.';
COMMENT ON COLUMN {{ schema }}.v_run_results.node_id IS 'Hierarchy node, or __UNMAPPED__ (child of the root) for facts that map to no node.';
COMMENT ON COLUMN {{ schema }}.v_run_results.parent_node_id IS 'Parent node as the run saw the hierarchy; NULL for the root.';
COMMENT ON COLUMN {{ schema }}.v_run_results.node_name IS 'Display name of the node.';
COMMENT ON COLUMN {{ schema }}.v_run_results.depth IS 'Distance from the root (root = 0).';
COMMENT ON COLUMN {{ schema }}.v_run_results.is_override IS 'True when a business rule sits on this node.';
{%- for m in measures %}
COMMENT ON COLUMN {{ schema }}.v_run_results.{{ m }}_actual IS 'ACTUAL {{ labels[m] }} P&L after the rules (adjusted value).';
COMMENT ON COLUMN {{ schema }}.v_run_results.{{ m }}_prior IS 'PRIOR {{ labels[m] }} P&L after the rules (adjusted value).';
COMMENT ON COLUMN {{ schema }}.v_run_results.{{ m }}_variance IS 'VARIANCE of the {{ labels[m] }} adjusted value: ACTUAL - PRIOR.';
{%- endfor %}
{%- for m in measures %}
COMMENT ON COLUMN {{ schema }}.v_run_results.{{ m }}_actual_natural IS 'ACTUAL {{ labels[m] }} P&L before the rules (natural value).';
COMMENT ON COLUMN {{ schema }}.v_run_results.{{ m }}_actual_plug IS 'ACTUAL {{ labels[m] }} plug: natural - adjusted, what the rules excluded.';
{%- endfor %}
COMMENT ON COLUMN {{ schema }}.v_run_results.actual_is_reconciled IS 'True when the ACTUAL row has no plug in any measure (natural = adjusted).';
COMMENT ON COLUMN {{ schema }}.v_run_results.reporting_currency IS 'Currency of every value of the row: the run''s reporting currency (contract §8).';
