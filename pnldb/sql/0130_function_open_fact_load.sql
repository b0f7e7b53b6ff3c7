-- The load that the current transaction writes into a use case's facts (contract §6), opened on first
-- use: every fact a transaction inserts into a use case belongs to this one load. Opening it takes the
-- use case's lock exclusively (see lock_use_case), so a load never interleaves with a snapshot. A source
-- given here names the load if nothing named it before.
CREATE OR REPLACE FUNCTION {{ schema }}.open_fact_load(use_case_id uuid, source text DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p_use_case CONSTANT uuid := open_fact_load.use_case_id;
    opened     bigint;
BEGIN
    IF p_use_case IS NULL THEN
        RAISE EXCEPTION 'a fact load needs a use_case_id' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT l.load_id INTO opened FROM {{ schema }}.fact_loads l
    WHERE l.txid = pg_current_xact_id() AND l.use_case_id = p_use_case;
    IF FOUND THEN
        IF source IS NOT NULL THEN
            UPDATE {{ schema }}.fact_loads l SET source = open_fact_load.source
            WHERE l.load_id = opened AND l.source IS NULL;
        END IF;
        RETURN opened;
    END IF;
    PERFORM {{ schema }}.lock_use_case(p_use_case, true);
    IF NOT EXISTS (SELECT 1 FROM {{ schema }}.use_cases u WHERE u.use_case_id = p_use_case) THEN
        RAISE EXCEPTION 'unknown use case %', p_use_case
            USING ERRCODE = 'foreign_key_violation', HINT = 'use_case_id must be a {{ schema }}.use_cases.use_case_id';
    END IF;
    INSERT INTO {{ schema }}.fact_loads (use_case_id, source) VALUES (p_use_case, open_fact_load.source)
    RETURNING load_id INTO opened;
    RETURN opened;
END;
$$;
