-- A snapshot of one use case for one COB date (contract §2): a calculation_runs header plus one result
-- row per node and scenario, in this order:
--   GUARDS AND THE RUN HEADER  open_snapshot_run (sql/0307): bad input raises an error and writes
--                              nothing; otherwise the run header, IN_PROGRESS.
--   THE FACTS                  which loads are current, read once from fact_load_slices: the read scans
--                              the facts of those loads only, and the run records them as its inputs.
--   THE RATES                  the use case's reporting currency and the rates of the date into it
--                              (open_snapshot_run refused a date missing a rate the facts need).
--   THE RULES                  read once, each predicate compiled once: what the read applies and what
--                              the run records are the same rules, whatever is committed meanwhile.
--   THE ONE READ               one read-only statement computes every node's values, ACTUAL and PRIOR
--                              side by side, from one consistent view of hierarchy and facts. Being a plain
--                              SELECT (an INSERT never runs in parallel), its scan and aggregation of
--                              the facts, most of the work, runs in parallel workers.
--   WRITE                      its inputs, the rates it used, the rules it applied, three result rows
--                              per node, the run COMPLETED.
-- A failure after the header returns the id of a FAILED run, with the error in error_message and a
-- WARNING, and no result rows: raising instead would roll back the FAILED header and lose the record of
-- what went wrong. A FAILED run keeps its name but does not hold it: a retry may take the same name
-- (open_snapshot_run), and purge_runs removes FAILED runs.
{%- import "_fact_pipeline.sql" as pipeline with context %}
{%- set actual, prior = scenarios %}
CREATE OR REPLACE FUNCTION {{ schema }}.create_snapshot(
    use_case_id uuid, pnl_date date, run_name text DEFAULT NULL, triggered_by text DEFAULT NULL
) RETURNS uuid
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET jit = off AS $fn$
DECLARE
    run          record;  -- from open_snapshot_run: run_id, started, structure, use_case_name
    input_loads  bigint[];
    input_scens  text[];
    input_rows   bigint[];
{%- for m in measures %}
    input_{{ m }}  numeric[];
{%- endfor %}
    loads_read   bigint[];
    load_filter  text;
    rule_ids     bigint[];
    rule_nodes   text[];
    rule_json    jsonb[];
    rule_sql     text[];
    rule_logic   text[];
    rule_by_node jsonb;
    root_node    text;
    tree_root    text;
    included     text;
    settings_was text[];
    node_rows    {{ schema }}.snapshot_node[];
    applied      bigint[];
    reporting    text;
    rates        jsonb;
    converted    text[];
    error_text   text;
    error_state  text;
