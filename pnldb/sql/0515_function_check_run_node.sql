-- The guards a reader of one node of a finished run starts with (explain_node, explain_plug,
-- explain_variance): the run can be read (open_run_reading), the node is one of its result rows, and,
-- when the reader takes one, the scenario is {{ scenarios | join(" or ") }}. Each error names the reader.
CREATE OR REPLACE FUNCTION {{ schema }}.check_run_node(run_id uuid, node_id text, reader text,
                                                       takes_scenario boolean, scenario text)
RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM FROM {{ schema }}.open_run_reading(check_run_node.run_id, reader);
    IF NOT EXISTS (SELECT FROM {{ schema }}.fact_calculated_results r
                   WHERE r.calculation_run_id = check_run_node.run_id AND r.node_id = check_run_node.node_id) THEN
        RAISE EXCEPTION '%: run % has no node %', reader, check_run_node.run_id,
                        coalesce(quote_literal(check_run_node.node_id), 'NULL')
            USING ERRCODE = 'no_data_found', HINT = 'the nodes of a run are those of its result rows';
    END IF;
    IF takes_scenario AND (check_run_node.scenario IS NULL
       OR check_run_node.scenario NOT IN ({% for s in scenarios %}'{{ s }}'{{ ", " if not loop.last }}{% endfor %})) THEN
        RAISE EXCEPTION '%: scenario must be {{ scenarios | join(" or ") }}, got %', reader,
                        coalesce(quote_literal(check_run_node.scenario), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END;
$$;
