-- The checks a submission must pass (contract §7), evaluated by check_run: every ERROR check passes and
-- every failing WARNING check has a non-empty reason in acknowledgements ({"CODE": "reason"}, codes of
-- the built-in checks only). Refuses with one error whose DETAIL holds one line per failing check (what
-- `pnldb close` prints line by line); returns check_run's result otherwise.
CREATE OR REPLACE FUNCTION {{ schema }}.close_require_checks(run_id uuid, acknowledgements jsonb, action text)
RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    acks    CONSTANT jsonb := coalesce(acknowledgements, '{}');
    result  jsonb;
    failing text;
    n       integer;
BEGIN
    IF jsonb_typeof(acks) <> 'object' THEN
        RAISE EXCEPTION '%: acknowledgements must be a JSON object {"CODE": "reason"}', action
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT string_agg(k, ', ' ORDER BY k) INTO failing FROM jsonb_object_keys(acks) k
    WHERE k NOT IN (SELECT s.code FROM {{ schema }}.close_check_settings(NULL) s);
    IF failing IS NOT NULL THEN
        RAISE EXCEPTION '%: acknowledgement of unknown check %', action, failing USING ERRCODE = 'invalid_parameter_value',
            HINT = 'acknowledge a failing WARNING check by its code, e.g. {"RULES_UNCHANGED": "rule edit reviewed"}';
    END IF;
    result := {{ schema }}.check_run(run_id);
    SELECT string_agg(format('%s (%s): %s', c ->> 'code', c ->> 'severity', c ->> 'message')
                      || CASE WHEN c ->> 'severity' = 'WARNING' THEN ' [acknowledge it with a reason]' ELSE '' END,
                      E'\n' ORDER BY o), count(*)
    INTO failing, n
    FROM jsonb_array_elements(result -> 'checks') WITH ORDINALITY AS x(c, o)
    WHERE (c ->> 'passed')::boolean IS FALSE
      AND (c ->> 'severity' = 'ERROR'
           OR (c ->> 'severity' = 'WARNING'
               AND (jsonb_typeof(acks -> (c ->> 'code')) IS DISTINCT FROM 'string' OR btrim(acks ->> (c ->> 'code')) = '')));
    IF n > 0 THEN
        RAISE EXCEPTION '%: run % refused: % check(s) fail', action, run_id, n
            USING ERRCODE = 'check_violation', DETAIL = failing;
    END IF;
    RETURN result;
END;
$$;
