-- The use-case lock, held to the end of the transaction: snapshots take it shared; rule writes, fact
-- loads and delete_use_case take it exclusive. An advisory lock rather than a row lock because the
-- lock manager queues requests fairly: a stream of snapshots cannot starve a writer waiting its turn.
CREATE OR REPLACE FUNCTION {{ schema }}.lock_use_case(use_case_id uuid, exclusive boolean) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    key CONSTANT bigint := hashtextextended('pnldb.use_case:' || lock_use_case.use_case_id::text, 0);
BEGIN
    IF exclusive THEN
        PERFORM pg_advisory_xact_lock(key);
    ELSE
        PERFORM pg_advisory_xact_lock_shared(key);
    END IF;
END;
$$;
