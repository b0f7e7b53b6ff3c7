-- The units of a use case among the given dates whose facts are frozen (contract §7): PENDING,
-- SIGNED_OFF or LOCKED. Every write path of the facts asks this one question (the facts' statement
-- trigger, replace_facts, purge_superseded_facts, delete_use_case); so do the FX rates of a date.
CREATE OR REPLACE FUNCTION {{ schema }}.frozen_units(use_case_id uuid, pnl_dates date[])
RETURNS TABLE (pnl_date date, status text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT s.pnl_date, s.status FROM {{ schema }}.cob_states($1, $2) s
    WHERE s.status <> 'OPEN' AND $2 IS NOT NULL
    ORDER BY s.pnl_date
$$;
