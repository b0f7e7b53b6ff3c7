-- Submits a run as the official number of its unit (contract §7): the run completed, its unit is OPEN or
-- SIGNED_OFF (then this is a restatement) with no pending run, every ERROR check passes and every failing
-- WARNING check is acknowledged with a reason. The unit becomes PENDING: its facts are frozen from now on.
-- Records SUBMITTED with the checks the submitter saw; returns get_cob_status of the unit.
CREATE OR REPLACE FUNCTION {{ schema }}.submit_run(run_id uuid, comment text DEFAULT NULL,
                                                   acknowledgements jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    unit   record;
    checks jsonb;
BEGIN
    -- ===== GUARDS =====
    unit := {{ schema }}.close_unit_of_run(run_id, 'submit_run');
    PERFORM {{ schema }}.close_require_new_submission(run_id, unit.pnl_date, unit.use_case_name, unit.pending_run_id,
                                                      unit.official_run_id, 'submit_run');
    checks := {{ schema }}.close_require_checks(run_id, acknowledgements, 'submit_run');

    -- ===== RECORD =====
    INSERT INTO {{ schema }}.close_events (use_case_id, use_case_name, pnl_date, run_id, action, comment, details)
    VALUES (unit.use_case_id, unit.use_case_name, unit.pnl_date, run_id, 'SUBMITTED', comment,
            jsonb_build_object('checks', checks -> 'checks', 'acknowledgements', coalesce(acknowledgements, '{}'),
                               'restatement_of', unit.official_run_id, 'policy', unit.policy));
    RETURN {{ schema }}.get_cob_status(unit.use_case_id, unit.pnl_date);
END;
$$;
