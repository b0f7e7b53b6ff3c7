-- One run with its results count, rules applied, error, use-case name and reporting currency (contract §8:
-- the currency of every value of the run); an unknown id is an error.
CREATE OR REPLACE FUNCTION {{ schema }}.get_run(run_id uuid) RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    result jsonb;
BEGIN
    IF run_id IS NULL THEN
        RAISE EXCEPTION 'get_run needs a run_id' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT {{ schema }}.run_json(r) || jsonb_build_object(
               'results_count', (SELECT count(*) FROM {{ schema }}.fact_calculated_results x WHERE x.calculation_run_id = r.id),
               'rules_applied', r.rules_applied,
               'error_message', r.error_message,
               'use_case_name', u.name,
               'reporting_currency', r.reporting_currency)
    INTO result
    FROM {{ schema }}.calculation_runs r
    JOIN {{ schema }}.use_cases u ON u.use_case_id = r.use_case_id
    WHERE r.id = get_run.run_id;
    IF result IS NULL THEN
        RAISE EXCEPTION 'unknown run %', run_id USING ERRCODE = 'no_data_found',
            HINT = 'list runs with list_runs() or `pnldb runs list`';
    END IF;
    RETURN result;
END;
$$;
