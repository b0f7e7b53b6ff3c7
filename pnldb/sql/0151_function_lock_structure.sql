-- The structure lock, held to the end of the transaction: snapshots take it shared; edits of the
-- structure's tree take it exclusive, so two edits of one tree never interleave (contract: robustness).
CREATE OR REPLACE FUNCTION {{ schema }}.lock_structure(structure_id text, exclusive boolean) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    key CONSTANT bigint := hashtextextended('pnldb.structure:' || lock_structure.structure_id, 0);
BEGIN
    IF exclusive THEN
        PERFORM pg_advisory_xact_lock(key);
    ELSE
        PERFORM pg_advisory_xact_lock_shared(key);
    END IF;
END;
$$;
