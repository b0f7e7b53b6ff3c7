-- The start of create_snapshot: its guards, then its run header, IN_PROGRESS. Bad input (a missing
-- argument, a COB date of 'infinity', an unknown use case, an empty structure, no ACTUAL facts, a fact
-- currency without a rate for the date, a triggered_by or run name that does not fit or is not a label
-- (label_problem), a taken run name, a date that has max_runs_per_date runs already) raises an error
-- before anything is written. Takes the use case's lock and its structure's (shared) and the lock on
-- its runs of that date, all held to the end of the transaction; a transaction whose snapshot predates
-- a change they guard is refused (take_lock).
-- Run names: unique per use case and date among the runs that are not FAILED, so a retry of a failed
-- run may take its name. The default is "Run N": N is one more than the date's runs that are not
-- FAILED, or the first number after it that no such run is named with.
CREATE OR REPLACE FUNCTION {{ schema }}.open_snapshot_run(
    snapshot_use_case uuid, snapshot_date date, requested_name text, requested_by text,
    OUT run_id uuid, OUT started timestamptz, OUT structure text, OUT use_case_name text
)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    name         text := requested_name;
    problem      text;
    runs_of_date bigint;
    live_runs    bigint;
    cap          integer;
BEGIN
    started := clock_timestamp();
    IF snapshot_use_case IS NULL OR snapshot_date IS NULL THEN
        RAISE EXCEPTION 'create_snapshot needs a use_case_id and a pnl_date' USING ERRCODE = 'null_value_not_allowed';
    ELSIF NOT isfinite(snapshot_date) THEN
        RAISE EXCEPTION 'create_snapshot: pnl_date % is not a COB date', snapshot_date
            USING ERRCODE = 'invalid_parameter_value', HINT = 'give a calendar date, e.g. 2025-12-24';
    END IF;
    -- Shared: snapshots run side by side; rule writers, fact loads and delete_use_case wait for them.
    -- Fresh: a transaction whose snapshot predates the latest committed write of the use case's facts or
    -- rules, or of its structure's tree, is refused here (take_lock), before anything is written.
    PERFORM {{ schema }}.lock_use_case(snapshot_use_case, false);
    SELECT u.structure_id, u.name INTO structure, use_case_name
    FROM {{ schema }}.use_cases u WHERE u.use_case_id = snapshot_use_case;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown use case %', snapshot_use_case
            USING ERRCODE = 'no_data_found', HINT = 'use_case_id must be a {{ schema }}.use_cases.use_case_id';
    END IF;
    PERFORM {{ schema }}.require_active_use_case(snapshot_use_case);
    PERFORM {{ schema }}.lock_structure(structure, false);
    IF NOT EXISTS (SELECT 1 FROM {{ schema }}.dim_hierarchy h WHERE h.structure_id = structure) THEN
        RAISE EXCEPTION 'use case "%": its structure % has no nodes', use_case_name, structure
            USING ERRCODE = 'no_data_found', HINT = 'load the hierarchy first';
    END IF;
    PERFORM {{ schema }}.check_structure_is_one_tree(structure, use_case_name);
    IF NOT EXISTS (SELECT 1 FROM {{ schema }}.fact_load_slices s
                   WHERE s.use_case_id = snapshot_use_case AND s.pnl_date = snapshot_date AND s.scenario = 'ACTUAL'
                     AND s.superseded_at IS NULL AND s.rows > 0) THEN
        RAISE EXCEPTION 'nothing to snapshot: use case "%" has no ACTUAL facts for %', use_case_name, snapshot_date
            USING ERRCODE = 'no_data_found', HINT = 'load the facts for that date first';
    END IF;
    -- Every currency of the date's facts has a rate into the reporting currency (contract §8).
    DECLARE
        missing text[] := {{ schema }}.missing_fx_rates(snapshot_use_case, snapshot_date);
    BEGIN
        IF cardinality(missing) > 0 THEN
            RAISE EXCEPTION 'use case "%" reports in %, and no rate into it is loaded for %',
                            use_case_name,
                            (SELECT u.reporting_currency FROM {{ schema }}.use_cases u WHERE u.use_case_id = snapshot_use_case),
                            (SELECT string_agg(format('(%s, %s)', c, snapshot_date), ', ') FROM unnest(missing) c)
                USING ERRCODE = 'no_data_found', HINT = 'load the rates of that date first: pnldb load fx FILE';
        END IF;
    END;
    -- ===== WHO AND THE NAME =====
    problem := CASE WHEN length(requested_by) > 100 THEN format('is %s characters long', length(requested_by))
                    ELSE {{ schema }}.label_problem(requested_by) END;
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'triggered_by %: it must be 1 to 100 characters, not blank, and without control characters',
                        problem
            USING ERRCODE = CASE WHEN length(requested_by) > 100 THEN 'string_data_right_truncation'
                                 ELSE 'invalid_parameter_value' END,
                  HINT = 'leave it out for the session user, or say who or what triggered the run';
    END IF;
    problem := CASE WHEN length(name) > 200 THEN format('is %s characters long', length(name))
                    ELSE {{ schema }}.label_problem(name) END;
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'run name %: it must be 1 to 200 characters, not blank, and without control characters',
                        problem
            USING ERRCODE = 'invalid_parameter_value', HINT = 'choose another run name, or leave it out for "Run N"';
    END IF;

    -- One run at a time per use case and date: names stay unique and in order. The key is the same
    -- whatever the session's DateStyle.
    PERFORM {{ schema }}.take_lock('run date', snapshot_use_case || ':' || to_char(snapshot_date, 'YYYY-MM-DD'),
                                   true);

    -- ===== THE CAP AND THE RUN NAME =====
    SELECT count(*), count(*) FILTER (WHERE r.status <> 'FAILED') INTO runs_of_date, live_runs
    FROM {{ schema }}.calculation_runs r
    WHERE r.use_case_id = snapshot_use_case AND r.pnl_date = snapshot_date;
    cap := {{ schema }}.limit_value('max_runs_per_date');
    IF runs_of_date >= cap THEN
        RAISE EXCEPTION 'use case "%" has % runs for % already, the most one date may have (limit max_runs_per_date)',
                        use_case_name, runs_of_date, snapshot_date
            USING ERRCODE = 'program_limit_exceeded',
                  HINT = format('remove its trial and FAILED runs: pnldb runs purge --use-case %s --before %s '
                                '(purge_runs); or an admin raises the limit: UPDATE {{ schema }}.limits SET value = %s '
                                'WHERE name = ''max_runs_per_date''', snapshot_use_case, snapshot_date + 1, cap * 2);
    END IF;
    IF name IS NULL THEN
        -- The least free number from live_runs + 1 on: that one, or one just after a number taken.
        WITH taken AS (
            SELECT substr(r.run_name, 5)::bigint AS n FROM {{ schema }}.calculation_runs r
            WHERE r.use_case_id = snapshot_use_case AND r.pnl_date = snapshot_date AND r.status <> 'FAILED'
              AND r.run_name ~ '^Run [1-9][0-9]{0,17}$'
        )
        SELECT 'Run ' || min(c.n) INTO name
        FROM (SELECT live_runs + 1 AS n UNION ALL SELECT t.n + 1 FROM taken t WHERE t.n > live_runs) c
        WHERE NOT EXISTS (SELECT 1 FROM taken t WHERE t.n = c.n);
    ELSIF EXISTS (SELECT 1 FROM {{ schema }}.calculation_runs r
                  WHERE r.use_case_id = snapshot_use_case AND r.pnl_date = snapshot_date AND r.run_name = name
                    AND r.status <> 'FAILED') THEN
        RAISE EXCEPTION 'use case "%" already has a run named % for %', use_case_name, quote_literal(name), snapshot_date
            USING ERRCODE = 'unique_violation', HINT = 'choose another run name, or leave it out for "Run N"';
    END IF;

    -- executed_by: the login that ran it (create_snapshot is SECURITY DEFINER: session_user, never
    -- current_user), the person four-eyes keeps from approving it (contract §7).
    INSERT INTO {{ schema }}.calculation_runs (pnl_date, use_case_id, run_name, executed_at, status, triggered_by,
                                               executed_by)
    VALUES (snapshot_date, snapshot_use_case, name, started, 'IN_PROGRESS', coalesce(requested_by, session_user),
            session_user)
    RETURNING id INTO run_id;
END;
$fn$;
