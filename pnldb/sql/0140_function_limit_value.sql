-- The value of one of the limits (table limits); an unknown name is a bug in the SQL layer, not bad input.
CREATE OR REPLACE FUNCTION {{ schema }}.limit_value(limit_name text) RETURNS integer
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    found integer;
BEGIN
    SELECT l.value INTO found FROM {{ schema }}.limits l WHERE l.name = limit_name;
    IF found IS NULL THEN
        RAISE EXCEPTION 'unknown limit %', quote_literal(limit_name)
            USING ERRCODE = 'internal_error', HINT = 'the limits are rows of {{ schema }}.limits, added by migrations';
    END IF;
    RETURN found;
END;
$$;
