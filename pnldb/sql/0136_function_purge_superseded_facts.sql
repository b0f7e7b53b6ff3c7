-- Removes the facts of superseded slices superseded before older_than that no existing run read
-- (contract §6); their load records stay, marked purged. Each use case it touches is locked
-- exclusively first, so no snapshot is reading meanwhile. Slices of a COB date in the close (PENDING,
-- SIGNED_OFF or LOCKED: frozen_units) are kept, not refused: a purge covers every use case the session's
-- login is entitled to (no other's: it neither sees nor counts them), and a locked date stays locked forever. Returns {"older_than", "slices_purged", "facts_purged",
-- "slices_kept_for_runs", "slices_kept_frozen"} (kept for runs: superseded before older_than, but read
-- by a run; kept frozen: of a frozen date).
CREATE OR REPLACE FUNCTION {{ schema }}.purge_superseded_facts(older_than timestamptz) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    loads    bigint[];
    dates    date[];
    scens    text[];
    n_facts  bigint;
    n_kept   bigint;
    n_frozen bigint;
    frozen_cases uuid[];
    frozen_dates date[];
    mine         uuid[];
BEGIN
    IF older_than IS NULL THEN
        RAISE EXCEPTION 'purge_superseded_facts needs older_than' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    mine := CASE WHEN {{ schema }}.entitled_to_all_use_cases()
                 THEN ARRAY(SELECT u.use_case_id FROM {{ schema }}.use_cases u)
                 ELSE {{ schema }}.entitled_use_cases() END;
    PERFORM {{ schema }}.lock_use_case(u.use_case_id, true)
    FROM (SELECT DISTINCT s.use_case_id FROM {{ schema }}.fact_load_slices s
          WHERE s.superseded_at < older_than AND s.purged_at IS NULL AND s.use_case_id = ANY (mine) ORDER BY 1) u;

    SELECT array_agg(c.use_case_id), array_agg(f.pnl_date) INTO frozen_cases, frozen_dates
    FROM (SELECT s.use_case_id, array_agg(DISTINCT s.pnl_date) AS dates FROM {{ schema }}.fact_load_slices s
          WHERE s.superseded_at < older_than AND s.purged_at IS NULL AND s.use_case_id = ANY (mine) GROUP BY s.use_case_id) c
    CROSS JOIN LATERAL {{ schema }}.frozen_units(c.use_case_id, c.dates) f;

    WITH marked AS (
        UPDATE {{ schema }}.fact_load_slices s SET purged_at = now()
        WHERE s.superseded_at < older_than AND s.purged_at IS NULL AND s.use_case_id = ANY (mine)
          AND NOT EXISTS (SELECT 1 FROM unnest(frozen_cases, frozen_dates) AS z(use_case_id, pnl_date)
                          WHERE z.use_case_id = s.use_case_id AND z.pnl_date = s.pnl_date)
          AND NOT EXISTS (SELECT 1 FROM {{ schema }}.calculation_run_inputs i
                          JOIN {{ schema }}.calculation_runs r ON r.id = i.calculation_run_id
                          WHERE i.load_id = s.load_id AND i.scenario = s.scenario AND r.pnl_date = s.pnl_date)
        RETURNING s.load_id, s.pnl_date, s.scenario
    )
    SELECT array_agg(m.load_id), array_agg(m.pnl_date), array_agg(m.scenario)
    INTO loads, dates, scens FROM marked m;

{%- if sharded %}
    -- On a coordinator the facts are on the shards: counted from the slices, queued for `pnldb cluster
    -- purge` once this commits.
    SELECT coalesce(sum(s.rows), 0) INTO n_facts
    FROM {{ schema }}.fact_load_slices s
    JOIN unnest(loads, dates, scens) AS p(load_id, pnl_date, scenario)
      ON s.load_id = p.load_id AND s.pnl_date = p.pnl_date AND s.scenario = p.scenario;
    INSERT INTO {{ schema }}.shard_purges (load_id, pnl_date, scenario)
    SELECT * FROM unnest(loads, dates, scens);
{%- else %}
    DELETE FROM {{ schema }}.fact_pnl_entries f
    USING unnest(loads, dates, scens) AS p(load_id, pnl_date, scenario)
    WHERE f.load_id = p.load_id AND f.pnl_date = p.pnl_date AND f.scenario = p.scenario;
    GET DIAGNOSTICS n_facts = ROW_COUNT;
{%- endif %}

    SELECT count(*) FILTER (WHERE z.use_case_id IS NULL), count(*) FILTER (WHERE z.use_case_id IS NOT NULL)
    INTO n_kept, n_frozen
    FROM {{ schema }}.fact_load_slices s
    LEFT JOIN unnest(frozen_cases, frozen_dates) AS z(use_case_id, pnl_date)
           ON z.use_case_id = s.use_case_id AND z.pnl_date = s.pnl_date
    WHERE s.superseded_at < older_than AND s.purged_at IS NULL AND s.use_case_id = ANY (mine);

    RETURN jsonb_build_object('older_than', older_than, 'slices_purged', coalesce(cardinality(loads), 0),
                              'facts_purged', n_facts, 'slices_kept_for_runs', n_kept,
                              'slices_kept_frozen', n_frozen);
END;
$$;
