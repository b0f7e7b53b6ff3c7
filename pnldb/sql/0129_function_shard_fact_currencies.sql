{%- if sharded %}
-- A coordinator's currencies (not NULL) of a use case's facts of a date in the given (load, scenario)
-- slices, from every shard, for a login entitled to the use case (missing_fx_rates).
CREATE OR REPLACE FUNCTION {{ schema }}.shard_fact_currencies(use_case_id uuid, pnl_date date, slice_loads bigint[],
                                                              slice_scenarios text[]) RETURNS SETOF text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM {{ schema }}.require_use_case_entitlement(shard_fact_currencies.use_case_id);
    RETURN QUERY SELECT DISTINCT c FROM {{ schema }}_shards.shard_fact_currencies(
        '{{ shard_layer_version }}', use_case_id, pnl_date, slice_loads, slice_scenarios) c;
END;
$$;
{%- endif %}
