-- Reopens a signed-off unit, with a reason (contract §7): SIGNED_OFF -> OPEN, with no official run, so
-- its facts can change again. A PENDING unit is rejected or withdrawn instead; a LOCKED one is final.
-- Records REOPENED; returns get_cob_status of the unit.
CREATE OR REPLACE FUNCTION {{ schema }}.reopen_cob(use_case_id uuid, pnl_date date, reason text) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p_use_case CONSTANT uuid := reopen_cob.use_case_id;
    p_date     CONSTANT date := reopen_cob.pnl_date;
    name       text;
    unit       record;
BEGIN
    -- ===== GUARDS =====
    IF p_use_case IS NULL OR p_date IS NULL THEN
        RAISE EXCEPTION 'reopen_cob needs a use_case_id and a pnl_date' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF reason IS NULL OR btrim(reason) = '' THEN
        RAISE EXCEPTION 'reopen_cob needs a reason' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM {{ schema }}.lock_use_case(p_use_case, true);
    SELECT u.name INTO name FROM {{ schema }}.use_cases u WHERE u.use_case_id = p_use_case;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown use case %', p_use_case
            USING ERRCODE = 'no_data_found', HINT = 'use_case_id must be a {{ schema }}.use_cases.use_case_id';
    END IF;
    SELECT s.status, s.official_run_id, s.pending_run_id, s.locked_through INTO unit
    FROM {{ schema }}.cob_states(p_use_case, ARRAY[p_date]) s;
    IF unit.status <> 'SIGNED_OFF' THEN
        RAISE EXCEPTION 'reopen_cob: COB % of use case "%" is %, not SIGNED_OFF', p_date, name, unit.status
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = CASE unit.status WHEN 'LOCKED' THEN format('it is locked through %s: a locked date is final', unit.locked_through)
                                          WHEN 'PENDING' THEN 'reject or withdraw its pending run'
                                          ELSE 'only a signed-off date is reopened' END;
    END IF;

    -- ===== RECORD =====
    INSERT INTO {{ schema }}.close_events (use_case_id, use_case_name, pnl_date, run_id, action, comment)
    VALUES (p_use_case, name, p_date, unit.official_run_id, 'REOPENED', reason);
    RETURN {{ schema }}.get_cob_status(p_use_case, p_date);
END;
$$;
