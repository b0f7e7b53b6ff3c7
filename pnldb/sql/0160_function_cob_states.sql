-- The status of close units (contract §7), derived from close_events and never stored: for use case
-- use_case_id (NULL: every use case) and the dates pnl_dates (NULL: every date with facts, runs or
-- close events), as of as_of (NULL: now). The official run is the run of the unit's last APPROVED or
-- SIGNED_OFF event unless a REOPENED came after it; the pending run is that of the last SUBMITTED event
-- unless a REJECTED, WITHDRAWN, APPROVED or SIGNED_OFF came after it. A unit at or before the use case's
-- locked_through is LOCKED, else PENDING with a pending run, else SIGNED_OFF with an official run, else
-- OPEN. Every reader of the close (frozen_units, official_run, get_cob_status, the views) asks here.
-- SECURITY DEFINER: readers see the close's status, not the fact loads it reads to find the units; of
-- the use cases they are entitled to only.
CREATE OR REPLACE FUNCTION {{ schema }}.cob_states(
    use_case_id uuid DEFAULT NULL, pnl_dates date[] DEFAULT NULL, as_of timestamptz DEFAULT NULL
) RETURNS TABLE (use_case_id uuid, pnl_date date, status text, official_run_id uuid, signed_off_by text,
                 signed_off_at timestamptz, version bigint, pending_run_id uuid, submitted_by text,
                 submitted_at timestamptz, locked_through date)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    WITH units AS (
        SELECT u.use_case_id, d.pnl_date, u.locked_through
        FROM {{ schema }}.use_cases u
        CROSS JOIN LATERAL (
            SELECT DISTINCT x.pnl_date FROM unnest($2) AS x(pnl_date) WHERE x.pnl_date IS NOT NULL
            UNION
            SELECT e.pnl_date FROM {{ schema }}.close_events e
            WHERE $2 IS NULL AND e.use_case_id = u.use_case_id AND e.pnl_date IS NOT NULL
            UNION
            SELECT s.pnl_date FROM {{ schema }}.fact_load_slices s
            WHERE $2 IS NULL AND s.use_case_id = u.use_case_id AND s.superseded_at IS NULL
            UNION
            SELECT r.pnl_date FROM {{ schema }}.calculation_runs r
            WHERE $2 IS NULL AND r.use_case_id = u.use_case_id
        ) d
        WHERE ($1 IS NULL OR u.use_case_id = $1)
          AND ((SELECT {{ schema }}.entitled_to_all_use_cases())
               OR u.use_case_id = ANY ((SELECT {{ schema }}.entitled_use_cases())::uuid[]))
    )
    SELECT n.use_case_id, n.pnl_date,
           CASE WHEN n.pnl_date <= n.locked_through THEN 'LOCKED'
                WHEN p.action = 'SUBMITTED' THEN 'PENDING'
                WHEN o.action IN ('APPROVED', 'SIGNED_OFF') THEN 'SIGNED_OFF'
                ELSE 'OPEN' END,
           CASE WHEN o.action IN ('APPROVED', 'SIGNED_OFF') THEN o.run_id END,
           CASE WHEN o.action IN ('APPROVED', 'SIGNED_OFF') THEN o.actor END,
           CASE WHEN o.action IN ('APPROVED', 'SIGNED_OFF') THEN o.at END,
           CASE WHEN o.action IN ('APPROVED', 'SIGNED_OFF') THEN o.version END,
           CASE WHEN p.action = 'SUBMITTED' THEN p.run_id END,
           CASE WHEN p.action = 'SUBMITTED' THEN p.actor END,
           CASE WHEN p.action = 'SUBMITTED' THEN p.at END,
           n.locked_through
    FROM units n
    LEFT JOIN LATERAL (
        SELECT e.action, e.run_id, e.actor, e.at,
               count(*) FILTER (WHERE e.action IN ('APPROVED', 'SIGNED_OFF')) OVER () AS version
        FROM {{ schema }}.close_events e
        WHERE e.use_case_id = n.use_case_id AND e.pnl_date = n.pnl_date
          AND e.action IN ('APPROVED', 'SIGNED_OFF', 'REOPENED') AND ($3 IS NULL OR e.at <= $3)
        ORDER BY e.event_id DESC LIMIT 1
    ) o ON true
    LEFT JOIN LATERAL (
        SELECT e.action, e.run_id, e.actor, e.at
        FROM {{ schema }}.close_events e
        WHERE e.use_case_id = n.use_case_id AND e.pnl_date = n.pnl_date
          AND e.action IN ('SUBMITTED', 'REJECTED', 'WITHDRAWN', 'APPROVED', 'SIGNED_OFF')
          AND ($3 IS NULL OR e.at <= $3)
        ORDER BY e.event_id DESC LIMIT 1
    ) p ON true
$$;
