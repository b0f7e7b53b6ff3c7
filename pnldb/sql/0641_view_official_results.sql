-- The results a reporting tool should show (contract §7): v_run_results of the official runs only, so
-- it never shows a trial, failed or superseded run. v.* lets columns added to v_run_results flow here.
CREATE OR REPLACE VIEW {{ schema }}.v_official_results AS
SELECT v.*,
       o.version AS official_version,
       o.signed_off_by,
       o.signed_off_at
FROM {{ schema }}.v_run_results v
JOIN {{ schema }}.v_official_runs o ON o.run_id = v.calculation_run_id;

COMMENT ON VIEW {{ schema }}.v_official_results IS
    'v_run_results of official runs only (see v_official_runs): one row per node of each close unit''s official run. Filter on use_case_id and pnl_date; a date with no official run has no rows.';
COMMENT ON COLUMN {{ schema }}.v_official_results.calculation_run_id IS 'The official run of the unit.';
COMMENT ON COLUMN {{ schema }}.v_official_results.use_case_id IS 'Use case of the unit.';
COMMENT ON COLUMN {{ schema }}.v_official_results.pnl_date IS 'COB date of the unit.';
COMMENT ON COLUMN {{ schema }}.v_official_results.official_version IS 'Version of the official run: 1, then 2, 3, ... per restatement.';
COMMENT ON COLUMN {{ schema }}.v_official_results.signed_off_by IS 'Database login that approved or signed off the run.';
COMMENT ON COLUMN {{ schema }}.v_official_results.signed_off_at IS 'When it was approved or signed off.';
