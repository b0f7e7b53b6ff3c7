-- Rejects a unit's pending run, with a reason (contract §7): the unit returns to what it was before the
-- submission (OPEN, or SIGNED_OFF with its official run in a restatement). Records REJECTED; returns
-- get_cob_status of the unit.
CREATE OR REPLACE FUNCTION {{ schema }}.reject_run(run_id uuid, reason text) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    unit record;
BEGIN
    IF reason IS NULL OR btrim(reason) = '' THEN
        RAISE EXCEPTION 'reject_run needs a reason' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    unit := {{ schema }}.close_unit_of_run(run_id, 'reject_run');
    IF unit.pending_run_id IS DISTINCT FROM run_id THEN
        RAISE EXCEPTION 'reject_run: run % is not pending: COB % of use case "%" has %', run_id, unit.pnl_date,
                        unit.use_case_name, coalesce('pending run ' || unit.pending_run_id, 'no pending run')
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    INSERT INTO {{ schema }}.close_events (use_case_id, use_case_name, pnl_date, run_id, action, comment, details)
    VALUES (unit.use_case_id, unit.use_case_name, unit.pnl_date, run_id, 'REJECTED', reason,
            jsonb_build_object('submitted_by', unit.submitted_by));
    RETURN {{ schema }}.get_cob_status(unit.use_case_id, unit.pnl_date);
END;
$$;
