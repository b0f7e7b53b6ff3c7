-- One run as the SQL API shows it (contract §3, list_runs item); timestamps in UTC, ISO 8601.
CREATE OR REPLACE FUNCTION {{ schema }}.run_json(r {{ schema }}.calculation_runs) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT jsonb_build_object(
        'id', r.id,
        'pnl_date', r.pnl_date,
        'use_case_id', r.use_case_id,
        'run_name', r.run_name,
        'executed_at', to_char(r.executed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') || '+00:00',
        'status', r.status,
        'triggered_by', r.triggered_by,
        'duration_ms', r.calculation_duration_ms)
$$;
