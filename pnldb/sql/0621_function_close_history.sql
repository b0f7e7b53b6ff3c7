-- The close events of a use case (NULL: all, deleted use cases included) and date (NULL: every date),
-- oldest first: {"events": [{"event_id", "at", "actor", "use_case_id", "use_case_name", "pnl_date",
-- "run_id", "action", "comment", "details"}, ...]} (what `pnldb close history` shows).
CREATE OR REPLACE FUNCTION {{ schema }}.close_history(use_case_id uuid DEFAULT NULL, pnl_date date DEFAULT NULL)
RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT jsonb_build_object('events', coalesce(jsonb_agg(jsonb_build_object(
               'event_id', e.event_id,
               'at', to_char(e.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') || '+00:00',
               'actor', e.actor, 'use_case_id', e.use_case_id, 'use_case_name', e.use_case_name,
               'pnl_date', e.pnl_date, 'run_id', e.run_id, 'action', e.action, 'comment', e.comment,
               'details', e.details) ORDER BY e.event_id), '[]'))
    FROM {{ schema }}.close_events e
    WHERE ($1 IS NULL OR e.use_case_id = $1) AND ($2 IS NULL OR e.pnl_date = $2)
$$;
