-- After every INSERT or COPY into the facts, one pass over the new rows: each (load, date, scenario)
-- slice they add to gets its row count and sums in fact_load_slices, and each load its row count. The
-- facts must belong to loads that this transaction opened for their use case: a committed load is
-- closed, so nobody adds to a slice a run has read. A failure here undoes the whole statement.
CREATE OR REPLACE FUNCTION {{ schema }}.fact_loads_count_their_slices() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    touched bigint[];
    bad     record;
BEGIN
    WITH added AS (
        INSERT INTO {{ schema }}.fact_load_slices AS s
            (load_id, use_case_id, pnl_date, scenario, rows, daily_sum, wtd_sum, ytd_sum)
        SELECT n.load_id, n.use_case_id, n.pnl_date, n.scenario, count(*),
{%- for m in measures %}
               sum(n.{{ m }}_amount){{ "," if not loop.last }}
{%- endfor %}
        FROM new_facts n
        GROUP BY n.load_id, n.use_case_id, n.pnl_date, n.scenario
        ON CONFLICT (load_id, pnl_date, scenario) DO UPDATE
        SET rows = s.rows + EXCLUDED.rows,
{%- for m in measures %}
            {{ m }}_sum = s.{{ m }}_sum + EXCLUDED.{{ m }}_sum{{ "," if not loop.last }}
{%- endfor %}
        RETURNING s.load_id, s.use_case_id
    )
    SELECT array_agg(DISTINCT a.load_id) INTO touched FROM added a;

    -- ===== GUARDS =====
    SELECT s.load_id, s.use_case_id, l.use_case_id AS load_use_case, l.txid = pg_current_xact_id() AS open,
           s.superseded_at IS NOT NULL AS superseded, s.pnl_date, s.scenario
    INTO bad
    FROM {{ schema }}.fact_load_slices s
    LEFT JOIN {{ schema }}.fact_loads l ON l.load_id = s.load_id
    WHERE s.load_id = ANY (touched)
      AND (l.load_id IS NULL OR l.use_case_id <> s.use_case_id OR l.txid <> pg_current_xact_id()
           OR s.superseded_at IS NOT NULL)
    LIMIT 1;
    IF FOUND THEN
        IF bad.load_use_case IS NULL THEN
            RAISE EXCEPTION 'fact load % does not exist', bad.load_id USING ERRCODE = 'foreign_key_violation',
                HINT = 'leave load_id out: the facts one transaction inserts form one load';
        ELSIF bad.load_use_case <> bad.use_case_id THEN
            RAISE EXCEPTION 'fact load % belongs to use case %, not %', bad.load_id, bad.load_use_case, bad.use_case_id
                USING ERRCODE = 'foreign_key_violation', HINT = 'leave load_id out: the facts one transaction inserts form one load';
        ELSIF NOT bad.open THEN
            RAISE EXCEPTION 'fact load % is closed: facts are added as a new load, never to a committed one', bad.load_id
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'leave load_id out: the facts one transaction inserts form one load';
        ELSE
            RAISE EXCEPTION 'fact load % was superseded for % %', bad.load_id, bad.pnl_date, bad.scenario
                USING ERRCODE = 'object_not_in_prerequisite_state';
        END IF;
    END IF;

    UPDATE {{ schema }}.fact_loads l SET rows = c.rows
    FROM (SELECT s.load_id, sum(s.rows) AS rows FROM {{ schema }}.fact_load_slices s
          WHERE s.load_id = ANY (touched) GROUP BY s.load_id) c
    WHERE l.load_id = c.load_id;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE TRIGGER fact_loads_count_their_slices
    AFTER INSERT ON {{ schema }}.fact_pnl_entries
    REFERENCING NEW TABLE AS new_facts
    FOR EACH STATEMENT EXECUTE FUNCTION {{ schema }}.fact_loads_count_their_slices();
