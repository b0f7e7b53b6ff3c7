-- A new use case gets its lock rows (take_lock) in the transaction that creates it: were the first lock
-- to add them, every other session would wait for that lock's transaction to end.
CREATE OR REPLACE FUNCTION {{ schema }}.use_cases_get_lock_rows() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO {{ schema }}.lock_rows (lock_kind, lock_key, gate)
    SELECT 'use case', n.use_case_id::text, g FROM new_use_cases n, (VALUES (true), (false)) v (g)
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE TRIGGER use_cases_get_lock_rows
    AFTER INSERT ON {{ schema }}.use_cases REFERENCING NEW TABLE AS new_use_cases
    FOR EACH STATEMENT EXECUTE FUNCTION {{ schema }}.use_cases_get_lock_rows();
