{%- if sharded %}
-- A coordinator's facts of a use case on a date (NULL: every date) in the given loads (NULL: every load),
-- from every shard, for a login entitled to the use case: what the fact table is on a single server.
CREATE OR REPLACE FUNCTION {{ schema }}.shard_fact_rows(use_case_id uuid, pnl_date date, load_ids bigint[])
RETURNS SETOF {{ schema }}.fact_pnl_entries
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM {{ schema }}.require_use_case_entitlement(shard_fact_rows.use_case_id);
    RETURN QUERY SELECT * FROM {{ schema }}_shards.shard_fact_rows('{{ shard_layer_version }}', use_case_id,
                                                                   pnl_date, load_ids);
END;
$$;
{%- endif %}
