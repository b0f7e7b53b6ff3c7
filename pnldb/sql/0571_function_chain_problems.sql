-- What is wrong with a use case's chain of runs (issue 18, item 3), link by link (run_chain): a link
-- whose place does not follow the one before it (a run removed other than by purge_runs), that names
-- another predecessor, or whose recorded digest of its predecessor is not the predecessor's digest (the
-- predecessor rewritten, digest included); with `recompute`, a run whose digest is not that of its rows
-- (run_digest); and a COMPLETED run without a link taken after the chain began (written around the
-- triggers). Rows in chain order, the unlinked after, by executed_at.
CREATE OR REPLACE FUNCTION {{ schema }}.chain_problems(use_case_id uuid, recompute boolean)
RETURNS TABLE (run_id uuid, chain_seq bigint, purged boolean, problem text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
WITH links AS (
    SELECT c.*, lag(c.run_id) OVER w AS before_id, lag(c.digest) OVER w AS before_digest,
           coalesce(lag(c.chain_seq) OVER w, 0) AS before_seq
    FROM {{ schema }}.run_chain(chain_problems.use_case_id) c
    WINDOW w AS (ORDER BY c.chain_seq, c.purged)
), judged AS (
    SELECT l.run_id, l.chain_seq, l.purged, l.chain_seq AS place, NULL::timestamptz AS at,
           CASE WHEN recompute AND NOT l.purged
                     AND (SELECT {{ schema }}.run_digest(r) FROM {{ schema }}.calculation_runs r WHERE r.id = l.run_id)
                         IS DISTINCT FROM l.digest
                    THEN 'its digest is not that of its rows: its results, recorded rules, inputs, rates or header '
                         'changed after it completed'
                WHEN l.chain_seq = l.before_seq
                    THEN format('another link (run %s) holds place %s of the chain too', l.before_id, l.chain_seq)
                WHEN l.chain_seq <> l.before_seq + 1
                    THEN format('place %s of the chain, before it, is missing: a run was removed other than by '
                                'purge_runs', l.chain_seq - 1)
                WHEN l.previous_run_id IS DISTINCT FROM l.before_id
                    THEN format('it names run %s as its predecessor, the chain has %s', coalesce(l.previous_run_id::text, 'none'),
                                coalesce(l.before_id::text, 'none'))
                WHEN l.previous_digest IS DISTINCT FROM l.before_digest
                    THEN format('the digest it recorded of run %s is not that run''s digest now: run %s was rewritten',
                                l.before_id, l.before_id)
           END AS problem
    FROM links l
    UNION ALL
    SELECT r.id, NULL, false, NULL, r.executed_at,
           'COMPLETED without a place in the chain or a digest, taken after the chain began: written around the '
           'triggers'
    FROM {{ schema }}.calculation_runs r
    WHERE r.use_case_id = chain_problems.use_case_id AND r.status = 'COMPLETED' AND r.chain_seq IS NULL
      AND r.executed_at > (SELECT min(c.executed_at) FROM {{ schema }}.calculation_runs c
                           WHERE c.use_case_id = chain_problems.use_case_id AND c.chain_seq IS NOT NULL)
)
SELECT j.run_id, j.chain_seq, j.purged, j.problem FROM judged j WHERE j.problem IS NOT NULL
ORDER BY j.place NULLS LAST, j.at, j.run_id
$$;
