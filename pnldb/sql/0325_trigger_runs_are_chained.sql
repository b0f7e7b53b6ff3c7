-- A run that completes gets its place in its use case's chain and its digest (run_digest), set here
-- whatever the caller sends. Concurrent snapshots of one use case (other dates) take their places in
-- the order they complete: the chain lock below, exclusive per use case, is taken just before the link
-- is read and held to commit, so the next one reads this link committed. (Under REPEATABLE READ a
-- snapshot cannot read a link committed after it started: it fails on the unique place instead of
-- forking the chain.) Named to run after every other BEFORE UPDATE trigger of the table: the digest is
-- of the header as it is stored.
CREATE OR REPLACE FUNCTION {{ schema }}.runs_are_chained() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    last record;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('pnldb.run_chain:' || NEW.use_case_id, 0));
    SELECT c.run_id, c.chain_seq, c.digest INTO last
    FROM {{ schema }}.run_chain(NEW.use_case_id) c ORDER BY c.chain_seq DESC LIMIT 1;
    NEW.chain_seq := coalesce(last.chain_seq, 0) + 1;
    NEW.previous_run_id := last.run_id;
    NEW.previous_digest := last.digest;
    NEW.digest := {{ schema }}.run_digest(NEW);
    RETURN NEW;
END;
$$;

CREATE OR REPLACE TRIGGER zz_calculation_runs_are_chained
    BEFORE UPDATE ON {{ schema }}.calculation_runs
    FOR EACH ROW WHEN (OLD.status = 'IN_PROGRESS' AND NEW.status = 'COMPLETED')
    EXECUTE FUNCTION {{ schema }}.runs_are_chained();
