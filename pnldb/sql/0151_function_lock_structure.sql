-- The structure lock, held to the end of the transaction: snapshots take it shared; edits of the
-- structure's tree take it exclusive, so two edits of one tree never interleave and a snapshot whose
-- transaction predates an edit's commit is refused (contract: robustness). A row lock, as lock_use_case.
CREATE OR REPLACE FUNCTION {{ schema }}.lock_structure(structure_id text, exclusive boolean) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM {{ schema }}.take_lock('structure', lock_structure.structure_id, lock_structure.exclusive);
END;
$$;
