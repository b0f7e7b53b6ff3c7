-- Every close unit with its status (contract §7): each (use case, COB date) that has current facts,
-- runs or close events.
CREATE OR REPLACE VIEW {{ schema }}.v_cob_status AS
SELECT s.use_case_id,
       u.name AS use_case_name,
       s.pnl_date,
       s.status,
       s.official_run_id,
       s.pending_run_id,
       s.pending_run_id IS NOT NULL AND s.official_run_id IS NOT NULL AS restatement,
       s.version,
       s.signed_off_by,
       s.signed_off_at,
       s.submitted_by,
       s.submitted_at,
       s.locked_through
FROM {{ schema }}.cob_states() s
JOIN {{ schema }}.use_cases u ON u.use_case_id = s.use_case_id;

COMMENT ON VIEW {{ schema }}.v_cob_status IS
    'The close status of every unit (use case, COB date) with facts, runs or close events: OPEN, PENDING (a run submitted; facts frozen), SIGNED_OFF (an official run; facts frozen) or LOCKED (at or before locked_through; final). Derived from close_events.';
COMMENT ON COLUMN {{ schema }}.v_cob_status.use_case_id IS 'Use case of the unit.';
COMMENT ON COLUMN {{ schema }}.v_cob_status.use_case_name IS 'Name of the use case.';
COMMENT ON COLUMN {{ schema }}.v_cob_status.pnl_date IS 'COB date of the unit.';
COMMENT ON COLUMN {{ schema }}.v_cob_status.status IS 'OPEN, PENDING, SIGNED_OFF or LOCKED.';
COMMENT ON COLUMN {{ schema }}.v_cob_status.official_run_id IS 'The official run, NULL when none.';
COMMENT ON COLUMN {{ schema }}.v_cob_status.pending_run_id IS 'The submitted run awaiting approval, NULL when none.';
COMMENT ON COLUMN {{ schema }}.v_cob_status.restatement IS 'True while a run is pending beside an official one.';
COMMENT ON COLUMN {{ schema }}.v_cob_status.version IS 'Version of the official run (1, 2, ... per restatement).';
COMMENT ON COLUMN {{ schema }}.v_cob_status.signed_off_by IS 'Who approved or signed off the official run.';
COMMENT ON COLUMN {{ schema }}.v_cob_status.signed_off_at IS 'When the official run was approved or signed off.';
COMMENT ON COLUMN {{ schema }}.v_cob_status.submitted_by IS 'Who submitted the pending run.';
COMMENT ON COLUMN {{ schema }}.v_cob_status.submitted_at IS 'When the pending run was submitted.';
COMMENT ON COLUMN {{ schema }}.v_cob_status.locked_through IS 'The use case''s watermark: every date up to it is LOCKED.';
