-- A DBA's plain INSERT (or COPY) without a load_id: the rows one transaction inserts into a use case
-- form one load (open_fact_load). Loaders open their load first and set load_id themselves.
CREATE OR REPLACE FUNCTION {{ schema }}.facts_join_a_load() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    NEW.load_id := {{ schema }}.open_fact_load(NEW.use_case_id);
    RETURN NEW;
END;
$$;

CREATE OR REPLACE TRIGGER facts_join_a_load
    BEFORE INSERT ON {{ schema }}.fact_pnl_entries
    FOR EACH ROW WHEN (NEW.load_id IS NULL)
    EXECUTE FUNCTION {{ schema }}.facts_join_a_load();
