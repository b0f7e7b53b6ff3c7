-- The fact loads of a use case, newest first (loaded_at, then load_id), each with its (date, scenario)
-- slices, current and superseded alike (contract §6): what `pnldb loads list` shows. With pnl_date, only
-- the loads that have a slice of that date or superseded one, each with its slices of that date; a load's
-- `rows` is always all of its rows. Timestamps in UTC, ISO 8601. An unknown use case is an error.
--   {"use_case_id", "use_case_name", "loads": [{"load_id", "loaded_at", "loaded_by", "source", "rows",
--    "slices": [{"pnl_date", "scenario", "rows", "current", "superseded_at", "superseded_by", "purged_at"}]}],
--    "filters": {"use_case_id", "pnl_date"}}
CREATE OR REPLACE FUNCTION {{ schema }}.list_loads(use_case_id uuid, pnl_date date DEFAULT NULL) RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p_use_case CONSTANT uuid := list_loads.use_case_id;
    p_date     CONSTANT date := list_loads.pnl_date;
    uc_name    text;
BEGIN
    SELECT u.name INTO uc_name FROM {{ schema }}.use_cases u WHERE u.use_case_id = p_use_case;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown use case %', coalesce(p_use_case::text, 'NULL')
            USING ERRCODE = 'no_data_found', HINT = 'use_case_id must be a {{ schema }}.use_cases.use_case_id';
    END IF;
    RETURN jsonb_build_object(
        'use_case_id', p_use_case,
        'use_case_name', uc_name,
        'loads', coalesce((
            SELECT jsonb_agg(jsonb_build_object(
                       'load_id', l.load_id,
                       'loaded_at', to_char(l.loaded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') || '+00:00',
                       'loaded_by', l.loaded_by,
                       'source', l.source,
                       'rows', l.rows,
                       'slices', coalesce(sl.slices, '[]'::jsonb))
                   ORDER BY l.loaded_at DESC, l.load_id DESC)
            FROM {{ schema }}.fact_loads l
            LEFT JOIN LATERAL (
                SELECT jsonb_agg(jsonb_build_object(
                           'pnl_date', s.pnl_date,
                           'scenario', s.scenario,
                           'rows', s.rows,
                           'current', s.superseded_at IS NULL,
                           'superseded_at', to_char(s.superseded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') || '+00:00',
                           'superseded_by', s.superseded_by,
                           'purged_at', to_char(s.purged_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') || '+00:00')
                       ORDER BY s.pnl_date, s.scenario) AS slices
                FROM {{ schema }}.fact_load_slices s
                WHERE s.load_id = l.load_id AND (p_date IS NULL OR s.pnl_date = p_date)
            ) sl ON true
            WHERE l.use_case_id = p_use_case
              AND (p_date IS NULL OR sl.slices IS NOT NULL
                   OR l.load_id IN (SELECT o.superseded_by FROM {{ schema }}.fact_load_slices o
                                    WHERE o.use_case_id = p_use_case AND o.pnl_date = p_date))), '[]'::jsonb),
        'filters', jsonb_build_object('use_case_id', p_use_case, 'pnl_date', p_date));
END;
$$;

COMMENT ON FUNCTION {{ schema }}.list_loads(uuid, date) IS
    'The fact loads of a use case, newest first, with their slices, current and superseded (pnldb loads list).';
