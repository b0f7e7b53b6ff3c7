-- A date that gets facts gets the lock rows of its runs (take_lock) in the loading transaction, which
-- holds the use case's lock exclusively: snapshots of the date, which need its facts, never wait for
-- another snapshot's transaction to add them.
CREATE OR REPLACE FUNCTION {{ schema }}.fact_slices_get_lock_rows() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO {{ schema }}.lock_rows (lock_kind, lock_key, gate)
    SELECT DISTINCT 'run date', n.use_case_id || ':' || to_char(n.pnl_date, 'YYYY-MM-DD'), g
    FROM new_slices n, (VALUES (true), (false)) v (g)
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE TRIGGER fact_slices_get_lock_rows
    AFTER INSERT ON {{ schema }}.fact_load_slices REFERENCING NEW TABLE AS new_slices
    FOR EACH STATEMENT EXECUTE FUNCTION {{ schema }}.fact_slices_get_lock_rows();
