-- What a reader of a finished run (verify_run, the explain functions) needs to read the run's own
-- inputs (contract §6): the facts of the loads it recorded, superseded since or not, the rules it
-- recorded and the tree of its result rows, never today's. Refuses, with one clear error, a run that is
-- unknown, not COMPLETED, or taken before runs recorded their inputs (migration 0005). The outputs feed
-- the fact pipeline (sql/_fact_pipeline.sql): $1 use_case_id, $2 pnl_date, $3 run_id, $4 rule_by_node,
-- $5 loads; load_filter and included go into its format() placeholders.
CREATE OR REPLACE FUNCTION {{ schema }}.open_run_reading(
    run_id uuid, reader text,
    OUT use_case_id uuid, OUT pnl_date date, OUT loads bigint[], OUT load_filter text,
    OUT rule_by_node jsonb, OUT included text
)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    run          record;
    input_loads  bigint[];
    input_scens  text[];
BEGIN
    SELECT r.use_case_id, r.pnl_date, r.status, r.run_name INTO run
    FROM {{ schema }}.calculation_runs r WHERE r.id = open_run_reading.run_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown run %', coalesce(open_run_reading.run_id::text, 'NULL')
            USING ERRCODE = 'no_data_found', HINT = 'run_id must be a {{ schema }}.calculation_runs.id';
    END IF;
    IF run.status <> 'COMPLETED' THEN
        RAISE EXCEPTION '%: run % (%) is %, not COMPLETED; only a completed run has results to read', reader,
                        open_run_reading.run_id, run.run_name, run.status
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    SELECT array_agg(i.load_id ORDER BY i.load_id, i.scenario), array_agg(i.scenario ORDER BY i.load_id, i.scenario)
    INTO input_loads, input_scens
    FROM {{ schema }}.calculation_run_inputs i WHERE i.calculation_run_id = open_run_reading.run_id;
    IF input_loads IS NULL THEN
        RAISE EXCEPTION '%: run % (%) was taken before pnldb recorded the facts each run read (migration 0005_fact_loads), '
                        'so it cannot be explained or verified', reader, open_run_reading.run_id, run.run_name
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'take a new snapshot of the date: runs taken since record their inputs';
    END IF;
    use_case_id := run.use_case_id;
    pnl_date := run.pnl_date;
    loads := ARRAY(SELECT DISTINCT l FROM unnest(input_loads) l ORDER BY l);
    -- Some load read for one scenario has facts of the other that the run did not read.
    load_filter := CASE WHEN EXISTS (
            SELECT 1 FROM {{ schema }}.fact_load_slices s
            WHERE s.load_id = ANY (loads) AND s.pnl_date = run.pnl_date AND s.rows > 0
              AND NOT EXISTS (SELECT 1 FROM unnest(input_loads, input_scens) AS i(load_id, scenario)
                              WHERE i.load_id = s.load_id AND i.scenario = s.scenario))
        THEN {{ schema }}.load_scenario_filter(input_loads, input_scens) ELSE '' END;
    SELECT coalesce(jsonb_object_agg(rr.node_id, rr.rule_id), '{}'),
           {{ schema }}.rules_included(array_agg(rr.rule_id ORDER BY rr.rule_id),
                                       array_agg({{ schema }}.predicate_sql(rr.predicate_json) ORDER BY rr.rule_id))
    INTO rule_by_node, included
    FROM {{ schema }}.calculation_run_rules rr WHERE rr.calculation_run_id = open_run_reading.run_id;
END;
$$;
