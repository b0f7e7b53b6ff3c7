-- A run that completes gets its place in its use case's chain and its digest (run_digest), set here,
-- at commit, whatever the caller sent. Concurrent snapshots of one use case (other dates) run side by
-- side and take their places in the order they commit: the chain lock below, exclusive per use case, is
-- taken by this deferred trigger, as the transaction commits, just before the last link is read, so the
-- next one to commit reads this link committed. (Under REPEATABLE READ a transaction cannot read a link
-- committed after it started: its commit fails on the unique place instead of forking the chain.)
-- SECURITY DEFINER: at commit it runs outside create_snapshot, as the caller, who may not write runs.
CREATE OR REPLACE FUNCTION {{ schema }}.runs_are_chained() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    last   record;
    linked {{ schema }}.calculation_runs;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('pnldb.run_chain:' || NEW.use_case_id, 0));
    SELECT c.run_id, c.chain_seq, c.digest INTO last
    FROM {{ schema }}.run_chain(NEW.use_case_id) c ORDER BY c.chain_seq DESC LIMIT 1;
    SELECT r.* INTO linked FROM {{ schema }}.calculation_runs r WHERE r.id = NEW.id;
    linked.chain_seq := coalesce(last.chain_seq, 0) + 1;
    linked.previous_run_id := last.run_id;
    linked.previous_digest := last.digest;
    UPDATE {{ schema }}.calculation_runs r
    SET chain_seq = linked.chain_seq, previous_run_id = linked.previous_run_id,
        previous_digest = linked.previous_digest, digest = {{ schema }}.run_digest(linked)
    WHERE r.id = NEW.id;
    RETURN NULL;
END;
$$;

-- A constraint trigger (to be deferred) has no CREATE OR REPLACE, and a DROP would wait for every reader
-- of the runs: an existing one is kept, its catalog row rewritten (disabled and enabled again in this
-- transaction) so that the install counts it as defined. A change to its definition takes a new name.
DO $trigger$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_trigger t
               WHERE t.tgrelid = '{{ schema }}.calculation_runs'::regclass AND t.tgname = 'calculation_runs_are_chained') THEN
        ALTER TABLE {{ schema }}.calculation_runs DISABLE TRIGGER calculation_runs_are_chained;
        ALTER TABLE {{ schema }}.calculation_runs ENABLE TRIGGER calculation_runs_are_chained;
    ELSE
        CREATE CONSTRAINT TRIGGER calculation_runs_are_chained
            AFTER UPDATE ON {{ schema }}.calculation_runs DEFERRABLE INITIALLY DEFERRED
            FOR EACH ROW WHEN (OLD.status = 'IN_PROGRESS' AND NEW.status = 'COMPLETED')
            EXECUTE FUNCTION {{ schema }}.runs_are_chained();
    END IF;
END;
$trigger$;
