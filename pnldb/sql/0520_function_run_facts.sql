-- Every fact a finished run read for one scenario (contract §6), as the run read it: from the loads it
-- recorded (superseded since or not), mapped on the tree it recorded (its result rows) and governed by
-- the rules it recorded, never today's. The explain functions are built on it; the governing-rule
-- semantics stay in the fact pipeline's macros (sql/_fact_pipeline.sql), shared with create_snapshot.
-- mapped_node_id is {{ unmapped }} for a fact of no node of the run's tree; governing_rule_id and
-- governing_node_id are NULL when no rule governs the fact (it is then included). currency is the fact's
-- own (NULL: the run's reporting currency), its amounts native, and rate the one the run recorded for
-- its currency (1 for the reporting currency). Facts are in cents, so round(sum * rate, 2) per (mapped
-- node, currency, included) is the snapshot's conversion (contract §8) for every currency, the reporting
-- one included (rate 1 leaves its sums exact): the functions built on this one convert that way.
-- With under_node, only the facts mapped at or below that node of the run's tree, and with max_rows only
-- the first so many by abs(daily_amount) descending, then fact_id, in that order: the rows are chosen
-- before their rule predicates are evaluated, so explain_node's first rows of a million facts cost a
-- scan and a top-N sort, not the rules. (The other explain functions read every row.)
-- No nested loops: a run's result rows are mostly newer than their table's statistics, so the planner
-- expects about one of them and would join the run's tree (some 10,000 nodes) by nested loops, quadratic
-- in its nodes (tens of seconds at 1,000,000 facts, against about a snapshot's time by hash joins).
{%- import "_fact_pipeline.sql" as pipeline with context %}
CREATE OR REPLACE FUNCTION {{ schema }}.run_facts(run_id uuid, scenario text, under_node text DEFAULT NULL,
                                                  max_rows integer DEFAULT NULL)
RETURNS TABLE (fact_id bigint, category_code text, mapped_node_id text, attributes jsonb, currency text,
               {% for m in measures %}{{ m }}_amount numeric, {% endfor %}rate numeric, included boolean,
               governing_rule_id bigint, governing_node_id text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp SET enable_nestloop = off SET jit = off AS $fn$
DECLARE
    reading   record;  -- open_run_reading: use_case_id, pnl_date, loads, load_filter, rule_by_node, included
    reporting text;
    rates     jsonb;
BEGIN
    SELECT * INTO reading FROM {{ schema }}.open_run_reading(run_facts.run_id, 'run_facts');
    {{ pipeline.run_fx("run_facts.run_id") | indent(4) }}
    INTO reporting, rates;
    IF run_facts.scenario IS NULL
       OR run_facts.scenario NOT IN ({% for s in scenarios %}'{{ s }}'{{ ", " if not loop.last }}{% endfor %}) THEN
        RAISE EXCEPTION 'run_facts: scenario must be {{ scenarios | join(" or ") }}, got %',
                        coalesce(quote_literal(run_facts.scenario), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- The predicate expression (reading.included) names the fact columns and governing_rule unqualified:
    -- it is evaluated where the facts are the only relation, on the rows already chosen. There the
    -- governing rule is a column, so the root's rule can be its tree's subquery: it is written once.
    RETURN QUERY EXECUTE format($sql$
WITH RECURSIVE
{{ pipeline.governing_tree(pipeline.run_nodes()) }}
SELECT f.id, f.category_code, coalesce(f.mapped_node_id, '{{ unmapped }}'), f.attributes, f.own_currency,
       {% for m in measures %}f.{{ m }}_amount::numeric, {% endfor %}
       CASE WHEN f.currency = $6 THEN 1::numeric ELSE ($7 ->> f.currency)::numeric END,
       f.included, f.governing_rule, g.node_id
FROM (SELECT f.*, (%s) AS included
      FROM (SELECT f.*
            FROM {{ pipeline.governed_facts("(SELECT t.governing_rule FROM tree t WHERE t.depth = 0)", under="$9") | indent(17) }}
            WHERE f.scenario = $8
              AND ($9 IS NULL OR coalesce(f.in_subtree, $9 = '{{ unmapped }}'
                                          OR $9 = (SELECT t.node_id FROM tree t WHERE t.depth = 0)))
            ORDER BY abs(f.daily_amount) DESC, f.id
            LIMIT $10) f) f
LEFT JOIN tree g ON g.rule_id = f.governing_rule
ORDER BY abs(f.daily_amount) DESC, f.id
$sql$, reading.included, reading.load_filter)
    USING reading.use_case_id, reading.pnl_date, run_facts.run_id, reading.rule_by_node, reading.loads,
          reporting, rates, run_facts.scenario, run_facts.under_node, run_facts.max_rows;
END;
$fn$;
