-- A snapshot of one use case for one COB date (contract §2): a calculation_runs header plus one result
-- row per node and scenario. One read-only statement computes every result row, so it reads one
-- consistent view of hierarchy, facts and rules; being a plain SELECT (an INSERT never runs in
-- parallel), its scan and aggregation of the facts, which is most of the work, runs in parallel
-- workers. A second statement inserts the rows it returned. The rules are read once, before: the
-- statement gets them as parameters, so what it applies, what it records and what was compiled are
-- the same rules, whatever is committed meanwhile.
--
-- Bad input (unknown use case, empty structure, no ACTUAL facts, a taken run name) raises an error and
-- writes nothing. A failure during the computation returns the id of a FAILED run, with the error in
-- error_message and a WARNING, and no result rows: raising instead would roll back the FAILED header
-- and lose the record of what went wrong.
{#- The per-node values the main statement returns: each scenario's natural and adjusted, per measure. #}
{%- set sides = [] %}
{%- for sc in scenarios %}{% for m in measures %}{% for k in ("natural", "adjusted") %}
{%- set _ = sides.append((sc, m, k, sc|lower ~ "_" ~ m ~ "_" ~ k)) %}
{%- endfor %}{% endfor %}{% endfor %}
CREATE OR REPLACE FUNCTION {{ schema }}.create_snapshot(
    use_case_id uuid, pnl_date date, run_name text DEFAULT NULL, triggered_by text DEFAULT NULL
) RETURNS uuid
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET jit = off AS $fn$
DECLARE
    started      timestamptz := clock_timestamp();
    p_use_case   CONSTANT uuid := use_case_id;
    p_date       CONSTANT date := pnl_date;
    structure    text;
    use_case     text;
    name         text := run_name;
    run_id       uuid;
    rule_ids     bigint[];
    rule_nodes   text[];
    rule_json    jsonb[];
    rule_logic   text[];
    predicates   text[];
    rule_map     jsonb;
    root_node    text;
    root_rule    bigint;
    seen_root    bigint;
    attempt      integer := 0;
    rule_tree    text;
    included     text;
    settings_was text[] := ARRAY[current_setting('work_mem'), current_setting('enable_sort'),
                                 current_setting('parallel_tuple_cost')];
    applied      bigint[];
    r_node       text[];
    r_parent     text[];
    r_name       text[];
    r_depth      integer[];
    r_override   boolean[];
{%- for sc, m, k, col in sides %}
    r_{{ col }} numeric[];
{%- endfor %}
    error_text   text;
    error_state  text;
BEGIN
    IF p_use_case IS NULL OR p_date IS NULL THEN
        RAISE EXCEPTION 'create_snapshot needs a use_case_id and a pnl_date' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- Shared: snapshots run side by side; rule writers, fact loads and delete_use_case wait for them.
    PERFORM {{ schema }}.lock_use_case(p_use_case, false);
    SELECT u.structure_id, u.name INTO structure, use_case
    FROM {{ schema }}.use_cases u WHERE u.use_case_id = p_use_case;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown use case %', p_use_case
            USING ERRCODE = 'no_data_found', HINT = 'use_case_id must be a {{ schema }}.use_cases.use_case_id';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM {{ schema }}.dim_hierarchy h WHERE h.structure_id = structure) THEN
        RAISE EXCEPTION 'use case "%": its structure % has no nodes', use_case, structure
            USING ERRCODE = 'no_data_found', HINT = 'load the hierarchy first';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM {{ schema }}.fact_pnl_entries f
                   WHERE f.use_case_id = p_use_case AND f.pnl_date = p_date AND f.scenario = 'ACTUAL') THEN
        RAISE EXCEPTION 'nothing to snapshot: use case "%" has no ACTUAL facts for %', use_case, p_date
            USING ERRCODE = 'no_data_found', HINT = 'load the facts for that date first';
    END IF;
    IF triggered_by IS NOT NULL AND length(triggered_by) > 100 THEN
        RAISE EXCEPTION 'triggered_by is % characters long; at most 100', length(triggered_by)
            USING ERRCODE = 'string_data_right_truncation';
    END IF;

    -- One run at a time per use case and date: names stay unique and in order.
    PERFORM pg_advisory_xact_lock(hashtextextended('pnldb.create_snapshot:' || p_use_case || ':' || p_date, 0));
    IF name IS NULL THEN
        SELECT 'Run ' || min(n) INTO name
        FROM generate_series((SELECT count(*) + 1 FROM {{ schema }}.calculation_runs r
                              WHERE r.use_case_id = p_use_case AND r.pnl_date = p_date),
                             (SELECT count(*) + 1001 FROM {{ schema }}.calculation_runs r
                              WHERE r.use_case_id = p_use_case AND r.pnl_date = p_date)) n
        WHERE NOT EXISTS (SELECT 1 FROM {{ schema }}.calculation_runs r
                          WHERE r.use_case_id = p_use_case AND r.pnl_date = p_date AND r.run_name = 'Run ' || n);
    ELSIF btrim(name) = '' OR length(name) > 200 THEN
        RAISE EXCEPTION 'run name must be 1 to 200 characters and not blank' USING ERRCODE = 'invalid_parameter_value';
    ELSIF EXISTS (SELECT 1 FROM {{ schema }}.calculation_runs r
                  WHERE r.use_case_id = p_use_case AND r.pnl_date = p_date AND r.run_name = name) THEN
        RAISE EXCEPTION 'use case "%" already has a run named % for %', use_case, quote_literal(name), p_date
            USING ERRCODE = 'unique_violation', HINT = 'choose another run name, or leave it out for "Run N"';
    END IF;

    INSERT INTO {{ schema }}.calculation_runs (pnl_date, use_case_id, run_name, executed_at, status, triggered_by)
    VALUES (p_date, p_use_case, name, started, 'IN_PROGRESS', coalesce(triggered_by, session_user))
    RETURNING id INTO run_id;

    BEGIN
        -- The rules on the structure's nodes, read once, in rule_id order, with their predicates as SQL;
        -- the statement below gets them as a map from node to rule id.
        SELECT array_agg(m.rule_id ORDER BY m.rule_id), array_agg(m.node_id ORDER BY m.rule_id),
               array_agg(m.predicate_json ORDER BY m.rule_id), array_agg(m.logic_en ORDER BY m.rule_id),
               array_agg({{ schema }}.predicate_sql(m.predicate_json) ORDER BY m.rule_id),
               coalesce(jsonb_object_agg(m.node_id, m.rule_id), '{}')
        INTO rule_ids, rule_nodes, rule_json, rule_logic, predicates, rule_map
        FROM {{ schema }}.metadata_rules m
        JOIN {{ schema }}.dim_hierarchy d ON d.structure_id = structure AND d.node_id = m.node_id
        WHERE m.use_case_id = p_use_case;
        rule_tree := CASE WHEN predicates IS NULL THEN 'true'
                          ELSE {{ schema }}.rule_case_tree(rule_ids, predicates, 1, cardinality(predicates)) END;
        -- Planner settings for the next statement only. Its hash aggregates hold one group per
        -- (scenario, category_code, included), tens of MB at ten thousand nodes: below 64MB of work_mem
        -- they would spill to disk. And the planner costs the rule tree (a CASE) as if every branch were
        -- evaluated for every fact, hundreds of times its real cost, and charges that again at each
        -- aggregation step; so it would keep the aggregation out of the parallel workers (funnelling
        -- every fact through the Gather) or sort all facts by the grouping key. Hash aggregation in the
        -- workers is the plan that fits: no sorts, and a Gather priced per row at least 1.
        IF pg_size_bytes(settings_was[1]) < pg_size_bytes('64MB') THEN
            PERFORM set_config('work_mem', '64MB', true);
        END IF;
        PERFORM set_config('enable_sort', 'off', true);
        PERFORM set_config('parallel_tuple_cost', greatest(settings_was[3]::float8, 1)::text, true);

        LOOP
            attempt := attempt + 1;
            -- Facts that map to no node are governed by the root's rule, if it has one.
            SELECT h.node_id INTO root_node
            FROM {{ schema }}.dim_hierarchy h WHERE h.structure_id = structure AND h.parent_node_id IS NULL;
            root_rule := (rule_map ->> root_node)::bigint;
            included := format('CASE WHEN NOT mapped THEN %s ELSE governing_rule IS NULL OR %s END',
                               coalesce(predicates[array_position(rule_ids, root_rule)], 'true'), rule_tree);

            EXECUTE format($sql$
WITH RECURSIVE
-- The governing rule of a node is its own rule, else its parent's governing rule; $4 maps node ids to
-- rule ids (a key lookup per node: no join the planner could nest).
tree AS (
    SELECT h.node_id, h.parent_node_id, h.node_name, 0 AS depth, ($4 ->> h.node_id)::bigint AS governing_rule,
           ($4 ->> h.node_id)::bigint AS rule_id, ARRAY[h.node_id] AS path
    FROM {{ schema }}.dim_hierarchy h
    WHERE h.structure_id = $3 AND h.parent_node_id IS NULL
    UNION ALL
    SELECT c.node_id, c.parent_node_id, c.node_name, t.depth + 1, coalesce(($4 ->> c.node_id)::bigint, t.governing_rule),
           ($4 ->> c.node_id)::bigint, t.path || c.node_id
    FROM tree t
    JOIN {{ schema }}.dim_hierarchy c ON c.structure_id = $3 AND c.parent_node_id = t.node_id
),
-- Each fact's rule predicate is evaluated once, as a grouping key. The facts are scanned and grouped
-- by parallel workers, which cannot read a CTE: the tree reaches them as arrays (init plans computed
-- once by the leader) of node ids with their governing rule. Facts that map to no node get the root's
-- rule, which the previous statement read; the last column below checks it against this statement's
-- own tree.
grouped AS (
    SELECT f.scenario, f.category_code, (%s) AS included,
{%- for m in measures %}
           sum(f.{{ m }}_amount) AS {{ m }}{{ "," if not loop.last }}
{%- endfor %}
    FROM (SELECT f.scenario, f.category_code, f.attributes,{% for m in measures %} f.{{ m }}_amount,{% endfor %}
                 g.node_id IS NOT NULL AS mapped, g.governing_rule
          FROM {{ schema }}.fact_pnl_entries f
          LEFT JOIN unnest((SELECT array_agg(t.node_id) FROM tree t),
                           (SELECT array_agg(t.governing_rule) FROM tree t)) AS g(node_id, governing_rule)
                 ON g.node_id = f.category_code
          WHERE f.use_case_id = $1 AND f.pnl_date = $2) f
    GROUP BY 1, 2, 3
),
-- Per node, both scenarios side by side: the facts mapped to it (own), then rolled up to every
-- ancestor along the path. The VARIANCE row is made from the two sides when the rows are inserted.
own AS (
    SELECT coalesce(t.node_id, '__UNMAPPED__') AS node_id,
{%- for sc, m, k, col in sides %}
           sum(g.{{ m }}) FILTER (WHERE g.scenario = '{{ sc }}'{{ " AND g.included" if k == "adjusted" }}) AS {{ col }}{{ "," if not loop.last }}
{%- endfor %}
    FROM grouped g
    LEFT JOIN tree t ON t.node_id = g.category_code
    GROUP BY 1
),
nodes AS (
    SELECT node_id, parent_node_id, node_name, depth, rule_id IS NOT NULL AS is_override, path FROM tree
    UNION ALL
    SELECT '__UNMAPPED__', t.node_id, 'Unmapped', 1, false, ARRAY[t.node_id, '__UNMAPPED__']
    FROM tree t
    WHERE t.depth = 0 AND EXISTS (SELECT 1 FROM own o WHERE o.node_id = '__UNMAPPED__')
),
rolled AS (
    SELECT ancestor.node_id,
{%- for sc, m, k, col in sides %}
           sum(o.{{ col }}) AS {{ col }}{{ "," if not loop.last }}
{%- endfor %}
    FROM own o
    JOIN nodes n ON n.node_id = o.node_id
    CROSS JOIN LATERAL unnest(n.path) AS ancestor(node_id)
    GROUP BY 1
)
SELECT array_agg(n.node_id), array_agg(n.parent_node_id), array_agg(n.node_name), array_agg(n.depth),
       array_agg(n.is_override),
{%- for sc, m, k, col in sides %}
       array_agg(coalesce(r.{{ col }}, 0)),
{%- endfor %}
       (SELECT array_agg(t.rule_id) FROM tree t WHERE t.rule_id IS NOT NULL),
       (SELECT t.governing_rule FROM tree t WHERE t.depth = 0)
FROM nodes n
LEFT JOIN rolled r ON r.node_id = n.node_id
$sql$, included)
            INTO r_node, r_parent, r_name, r_depth, r_override,
{%- for sc, m, k, col in sides %} r_{{ col }},{% endfor %}
                 applied, seen_root
            USING p_use_case, p_date, structure, rule_map;
            -- The root or its rule changed in between (a concurrent hierarchy load): compute again.
            EXIT WHEN seen_root IS NOT DISTINCT FROM root_rule;
            IF attempt >= 5 THEN
                RAISE EXCEPTION 'the root of structure % kept changing during the snapshot; try again', structure
                    USING ERRCODE = 'serialization_failure';
            END IF;
        END LOOP;
        PERFORM set_config('work_mem', settings_was[1], true), set_config('enable_sort', settings_was[2], true),
                set_config('parallel_tuple_cost', settings_was[3], true);

        INSERT INTO {{ schema }}.calculation_run_rules (calculation_run_id, rule_id, node_id, predicate_json, sql_where, logic_en)
        SELECT run_id, r.rule_id, r.node_id, r.predicate_json, r.sql_where, r.logic_en
        FROM unnest(rule_ids, rule_nodes, rule_json, predicates, rule_logic)
             AS r(rule_id, node_id, predicate_json, sql_where, logic_en)
        WHERE r.rule_id = ANY (applied);

        -- Three rows per node: ACTUAL, PRIOR and VARIANCE (ACTUAL - PRIOR).
        INSERT INTO {{ schema }}.fact_calculated_results (
            calculation_run_id, node_id, parent_node_id, node_name, depth, scenario,
{%- for m in measures %}
            {{ m }}_natural, {{ m }}_adjusted, {{ m }}_plug,
{%- endfor %}
            is_override, is_reconciled)
        SELECT run_id, v.node_id, v.parent_node_id, v.node_name, v.depth, s.scenario,
{%- for m in measures %}
               s.{{ m }}_natural, s.{{ m }}_adjusted, s.{{ m }}_natural - s.{{ m }}_adjusted,
{%- endfor %}
               v.is_override,
               {% for m in measures %}s.{{ m }}_natural = s.{{ m }}_adjusted{{ " AND " if not loop.last }}{% endfor %}
        FROM unnest(r_node, r_parent, r_name, r_depth, r_override{% for sc, m, k, col in sides %}, r_{{ col }}{% endfor %})
             AS v(node_id, parent_node_id, node_name, depth, is_override{% for sc, m, k, col in sides %}, {{ col }}{% endfor %})
        CROSS JOIN LATERAL (VALUES
{%- for sc in scenarios %}
            ('{{ sc }}'{% for m in measures %}, v.{{ sc|lower }}_{{ m }}_natural, v.{{ sc|lower }}_{{ m }}_adjusted{% endfor %}),
{%- endfor %}
            ('VARIANCE'{% for m in measures %}{% for k in ("natural", "adjusted") %}, v.{{ scenarios[0]|lower }}_{{ m }}_{{ k }} - v.{{ scenarios[1]|lower }}_{{ m }}_{{ k }}{% endfor %}{% endfor %})
        ) AS s(scenario{% for m in measures %}, {{ m }}_natural, {{ m }}_adjusted{% endfor %});

        UPDATE {{ schema }}.calculation_runs r
        SET status = 'COMPLETED',
            rules_applied = (SELECT count(*) FROM {{ schema }}.calculation_run_rules rr WHERE rr.calculation_run_id = run_id),
            calculation_duration_ms = ceil(extract(epoch FROM clock_timestamp() - started) * 1000)::integer
        WHERE r.id = run_id;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS error_text = MESSAGE_TEXT, error_state = RETURNED_SQLSTATE;
        UPDATE {{ schema }}.calculation_runs r
        SET status = 'FAILED',
            error_message = format('%s (SQLSTATE %s)', error_text, error_state),
            calculation_duration_ms = ceil(extract(epoch FROM clock_timestamp() - started) * 1000)::integer
        WHERE r.id = run_id;
        RAISE WARNING 'snapshot % of use case "%" for % FAILED: %', run_id, use_case, p_date, error_text;
    END;
    RETURN run_id;
END;
$fn$;
