-- After every INSERT or COPY into the facts, one pass over the new rows: each (load, date, scenario)
-- slice they add to gets its row count and sums in fact_load_slices, and each load its row count. The
-- facts must belong to loads that this transaction opened for their use case: a committed load is
-- closed, so nobody adds to a slice a run has read; and no fact joins a unit that is in the close
-- (contract §7: PENDING, SIGNED_OFF or LOCKED), checked for all the statement's slices at once. A
-- failure here undoes the whole statement.
CREATE OR REPLACE FUNCTION {{ schema }}.fact_loads_count_their_slices() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    slice_loads  bigint[];
    slice_cases  uuid[];
    slice_dates  date[];
    slice_scens  text[];
    slice_rows   bigint[];
{%- for m in measures %}
    slice_{{ m }}  numeric[];
{%- endfor %}
    bad          record;
    frozen       text;
BEGIN
    -- The one pass over the new rows: their slices, counted and summed.
    SELECT array_agg(n.load_id), array_agg(n.use_case_id), array_agg(n.pnl_date), array_agg(n.scenario),
           array_agg(n.rows){% for m in measures %}, array_agg(n.{{ m }}){% endfor %}
    INTO slice_loads, slice_cases, slice_dates, slice_scens, slice_rows{% for m in measures %}, slice_{{ m }}{% endfor %}
    FROM (SELECT f.load_id, f.use_case_id, f.pnl_date, f.scenario, count(*) AS rows
{%- for m in measures %}, sum(f.{{ m }}_amount) AS {{ m }}{% endfor %}
          FROM new_facts f GROUP BY f.load_id, f.use_case_id, f.pnl_date, f.scenario) n;
    IF slice_loads IS NULL THEN
        RETURN NULL;
    END IF;

    -- ===== GUARDS =====
    SELECT n.load_id, n.use_case_id, l.use_case_id AS load_use_case, l.txid = pg_current_xact_id() AS open,
           n.pnl_date, n.scenario
    INTO bad
    FROM unnest(slice_loads, slice_cases, slice_dates, slice_scens) AS n(load_id, use_case_id, pnl_date, scenario)
    LEFT JOIN {{ schema }}.fact_loads l ON l.load_id = n.load_id
    LEFT JOIN {{ schema }}.fact_load_slices s
           ON s.load_id = n.load_id AND s.pnl_date = n.pnl_date AND s.scenario = n.scenario
    WHERE l.load_id IS NULL OR l.use_case_id <> n.use_case_id OR l.txid <> pg_current_xact_id()
       OR s.superseded_at IS NOT NULL
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

    -- ===== FROZEN =====
    SELECT string_agg(format('%s %s (%s)', quote_ident(u.name), f.pnl_date, f.status), ', '
                      ORDER BY u.name, f.pnl_date)
    INTO frozen
    FROM (SELECT n.use_case_id, array_agg(DISTINCT n.pnl_date) AS dates
          FROM unnest(slice_cases, slice_dates) AS n(use_case_id, pnl_date) GROUP BY n.use_case_id) c
    JOIN {{ schema }}.use_cases u ON u.use_case_id = c.use_case_id
    CROSS JOIN LATERAL {{ schema }}.frozen_units(c.use_case_id, c.dates) f;
    IF frozen IS NOT NULL THEN
        RAISE EXCEPTION 'facts refused: their COB dates are frozen by the close: %; nothing was loaded', frozen
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'a PENDING run is withdrawn or rejected, a SIGNED_OFF date reopened (pnldb close reopen) '
                         'before its facts change; a LOCKED date is final';
    END IF;

    -- ===== COUNT =====
    INSERT INTO {{ schema }}.fact_load_slices AS s
        (load_id, use_case_id, pnl_date, scenario, rows{% for m in measures %}, {{ m }}_sum{% endfor %})
    SELECT * FROM unnest(slice_loads, slice_cases, slice_dates, slice_scens, slice_rows{% for m in measures %}, slice_{{ m }}{% endfor %})
    ON CONFLICT (load_id, pnl_date, scenario) DO UPDATE
    SET rows = s.rows + EXCLUDED.rows{% for m in measures %}, {{ m }}_sum = s.{{ m }}_sum + EXCLUDED.{{ m }}_sum{% endfor %};

    UPDATE {{ schema }}.fact_loads l SET rows = l.rows + n.rows
    FROM (SELECT i.load_id, sum(i.rows) AS rows FROM unnest(slice_loads, slice_rows) AS i(load_id, rows)
          GROUP BY i.load_id) n
    WHERE l.load_id = n.load_id;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE TRIGGER fact_loads_count_their_slices
    AFTER INSERT ON {{ schema }}.fact_pnl_entries
    REFERENCING NEW TABLE AS new_facts
    FOR EACH STATEMENT EXECUTE FUNCTION {{ schema }}.fact_loads_count_their_slices();
