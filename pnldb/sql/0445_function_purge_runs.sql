-- Removes a use case's trial and FAILED runs of COB dates before `before`, with their results, recorded
-- rules, inputs and rates, and returns the counts:
--   {"use_case_id", "before", "runs_purged", "trial_runs_purged", "failed_runs_purged", "results_purged",
--    "runs_kept_official", "runs_kept_pending", "runs_kept_locked"}
-- Kept, and counted as kept: every run that was ever its unit's official run (a restatement's earlier
-- versions stay: official_run(as_of) and v_official_runs name them), the pending run of a unit, and
-- every run of a LOCKED unit (contract §7: a locked date is final). A purge that removes runs appends a
-- RUNS_PURGED event to close_events with the counts, the ids removed and their links of the chain
-- (chain: [{run_id, chain_seq, digest, previous_run_id, previous_digest}], digests in hex; run_chain).
-- The use case's lock is taken exclusively first: no snapshot, submission or approval of it runs
-- meanwhile, so what is pending or official cannot change under the purge (READ COMMITTED only, so that
-- the purge reads them as they are once it holds the lock). The runs' immutability
-- trigger lets a DELETE through only for the runs listed in runs_being_purged by this transaction, which
-- only this function writes; the list is emptied before it returns.
CREATE OR REPLACE FUNCTION {{ schema }}.purge_runs(use_case_id uuid, before date) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p_use_case CONSTANT uuid := purge_runs.use_case_id;
    p_before   CONSTANT date := purge_runs.before;
    name       text;
    purged     uuid[];
    n_failed   bigint;
    n_official bigint;
    n_pending  bigint;
    n_locked   bigint;
    n_results  bigint;
    chain      jsonb;
    summary    jsonb;
BEGIN
    -- ===== GUARDS =====
    IF p_use_case IS NULL OR p_before IS NULL THEN
        RAISE EXCEPTION 'purge_runs needs a use_case_id and a before date' USING ERRCODE = 'null_value_not_allowed';
    ELSIF NOT isfinite(p_before) THEN
        RAISE EXCEPTION 'purge_runs: before % is not a COB date', p_before
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'give a calendar date: the runs of COB dates before it are purged';
    END IF;
    -- What is pending or official is read after the lock is granted: a snapshot of the transaction
    -- taken before (REPEATABLE READ, SERIALIZABLE) could miss a submission and purge the pending run.
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'purge_runs runs only in a READ COMMITTED transaction, not %',
                        upper(current_setting('transaction_isolation'))
            USING ERRCODE = 'active_sql_transaction',
                  HINT = 'call it on its own (autocommit) or in a READ COMMITTED transaction';
    END IF;
    PERFORM {{ schema }}.lock_use_case(p_use_case, true);
    SELECT u.name INTO name FROM {{ schema }}.use_cases u WHERE u.use_case_id = p_use_case;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown use case %', p_use_case
            USING ERRCODE = 'no_data_found', HINT = 'use_case_id must be a {{ schema }}.use_cases.use_case_id';
    END IF;

    -- ===== WHAT GOES =====
    WITH runs AS (
        SELECT r.id, r.status, r.pnl_date FROM {{ schema }}.calculation_runs r
        WHERE r.use_case_id = p_use_case AND r.pnl_date < p_before
    ), states AS (
        SELECT s.pnl_date, s.status, s.pending_run_id
        FROM {{ schema }}.cob_states(p_use_case, ARRAY(SELECT DISTINCT r.pnl_date FROM runs r)) s
    ), ever_official AS (
        SELECT DISTINCT e.run_id FROM {{ schema }}.close_events e
        WHERE e.use_case_id = p_use_case AND e.action IN ('APPROVED', 'SIGNED_OFF') AND e.run_id IS NOT NULL
    ), fate AS (
        SELECT r.id, r.status,
               CASE WHEN s.status = 'LOCKED' THEN 'locked'
                    WHEN EXISTS (SELECT 1 FROM ever_official o WHERE o.run_id = r.id) THEN 'official'
                    WHEN r.id = s.pending_run_id THEN 'pending'
                    WHEN r.status IN ('COMPLETED', 'FAILED') THEN 'purged' END AS fate
        FROM runs r LEFT JOIN states s ON s.pnl_date = r.pnl_date
    )
    SELECT array_agg(f.id ORDER BY f.id) FILTER (WHERE f.fate = 'purged'),
           count(*) FILTER (WHERE f.fate = 'purged' AND f.status = 'FAILED'),
           count(*) FILTER (WHERE f.fate = 'official'), count(*) FILTER (WHERE f.fate = 'pending'),
           count(*) FILTER (WHERE f.fate = 'locked')
    INTO purged, n_failed, n_official, n_pending, n_locked
    FROM fate f;
    purged := coalesce(purged, '{}');

    -- ===== PURGE =====
    SELECT count(*) INTO n_results FROM {{ schema }}.fact_calculated_results x
    WHERE x.calculation_run_id = ANY (purged);
    -- the links of the chain that go, for verify_chain to follow across the gap
    SELECT jsonb_agg(jsonb_build_object('run_id', r.id, 'chain_seq', r.chain_seq, 'digest', encode(r.digest, 'hex'),
                                        'previous_run_id', r.previous_run_id,
                                        'previous_digest', encode(r.previous_digest, 'hex')) ORDER BY r.chain_seq)
    INTO chain
    FROM {{ schema }}.calculation_runs r WHERE r.id = ANY (purged) AND r.chain_seq IS NOT NULL;
    INSERT INTO {{ schema }}.runs_being_purged (run_id) SELECT unnest(purged);
    DELETE FROM {{ schema }}.calculation_runs r WHERE r.id = ANY (purged);  -- the rest by ON DELETE CASCADE
    DELETE FROM {{ schema }}.runs_being_purged p WHERE p.run_id = ANY (purged);

    summary := jsonb_build_object(
        'use_case_id', p_use_case, 'before', p_before, 'runs_purged', cardinality(purged),
        'trial_runs_purged', cardinality(purged) - n_failed, 'failed_runs_purged', n_failed,
        'results_purged', n_results, 'runs_kept_official', n_official, 'runs_kept_pending', n_pending,
        'runs_kept_locked', n_locked);
    IF cardinality(purged) > 0 THEN
        INSERT INTO {{ schema }}.close_events (use_case_id, use_case_name, action, details)
        VALUES (p_use_case, name, 'RUNS_PURGED',
                summary || jsonb_build_object('run_ids', to_jsonb(purged), 'chain', coalesce(chain, '[]')));
    END IF;
    RETURN summary;
END;
$$;
