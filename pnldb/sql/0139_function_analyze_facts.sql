-- Fresh planner statistics for the facts after a large load (issue 19 item 4): the loaders call it in
-- the load's transaction, whose own new rows ANALYZE counts. Loaders run as admins, who do not own the
-- tables, hence SECURITY DEFINER; it takes no argument, so it analyses nothing but pnldb's fact tables.
CREATE OR REPLACE FUNCTION {{ schema }}.analyze_facts() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    ANALYZE {{ schema }}.fact_pnl_entries, {{ schema }}.fact_load_slices;
{%- if sharded %}
    PERFORM {{ schema }}_shards.shard_analyze('{{ shard_layer_version }}');  -- where a coordinator's facts are
{%- endif %}
END;
$$;
