-- The use-case lock, held to the end of the transaction: snapshots take it shared; rule writes, fact
-- loads, purges, delete_use_case and the close's steps take it exclusive. A row lock (see take_lock):
-- queued fairly, so a stream of snapshots cannot starve a writer waiting its turn; out of reach of roles
-- outside pnldb's; bounded by the limit lock_wait_ms; and refusing a transaction whose snapshot predates
-- the latest exclusive holder's commit. SECURITY DEFINER: callers need no privilege on lock_rows. A
-- login not entitled to the use case is refused first, before it waits or makes anyone wait.
CREATE OR REPLACE FUNCTION {{ schema }}.lock_use_case(use_case_id uuid, exclusive boolean) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM {{ schema }}.require_use_case_entitlement(lock_use_case.use_case_id);
    PERFORM {{ schema }}.take_lock('use case', lock_use_case.use_case_id::text, lock_use_case.exclusive);
END;
$$;
