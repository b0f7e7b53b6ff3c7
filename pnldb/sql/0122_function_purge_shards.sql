{%- if sharded %}
-- A coordinator's queued shard purges (shard_purges: a use case deleted, superseded slices purged), done:
-- the facts deleted on every shard, then the queue rows. Run after the transaction that queued them has
-- committed (the API does, after delete_use_case and purge_superseded_facts); idempotent, so a failure
-- half-way is mended by running it again. Returns {"purges", "facts_deleted"}.
CREATE OR REPLACE FUNCTION {{ schema }}.purge_shards() RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    ids     bigint[];
    deleted bigint := 0;
BEGIN
    SELECT array_agg(p.purge_id) INTO ids FROM {{ schema }}.shard_purges p;
    IF ids IS NOT NULL THEN
        SELECT coalesce(sum(n), 0)::bigint INTO deleted
        FROM (SELECT array_agg(p.load_id) AS loads, array_agg(p.pnl_date) AS dates, array_agg(p.scenario) AS scens
              FROM {{ schema }}.shard_purges p WHERE p.purge_id = ANY (ids)) q
        CROSS JOIN LATERAL {{ schema }}_shards.shard_purge('{{ shard_layer_version }}', q.loads, q.dates, q.scens) n;
        DELETE FROM {{ schema }}.shard_purges p WHERE p.purge_id = ANY (ids);
    END IF;
    RETURN jsonb_build_object('purges', coalesce(cardinality(ids), 0), 'facts_deleted', deleted);
END;
$$;
{%- endif %}
