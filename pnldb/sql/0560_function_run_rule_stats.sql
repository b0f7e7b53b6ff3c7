-- Every rule of a finished run with what it did to the run's {{ scenarios[0] }} facts (contract §6): explain_plug at
-- the root (facts governed and excluded, excluded amounts), plus missing_fields, the attribute keys its
-- conditions name (not category_code, not a measure) that none of the facts it governs carries: a
-- misspelt attribute excludes everything it governs, and this is how a user finds it. missing_fields is
-- empty for a rule that governs no facts. One read of the facts serves both. Largest daily exclusions
-- first, as explain_plug; excluded amounts in the reporting currency, as explain_plug converts them.
-- No nested loops, for the reason given in sql/0520 (run_facts): the run's tree walks by hash joins.
CREATE OR REPLACE FUNCTION {{ schema }}.run_rule_stats(run_id uuid)
RETURNS TABLE (rule_id bigint, rule_node_id text, logic_en text, facts_governed bigint, facts_excluded bigint,
               {% for m in measures %}{{ m }}_excluded numeric, {% endfor %}missing_fields text[])
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp SET enable_nestloop = off SET jit = off AS $$
BEGIN
    PERFORM FROM {{ schema }}.open_run_reading(run_rule_stats.run_id, 'run_rule_stats');

    RETURN QUERY
    WITH governed AS MATERIALIZED (
        SELECT f.governing_rule_id AS governing_rule, f.included, f.attributes, f.mapped_node_id, f.currency, f.rate,
               {% for m in measures %}f.{{ m }}_amount{{ ", " if not loop.last }}{% endfor %}
        FROM {{ schema }}.run_facts(run_rule_stats.run_id, '{{ scenarios[0] }}') f
        WHERE f.governing_rule_id IS NOT NULL
    ),
    -- in the reporting currency as explain_plug converts: per mapped node and currency, then per rule
    per_node AS (
        SELECT g.governing_rule, count(*) AS governed, count(*) FILTER (WHERE NOT g.included) AS excluded,
{%- for m in measures %}
               round(sum(g.{{ m }}_amount) FILTER (WHERE NOT g.included) * g.rate, 2) AS {{ m }}{{ "," if not loop.last }}
{%- endfor %}
        FROM governed g GROUP BY g.governing_rule, g.mapped_node_id, g.currency, g.rate
    ),
    per_rule AS (
        SELECT n.governing_rule, sum(n.governed)::bigint AS governed, sum(n.excluded)::bigint AS excluded,
               {% for m in measures %}sum(n.{{ m }}) AS {{ m }}{{ ", " if not loop.last }}{% endfor %}
        FROM per_node n GROUP BY n.governing_rule
    ),
    run_rules AS (
        SELECT rr.rule_id, rr.node_id, rr.logic_en, rr.predicate_json
        FROM {{ schema }}.calculation_run_rules rr WHERE rr.calculation_run_id = run_rule_stats.run_id
    ),
    -- the attribute keys a rule's conditions name
    attribute_fields AS (
        SELECT r.rule_id, a.field
        FROM run_rules r CROSS JOIN unnest({{ schema }}.rule_attribute_fields(r.predicate_json)) AS a(field)
    ),
    -- a fact carries a field when it has a value for it, as the predicates read it (a JSON null is none);
    -- listed in alphabetical order
    missing AS (
        SELECT a.rule_id, array_agg(a.field ORDER BY a.field) AS fields
        FROM (SELECT af.rule_id, af.field FROM attribute_fields af
              JOIN governed g ON g.governing_rule = af.rule_id
              GROUP BY 1, 2 HAVING NOT bool_or((g.attributes ->> af.field) IS NOT NULL)) a
        GROUP BY a.rule_id
    )
    SELECT r.rule_id, r.node_id, r.logic_en, coalesce(p.governed, 0), coalesce(p.excluded, 0),
           {% for m in measures %}coalesce(p.{{ m }}, 0), {% endfor %}coalesce(ms.fields, '{}')
    FROM run_rules r
    LEFT JOIN per_rule p ON p.governing_rule = r.rule_id
    LEFT JOIN missing ms ON ms.rule_id = r.rule_id
    ORDER BY abs(coalesce(p.daily, 0)) DESC, r.rule_id;
END;
$$;
