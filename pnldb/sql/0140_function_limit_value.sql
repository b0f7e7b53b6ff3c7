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

-- Who changed a limit, and when, is the session's, not whatever an UPDATE says.
CREATE OR REPLACE FUNCTION {{ schema }}.limits_stamp_change() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    NEW.changed_by := session_user;
    NEW.changed_at := now();
    RETURN NEW;
END;
$$;

CREATE OR REPLACE TRIGGER limits_stamp_change
    BEFORE UPDATE ON {{ schema }}.limits
    FOR EACH ROW EXECUTE FUNCTION {{ schema }}.limits_stamp_change();
