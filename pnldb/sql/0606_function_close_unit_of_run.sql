-- The start of every transition on a run (contract §7): the run, its use case and its unit's status,
-- read after taking the use case's lock exclusively, so that the transition, fact loads, rule writes and
-- other transitions of the use case take turns (a load racing a submit ends one way or the other).
CREATE OR REPLACE FUNCTION {{ schema }}.close_unit_of_run(
    run_id uuid, action text,
    OUT use_case_id uuid, OUT pnl_date date, OUT run_status text, OUT run_name text, OUT executed_by text,
    OUT use_case_name text, OUT policy text, OUT status text, OUT official_run_id uuid, OUT pending_run_id uuid,
    OUT submitted_by text, OUT locked_through date
)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF close_unit_of_run.run_id IS NULL THEN
        RAISE EXCEPTION '% needs a run_id', action USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT r.use_case_id INTO use_case_id FROM {{ schema }}.calculation_runs r WHERE r.id = close_unit_of_run.run_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION '%: unknown run %', action, close_unit_of_run.run_id
            USING ERRCODE = 'no_data_found', HINT = 'run_id must be a {{ schema }}.calculation_runs.id';
    END IF;
    PERFORM {{ schema }}.lock_use_case(use_case_id, true);
    SELECT r.pnl_date, r.status, r.run_name, r.executed_by, u.name, u.signoff_policy
    INTO pnl_date, run_status, run_name, executed_by, use_case_name, policy
    FROM {{ schema }}.calculation_runs r JOIN {{ schema }}.use_cases u ON u.use_case_id = r.use_case_id
    WHERE r.id = close_unit_of_run.run_id;
    IF NOT FOUND THEN  -- deleted with its use case while we waited for the lock
        RAISE EXCEPTION '%: unknown run %', action, close_unit_of_run.run_id USING ERRCODE = 'no_data_found';
    END IF;
    SELECT s.status, s.official_run_id, s.pending_run_id, s.submitted_by, s.locked_through
    INTO status, official_run_id, pending_run_id, submitted_by, locked_through
    FROM {{ schema }}.cob_states(use_case_id, ARRAY[pnl_date]) s;
    IF status = 'LOCKED' THEN
        RAISE EXCEPTION '%: COB % of use case "%" is locked (locked through %); a locked date is final',
                        action, pnl_date, use_case_name, locked_through
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
END;
$$;
