-- Runs newest first (executed_at, then id for a stable order), filtered by COB date, use case, both or
-- neither; max_runs caps the page with or without filters and `total` counts every match (contract §3).
-- An unknown use case is an error, not an empty list; so is max_runs below 1 (or NULL).
CREATE OR REPLACE FUNCTION {{ schema }}.list_runs(
    pnl_date date DEFAULT NULL, use_case_id uuid DEFAULT NULL, max_runs integer DEFAULT 100
) RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    p_date     CONSTANT date := list_runs.pnl_date;
    p_use_case CONSTANT uuid := list_runs.use_case_id;
    result     jsonb;
BEGIN
    IF max_runs IS NULL OR max_runs < 1 THEN
        RAISE EXCEPTION 'max_runs must be at least 1, got %', coalesce(max_runs::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_use_case IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM {{ schema }}.use_cases u WHERE u.use_case_id = p_use_case) THEN
        RAISE EXCEPTION 'unknown use case %', p_use_case
            USING ERRCODE = 'no_data_found', HINT = 'use_case_id must be a {{ schema }}.use_cases.use_case_id';
    END IF;

    WITH matching AS (
        SELECT r FROM {{ schema }}.calculation_runs r
        WHERE (p_date IS NULL OR r.pnl_date = p_date)
          AND (p_use_case IS NULL OR r.use_case_id = p_use_case)
    ),
    page AS (
        SELECT m.r FROM matching m
        ORDER BY (m.r).executed_at DESC, (m.r).id
        LIMIT max_runs
    )
    SELECT jsonb_build_object(
        'runs', coalesce((SELECT jsonb_agg({{ schema }}.run_json(p.r) ORDER BY (p.r).executed_at DESC, (p.r).id) FROM page p),
                         '[]'::jsonb),
        'total', (SELECT count(*) FROM matching),
        'filters', jsonb_build_object('pnl_date', p_date, 'use_case_id', p_use_case))
    INTO result;
    RETURN result;
END;
$$;
