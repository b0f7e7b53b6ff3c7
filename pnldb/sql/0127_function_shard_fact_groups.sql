{%- if sharded %}
{%- import "_shard_calls.sql" as calls with context %}
-- A coordinator's fact aggregate (the fact pipeline's `grouped`): every shard's groups, for a login
-- entitled to the use case. The PL/Proxy function it calls (sql/_shard_proxies.sql) is the owner's only.
CREATE OR REPLACE FUNCTION {{ schema }}.shard_fact_groups({{ calls.fact_groups_parameters() }})
RETURNS {{ calls.fact_groups_rows() }}
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM {{ schema }}.require_use_case_entitlement(shard_fact_groups.use_case_id);
    RETURN QUERY SELECT * FROM {{ schema }}_shards.shard_fact_groups(
        '{{ shard_layer_version }}', use_case_id, pnl_date, load_ids, slice_loads, slice_scenarios, node_ids,
        governing_rules, root_node, rule_ids, predicates, reporting_currency);
END;
$$;
{%- endif %}
