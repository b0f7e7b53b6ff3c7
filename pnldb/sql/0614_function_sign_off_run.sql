-- Submit and approve at once, only under the SIMPLE policy (contract §7): the guards and checks of
-- submit_run, then the run becomes its unit's official run (replacing the previous one in a
-- restatement). Records SIGNED_OFF; returns get_cob_status of the unit.
CREATE OR REPLACE FUNCTION {{ schema }}.sign_off_run(run_id uuid, comment text DEFAULT NULL,
                                                     acknowledgements jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    unit   record;
    checks jsonb;
BEGIN
    -- ===== GUARDS =====
    unit := {{ schema }}.close_unit_of_run(run_id, 'sign_off_run');
    IF unit.policy <> 'SIMPLE' THEN
        RAISE EXCEPTION 'sign_off_run: use case "%" signs off under %, not SIMPLE', unit.use_case_name, unit.policy
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'submit the run (submit_run) for another approver to approve, or set_signoff_policy(..., ''SIMPLE'')';
    END IF;
    PERFORM {{ schema }}.close_require_new_submission(run_id, unit.pnl_date, unit.use_case_name, unit.pending_run_id,
                                                      unit.official_run_id, 'sign_off_run');
    checks := {{ schema }}.close_require_checks(run_id, acknowledgements, 'sign_off_run');

    -- ===== RECORD =====
    INSERT INTO {{ schema }}.close_events (use_case_id, use_case_name, pnl_date, run_id, action, comment, details)
    VALUES (unit.use_case_id, unit.use_case_name, unit.pnl_date, run_id, 'SIGNED_OFF', comment,
            jsonb_build_object('checks', checks -> 'checks', 'acknowledgements', coalesce(acknowledgements, '{}'),
                               'supersedes', unit.official_run_id, 'policy', unit.policy,
                               'executed_by', unit.executed_by));
    RETURN {{ schema }}.get_cob_status(unit.use_case_id, unit.pnl_date);
END;
$$;
