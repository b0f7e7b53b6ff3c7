-- The chain of a use case's COMPLETED runs, link by link in chain order: the runs that exist, and those
-- purge_runs removed, as its RUNS_PURGED close events recorded them (their digests can no longer be
-- recomputed; the close events are append-only). FAILED runs and runs taken before migration
-- 0014_integrity have no link. SECURITY DEFINER: it reads the RUNS_PURGED events of close_events, which
-- others read through v_close_events; it shows ids and digests only, of a use case the session's login
-- is entitled to (none of another's).
CREATE OR REPLACE FUNCTION {{ schema }}.run_chain(use_case_id uuid)
RETURNS TABLE (run_id uuid, chain_seq bigint, digest bytea, previous_run_id uuid, previous_digest bytea,
               purged boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
SELECT r.id, r.chain_seq, r.digest, r.previous_run_id, r.previous_digest, false
FROM {{ schema }}.calculation_runs r
WHERE r.use_case_id = run_chain.use_case_id AND r.chain_seq IS NOT NULL
  AND ((SELECT {{ schema }}.entitled_to_all_use_cases()) OR r.use_case_id = ANY ((SELECT {{ schema }}.entitled_use_cases())::uuid[]))
UNION ALL
SELECT (l ->> 'run_id')::uuid, (l ->> 'chain_seq')::bigint, decode(l ->> 'digest', 'hex'),
       (l ->> 'previous_run_id')::uuid, decode(l ->> 'previous_digest', 'hex'), true
FROM {{ schema }}.close_events e, jsonb_array_elements(e.details -> 'chain') l
WHERE e.use_case_id = run_chain.use_case_id AND e.action = 'RUNS_PURGED'
  AND ((SELECT {{ schema }}.entitled_to_all_use_cases()) OR e.use_case_id = ANY ((SELECT {{ schema }}.entitled_use_cases())::uuid[]))
ORDER BY 2
$$;
