-- Only an ACTIVE use case takes snapshots (issue 18); an INACTIVE one keeps its runs and its history,
-- readable as before. Called by open_snapshot_run once the use case is found.
CREATE OR REPLACE FUNCTION {{ schema }}.require_active_use_case(p_use_case uuid) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    uc record;
BEGIN
    SELECT u.name, u.status INTO uc FROM {{ schema }}.use_cases u WHERE u.use_case_id = p_use_case;
    IF FOUND AND uc.status <> 'ACTIVE' THEN
        RAISE EXCEPTION 'use case "%" is %: it takes no snapshots', uc.name, uc.status
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('an admin makes it active again: UPDATE {{ schema }}.use_cases SET status = ''ACTIVE'' '
                                'WHERE use_case_id = ''%s''', p_use_case);
    END IF;
END;
$$;
