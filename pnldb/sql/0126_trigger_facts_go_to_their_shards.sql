{%- if sharded %}
-- A coordinator keeps no fact (issue 16): after every INSERT or COPY into its facts, once the slices are
-- counted and checked (fact_loads_count_their_slices, which fires first), the new rows go to their shards,
-- by a hash of category_code as PL/Proxy hashes (hashtext, masked by the power of two of shards), in
-- batches, shard by shard, and are deleted here. Each shard commits its rows at once, under the load id of this still
-- open transaction: no run reads a load before the coordinator commits it, and the rows of a load that
-- never commits are purged by `pnldb cluster purge`.
CREATE OR REPLACE FUNCTION {{ schema }}.facts_go_to_their_shards() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM {{ schema }}_shards.shard_add_facts('{{ shard_layer_version }}', b.shard_no, b.facts)
    FROM (SELECT n.shard_no, array_agg(n.fact) AS facts
          FROM (SELECT hashtext(f.category_code) & {{ shard_count - 1 }} AS shard_no,
                       (row_number() OVER ()) / 50000 AS batch, f::{{ schema }}.fact_pnl_entries AS fact
                FROM new_facts f) n
          GROUP BY n.shard_no, n.batch
          ORDER BY n.shard_no, n.batch) b;
    PERFORM set_config('{{ schema }}.facts_sent_to_shards', pg_current_xact_id()::text, true);
    DELETE FROM {{ schema }}.fact_pnl_entries f USING new_facts n WHERE f.id = n.id;
    PERFORM set_config('{{ schema }}.facts_sent_to_shards', '', true);
    RETURN NULL;
END;
$$;

CREATE OR REPLACE TRIGGER facts_go_to_their_shards
    AFTER INSERT ON {{ schema }}.fact_pnl_entries
    REFERENCING NEW TABLE AS new_facts
    FOR EACH STATEMENT EXECUTE FUNCTION {{ schema }}.facts_go_to_their_shards();
{%- endif %}
