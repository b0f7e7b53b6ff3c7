-- Two calculation runs of one use case side by side (contract §3): for every node present in either run,
-- each scenario (ACTUAL, PRIOR, VARIANCE) and each measure, the ADJUSTED value in run A and in run B and
-- difference = value_b - value_a (what changed going from A to B), keeping the rows where
-- |difference| > tolerance. A node present in only one run counts 0 on the other side. Rows come in
-- hierarchy order: depth, node_id, scenario, measure.
--
-- Errors: an unknown run (named), runs of different use cases or structures, a run that did not complete (it has no
-- results to compare), a negative, NULL, NaN or infinite tolerance (no difference is larger than NaN or
-- infinity: they would say "no differences" of runs that differ). Runs of different COB dates are allowed:
-- the result has no room to say so, so a NOTICE does ("comparing runs of different dates: A vs B"); the
-- CLI prints it as a header line.
CREATE OR REPLACE FUNCTION {{ schema }}.compare_runs(run_a uuid, run_b uuid, tolerance numeric DEFAULT 0)
RETURNS TABLE (node_id text, scenario text, measure text, value_a numeric, value_b numeric, difference numeric)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    a       record;
    b       record;
    missing text;
BEGIN
    IF run_a IS NULL OR run_b IS NULL THEN
        RAISE EXCEPTION 'compare_runs needs two run ids' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF tolerance IS NULL OR tolerance < 0 THEN
        RAISE EXCEPTION 'tolerance must be zero or positive, got %', coalesce(tolerance::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF tolerance IN ('NaN'::numeric, 'Infinity'::numeric) THEN
        RAISE EXCEPTION 'tolerance must be a finite number, got %', tolerance
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'give the largest difference to leave out, such as 0.01; 0 shows every difference';
    END IF;
    SELECT r.id, r.use_case_id, r.pnl_date, r.run_name, r.status, NULL::text AS root INTO a
    FROM {{ schema }}.calculation_runs r WHERE r.id = run_a;
    SELECT r.id, r.use_case_id, r.pnl_date, r.run_name, r.status, NULL::text AS root INTO b
    FROM {{ schema }}.calculation_runs r WHERE r.id = run_b;
    SELECT string_agg(m.id::text, ', ' ORDER BY m.ord) INTO missing
    FROM (VALUES (1, run_a, a.id), (2, run_b, b.id)) AS m(ord, id, found)
    WHERE m.found IS NULL AND NOT (m.ord = 2 AND run_b = run_a);
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'unknown run %', missing USING ERRCODE = 'no_data_found',
            HINT = 'list runs with list_runs() or `pnldb runs list`';
    END IF;
    IF a.use_case_id <> b.use_case_id THEN
        RAISE EXCEPTION 'runs % and % belong to different use cases (% and %)', run_a, run_b, a.use_case_id, b.use_case_id
            USING ERRCODE = 'invalid_parameter_value', HINT = 'compare runs of the same use case';
    END IF;
    IF a.status <> 'COMPLETED' OR b.status <> 'COMPLETED' THEN
        RAISE EXCEPTION 'run % is %, not COMPLETED: it has no results to compare',
            CASE WHEN a.status <> 'COMPLETED' THEN run_a ELSE run_b END,
            CASE WHEN a.status <> 'COMPLETED' THEN a.status ELSE b.status END
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    -- Runs of one use case share its structure (use_case_structure_is_kept); a run taken before that was
    -- enforced may sit on another tree: its root says so.
    SELECT (SELECT x.node_id FROM {{ schema }}.fact_calculated_results x
            WHERE x.calculation_run_id = run_a AND x.parent_node_id IS NULL AND x.node_id <> '{{ unmapped }}' LIMIT 1),
           (SELECT x.node_id FROM {{ schema }}.fact_calculated_results x
            WHERE x.calculation_run_id = run_b AND x.parent_node_id IS NULL AND x.node_id <> '{{ unmapped }}' LIMIT 1)
    INTO a.root, b.root;
    IF a.root IS DISTINCT FROM b.root THEN
        RAISE EXCEPTION 'runs % and % were taken on different structures (roots % and %)', run_a, run_b,
                        coalesce(a.root, 'none'), coalesce(b.root, 'none')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'compare runs taken on the same structure';
    END IF;
    IF a.pnl_date <> b.pnl_date THEN
        RAISE NOTICE 'comparing runs of different dates: % vs %', a.pnl_date, b.pnl_date;
    END IF;

    RETURN QUERY
    WITH side_a AS (
        SELECT x.node_id, x.depth, x.scenario,
{%- for m in measures %}
               x.{{ m }}_adjusted{{ "," if not loop.last }}
{%- endfor %}
        FROM {{ schema }}.fact_calculated_results x WHERE x.calculation_run_id = run_a
    ),
    side_b AS (
        SELECT x.node_id, x.depth, x.scenario,
{%- for m in measures %}
               x.{{ m }}_adjusted{{ "," if not loop.last }}
{%- endfor %}
        FROM {{ schema }}.fact_calculated_results x WHERE x.calculation_run_id = run_b
    ),
    paired AS (
        SELECT coalesce(sa.node_id, sb.node_id) AS node, coalesce(sa.scenario, sb.scenario) AS scen,
               least(sa.depth, sb.depth) AS node_depth,
{%- for m in measures %}
               coalesce(sa.{{ m }}_adjusted, 0) AS {{ m }}_a, coalesce(sb.{{ m }}_adjusted, 0) AS {{ m }}_b{{ "," if not loop.last }}
{%- endfor %}
        FROM side_a sa
        FULL JOIN side_b sb ON sb.node_id = sa.node_id AND sb.scenario = sa.scenario
    )
    SELECT p.node, p.scen, v.measure_name, v.in_a, v.in_b, v.in_b - v.in_a
    FROM paired p
    CROSS JOIN LATERAL (VALUES
{%- for m in measures %}
        ({{ loop.index }}, '{{ m }}'::text, p.{{ m }}_a, p.{{ m }}_b){{ "," if not loop.last }}
{%- endfor %}
    ) AS v(measure_order, measure_name, in_a, in_b)
    WHERE abs(v.in_b - v.in_a) > tolerance
    ORDER BY p.node_depth, p.node,
             CASE p.scen {% for s in scenarios %}WHEN '{{ s }}' THEN {{ loop.index }} {% endfor %}ELSE {{ scenarios | length + 1 }} END,
             v.measure_order;
END;
$$;
