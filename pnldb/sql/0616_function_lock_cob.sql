-- Moves a use case's locked_through watermark forward to through_date, with a reason (contract §7):
-- through_date is before today and not before the current watermark (there is no unlock), and every
-- date up to it that has current facts or runs is SIGNED_OFF (or already LOCKED). Every unit at or before
-- the watermark is LOCKED from then on: its facts are frozen for good, and it refuses submit, approve
-- and reopen. Records LOCKED on through_date; returns get_cob_status of (use case, through_date) plus
-- "previous_locked_through" and "units_locked".
CREATE OR REPLACE FUNCTION {{ schema }}.lock_cob(use_case_id uuid, through_date date, reason text) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p_use_case CONSTANT uuid := lock_cob.use_case_id;
    uc         record;
    open_units text;
    n_units    bigint;
    result     jsonb;
BEGIN
    -- ===== GUARDS =====
    IF p_use_case IS NULL OR through_date IS NULL THEN
        RAISE EXCEPTION 'lock_cob needs a use_case_id and a through_date' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF reason IS NULL OR btrim(reason) = '' THEN
        RAISE EXCEPTION 'lock_cob needs a reason' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM {{ schema }}.lock_use_case(p_use_case, true);
    SELECT u.name, u.locked_through INTO uc FROM {{ schema }}.use_cases u WHERE u.use_case_id = p_use_case;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown use case %', p_use_case
            USING ERRCODE = 'no_data_found', HINT = 'use_case_id must be a {{ schema }}.use_cases.use_case_id';
    END IF;
    IF through_date >= current_date THEN
        RAISE EXCEPTION 'lock_cob: % is not before today (%): only past dates are locked', through_date, current_date
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF through_date < uc.locked_through THEN
        RAISE EXCEPTION 'lock_cob: use case "%" is locked through %; the watermark never moves back (to %)',
                        uc.name, uc.locked_through, through_date USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT string_agg(format('%s (%s)', s.pnl_date, s.status), ', ' ORDER BY s.pnl_date),
           count(*) FILTER (WHERE s.status IN ('SIGNED_OFF', 'LOCKED'))
    INTO open_units, n_units
    FROM {{ schema }}.cob_states(p_use_case) s
    WHERE s.pnl_date <= through_date AND s.status NOT IN ('SIGNED_OFF', 'LOCKED')
      AND (EXISTS (SELECT 1 FROM {{ schema }}.fact_load_slices f
                   WHERE f.use_case_id = p_use_case AND f.pnl_date = s.pnl_date AND f.superseded_at IS NULL)
           OR EXISTS (SELECT 1 FROM {{ schema }}.calculation_runs r
                      WHERE r.use_case_id = p_use_case AND r.pnl_date = s.pnl_date));
    IF open_units IS NOT NULL THEN
        RAISE EXCEPTION 'lock_cob: use case "%" has dates up to % that are not signed off: %', uc.name, through_date, open_units
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'sign them off first, or lock through an earlier date';
    END IF;
    SELECT count(*) INTO n_units FROM {{ schema }}.cob_states(p_use_case) s WHERE s.pnl_date <= through_date;

    -- ===== RECORD =====
    UPDATE {{ schema }}.use_cases u SET locked_through = through_date WHERE u.use_case_id = p_use_case;
    result := jsonb_build_object('previous_locked_through', uc.locked_through, 'units_locked', n_units);
    INSERT INTO {{ schema }}.close_events (use_case_id, use_case_name, pnl_date, action, comment, details)
    VALUES (p_use_case, uc.name, through_date, 'LOCKED', reason, result);
    RETURN {{ schema }}.get_cob_status(p_use_case, through_date) || result;
END;
$$;
