-- What submit_run and sign_off_run both refuse (contract §7): a unit that already has a pending run, and
-- a run that is already its unit's official run. Called after close_unit_of_run, with what it read.
CREATE OR REPLACE FUNCTION {{ schema }}.close_require_new_submission(
    run_id uuid, pnl_date date, use_case_name text, pending_run_id uuid, official_run_id uuid, action text
) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF pending_run_id IS NOT NULL THEN
        RAISE EXCEPTION '%: COB % of use case "%" already has a pending run %', action, pnl_date,
                        use_case_name, pending_run_id
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'approve, reject or withdraw it first';
    END IF;
    IF official_run_id = run_id THEN
        RAISE EXCEPTION '%: run % is already the official run of COB % of use case "%"', action, run_id,
                        pnl_date, use_case_name USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
END;
$$;
