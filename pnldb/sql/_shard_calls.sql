{#- What a coordinator and its shards agree on (issue 16), written once for the shard function
    (sql/_shard_layer.sql), its PL/Proxy function (sql/_shard_proxies.sql) and the coordinator's wrapper
    (sql/0127): the parameters and the rows of the snapshot's fact aggregate. -#}
{% macro fact_groups_parameters() -%}
use_case_id uuid, pnl_date date, load_ids bigint[], slice_loads bigint[], slice_scenarios text[], node_ids text[],
    governing_rules bigint[], root_node text, rule_ids bigint[], predicates jsonb[], reporting_currency text
{%- endmacro %}

{% macro fact_groups_rows() -%}
TABLE (scenario text, category_code text, own_currency text, included boolean
       {%- for m in measures %}, {{ m }} numeric{% endfor %})
{%- endmacro %}
