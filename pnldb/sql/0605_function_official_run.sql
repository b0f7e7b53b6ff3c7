-- The run that was the official number of (use case, COB date) at as_of, now by default (contract §7);
-- NULL if none was. A restatement replaces it in one event, so at every moment there is one or none.
CREATE OR REPLACE FUNCTION {{ schema }}.official_run(use_case_id uuid, pnl_date date, as_of timestamptz DEFAULT NULL)
RETURNS uuid
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT s.official_run_id FROM {{ schema }}.cob_states($1, ARRAY[$2], $3) s
$$;
