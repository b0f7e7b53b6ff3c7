{#- The start of a snapshot's fact pipeline, written once for its three readers: create_snapshot (on
    today's tree and rules), verify_run and the explain functions (on the tree and rules a run recorded).
    Imported `with context`; the statement they build is run by EXECUTE format(..., included, load_filter)
    USING $1 use_case_id, $2 pnl_date, $3 the tree's key (a structure_id or a run id), $4 rule_by_node
    (jsonb: rule id by node id), $5 the load ids read, $6 the reporting currency, $7 the rates (jsonb:
    rate by currency, for the currencies other than the reporting one); and for a coordinator's shards
    (`sharded`, pnldb/cluster.py) $8 the ids of the rules, ascending, $9 their predicate_json, $10 and $11
    the (load id, scenario) pairs read when some load is read for one scenario only (NULL otherwise). And
    on either, $12 the root's governing rule, which governs the facts of no node (the root's own rule, from
    rule_by_node); a coordinator's shards take it from the node arrays instead. -#}

{#- The facts of `use_case` on `pnl_date` in `loads` (SQL expressions), as a relation for a FROM list,
    with every column of fact_pnl_entries: on a single server the table itself (the caller's WHERE
    chooses the rows, as the planner likes it), on a coordinator the rows its shards return. -#}
{% macro facts_from(use_case, pnl_date, loads) -%}
{%- if sharded -%}
{{ schema }}.shard_fact_rows({{ use_case }}, {{ pnl_date }}, {{ loads }})
{%- else -%}
{{ schema }}.fact_pnl_entries
{%- endif -%}
{%- endmacro %}

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

{#- The facts read, each with the node it maps to (mapped_node_id, NULL for none), its currency (the
    reporting currency for NULL: what a rule on `currency` compares; own_currency is the fact's own) and
    its governing rule, as a subquery `f` for a FROM list; the format() placeholder %s takes the load
    filter. `root_rule`, an SQL expression, is the root's governing rule, which governs the facts of no
    node: a parameter of the statement, not a subquery, because the rules' expression repeats the
    governing rule at every level of its tree and each copy of a subquery would be an init plan of its
    own (and a join of a one-row relation to every fact cost a tenth of a snapshot's CPU, measured in
    docs/performance.md). With `under`, an SQL expression naming a node, also in_subtree: whether the
    fact's node is at or below it (NULL for a fact of no node), found by the same hash join as the node
    itself. Parallel workers cannot read a CTE: the tree reaches them as init plans, computed once by the
    leader: the node ids with their governing rules. -#}
{% macro governed_facts(root_rule, under=none) -%}
(SELECT f.id, f.scenario, f.category_code, f.attributes,{% for m in measures %} f.{{ m }}_amount,{% endfor %}
       {% for m in measures %} f.{{ m }}_cents,{% endfor %}
        f.currency AS own_currency, coalesce(f.currency, $6) AS currency,
        g.node_id AS mapped_node_id, coalesce(g.governing_rule, {{ root_rule }}) AS governing_rule
        {%- if under %}, g.in_subtree{% endif %}
 FROM {{ facts_from("$1", "$2", "$5") }} f
 LEFT JOIN unnest((SELECT array_agg(t.node_id) FROM tree t),
                  (SELECT array_agg(t.governing_rule) FROM tree t)
                  {%- if under %}, (SELECT array_agg({{ under }} = ANY (t.path)) FROM tree t){% endif %})
        AS g(node_id, governing_rule{% if under %}, in_subtree{% endif %})
        ON g.node_id = f.category_code
 WHERE f.use_case_id = $1 AND f.pnl_date = $2 AND f.load_id = ANY ($5)%s) f
{%- endmacro %}

{#- The nodes a run recorded, as `nodes` for governing_tree ($3: the run id). -#}
{% macro run_nodes() -%}
(SELECT r.node_id, r.parent_node_id, r.node_name FROM {{ schema }}.fact_calculated_results r
 WHERE r.calculation_run_id = $3 AND r.scenario = '{{ scenarios[0] }}' AND r.node_id <> '{{ unmapped }}')
{%- endmacro %}

{#- The facts' groups: per (scenario, category_code, own currency, included flag), the sums of the
    measures; the format() placeholders %s take the rules' expression and the load filter; `root_rule`
    as for governed_facts. -#}
{% macro fact_groups(root_rule) -%}
SELECT f.scenario, f.category_code, f.own_currency, (%s) AS included,
{%- for m in measures %}
       sum(f.{{ m }}_cents) * 0.01 AS {{ m }}{{ "," if not loop.last }}
{%- endfor %}
FROM {{ governed_facts(root_rule) | indent(5) }}
GROUP BY 1, 2, 3, 4
{%- endmacro %}

{#- The whole read of a snapshot over `nodes` (see governing_tree): one read-only statement returning
    (snapshot_node[] of every node, the ids of the rules on a node of the tree, the currencies other than
    the reporting one that its facts are in, the root of the tree it read). create_snapshot runs it on
    today's tree and checks that root is the one whose rule it passed as $12; verify_run runs it on a
    run's own tree, which cannot change. -#}
{% macro snapshot_read(nodes) -%}
WITH RECURSIVE
{{ governing_tree(nodes) }},
-- Each fact's rule predicate is evaluated once, as a grouping key, by the parallel workers that scan
-- the facts. Grouped by the fact's own currency column, whose statistics the planner knows (an
-- expression's it would guess, and plan for a hundred times the groups). The measures are summed as
-- their stored integer cents (migration 0016), in int128, and the sum turned back into numeric of scale 2:
-- exactly the numeric sum, digit for digit and scale, at a fraction of its cost per fact.
-- On a coordinator, each shard runs this very aggregate over its own facts (sql/_shard_layer.sql), which
-- are spread by category_code: the shards' groups never overlap.
grouped AS (
{%- if sharded %}
    SELECT * FROM {{ schema }}.shard_fact_groups(
        $1, $2, $5, $10, $11, (SELECT array_agg(t.node_id) FROM tree t),
        (SELECT array_agg(t.governing_rule) FROM tree t), (SELECT t.node_id FROM tree t WHERE t.depth = 0), $8, $9, $6)
{%- else %}
    {{ fact_groups("$12") | indent(4) }}
{%- endif %}
),
-- In the reporting currency (contract §8): per scenario, mapped node, currency and included flag, the
-- native sums times the rate, rounded to cents; facts in the reporting currency stay exact. Rounded per
-- mapped node, not per category_code: every code of no node maps to {{ unmapped }}.
converted AS (
    SELECT coalesce(t.node_id, '{{ unmapped }}') AS node_id, g.scenario, coalesce(g.own_currency, $6) AS currency,
           g.included,
{%- for m in measures %}
           CASE WHEN coalesce(g.own_currency, $6) = $6 THEN sum(g.{{ m }})
                ELSE round(sum(g.{{ m }}) * ($7 ->> g.own_currency)::numeric, 2) END AS {{ m }}{{ "," if not loop.last }}
{%- endfor %}
    FROM grouped g
    LEFT JOIN tree t ON t.node_id = g.category_code
    GROUP BY 1, 2, g.own_currency, 4
),
-- Per node, both scenarios side by side: the facts mapped to it (own), then rolled up to every
-- ancestor along the path.
own AS (
    SELECT c.node_id,
{%- for v in node_values %}
           sum(c.{{ v.measure }}) FILTER (WHERE c.scenario = '{{ v.scenario }}'{{ " AND c.included" if v.included_only }}) AS {{ v.column }}{{ "," if not loop.last }}
{%- endfor %}
    FROM converted c
    GROUP BY 1
),
nodes AS (
    SELECT node_id, parent_node_id, node_name, depth, rule_id IS NOT NULL AS is_override, path FROM tree
    UNION ALL
    SELECT '{{ unmapped }}', t.node_id, '{{ unmapped_name }}', 1, false, ARRAY[t.node_id, '{{ unmapped }}']
    FROM tree t
    WHERE t.depth = 0 AND EXISTS (SELECT 1 FROM own o WHERE o.node_id = '{{ unmapped }}')
),
rolled AS (
    SELECT ancestor.node_id,
{%- for v in node_values %}
           sum(o.{{ v.column }}) AS {{ v.column }}{{ "," if not loop.last }}
{%- endfor %}
    FROM own o
    JOIN nodes n ON n.node_id = o.node_id
    CROSS JOIN LATERAL unnest(n.path) AS ancestor(node_id)
    GROUP BY 1
)
SELECT array_agg(ROW(n.node_id, n.parent_node_id, n.node_name, n.depth, n.is_override,
{%- for v in node_values %}
                     coalesce(r.{{ v.column }}, 0){{ "," if not loop.last }}
{%- endfor %}
                 )::{{ schema }}.snapshot_node),
       (SELECT array_agg(t.rule_id) FROM tree t WHERE t.rule_id IS NOT NULL),
       (SELECT array_agg(DISTINCT c.currency ORDER BY c.currency) FROM converted c WHERE c.currency <> $6),
       (SELECT t.node_id FROM tree t WHERE t.depth = 0)
FROM nodes n
LEFT JOIN rolled r ON r.node_id = n.node_id
{%- endmacro %}

{#- The reporting currency and the rates a finished run recorded (`run_id` an expression), as the
    pipeline's $6 and $7. -#}
{% macro run_fx(run_id) -%}
SELECT r.reporting_currency,
       coalesce((SELECT jsonb_object_agg(x.currency, x.rate) FROM {{ schema }}.calculation_run_fx x
                 WHERE x.calculation_run_id = r.id), '{}')
FROM {{ schema }}.calculation_runs r WHERE r.id = {{ run_id }}
{%- endmacro %}

{#- Planner settings for the read, set before it and restored after (`settings_was text[]` declared by
    the caller). -#}
{% macro planner_settings_on() -%}
-- Planner settings for this statement only. Its hash aggregates hold one group per
-- (scenario, category_code, currency, included), tens of MB at ten thousand nodes: below 64MB of work_mem
-- they would spill to disk. And the planner costs the rule tree (a CASE) as if every branch were
-- evaluated for every fact, hundreds of times its real cost, and charges that again at each
-- aggregation step; so it would keep the aggregation out of the parallel workers (funnelling
-- every fact through the Gather) or sort all facts by the grouping key. Hash aggregation in the
-- workers is the plan that fits: no sorts, and a Gather priced per row at least 1.
settings_was := ARRAY[current_setting('work_mem'), current_setting('enable_sort'),
                      current_setting('parallel_tuple_cost')];
IF pg_size_bytes(settings_was[1]) < pg_size_bytes('64MB') THEN
    PERFORM set_config('work_mem', '64MB', true);
END IF;
PERFORM set_config('enable_sort', 'off', true);
PERFORM set_config('parallel_tuple_cost', greatest(settings_was[3]::float8, 1)::text, true);
{%- endmacro %}

{% macro planner_settings_off() -%}
PERFORM set_config('work_mem', settings_was[1], true), set_config('enable_sort', settings_was[2], true),
        set_config('parallel_tuple_cost', settings_was[3], true);
{%- endmacro %}

{#- The result rows of a snapshot_node[] variable: three per node, ACTUAL, PRIOR and VARIANCE
    (ACTUAL - PRIOR); plug = natural - adjusted; in fact_calculated_results' column order from node_id. -#}
{% macro result_rows(node_rows) -%}
SELECT n.node_id, n.parent_node_id, n.node_name, n.depth, s.scenario,
{%- for m in measures %}
       s.{{ m }}_natural, s.{{ m }}_adjusted, s.{{ m }}_natural - s.{{ m }}_adjusted AS {{ m }}_plug,
{%- endfor %}
       n.is_override,
       {% for m in measures %}s.{{ m }}_natural = s.{{ m }}_adjusted{{ " AND " if not loop.last }}{% endfor %} AS is_reconciled
FROM unnest({{ node_rows }}) AS n
CROSS JOIN LATERAL (VALUES
{%- for sc in scenarios %}
    ('{{ sc }}'{% for m in measures %}{% for k in summed_kinds %}, n.{{ node_value(sc, m, k) }}{% endfor %}{% endfor %}),
{%- endfor %}
    ('{{ variance }}'{% for m in measures %}{% for k in summed_kinds %}, n.{{ node_value(scenarios[0], m, k) }} - n.{{ node_value(scenarios[1], m, k) }}{% endfor %}{% endfor %})
) AS s(scenario{% for m in measures %}{% for k in summed_kinds %}, {{ m }}_{{ k }}{% endfor %}{% endfor %})
{%- endmacro %}
