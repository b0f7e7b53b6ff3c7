-- The currencies of a use case's current facts of a date, other than its reporting currency, that have
-- no rate into it for that date (contract §8), alphabetical; empty when none is missing. create_snapshot
-- refuses such a date before writing anything. The currencies are found by skipping through
-- ix_fact_pnl_entries_currency, one index probe per currency, so a million facts in five currencies cost
-- five probes, not a scan; only a currency without a rate is checked against the current loads.
CREATE OR REPLACE FUNCTION {{ schema }}.missing_fx_rates(use_case_id uuid, pnl_date date) RETURNS text[]
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
{%- if sharded %}
    -- On a coordinator: the currencies each shard finds in the current slices of the date.
    SELECT coalesce(array_agg(DISTINCT p.currency ORDER BY p.currency), '{}')
    FROM {{ schema }}.use_cases u
    CROSS JOIN LATERAL (
        SELECT array_agg(s.load_id) AS loads, array_agg(s.scenario) AS scenarios
        FROM {{ schema }}.fact_load_slices s
        WHERE s.use_case_id = u.use_case_id AND s.pnl_date = missing_fx_rates.pnl_date AND s.superseded_at IS NULL
    ) c
    CROSS JOIN LATERAL {{ schema }}.shard_fact_currencies(u.use_case_id, missing_fx_rates.pnl_date, c.loads, c.scenarios)
                       AS p(currency)
    WHERE u.use_case_id = missing_fx_rates.use_case_id AND c.loads IS NOT NULL AND p.currency <> u.reporting_currency
      AND NOT EXISTS (SELECT 1 FROM {{ schema }}.fx_rates x
                      WHERE x.pnl_date = missing_fx_rates.pnl_date AND x.currency = p.currency
                        AND x.reporting_currency = u.reporting_currency)
{%- else %}
    WITH RECURSIVE present (currency) AS (
        (SELECT e.currency FROM {{ schema }}.fact_pnl_entries e
         WHERE e.use_case_id = missing_fx_rates.use_case_id AND e.pnl_date = missing_fx_rates.pnl_date
           AND e.currency IS NOT NULL
         ORDER BY e.currency LIMIT 1)
        UNION ALL
        SELECT (SELECT e.currency FROM {{ schema }}.fact_pnl_entries e
                WHERE e.use_case_id = missing_fx_rates.use_case_id AND e.pnl_date = missing_fx_rates.pnl_date
                  AND e.currency IS NOT NULL AND e.currency > p.currency
                ORDER BY e.currency LIMIT 1)
        FROM present p WHERE p.currency IS NOT NULL
    )
    SELECT coalesce(array_agg(p.currency ORDER BY p.currency), '{}')
    FROM present p
    JOIN {{ schema }}.use_cases u ON u.use_case_id = missing_fx_rates.use_case_id
    WHERE p.currency IS NOT NULL AND p.currency <> u.reporting_currency
      AND NOT EXISTS (SELECT 1 FROM {{ schema }}.fx_rates x
                      WHERE x.pnl_date = missing_fx_rates.pnl_date AND x.currency = p.currency
                        AND x.reporting_currency = u.reporting_currency)
      AND EXISTS (SELECT 1 FROM {{ schema }}.fact_pnl_entries e
                  JOIN {{ schema }}.fact_load_slices s
                    ON s.load_id = e.load_id AND s.pnl_date = e.pnl_date AND s.scenario = e.scenario
                  WHERE e.use_case_id = missing_fx_rates.use_case_id AND e.pnl_date = missing_fx_rates.pnl_date
                    AND e.currency = p.currency AND s.superseded_at IS NULL)
{%- endif %}
$$;
