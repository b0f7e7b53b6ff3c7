-- stub; the close issue defines it. The units among a use case's dates that are PENDING, SIGNED_OFF or
-- LOCKED (contract §7), with their status; the fx_rates freeze (sql/0175) is written against it.
CREATE OR REPLACE FUNCTION {{ schema }}.frozen_units(use_case_id uuid, pnl_dates date[])
RETURNS TABLE (pnl_date date, status text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT NULL::date, NULL::text WHERE false
$$;
