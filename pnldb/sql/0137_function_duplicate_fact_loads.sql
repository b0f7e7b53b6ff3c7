-- The slices of a load whose rows are exactly those of another current load of the same (use case, date,
-- scenario) slice (contract §6, no silent doubling): the same multiset of category_code, currency,
-- measures, amount and attributes. The loaders call it after their INSERT and refuse the load when it returns a row; a
-- DBA may call it on the load of an open transaction before committing. Set-based and cheap: only the
-- slices whose signatures (rows and the three sums of fact_load_slices) match are compared fact by fact.
-- One row per (slice, duplicated load), by date, scenario and load.
{%- import "_fact_pipeline.sql" as pipeline with context %}
CREATE OR REPLACE FUNCTION {{ schema }}.duplicate_fact_loads(load_id bigint)
RETURNS TABLE (pnl_date date, scenario text, duplicate_of bigint, loaded_at timestamptz, loaded_by text,
               source text, rows bigint)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    WITH candidates AS (
        SELECT n.load_id AS new_load, o.load_id AS old_load, n.use_case_id, n.pnl_date, n.scenario, n.rows
        FROM {{ schema }}.fact_load_slices n
        JOIN {{ schema }}.fact_load_slices o
          ON o.use_case_id = n.use_case_id AND o.pnl_date = n.pnl_date AND o.scenario = n.scenario
         AND o.load_id <> n.load_id AND o.superseded_at IS NULL
         AND (o.rows, o.daily_sum, o.wtd_sum, o.ytd_sum) = (n.rows, n.daily_sum, n.wtd_sum, n.ytd_sum)
        WHERE n.load_id = duplicate_fact_loads.load_id AND n.superseded_at IS NULL
    )
    SELECT c.pnl_date, c.scenario, c.old_load, l.loaded_at, l.loaded_by, l.source, c.rows
    FROM candidates c
    JOIN {{ schema }}.fact_loads l ON l.load_id = c.old_load
    -- both sides have the same number of rows, so new EXCEPT ALL old being empty means equal multisets
    WHERE NOT EXISTS (
        SELECT f.category_code, f.currency, f.daily_amount, f.wtd_amount, f.ytd_amount, f.amount, f.attributes
        FROM {{ pipeline.facts_from("c.use_case_id", "c.pnl_date", "ARRAY[c.new_load]") }} f
        WHERE f.load_id = c.new_load AND f.pnl_date = c.pnl_date AND f.scenario = c.scenario
        EXCEPT ALL
        SELECT f.category_code, f.currency, f.daily_amount, f.wtd_amount, f.ytd_amount, f.amount, f.attributes
        FROM {{ pipeline.facts_from("c.use_case_id", "c.pnl_date", "ARRAY[c.old_load]") }} f
        WHERE f.load_id = c.old_load AND f.pnl_date = c.pnl_date AND f.scenario = c.scenario)
    ORDER BY c.pnl_date, c.scenario, c.old_load
$$;

COMMENT ON FUNCTION {{ schema }}.duplicate_fact_loads(bigint) IS
    'The slices of a load whose facts equal those of another current load of the same slice (the loaders refuse such a load).';
