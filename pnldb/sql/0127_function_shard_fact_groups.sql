{%- if sharded %}
-- A coordinator's fact aggregate (the fact pipeline's `grouped`): every shard's groups, for a login
-- entitled to the use case. The PL/Proxy function it calls (sql/_shard_proxies.sql) is the owner's only.
CREATE OR REPLACE FUNCTION {{ schema }}.shard_fact_groups(
    use_case_id uuid, pnl_date date, load_ids bigint[], slice_loads bigint[], slice_scenarios text[], node_ids text[],
    governing_rules bigint[], root_node text, rule_ids bigint[], predicates jsonb[], reporting_currency text
) RETURNS TABLE (scenario text, category_code text, own_currency text, included boolean
                 {%- for m in measures %}, {{ m }} numeric{% endfor %})
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM {{ schema }}.require_use_case_entitlement(shard_fact_groups.use_case_id);
    RETURN QUERY SELECT * FROM {{ schema }}_shards.shard_fact_groups(
        '{{ shard_layer_version }}', use_case_id, pnl_date, load_ids, slice_loads, slice_scenarios, node_ids,
        governing_rules, root_node, rule_ids, predicates, reporting_currency);
END;
$$;
{%- endif %}
