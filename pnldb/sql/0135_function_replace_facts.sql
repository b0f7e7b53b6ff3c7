-- Replaces a slice (use case, COB date, scenario; both scenarios when scenario is NULL) in the caller's
-- transaction (contract §6): the slice's current facts are superseded by this transaction's load, and the
-- facts the transaction inserts next are the slice's current facts from its commit on. Nothing is
-- deleted: runs that read the old facts keep them. Inserting nothing leaves the slice empty. A date in
-- the close (PENDING, SIGNED_OFF or LOCKED: frozen_units) is refused.
--   BEGIN;
--   SELECT {{ schema }}.replace_facts('<use case id>', '2025-12-24', 'ACTUAL', 'corrected feed');
--   INSERT INTO {{ schema }}.fact_pnl_entries (use_case_id, pnl_date, scenario, category_code, ...) VALUES ...;
--   COMMIT;
-- Returns {"load_id", "use_case_id", "pnl_date", "scenarios", "superseded": [{"load_id", "scenario",
-- "rows"}, ...], "facts_superseded"}.
CREATE OR REPLACE FUNCTION {{ schema }}.replace_facts(
    use_case_id uuid, pnl_date date, scenario text DEFAULT NULL, source text DEFAULT NULL
) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p_use_case CONSTANT uuid := replace_facts.use_case_id;
    p_date     CONSTANT date := replace_facts.pnl_date;
    scenarios  text[];
    replacing  bigint;
    superseded jsonb;
    frozen     text;
BEGIN
    IF p_use_case IS NULL OR p_date IS NULL THEN
        RAISE EXCEPTION 'replace_facts needs a use_case_id and a pnl_date' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    scenarios := CASE WHEN scenario IS NULL THEN ARRAY[{% for s in scenarios %}'{{ s }}'{{ ", " if not loop.last }}{% endfor %}]
                      ELSE ARRAY[upper(btrim(scenario))] END;
    IF NOT scenarios <@ ARRAY[{% for s in scenarios %}'{{ s }}'{{ ", " if not loop.last }}{% endfor %}] THEN
        RAISE EXCEPTION 'scenario % is not {{ scenarios | join(" or ") }}', quote_literal(scenario)
            USING ERRCODE = 'invalid_parameter_value', HINT = 'or NULL for both';
    END IF;
    replacing := {{ schema }}.open_fact_load(p_use_case, source);  -- takes the use case's lock
    SELECT string_agg(format('%s (%s)', f.pnl_date, f.status), ', ') INTO frozen
    FROM {{ schema }}.frozen_units(p_use_case, ARRAY[p_date]) f;
    IF frozen IS NOT NULL THEN
        RAISE EXCEPTION 'replace_facts refused: COB date % of use case % is frozen by the close', frozen, p_use_case
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'a PENDING run is withdrawn or rejected, a SIGNED_OFF date reopened (pnldb close reopen) '
                         'before its facts change; a LOCKED date is final';
    END IF;

    WITH done AS (
        UPDATE {{ schema }}.fact_load_slices s
        SET superseded_at = now(), superseded_by = replacing
        WHERE s.use_case_id = p_use_case AND s.pnl_date = p_date AND s.scenario = ANY (scenarios)
          AND s.superseded_at IS NULL AND s.load_id <> replacing
        RETURNING s.load_id, s.scenario, s.rows
    )
    SELECT coalesce(jsonb_agg(jsonb_build_object('load_id', d.load_id, 'scenario', d.scenario, 'rows', d.rows)
                              ORDER BY d.load_id, d.scenario), '[]')
    INTO superseded FROM done d;

    RETURN jsonb_build_object(
        'load_id', replacing, 'use_case_id', p_use_case, 'pnl_date', p_date, 'scenarios', to_jsonb(scenarios),
        'superseded', superseded,
        'facts_superseded', (SELECT coalesce(sum((e ->> 'rows')::bigint), 0) FROM jsonb_array_elements(superseded) e));
END;
$$;