BEGIN
    -- ===== GUARDS AND THE RUN HEADER =====
    run := {{ schema }}.open_snapshot_run(use_case_id, pnl_date, run_name, triggered_by);
    SELECT u.reporting_currency INTO reporting FROM {{ schema }}.use_cases u WHERE u.use_case_id = create_snapshot.use_case_id;

    BEGIN
        -- ===== THE FACTS =====
        -- The current slices of the date. A load that lost one scenario of the date to a replacement
        -- still has the other: only then does the scan check the scenario with the load id.
        SELECT array_agg(s.load_id ORDER BY s.load_id, s.scenario), array_agg(s.scenario ORDER BY s.load_id, s.scenario),
               array_agg(s.rows ORDER BY s.load_id, s.scenario){% for m in measures %},
               array_agg(s.{{ m }}_sum ORDER BY s.load_id, s.scenario){% endfor %}
        INTO input_loads, input_scens, input_rows{% for m in measures %}, input_{{ m }}{% endfor %}
        FROM {{ schema }}.fact_load_slices s
        WHERE s.use_case_id = create_snapshot.use_case_id AND s.pnl_date = create_snapshot.pnl_date
          AND s.superseded_at IS NULL AND s.rows > 0;
        loads_read := ARRAY(SELECT DISTINCT l FROM unnest(input_loads) l ORDER BY l);
        load_filter := CASE WHEN EXISTS (
                SELECT 1 FROM {{ schema }}.fact_load_slices s
                WHERE s.load_id = ANY (loads_read) AND s.pnl_date = create_snapshot.pnl_date AND s.superseded_at IS NOT NULL)
            THEN {{ schema }}.load_scenario_filter(input_loads, input_scens) ELSE '' END;

        -- ===== THE RATES =====
        SELECT coalesce(jsonb_object_agg(x.currency, x.rate), '{}') INTO rates
        FROM {{ schema }}.fx_rates x
        WHERE x.pnl_date = create_snapshot.pnl_date AND x.reporting_currency = reporting;

        -- ===== THE RULES =====
        -- The rules on the structure's nodes, in rule_id order; the one read finds a node's rule through
        -- rule_by_node (a key lookup per node: no join the planner could nest).
        SELECT array_agg(m.rule_id ORDER BY m.rule_id), array_agg(m.node_id ORDER BY m.rule_id),
               array_agg(m.predicate_json ORDER BY m.rule_id),
               array_agg({{ schema }}.predicate_sql(m.predicate_json) ORDER BY m.rule_id),
               array_agg(m.logic_en ORDER BY m.rule_id), coalesce(jsonb_object_agg(m.node_id, m.rule_id), '{}')
        INTO rule_ids, rule_nodes, rule_json, rule_sql, rule_logic, rule_by_node
        FROM {{ schema }}.metadata_rules m
        JOIN {{ schema }}.dim_hierarchy d ON d.structure_id = run.structure AND d.node_id = m.node_id
        WHERE m.use_case_id = create_snapshot.use_case_id;
        -- Whether a fact is included, over the id of the rule that governs it (NULL: none does).
        included := {{ schema }}.rules_included(rule_ids, rule_sql);
        -- The root's rule governs the facts of no node. The structure's lock (open_snapshot_run) keeps
        -- its tree as it is until this transaction ends, and the read returns the root it found: a
        -- writer that bypassed the lock fails the run instead of changing its numbers.
        SELECT d.node_id INTO root_node FROM {{ schema }}.dim_hierarchy d
        WHERE d.structure_id = run.structure AND d.parent_node_id IS NULL;

        -- ===== THE ONE READ =====
        {{ pipeline.planner_settings_on() | indent(8) }}
        EXECUTE format($sql${{ pipeline.snapshot_read("(SELECT d.node_id, d.parent_node_id, d.node_name FROM " ~ schema ~ ".dim_hierarchy d WHERE d.structure_id = $3)") }}$sql$,
                       included, load_filter)
        INTO node_rows, applied, converted, tree_root
        USING use_case_id, pnl_date, run.structure, rule_by_node, loads_read, reporting, rates, rule_ids, rule_json,
              CASE WHEN load_filter <> '' THEN input_loads END, CASE WHEN load_filter <> '' THEN input_scens END,
              (rule_by_node ->> root_node)::bigint;
        {{ pipeline.planner_settings_off() | indent(8) }}
        IF tree_root IS DISTINCT FROM root_node THEN
            RAISE EXCEPTION 'the root of structure % changed from % to % while the snapshot read it', run.structure,
                            root_node, coalesce(tree_root, 'none')
                USING ERRCODE = 'serialization_failure', HINT = 'take the snapshot again';
        END IF;

        -- ===== WRITE =====
        INSERT INTO {{ schema }}.calculation_run_inputs (calculation_run_id, load_id, scenario, facts{% for m in measures %}, {{ m }}_sum{% endfor %})
        SELECT run.run_id, i.load_id, i.scenario, i.facts{% for m in measures %}, i.{{ m }}_sum{% endfor %}
        FROM unnest(input_loads, input_scens, input_rows{% for m in measures %}, input_{{ m }}{% endfor %})
             AS i(load_id, scenario, facts{% for m in measures %}, {{ m }}_sum{% endfor %});

        -- A rate removed since the guard read it (committed meanwhile) fails the run rather than drop facts.
        IF EXISTS (SELECT 1 FROM unnest(converted) c WHERE NOT rates ? c) THEN
            RAISE EXCEPTION 'no rate into % for % on %: removed while the snapshot ran', reporting,
                            (SELECT string_agg(c, ', ') FROM unnest(converted) c WHERE NOT rates ? c), pnl_date;
        END IF;
        INSERT INTO {{ schema }}.calculation_run_fx (calculation_run_id, currency, rate)
        SELECT run.run_id, c, (rates ->> c)::numeric FROM unnest(converted) c;

        -- The rules the read applied: those on a node of its tree, as they were read.
        INSERT INTO {{ schema }}.calculation_run_rules (calculation_run_id, rule_id, node_id, predicate_json, sql_where, logic_en)
        SELECT run.run_id, r.rule_id, r.node_id, r.predicate_json, r.sql_where, r.logic_en
        FROM unnest(rule_ids, rule_nodes, rule_json, rule_sql, rule_logic)
             AS r(rule_id, node_id, predicate_json, sql_where, logic_en)
        WHERE r.rule_id = ANY (applied);

        -- Three rows per node: {{ actual }}, {{ prior }} and {{ variance }} ({{ actual }} - {{ prior }}); plug = natural - adjusted.
        INSERT INTO {{ schema }}.fact_calculated_results (
            calculation_run_id, node_id, parent_node_id, node_name, depth, scenario,
{%- for m in measures %}
            {{ m }}_natural, {{ m }}_adjusted, {{ m }}_plug,
{%- endfor %}
            is_override, is_reconciled)
        SELECT run.run_id, x.*
        FROM ({{ pipeline.result_rows('node_rows') | indent(14) }}) x;

        UPDATE {{ schema }}.calculation_runs r
        SET status = 'COMPLETED', reporting_currency = reporting,
            rules_applied = (SELECT count(*) FROM {{ schema }}.calculation_run_rules rr WHERE rr.calculation_run_id = run.run_id),
            calculation_duration_ms = ceil(extract(epoch FROM clock_timestamp() - run.started) * 1000)::integer
        WHERE r.id = run.run_id;
    EXCEPTION WHEN OTHERS THEN
        -- ===== FAILED =====
        GET STACKED DIAGNOSTICS error_text = MESSAGE_TEXT, error_state = RETURNED_SQLSTATE;
        UPDATE {{ schema }}.calculation_runs r
        SET status = 'FAILED', reporting_currency = reporting,
            error_message = format('%s (SQLSTATE %s)', error_text, error_state),
            calculation_duration_ms = ceil(extract(epoch FROM clock_timestamp() - run.started) * 1000)::integer
        WHERE r.id = run.run_id;
        RAISE WARNING 'snapshot % of use case "%" for % FAILED: %', run.run_id, run.use_case_name, pnl_date, error_text;
    END;
    RETURN run.run_id;
END;
$fn$;
