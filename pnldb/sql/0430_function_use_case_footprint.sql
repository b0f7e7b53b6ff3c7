-- What deleting a use case would remove, counted without locking or changing anything: the preview
-- behind `pnldb use-case delete --dry-run`, and the one definition of the counts delete_use_case reports.
--   rules             metadata_rules of the use case
--   legacy_runs       use_case_runs (pre-4.2 run headers)
--   calculation_runs  calculation_runs (run headers)
--   facts             fact_pnl_entries, every date and scenario
--   total_items       rules + legacy_runs + calculation_runs + facts (the legacy "items" total)
--   results           fact_calculated_results rows of the use case's runs: those of its calculation runs
--                     plus the legacy rows hanging off its use_case_runs by run_id; a row linked both ways
--                     counts once. Not part of total_items.
-- The rules each calculation run recorded (calculation_run_rules) go with their run and are not counted.
CREATE OR REPLACE FUNCTION {{ schema }}.use_case_footprint(use_case_id uuid) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p_use_case CONSTANT uuid := use_case_footprint.use_case_id;
    name       text;
    n_rules    bigint;
    n_legacy   bigint;
    n_runs     bigint;
    n_facts    bigint;
    n_results  bigint;
BEGIN
    SELECT u.name INTO name FROM {{ schema }}.use_cases u WHERE u.use_case_id = p_use_case;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown use case %', coalesce(p_use_case::text, 'NULL')
            USING ERRCODE = 'no_data_found', HINT = 'use_case_id must be a {{ schema }}.use_cases.use_case_id';
    END IF;
    PERFORM {{ schema }}.require_use_case_entitlement(p_use_case);
    SELECT (SELECT count(*) FROM {{ schema }}.metadata_rules m WHERE m.use_case_id = p_use_case),
           (SELECT count(*) FROM {{ schema }}.use_case_runs l WHERE l.use_case_id = p_use_case),
           (SELECT count(*) FROM {{ schema }}.calculation_runs r WHERE r.use_case_id = p_use_case),
{%- if sharded %}
           (SELECT coalesce(sum(s.rows), 0) FROM {{ schema }}.fact_load_slices s  -- the facts are on the shards
            WHERE s.use_case_id = p_use_case AND s.purged_at IS NULL),
{%- else %}
           (SELECT count(*) FROM {{ schema }}.fact_pnl_entries f WHERE f.use_case_id = p_use_case),
{%- endif %}
           (SELECT count(*) FROM {{ schema }}.fact_calculated_results x
            WHERE x.calculation_run_id IN (SELECT r.id FROM {{ schema }}.calculation_runs r WHERE r.use_case_id = p_use_case)
               OR x.run_id IN (SELECT l.run_id FROM {{ schema }}.use_case_runs l WHERE l.use_case_id = p_use_case))
    INTO n_rules, n_legacy, n_runs, n_facts, n_results;
    RETURN jsonb_build_object(
        'use_case_id', p_use_case,
        'use_case_name', name,
        'rules', n_rules,
        'legacy_runs', n_legacy,
        'calculation_runs', n_runs,
        'facts', n_facts,
        'total_items', n_rules + n_legacy + n_runs + n_facts,
        'results', n_results);
END;
$$;
