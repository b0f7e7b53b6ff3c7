-- The submitter takes back a pending run (contract §7): the unit returns to what it was before the
-- submission. Only the session user who submitted it may; an approver rejects instead. Records
-- WITHDRAWN; returns get_cob_status of the unit.
CREATE OR REPLACE FUNCTION {{ schema }}.withdraw_run(run_id uuid) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    unit record;
BEGIN
    unit := {{ schema }}.close_unit_of_run(run_id, 'withdraw_run');
    IF unit.pending_run_id IS DISTINCT FROM run_id THEN
        RAISE EXCEPTION 'withdraw_run: run % is not pending: COB % of use case "%" has %', run_id, unit.pnl_date,
                        unit.use_case_name, coalesce('pending run ' || unit.pending_run_id, 'no pending run')
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF session_user <> unit.submitted_by THEN
        RAISE EXCEPTION 'withdraw_run: run % was submitted by %; only the submitter withdraws it', run_id, unit.submitted_by
            USING ERRCODE = 'insufficient_privilege', HINT = 'an approver can reject it (reject_run)';
    END IF;
    INSERT INTO {{ schema }}.close_events (use_case_id, use_case_name, pnl_date, run_id, action)
    VALUES (unit.use_case_id, unit.use_case_name, unit.pnl_date, run_id, 'WITHDRAWN');
    RETURN {{ schema }}.get_cob_status(unit.use_case_id, unit.pnl_date);
END;
$$;
