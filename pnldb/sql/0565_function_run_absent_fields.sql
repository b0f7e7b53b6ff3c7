-- The attribute keys that the rules of a finished run name and that no fact the run read carries (a
-- value under that key), in alphabetical order: a misspelt field ('Strategy' for 'strategy') is one.
-- The cheap question before run_rule_stats' full one: a key that some fact carries is found at the
-- first such fact, so a run without such keys costs next to nothing.
{%- import "_fact_pipeline.sql" as pipeline with context %}
CREATE OR REPLACE FUNCTION {{ schema }}.run_absent_fields(run_id uuid) RETURNS text[]
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    reading record;  -- open_run_reading: use_case_id, pnl_date, loads, ...
    absent  text[];
BEGIN
    SELECT * INTO reading FROM {{ schema }}.open_run_reading(run_absent_fields.run_id, 'run_absent_fields');
    SELECT coalesce(array_agg(n.field ORDER BY n.field), '{}') INTO absent
    FROM (SELECT DISTINCT a.field
          FROM {{ schema }}.calculation_run_rules rr
          CROSS JOIN unnest({{ schema }}.rule_attribute_fields(rr.predicate_json)) AS a(field)
          WHERE rr.calculation_run_id = run_absent_fields.run_id) n
    WHERE NOT EXISTS (
        SELECT 1 FROM {{ pipeline.facts_from("reading.use_case_id", "reading.pnl_date", "reading.loads") }} f
        JOIN {{ schema }}.calculation_run_inputs i ON i.load_id = f.load_id AND i.scenario = f.scenario
        WHERE i.calculation_run_id = run_absent_fields.run_id
          AND f.use_case_id = reading.use_case_id AND f.pnl_date = reading.pnl_date
          AND (f.attributes ->> n.field) IS NOT NULL);
    RETURN absent;
END;
$$;
