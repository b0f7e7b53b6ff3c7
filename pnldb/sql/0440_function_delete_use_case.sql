-- Deletes a use case with everything that hangs off it and returns what was removed (contract §3):
--   {"deleted_use_case", "rules_purged", "legacy_runs_purged", "calculation_runs_purged", "facts_purged",
--    "total_items_deleted", "results_purged", "message"}
-- total_items_deleted = rules + legacy runs + calculation runs + facts. results_purged counts the result
-- rows of both kinds of run: those of the calculation runs and the legacy rows hanging off the use case's
-- use_case_runs by run_id (see use_case_footprint). An unknown id is an error and deletes nothing.
--
-- Counts and delete are one transaction, and nothing can be added between them: the use case's lock is
-- taken exclusively first (lock_use_case), which waits for running snapshots, rule writers and fact loads
-- to finish and keeps new ones out until commit; the use case row is then locked FOR UPDATE, which waits
-- for any other insert that references it (the foreign key's FOR KEY SHARE); the run headers are locked
-- too, so no result row can be added under an existing run.
-- The counts are then taken (a fresh statement, so they include whatever committed while we waited) and
-- the use case row is deleted: ON DELETE CASCADE removes the rest, the one path the run immutability
-- triggers allow (marked in use_cases_being_deleted, which only this function writes). Under REPEATABLE READ or SERIALIZABLE the counts read the transaction's snapshot, so a
-- run committed while we waited makes the cascade fail with serialization_failure (retry the call):
-- never a summary that misses what was deleted.
CREATE OR REPLACE FUNCTION {{ schema }}.delete_use_case(use_case_id uuid) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p_use_case CONSTANT uuid := delete_use_case.use_case_id;
    name       text;
    counted    jsonb;
    deleted    integer;
    frozen     text;
    summary    jsonb;
BEGIN
    IF p_use_case IS NULL THEN
        RAISE EXCEPTION 'delete_use_case needs a use_case_id' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM {{ schema }}.lock_use_case(p_use_case, true);
    SELECT u.name INTO name FROM {{ schema }}.use_cases u WHERE u.use_case_id = p_use_case FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown use case %', p_use_case
            USING ERRCODE = 'no_data_found', HINT = 'use_case_id must be a {{ schema }}.use_cases.use_case_id';
    END IF;
    PERFORM FROM {{ schema }}.calculation_runs r WHERE r.use_case_id = p_use_case FOR UPDATE;
    PERFORM FROM {{ schema }}.use_case_runs l WHERE l.use_case_id = p_use_case FOR UPDATE;

    SELECT string_agg(format('%s (%s)', f.pnl_date, f.status), ', ' ORDER BY f.pnl_date) INTO frozen
    FROM {{ schema }}.frozen_units(p_use_case, ARRAY(SELECT s.pnl_date FROM {{ schema }}.cob_states(p_use_case) s)) f;
    IF frozen IS NOT NULL THEN
        RAISE EXCEPTION 'use case "%" cannot be deleted: COB dates in the close: %', name, frozen
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'withdraw or reject a PENDING run and reopen a SIGNED_OFF date first (pnldb close); '
                         'a LOCKED date is final, so a use case with one is kept';
    END IF;

    counted := {{ schema }}.use_case_footprint(p_use_case);

    -- lets the immutability triggers of runs, facts and loads pass the cascade: a row no caller can write
    INSERT INTO {{ schema }}.use_cases_being_deleted (use_case_id) VALUES (p_use_case);
    DELETE FROM {{ schema }}.use_cases u WHERE u.use_case_id = p_use_case;
    GET DIAGNOSTICS deleted = ROW_COUNT;
    DELETE FROM {{ schema }}.use_cases_being_deleted d WHERE d.use_case_id = p_use_case;
    IF deleted <> 1 THEN  -- cannot happen while we hold the row lock; never report what did not happen
        RAISE EXCEPTION 'use case % vanished while being deleted', p_use_case USING ERRCODE = 'serialization_failure';
    END IF;

    summary := jsonb_build_object(
        'deleted_use_case', p_use_case,
        'rules_purged', counted -> 'rules',
        'legacy_runs_purged', counted -> 'legacy_runs',
        'calculation_runs_purged', counted -> 'calculation_runs',
        'facts_purged', counted -> 'facts',
        'total_items_deleted', counted -> 'total_items',
        'results_purged', counted -> 'results',
        'message', format('Use case %s and all related data deleted', '''' || name || ''''));
    INSERT INTO {{ schema }}.close_events (use_case_id, use_case_name, action, details)
    VALUES (p_use_case, name, 'USE_CASE_DELETED', summary);
    RETURN summary;
END;
$$;
