-- A login not entitled to all use cases that creates one (an admin of one desk) is granted it, so it
-- can load its facts, write its rules and snapshot it, from the next statement on: INSERT ... RETURNING
-- checks the new row against the SELECT policy with the grants as the statement began, so such a login
-- inserts, then reads (as pnldb use-case create does). SECURITY DEFINER: nobody else writes the grants.
CREATE OR REPLACE FUNCTION {{ schema }}.use_cases_granted_to_creator() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT {{ schema }}.entitled_to_all_use_cases() THEN
        INSERT INTO {{ schema }}.use_case_grants (use_case_id, role_name) VALUES (NEW.use_case_id, session_user)
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN NEW;
END;
$$;

CREATE OR REPLACE TRIGGER use_cases_granted_to_creator
    AFTER INSERT ON {{ schema }}.use_cases
    FOR EACH ROW EXECUTE FUNCTION {{ schema }}.use_cases_granted_to_creator();
