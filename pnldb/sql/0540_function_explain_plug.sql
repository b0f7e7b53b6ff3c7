-- Which rules make a node's plug in a finished run (contract §6): one row per rule of the run that
-- governs a fact mapped at or below the node (the rule may sit at, below or above it), plus the run's
-- rules at or below the node that govern none of them (zeros): how many of those facts it governs and
-- excludes, and the excluded amounts in the reporting currency. Only a governed fact can be excluded, so for each measure the
-- excluded sums add up to the node's plug exactly. Largest daily exclusions first.
-- Refuses what explain_node refuses (a bad run, node or scenario), with one clear error.
-- No nested loops, for the reason given in sql/0520 (run_facts).
CREATE OR REPLACE FUNCTION {{ schema }}.explain_plug(
    run_id uuid, node_id text, scenario text DEFAULT '{{ scenarios[0] }}'
)
RETURNS TABLE (rule_id bigint, rule_node_id text, logic_en text, facts_governed bigint, facts_excluded bigint,
               {% for m in measures %}{{ m }}_excluded numeric{{ ", " if not loop.last }}{% endfor %})
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp SET enable_nestloop = off SET jit = off AS $$
BEGIN
    PERFORM {{ schema }}.check_run_node(explain_plug.run_id, explain_plug.node_id, 'explain_plug',
                                        true, explain_plug.scenario);

    RETURN QUERY
    WITH RECURSIVE run_tree AS NOT MATERIALIZED (
        SELECT r.node_id, r.parent_node_id FROM {{ schema }}.fact_calculated_results r
        WHERE r.calculation_run_id = explain_plug.run_id AND r.scenario = '{{ scenarios[0] }}'
    ),
    below (node_id) AS (
        SELECT explain_plug.node_id
        UNION ALL
        SELECT t.node_id FROM below b JOIN run_tree t ON t.parent_node_id = b.node_id
    ),
    -- in the reporting currency as the snapshot converts (contract §8): per mapped node and currency, then
    -- added up per rule (all facts of one mapped node have the same governing rule)
    per_node AS (
        SELECT f.governing_rule_id AS governing_rule, count(*) AS governed,
               count(*) FILTER (WHERE NOT f.included) AS excluded,
{%- for m in measures %}
               round(sum(f.{{ m }}_amount) FILTER (WHERE NOT f.included) * f.rate, 2) AS {{ m }}{{ "," if not loop.last }}
{%- endfor %}
        FROM {{ schema }}.run_facts(explain_plug.run_id, explain_plug.scenario) f
        WHERE f.governing_rule_id IS NOT NULL AND f.mapped_node_id IN (SELECT b.node_id FROM below b)
        GROUP BY f.governing_rule_id, f.mapped_node_id, f.currency, f.rate
    ),
    per_rule AS (
        SELECT n.governing_rule, sum(n.governed) AS governed, sum(n.excluded) AS excluded,
               {% for m in measures %}sum(n.{{ m }}) AS {{ m }}{{ ", " if not loop.last }}{% endfor %}
        FROM per_node n GROUP BY n.governing_rule
    )
    SELECT rr.rule_id, rr.node_id, rr.logic_en, coalesce(p.governed, 0)::bigint, coalesce(p.excluded, 0)::bigint,
           {% for m in measures %}coalesce(p.{{ m }}, 0){{ ", " if not loop.last }}{% endfor %}
    FROM {{ schema }}.calculation_run_rules rr
    LEFT JOIN per_rule p ON p.governing_rule = rr.rule_id
    WHERE rr.calculation_run_id = explain_plug.run_id
      AND (p.governing_rule IS NOT NULL OR rr.node_id IN (SELECT b.node_id FROM below b))
    ORDER BY abs(coalesce(p.daily, 0)) DESC, rr.rule_id;
END;
$$;
