-- The official number of every close unit (contract §7): one row per (use case, COB date) that has an
-- official run now, SIGNED_OFF or LOCKED. Derived from close_events (cob_states), never stored.
CREATE OR REPLACE VIEW {{ schema }}.v_official_runs AS
SELECT s.use_case_id,
       u.name AS use_case_name,
       s.pnl_date,
       s.official_run_id AS run_id,
       r.run_name,
       s.status,
       s.signed_off_by,
       s.signed_off_at,
       s.version,
       r.executed_by,
       r.executed_at
FROM {{ schema }}.cob_states() s
JOIN {{ schema }}.use_cases u ON u.use_case_id = s.use_case_id
JOIN {{ schema }}.calculation_runs r ON r.id = s.official_run_id;

COMMENT ON VIEW {{ schema }}.v_official_runs IS
    'The official run of each close unit (use case, COB date): the run signed off last, unless the date was reopened since. One row per unit at most; a restatement replaces the row and raises version.';
COMMENT ON COLUMN {{ schema }}.v_official_runs.use_case_id IS 'Use case of the unit.';
COMMENT ON COLUMN {{ schema }}.v_official_runs.use_case_name IS 'Name of the use case.';
COMMENT ON COLUMN {{ schema }}.v_official_runs.pnl_date IS 'COB date of the unit.';
COMMENT ON COLUMN {{ schema }}.v_official_runs.run_id IS 'The official run (v_calculation_runs.id).';
COMMENT ON COLUMN {{ schema }}.v_official_runs.run_name IS 'Name of the official run.';
COMMENT ON COLUMN {{ schema }}.v_official_runs.status IS 'SIGNED_OFF, or LOCKED when the date is at or before the use case''s locked_through.';
COMMENT ON COLUMN {{ schema }}.v_official_runs.signed_off_by IS 'Database login that approved (or, under SIMPLE, signed off) the run.';
COMMENT ON COLUMN {{ schema }}.v_official_runs.signed_off_at IS 'When it was approved or signed off.';
COMMENT ON COLUMN {{ schema }}.v_official_runs.version IS '1 for the first sign-off of the unit, 2, 3, ... for each restatement or sign-off after a reopen.';
COMMENT ON COLUMN {{ schema }}.v_official_runs.executed_by IS 'Database login that took the snapshot.';
COMMENT ON COLUMN {{ schema }}.v_official_runs.executed_at IS 'When the snapshot was taken.';
