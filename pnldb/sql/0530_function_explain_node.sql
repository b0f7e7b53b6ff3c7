-- Why a node of a finished run has its values (contract §6): every fact the run read for the scenario
-- that is mapped at or below the node on the run's recorded tree ({{ unmapped }} is a child of the root),
-- largest daily amounts first. With all rows (max_rows => NULL), for each measure the sum is the node's
-- natural value, the included rows' sum its adjusted value and the others' its plug, exactly.
-- Refuses an unknown, unfinished or pre-0005 run (open_run_reading), a node the run does not have, a
-- scenario other than {{ scenarios | join(" or ") }} and a negative max_rows, each with one clear error.
-- No nested loops, for the reason given in sql/0520 (run_facts).
CREATE OR REPLACE FUNCTION {{ schema }}.explain_node(
    run_id uuid, node_id text, scenario text DEFAULT '{{ scenarios[0] }}', max_rows integer DEFAULT 1000
)
RETURNS TABLE (fact_id bigint, category_code text, mapped_node_id text, attributes jsonb, currency text,
               {% for m in measures %}{{ m }}_amount numeric, {% endfor %}rate numeric, included boolean,
               governing_rule_id bigint, governing_node_id text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp SET enable_nestloop = off SET jit = off AS $$
BEGIN
    PERFORM {{ schema }}.check_run_node(explain_node.run_id, explain_node.node_id, 'explain_node',
                                        true, explain_node.scenario);
    IF explain_node.max_rows < 0 THEN
        RAISE EXCEPTION 'explain_node: max_rows must be zero or more, or NULL for all rows; got %',
                        explain_node.max_rows
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    RETURN QUERY
    SELECT f.* FROM {{ schema }}.run_facts(explain_node.run_id, explain_node.scenario, explain_node.node_id,
                                           explain_node.max_rows) f
    ORDER BY abs(f.daily_amount) DESC, f.fact_id;
END;
$$;
