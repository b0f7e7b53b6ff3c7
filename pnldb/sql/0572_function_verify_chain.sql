-- Checks a use case's chain of runs (issue 18, item 3): every run's digest recomputed from its rows, and
-- every link (chain_problems):
--   {"use_case_id", "intact", "links_checked", "runs_checked", "unlinked_runs", "head": {"run_id",
--    "chain_seq", "digest"} | null, "first_broken": {"run_id", "chain_seq", "purged", "problem"} | null,
--    "problems": [... at most 20]}
-- unlinked_runs counts the COMPLETED runs taken before migration 0014_integrity (no digest). The head is
-- the newest link: kept outside the database, it shows a rewrite of the whole chain too. Read-only.
CREATE OR REPLACE FUNCTION {{ schema }}.verify_chain(use_case_id uuid) RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p_use_case CONSTANT uuid := verify_chain.use_case_id;
    problems   jsonb;
    n_problems bigint;
    verdict    jsonb;
BEGIN
    IF p_use_case IS NULL THEN
        RAISE EXCEPTION 'verify_chain needs a use_case_id' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM {{ schema }}.use_cases u WHERE u.use_case_id = p_use_case) THEN
        RAISE EXCEPTION 'unknown use case %', p_use_case
            USING ERRCODE = 'no_data_found', HINT = 'use_case_id must be a {{ schema }}.use_cases.use_case_id';
    END IF;
    SELECT count(*), coalesce(jsonb_agg(jsonb_build_object('run_id', p.run_id, 'chain_seq', p.chain_seq,
                                                           'purged', p.purged, 'problem', p.problem)
                                        ORDER BY p.n), '[]')
    INTO n_problems, problems
    FROM {{ schema }}.chain_problems(p_use_case, true) WITH ORDINALITY p(run_id, chain_seq, purged, problem, n);
    SELECT jsonb_build_object(
        'use_case_id', p_use_case,
        'intact', n_problems = 0,
        'links_checked', (SELECT count(*) FROM {{ schema }}.run_chain(p_use_case)),
        'runs_checked', (SELECT count(*) FROM {{ schema }}.run_chain(p_use_case) c WHERE NOT c.purged),
        'unlinked_runs', (SELECT count(*) FROM {{ schema }}.calculation_runs r
                          WHERE r.use_case_id = p_use_case AND r.status = 'COMPLETED' AND r.chain_seq IS NULL),
        'head', (SELECT jsonb_build_object('run_id', c.run_id, 'chain_seq', c.chain_seq, 'digest', encode(c.digest, 'hex'))
                 FROM {{ schema }}.run_chain(p_use_case) c ORDER BY c.chain_seq DESC LIMIT 1),
        'first_broken', problems -> 0,
        'problems', (SELECT coalesce(jsonb_agg(x.p ORDER BY x.n), '[]')
                     FROM jsonb_array_elements(problems) WITH ORDINALITY x(p, n) WHERE x.n <= 20))
    INTO verdict;
    RETURN verdict;
END;
$$;
