-- Sets one confirmation rule of a use case's close (contract §7): severity ERROR, WARNING or OFF, and
-- its params (merged over the defaults). Refused, writing nothing: an unknown use case or code, a bad
-- severity, params the code does not take or of the wrong type; RUN_COMPLETED is always ERROR. Recorded
-- in close_events as CHECK_SET. Returns the check as close_check_settings now reports it.
CREATE OR REPLACE FUNCTION {{ schema }}.set_check(use_case_id uuid, code text, severity text, params jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p_use_case CONSTANT uuid := set_check.use_case_id;
    p_code     CONSTANT text := upper(btrim(set_check.code));
    p_severity CONSTANT text := upper(btrim(set_check.severity));
    allowed    text[];
    uc         record;
    result     jsonb;
BEGIN
    -- ===== GUARDS =====
    IF p_use_case IS NULL OR p_code IS NULL OR p_severity IS NULL THEN
        RAISE EXCEPTION 'set_check needs a use_case_id, a code and a severity' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM {{ schema }}.lock_use_case(p_use_case, true);
    SELECT u.name, u.structure_id INTO uc FROM {{ schema }}.use_cases u WHERE u.use_case_id = p_use_case;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown use case %', p_use_case
            USING ERRCODE = 'no_data_found', HINT = 'use_case_id must be a {{ schema }}.use_cases.use_case_id';
    END IF;
    allowed := CASE p_code WHEN 'RUN_COMPLETED' THEN '{}'::text[] WHEN 'FACTS_UNCHANGED' THEN '{}'
                           WHEN 'NO_UNMAPPED' THEN '{tolerance}' WHEN 'RULES_UNCHANGED' THEN '{}'
                           WHEN 'RULE_FIELDS_PRESENT' THEN '{}' WHEN 'PLUG_LIMIT' THEN '{node_id,abs}' END;
    IF allowed IS NULL THEN
        RAISE EXCEPTION 'unknown check %', quote_literal(set_check.code) USING ERRCODE = 'invalid_parameter_value',
            HINT = 'the checks are RUN_COMPLETED, FACTS_UNCHANGED, NO_UNMAPPED, RULES_UNCHANGED, RULE_FIELDS_PRESENT, PLUG_LIMIT';
    END IF;
    IF p_severity NOT IN ('ERROR', 'WARNING', 'OFF') THEN
        RAISE EXCEPTION 'check %: severity % is not ERROR, WARNING or OFF', p_code, quote_literal(set_check.severity)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_code = 'RUN_COMPLETED' AND p_severity <> 'ERROR' THEN
        RAISE EXCEPTION 'check RUN_COMPLETED is always ERROR: only a completed run can be signed off'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF params IS NULL OR jsonb_typeof(params) <> 'object' THEN
        RAISE EXCEPTION 'check %: params must be a JSON object', p_code USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT 1 FROM jsonb_object_keys(params) k WHERE k <> ALL (allowed)) THEN
        RAISE EXCEPTION 'check %: params % are not among those it takes (%)', p_code,
                        (SELECT string_agg(k, ', ' ORDER BY k) FROM jsonb_object_keys(params) k WHERE k <> ALL (allowed)),
                        coalesce(nullif(array_to_string(allowed, ', '), ''), 'none')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF params ? 'tolerance' AND (jsonb_typeof(params -> 'tolerance') <> 'number' OR (params ->> 'tolerance')::numeric < 0) THEN
        RAISE EXCEPTION 'check NO_UNMAPPED: tolerance must be a number >= 0, not %', params -> 'tolerance'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_code = 'PLUG_LIMIT' AND (p_severity <> 'OFF' OR params <> '{}') THEN
        IF jsonb_typeof(params -> 'abs') IS DISTINCT FROM 'number' OR (params ->> 'abs')::numeric < 0 THEN
            RAISE EXCEPTION 'check PLUG_LIMIT: params.abs must be a number >= 0, not %', coalesce((params -> 'abs')::text, 'missing')
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF jsonb_typeof(params -> 'node_id') IS DISTINCT FROM 'string'
           OR NOT EXISTS (SELECT 1 FROM {{ schema }}.dim_hierarchy h
                          WHERE h.structure_id = uc.structure_id AND h.node_id = params ->> 'node_id') THEN
            RAISE EXCEPTION 'check PLUG_LIMIT: params.node_id % is not a node of structure %',
                            coalesce((params -> 'node_id')::text, 'missing'), uc.structure_id
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END IF;

    -- ===== WRITE =====
    INSERT INTO {{ schema }}.close_checks AS c (use_case_id, code, severity, params)
    VALUES (p_use_case, p_code, p_severity, set_check.params)
    ON CONFLICT ON CONSTRAINT close_checks_pkey DO UPDATE
    SET severity = EXCLUDED.severity, params = EXCLUDED.params, set_by = session_user, set_at = now();
    SELECT jsonb_build_object('use_case_id', p_use_case, 'code', s.code, 'severity', s.severity, 'params', s.params)
    INTO result FROM {{ schema }}.close_check_settings(p_use_case) s WHERE s.code = p_code;
    INSERT INTO {{ schema }}.close_events (use_case_id, use_case_name, action, details)
    VALUES (p_use_case, uc.name, 'CHECK_SET', result);
    RETURN result;
END;
$$;
