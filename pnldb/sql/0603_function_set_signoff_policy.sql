-- Sets a use case's sign-off policy (contract §7): FOUR_EYES (an approver other than the submitter and
-- the run's executor) or SIMPLE (sign_off_run by one approver). Recorded in close_events as POLICY_SET.
-- Returns {"use_case_id", "signoff_policy", "previous"}.
CREATE OR REPLACE FUNCTION {{ schema }}.set_signoff_policy(use_case_id uuid, policy text) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p_use_case CONSTANT uuid := set_signoff_policy.use_case_id;
    p_policy   CONSTANT text := upper(btrim(policy));
    uc         record;
    result     jsonb;
BEGIN
    IF p_use_case IS NULL OR p_policy IS NULL THEN
        RAISE EXCEPTION 'set_signoff_policy needs a use_case_id and a policy' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF p_policy NOT IN ('FOUR_EYES', 'SIMPLE') THEN
        RAISE EXCEPTION 'sign-off policy % is not FOUR_EYES or SIMPLE', quote_literal(policy)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM {{ schema }}.lock_use_case(p_use_case, true);
    SELECT u.name, u.signoff_policy INTO uc FROM {{ schema }}.use_cases u WHERE u.use_case_id = p_use_case;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown use case %', p_use_case
            USING ERRCODE = 'no_data_found', HINT = 'use_case_id must be a {{ schema }}.use_cases.use_case_id';
    END IF;
    UPDATE {{ schema }}.use_cases u SET signoff_policy = p_policy WHERE u.use_case_id = p_use_case;
    result := jsonb_build_object('use_case_id', p_use_case, 'signoff_policy', p_policy, 'previous', uc.signoff_policy);
    INSERT INTO {{ schema }}.close_events (use_case_id, use_case_name, action, details)
    VALUES (p_use_case, uc.name, 'POLICY_SET', result);
    RETURN result;
END;
$$;
