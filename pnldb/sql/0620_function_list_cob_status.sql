-- The close units of a use case (NULL: every use case) between two dates (NULL: open-ended), oldest
-- first: {"units": [get_cob_status-like rows], "filters": {...}} (what `pnldb close status` shows).
CREATE OR REPLACE FUNCTION {{ schema }}.list_cob_status(use_case_id uuid DEFAULT NULL, from_date date DEFAULT NULL,
                                                        to_date date DEFAULT NULL)
RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT jsonb_build_object(
        'units', coalesce(jsonb_agg(jsonb_build_object(
                     'use_case_id', s.use_case_id, 'use_case_name', u.name, 'pnl_date', s.pnl_date,
                     'status', s.status, 'official_run_id', s.official_run_id, 'pending_run_id', s.pending_run_id,
                     'restatement', s.pending_run_id IS NOT NULL AND s.official_run_id IS NOT NULL,
                     'version', s.version, 'signed_off_by', s.signed_off_by, 'submitted_by', s.submitted_by,
                     'locked_through', s.locked_through)
                 ORDER BY u.name, s.use_case_id, s.pnl_date), '[]'),
        'filters', jsonb_build_object('use_case_id', $1, 'from', $2, 'to', $3))
    FROM {{ schema }}.cob_states($1) s
    JOIN {{ schema }}.use_cases u ON u.use_case_id = s.use_case_id
    WHERE ($2 IS NULL OR s.pnl_date >= $2) AND ($3 IS NULL OR s.pnl_date <= $3)
$$;
