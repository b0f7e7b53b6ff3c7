-- A use case's sign-off policy and locked-through watermark change only through set_signoff_policy and
-- lock_cob (contract §7), which run as the schema's owner and record the change in close_events: an
-- admin's plain UPDATE (admins may update use cases) is refused. The watermark never moves back or
-- goes away, for the owner either: there is no unlock.
CREATE OR REPLACE FUNCTION {{ schema }}.use_case_close_settings() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    owner CONSTANT name := (SELECT c.relowner::regrole::name FROM pg_class c WHERE c.oid = TG_RELID);
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.locked_through IS NOT NULL
       AND (NEW.locked_through IS NULL OR NEW.locked_through < OLD.locked_through) THEN
        RAISE EXCEPTION 'use case "%" is locked through %: the watermark never moves back', OLD.name, OLD.locked_through
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF current_user <> owner
       AND (CASE WHEN TG_OP = 'INSERT' THEN NEW.signoff_policy <> 'FOUR_EYES' OR NEW.locked_through IS NOT NULL
                 ELSE (NEW.signoff_policy, NEW.locked_through) IS DISTINCT FROM (OLD.signoff_policy, OLD.locked_through) END) THEN
        RAISE EXCEPTION 'signoff_policy and locked_through are set by set_signoff_policy and lock_cob only'
            USING ERRCODE = 'insufficient_privilege', HINT = 'the close records who changed them and why';
    END IF;
    RETURN NEW;
END;
$$;

CREATE OR REPLACE TRIGGER use_case_close_settings
    BEFORE INSERT OR UPDATE ON {{ schema }}.use_cases
    FOR EACH ROW EXECUTE FUNCTION {{ schema }}.use_case_close_settings();
