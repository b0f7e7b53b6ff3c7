-- A new structure gets its lock rows (take_lock) in the transaction that creates it, as a use case does.
CREATE OR REPLACE FUNCTION {{ schema }}.structures_get_lock_rows() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO {{ schema }}.lock_rows (lock_kind, lock_key, gate)
    SELECT 'structure', n.structure_id, g FROM new_structures n, (VALUES (true), (false)) v (g)
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE TRIGGER structures_get_lock_rows
    AFTER INSERT ON {{ schema }}.hierarchy_structures REFERENCING NEW TABLE AS new_structures
    FOR EACH STATEMENT EXECUTE FUNCTION {{ schema }}.structures_get_lock_rows();
