-- Run headers for reporting tools: every calculation_runs column plus the use case's name and the
-- number of result rows the run holds; columns added by later migrations (who executed it, its reporting
-- currency) come last, as columns are only ever added at the end. Only the use cases the session's login
-- is entitled to (the view is the owner's, so the tables' policies do not apply through it).
CREATE OR REPLACE VIEW {{ schema }}.v_calculation_runs AS
SELECT r.id,
       r.pnl_date,
       r.use_case_id,
       u.name AS use_case_name,
       r.run_name,
       r.executed_at,
       r.status,
       r.triggered_by,
       r.calculation_duration_ms,
       r.error_message,
       r.rules_applied,
       (SELECT count(*) FROM {{ schema }}.fact_calculated_results x WHERE x.calculation_run_id = r.id) AS results_count,
       r.executed_by,
       r.reporting_currency,
       r.txid,
       r.chain_seq,
       r.previous_run_id,
       r.previous_digest,
       r.digest
FROM {{ schema }}.calculation_runs r
JOIN {{ schema }}.use_cases u ON u.use_case_id = r.use_case_id
WHERE ((SELECT {{ schema }}.entitled_to_all_use_cases()) OR r.use_case_id = ANY ((SELECT {{ schema }}.entitled_use_cases())::uuid[]));

COMMENT ON VIEW {{ schema }}.v_calculation_runs IS
    'One row per calculation run (snapshot): the run header, the use case name and the number of result rows.';
COMMENT ON COLUMN {{ schema }}.v_calculation_runs.id IS 'Run id (calculation_runs.id); the key for fact_calculated_results.calculation_run_id and v_run_results.';
COMMENT ON COLUMN {{ schema }}.v_calculation_runs.pnl_date IS 'COB (close-of-business) date the run snapshots.';
COMMENT ON COLUMN {{ schema }}.v_calculation_runs.use_case_id IS 'Use case the run belongs to.';
COMMENT ON COLUMN {{ schema }}.v_calculation_runs.use_case_name IS 'Name of the use case (use_cases.name).';
COMMENT ON COLUMN {{ schema }}.v_calculation_runs.run_name IS 'Run name, unique per use case and date among the runs that did not fail ("Run N" when none was given).';
COMMENT ON COLUMN {{ schema }}.v_calculation_runs.executed_at IS 'When the run started.';
COMMENT ON COLUMN {{ schema }}.v_calculation_runs.status IS 'COMPLETED, FAILED (see error_message; no results) or IN_PROGRESS (only ever seen by the transaction running it).';
COMMENT ON COLUMN {{ schema }}.v_calculation_runs.triggered_by IS 'Who ran it: the name given to create_snapshot, else the database user.';
COMMENT ON COLUMN {{ schema }}.v_calculation_runs.calculation_duration_ms IS 'Wall-clock duration of the snapshot in milliseconds.';
COMMENT ON COLUMN {{ schema }}.v_calculation_runs.error_message IS 'Why the run FAILED, with its SQLSTATE; NULL unless status is FAILED.';
COMMENT ON COLUMN {{ schema }}.v_calculation_runs.rules_applied IS 'Number of business rules the run applied (recorded in calculation_run_rules).';
COMMENT ON COLUMN {{ schema }}.v_calculation_runs.results_count IS 'Number of fact_calculated_results rows of the run: one per node and scenario (ACTUAL, PRIOR, VARIANCE).';
COMMENT ON COLUMN {{ schema }}.v_calculation_runs.executed_by IS 'Database login (session user) that took the snapshot; NULL for runs taken before migration 0006_close. Four-eyes keeps it from approving the run.';
COMMENT ON COLUMN {{ schema }}.v_calculation_runs.txid IS 'The transaction that took the run: only it added the run''s rows, while the run was IN_PROGRESS.';
COMMENT ON COLUMN {{ schema }}.v_calculation_runs.chain_seq IS 'Place of a COMPLETED run in its use case''s chain of digests (1 for the first); NULL for FAILED runs and runs taken before migration 0014_integrity.';
COMMENT ON COLUMN {{ schema }}.v_calculation_runs.previous_run_id IS 'The run before it in the chain (NULL for the first; it may since have been purged: close_events RUNS_PURGED).';
COMMENT ON COLUMN {{ schema }}.v_calculation_runs.previous_digest IS 'The digest of the run before it in the chain, as it was when this run completed.';
COMMENT ON COLUMN {{ schema }}.v_calculation_runs.digest IS 'sha256 of the run''s header, results, recorded rules, inputs and rates (run_digest); verify_run checks it.';
COMMENT ON COLUMN {{ schema }}.v_calculation_runs.reporting_currency IS 'Currency the run''s values are in (the use case''s reporting currency when it ran; contract §8).';
