{#- The start of a snapshot's fact pipeline, written once for its three readers: create_snapshot (on
    today's tree and rules), verify_run and the explain functions (on the tree and rules a run recorded).
    Imported `with context`; the statement they build is run by EXECUTE format(..., included, load_filter)
    USING $1 use_case_id, $2 pnl_date, $3 the tree's key (a structure_id or a run id), $4 rule_by_node
    (jsonb: rule id by node id), $5 the load ids read. -#}

{#- The tree CTE over `nodes`, a relation of (node_id, parent_node_id, node_name) with one root: each
    node with its depth, path from the root, own rule and governing rule. -#}
{% macro governing_tree(nodes) -%}
-- The governing rule of a node is its own rule, else its parent's governing rule.
tree AS (
    SELECT h.node_id, h.parent_node_id, h.node_name, 0 AS depth, ($4 ->> h.node_id)::bigint AS governing_rule,
           ($4 ->> h.node_id)::bigint AS rule_id, ARRAY[h.node_id] AS path
    FROM {{ nodes }} h
    WHERE h.parent_node_id IS NULL
    UNION ALL
    SELECT c.node_id, c.parent_node_id, c.node_name, t.depth + 1, coalesce(($4 ->> c.node_id)::bigint, t.governing_rule),
           ($4 ->> c.node_id)::bigint, t.path || c.node_id
    FROM tree t
    JOIN {{ nodes }} c ON c.parent_node_id = t.node_id
)
{%- endmacro %}

{#- The facts read, each with the node it maps to (mapped_node_id, NULL for none) and its governing
    rule, as a subquery `f` for a FROM list; the format() placeholder %s takes the load filter. Parallel
    workers cannot read a CTE: the tree reaches them as init plans, computed once by the leader: the node
    ids with their governing rules, and the root's governing rule, which governs the facts of no node. -#}
{% macro governed_facts() -%}
(SELECT f.id, f.scenario, f.category_code, f.attributes,{% for m in measures %} f.{{ m }}_amount,{% endfor %}
        g.node_id AS mapped_node_id, coalesce(g.governing_rule, root.governing_rule) AS governing_rule
 FROM {{ schema }}.fact_pnl_entries f
 LEFT JOIN unnest((SELECT array_agg(t.node_id) FROM tree t),
                  (SELECT array_agg(t.governing_rule) FROM tree t)) AS g(node_id, governing_rule)
        ON g.node_id = f.category_code
 CROSS JOIN unnest(ARRAY[(SELECT t.governing_rule FROM tree t WHERE t.depth = 0)]) AS root(governing_rule)
 WHERE f.use_case_id = $1 AND f.pnl_date = $2 AND f.load_id = ANY ($5)%s) f
{%- endmacro %}

{#- The nodes a run recorded, as `nodes` for governing_tree ($3: the run id). -#}
{% macro run_nodes() -%}
(SELECT r.node_id, r.parent_node_id, r.node_name FROM {{ schema }}.fact_calculated_results r
 WHERE r.calculation_run_id = $3 AND r.scenario = '{{ scenarios[0] }}' AND r.node_id <> '{{ unmapped }}')
{%- endmacro %}
