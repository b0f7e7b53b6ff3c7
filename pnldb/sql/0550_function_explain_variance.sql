-- Where a node's adjusted {{ scenarios | join(" - ") }} variance of one measure in a finished run comes from
-- (contract §6), from the facts the run read at or below the node, included ones only. `by`:
--   'child'          one row per child of the node on the run's tree, zeros included ({{ unmapped }} is a
--                    child of the root when the run has it), plus one keyed by the node's own id when
--                    facts (of either scenario) are mapped to the node itself;
--   'category_code'  one row per category_code and currency of those facts;
--   any other text   an attribute key: one row per value and currency, facts lacking the key under key NULL.
-- By child the rows are in the run's reporting currency (rate 1), converted per mapped node and currency
-- as the snapshot converts (contract §8), so they add up to the node's adjusted variance exactly. A key of
-- the other breakdowns cuts across mapped nodes, where rounding happens, so its rows stay in each
-- currency's native amounts with the run's rate for it: they add up per currency (contract §6), and in a
-- run of one currency to the node's variance exactly. Their keys are those of every fact read at or below
-- the node, included or not, so a key whose facts are all excluded shows as zeros. Largest variances in
-- the reporting currency first, then key (NULL last), then currency.
{%- set actual, prior = scenarios %}
-- No nested loops, for the reason given in sql/0520 (run_facts).
CREATE OR REPLACE FUNCTION {{ schema }}.explain_variance(
    run_id uuid, node_id text, measure text DEFAULT '{{ measures[0] }}', by text DEFAULT 'child'
)
RETURNS TABLE (key text, actual numeric, prior numeric, variance numeric, change text, currency text, rate numeric)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp SET enable_nestloop = off SET jit = off AS $$
DECLARE
    reporting text;
BEGIN
    PERFORM {{ schema }}.check_run_node(explain_variance.run_id, explain_variance.node_id, 'explain_variance',
                                        false, NULL);
    IF explain_variance.measure IS NULL
       OR explain_variance.measure NOT IN ({% for m in measures %}'{{ m }}'{{ ", " if not loop.last }}{% endfor %}) THEN
        RAISE EXCEPTION 'explain_variance: measure must be one of {{ measures | join(", ") }}; got %',
                        coalesce(quote_literal(explain_variance.measure), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF explain_variance.by IS NULL THEN
        RAISE EXCEPTION 'explain_variance: by must be ''child'', ''category_code'' or an attribute key, got NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT r.reporting_currency INTO reporting FROM {{ schema }}.calculation_runs r WHERE r.id = explain_variance.run_id;

    RETURN QUERY
    WITH RECURSIVE run_tree AS NOT MATERIALIZED (
        SELECT r.node_id, r.parent_node_id FROM {{ schema }}.fact_calculated_results r
        WHERE r.calculation_run_id = explain_variance.run_id AND r.scenario = '{{ scenarios[0] }}'
    ),
    -- each node at or below the node with the branch it hangs from: the child it is or is below, or the
    -- node itself
    below (node_id, branch) AS (
        SELECT explain_variance.node_id, explain_variance.node_id
        UNION ALL
        SELECT t.node_id, CASE WHEN b.node_id = explain_variance.node_id THEN t.node_id ELSE b.branch END
        FROM below b JOIN run_tree t ON t.parent_node_id = b.node_id
    ),
    facts AS (
{%- for s in scenarios %}
        SELECT '{{ s }}' AS scenario, f.* FROM {{ schema }}.run_facts(explain_variance.run_id, '{{ s }}') f
        {{- "\n        UNION ALL" if not loop.last }}
{%- endfor %}
    ),
    keyed AS (
        SELECT CASE explain_variance.by WHEN 'child' THEN b.branch
                                        WHEN 'category_code' THEN f.category_code
                                        ELSE f.attributes ->> explain_variance.by END AS k,
               f.scenario, f.included, f.mapped_node_id, coalesce(f.currency, reporting) AS currency, f.rate,
               CASE explain_variance.measure
                   {% for m in measures %}WHEN '{{ m }}' THEN f.{{ m }}_amount {% endfor %}END AS amount
        FROM facts f JOIN below b ON b.node_id = f.mapped_node_id
    ),
    -- by child converted per mapped node and currency, as the snapshot converts; else native
    converted AS (
        SELECT kd.k, kd.scenario,
               CASE WHEN explain_variance.by = 'child' THEN reporting ELSE kd.currency END AS currency,
               CASE WHEN explain_variance.by = 'child' THEN 1 ELSE kd.rate END AS rate,
               CASE WHEN explain_variance.by = 'child'
                    THEN round(sum(kd.amount) FILTER (WHERE kd.included) * kd.rate, 2)
                    ELSE sum(kd.amount) FILTER (WHERE kd.included) END AS amount
        FROM keyed kd GROUP BY kd.k, kd.scenario, kd.mapped_node_id, kd.currency, kd.rate
    ),
    grouped AS (
        SELECT c.k, c.currency, max(c.rate) AS rate,
               sum(c.amount) FILTER (WHERE c.scenario = '{{ actual }}') AS actual,
               sum(c.amount) FILTER (WHERE c.scenario = '{{ prior }}') AS prior
        FROM converted c GROUP BY c.k, c.currency
    ),
    children AS (
        SELECT t.node_id FROM run_tree t
        WHERE explain_variance.by = 'child' AND t.parent_node_id = explain_variance.node_id
    ),
    sums AS (
        SELECT coalesce(g.k, c.node_id) AS k, coalesce(g.actual, 0) AS actual, coalesce(g.prior, 0) AS prior,
               coalesce(g.currency, reporting) AS currency, coalesce(g.rate, 1) AS rate
        FROM grouped g FULL JOIN children c ON c.node_id = g.k
    )
    SELECT s.k, s.actual, s.prior, s.actual - s.prior,
           CASE WHEN s.prior = 0 AND s.actual <> 0 THEN 'NEW'
                WHEN s.actual = 0 AND s.prior <> 0 THEN 'DROPPED'
                WHEN s.actual <> s.prior THEN 'CHANGED'
                ELSE 'UNCHANGED' END,
           s.currency, s.rate
    FROM sums s
    ORDER BY abs((s.actual - s.prior) * s.rate) DESC, s.k NULLS LAST, s.currency;
END;
$$;
