-- Approves a unit's pending run (contract §7): the run becomes the official number of its unit, in a
-- restatement replacing the previous official run in the same event (never two, never none). The
-- checks are evaluated again and must still pass, with the failing WARNING checks acknowledged at
-- submission; under FOUR_EYES the approver (session_user) must be neither the submitter nor the run's
-- executor. Records APPROVED; returns get_cob_status of the unit, now SIGNED_OFF.
CREATE OR REPLACE FUNCTION {{ schema }}.approve_run(run_id uuid, comment text DEFAULT NULL) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    unit      record;
    submitted jsonb;
    checks    jsonb;
BEGIN
    -- ===== GUARDS =====
    unit := {{ schema }}.close_unit_of_run(run_id, 'approve_run');
    IF unit.pending_run_id IS DISTINCT FROM run_id THEN
        RAISE EXCEPTION 'approve_run: run % is not pending: COB % of use case "%" has %', run_id, unit.pnl_date,
                        unit.use_case_name, coalesce('pending run ' || unit.pending_run_id, 'no pending run')
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'a run is submitted (submit_run) before it is approved';
    END IF;
    IF unit.policy = 'FOUR_EYES' THEN
        IF session_user = unit.submitted_by THEN
            RAISE EXCEPTION 'approve_run: % submitted run % and cannot approve it (four-eyes)', session_user, run_id
                USING ERRCODE = 'insufficient_privilege', HINT = 'another approver approves it';
        END IF;
        IF unit.executed_by IS NULL OR session_user = unit.executed_by THEN
            RAISE EXCEPTION 'approve_run: run % was executed by %, so % cannot approve it (four-eyes)', run_id,
                            coalesce(unit.executed_by, 'an unrecorded user'), session_user
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'another approver approves it; a run taken before executed_by was recorded needs a new snapshot';
        END IF;
    END IF;
    SELECT e.details -> 'acknowledgements' INTO submitted FROM {{ schema }}.close_events e
    WHERE e.use_case_id = unit.use_case_id AND e.pnl_date = unit.pnl_date AND e.run_id = approve_run.run_id
      AND e.action = 'SUBMITTED'
    ORDER BY e.event_id DESC LIMIT 1;
    checks := {{ schema }}.close_require_checks(run_id, submitted, 'approve_run');

    -- ===== RECORD =====
    INSERT INTO {{ schema }}.close_events (use_case_id, use_case_name, pnl_date, run_id, action, comment, details)
    VALUES (unit.use_case_id, unit.use_case_name, unit.pnl_date, run_id, 'APPROVED', comment,
            jsonb_build_object('checks', checks -> 'checks', 'supersedes', unit.official_run_id, 'policy', unit.policy,
                               'submitted_by', unit.submitted_by, 'executed_by', unit.executed_by));
    RETURN {{ schema }}.get_cob_status(unit.use_case_id, unit.pnl_date);
END;
$$;
