-- A load's facts go with it: once per statement, for all the loads it deleted. Loads are deleted only
-- with their use case (the cascade of delete_use_case; fact_loads_are_history refuses any other delete),
-- so this is how a use case's facts go with it, set-based, since the facts have no foreign key of their
-- own to check row by row on every load (migration 0017_fast_loads).
CREATE OR REPLACE FUNCTION {{ schema }}.fact_loads_take_their_facts() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
{%- if sharded %}
    -- On a coordinator the facts are on the shards: queued, for `pnldb cluster purge` once this commits.
    INSERT INTO {{ schema }}.shard_purges (load_id) SELECT DISTINCT o.load_id FROM old_loads o;
{%- else %}
    DELETE FROM {{ schema }}.fact_pnl_entries f
    USING (SELECT DISTINCT o.load_id FROM old_loads o) o
    WHERE f.load_id = o.load_id;
{%- endif %}
    RETURN NULL;
END;
$$;

CREATE OR REPLACE TRIGGER fact_loads_take_their_facts
    AFTER DELETE ON {{ schema }}.fact_loads
    REFERENCING OLD TABLE AS old_loads
    FOR EACH STATEMENT EXECUTE FUNCTION {{ schema }}.fact_loads_take_their_facts();
