-- A rate a closed unit may rest on stays as it is (contract §8): a rate of a date whose unit is PENDING,
-- SIGNED_OFF or LOCKED (frozen_units, contract §7) for a use case it concerns (reporting in its reporting
-- currency, with a fact in its currency on that date) cannot be updated or deleted. One check per
-- statement over the rows it changes; the statement fails as a whole, naming the rates and the units.
-- New rates are not checked: a frozen unit's runs used only rates that existed.
{%- import "_fact_pipeline.sql" as pipeline with context %}
CREATE OR REPLACE FUNCTION {{ schema }}.fx_rates_frozen() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    dates      date[];
    currencies text[];
    reportings text[];
    frozen     text;
BEGIN
    -- The rates the statement removed or changed (an UPDATE that rewrites a rate as it was changes nothing).
    IF TG_OP = 'DELETE' THEN
        SELECT array_agg(o.pnl_date), array_agg(o.currency), array_agg(o.reporting_currency)
        INTO dates, currencies, reportings FROM old_rates o;
    ELSE
        SELECT array_agg(o.pnl_date), array_agg(o.currency), array_agg(o.reporting_currency)
        INTO dates, currencies, reportings FROM old_rates o
        WHERE NOT EXISTS (SELECT 1 FROM new_rates n
                          WHERE (n.pnl_date, n.currency, n.reporting_currency, n.rate)
                                = (o.pnl_date, o.currency, o.reporting_currency, o.rate));
    END IF;
    IF dates IS NULL THEN
        RETURN NULL;
    END IF;
    WITH touched AS (
        SELECT * FROM unnest(dates, currencies, reportings) AS t(pnl_date, currency, reporting_currency)
    ),
    concerned AS (
        SELECT u.use_case_id, u.name, array_agg(DISTINCT t.pnl_date) AS dates
        FROM touched t
        JOIN {{ schema }}.use_cases u ON u.reporting_currency = t.reporting_currency
        WHERE EXISTS (SELECT 1 FROM {{ pipeline.facts_from("u.use_case_id", "t.pnl_date", "NULL") }} f
                      WHERE f.use_case_id = u.use_case_id AND f.pnl_date = t.pnl_date AND f.currency = t.currency)
        GROUP BY u.use_case_id, u.name
    )
    SELECT string_agg(format('%s into %s on %s (use case "%s": %s)', t.currency, t.reporting_currency, t.pnl_date,
                             c.name, z.status), ', ' ORDER BY t.pnl_date, t.currency, c.name)
    INTO frozen
    FROM concerned c
    CROSS JOIN LATERAL {{ schema }}.frozen_units(c.use_case_id, c.dates) z
    JOIN touched t ON t.pnl_date = z.pnl_date
    WHERE z.status IN ('PENDING', 'SIGNED_OFF', 'LOCKED')
      AND EXISTS (SELECT 1 FROM {{ pipeline.facts_from("c.use_case_id", "t.pnl_date", "NULL") }} f
                  WHERE f.use_case_id = c.use_case_id AND f.pnl_date = t.pnl_date AND f.currency = t.currency);
    IF frozen IS NOT NULL THEN
        RAISE EXCEPTION 'rates of closed units cannot be changed or removed: %', frozen
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'reopen the unit first (reopen_cob), or add the rate of another date';
    END IF;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE TRIGGER fx_rates_frozen_on_update
    AFTER UPDATE ON {{ schema }}.fx_rates
    REFERENCING OLD TABLE AS old_rates NEW TABLE AS new_rates
    FOR EACH STATEMENT EXECUTE FUNCTION {{ schema }}.fx_rates_frozen();

CREATE OR REPLACE TRIGGER fx_rates_frozen_on_delete
    AFTER DELETE ON {{ schema }}.fx_rates
    REFERENCING OLD TABLE AS old_rates
    FOR EACH STATEMENT EXECUTE FUNCTION {{ schema }}.fx_rates_frozen();
