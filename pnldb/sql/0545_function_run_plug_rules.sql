-- Every plug of a finished run, by rule, in one read (what a report shows beside its tree): for each node
-- and scenario ({{ scenarios | join(", ") }}) with excluded facts at or below it, each rule of the run that
-- excluded some of them, with how many and their sums in the reporting currency. These are explain_plug's excluded columns for
-- every node at once (the rules that exclude nothing there are left out); they add up to the node's plug.
-- No nested loops, for the reason given in sql/0520 (run_facts).
CREATE OR REPLACE FUNCTION {{ schema }}.run_plug_rules(run_id uuid)
RETURNS TABLE (node_id text, scenario text, rule_id bigint, rule_node_id text, logic_en text, facts_excluded bigint,
               {% for m in measures %}{{ m }}_excluded numeric{{ ", " if not loop.last }}{% endfor %})
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp SET enable_nestloop = off SET jit = off AS $$
    WITH RECURSIVE run_tree AS NOT MATERIALIZED (
        SELECT r.node_id, r.parent_node_id FROM {{ schema }}.fact_calculated_results r
        WHERE r.calculation_run_id = run_plug_rules.run_id AND r.scenario = '{{ scenarios[0] }}'
    ),
    paths (node_id, path) AS (
        SELECT t.node_id, ARRAY[t.node_id] FROM run_tree t WHERE t.parent_node_id IS NULL
        UNION ALL
        SELECT t.node_id, p.path || t.node_id FROM paths p JOIN run_tree t ON t.parent_node_id = p.node_id
    ),
    ancestry (node_id, ancestor) AS (
        SELECT p.node_id, a.ancestor FROM paths p CROSS JOIN LATERAL unnest(p.path) AS a(ancestor)
    ),
    -- in the reporting currency as the snapshot converts (contract §8): per mapped node and currency
    excluded AS (
        SELECT s.scenario, f.mapped_node_id, f.governing_rule_id, count(*) AS facts,
               {% for m in measures %}round(sum(f.{{ m }}_amount) * f.rate, 2) AS {{ m }}{{ ", " if not loop.last }}{% endfor %}
        FROM (VALUES {% for s in scenarios %}('{{ s }}'){{ ", " if not loop.last }}{% endfor %}) AS s(scenario)
        CROSS JOIN LATERAL {{ schema }}.run_facts(run_plug_rules.run_id, s.scenario) f
        WHERE NOT f.included
        GROUP BY 1, 2, 3, f.currency, f.rate
    )
    SELECT a.ancestor, e.scenario, e.governing_rule_id, rr.node_id, rr.logic_en, sum(e.facts)::bigint,
           {% for m in measures %}sum(e.{{ m }}){{ ", " if not loop.last }}{% endfor %}
    FROM excluded e
    JOIN ancestry a ON a.node_id = e.mapped_node_id
    JOIN {{ schema }}.calculation_run_rules rr
      ON rr.calculation_run_id = run_plug_rules.run_id AND rr.rule_id = e.governing_rule_id
    GROUP BY a.ancestor, e.scenario, e.governing_rule_id, rr.node_id, rr.logic_en
    ORDER BY 1, 2, abs(sum(e.daily)) DESC, 3
$$;
