-- A DBA's plain INSERT (or COPY) without a load_id: the rows one transaction inserts into a use case
-- form one load (open_fact_load). Loaders open their load first and set load_id themselves. The last
-- load found is kept in a transaction-local setting, so a many-row INSERT asks fact_loads once, not
-- once per row; a setting forged to name another load gains nothing, as the slice-counting trigger
-- refuses facts of any load this transaction did not open for their use case.
CREATE OR REPLACE FUNCTION {{ schema }}.facts_join_a_load() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    key    CONSTANT text := pg_current_xact_id()::text || '/' || NEW.use_case_id::text || '/';
    cached CONSTANT text := coalesce(current_setting('{{ schema }}.transaction_fact_load', true), '');
BEGIN
    IF starts_with(cached, key) THEN
        NEW.load_id := substr(cached, length(key) + 1)::bigint;
        RETURN NEW;
    END IF;
    NEW.load_id := {{ schema }}.open_fact_load(NEW.use_case_id);
    PERFORM set_config('{{ schema }}.transaction_fact_load', key || NEW.load_id, true);
    RETURN NEW;
END;
$$;

CREATE OR REPLACE TRIGGER facts_join_a_load
    BEFORE INSERT ON {{ schema }}.fact_pnl_entries
    FOR EACH ROW WHEN (NEW.load_id IS NULL)
    EXECUTE FUNCTION {{ schema }}.facts_join_a_load();
