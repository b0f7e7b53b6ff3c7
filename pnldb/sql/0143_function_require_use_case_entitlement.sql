-- The one refusal of a login not entitled to a use case, called by the SECURITY DEFINER functions before
-- they read or act on it (lock_use_case, which every writer and the close take first, covers most). An
-- unknown use case passes: the caller reports it as before.
CREATE OR REPLACE FUNCTION {{ schema }}.require_use_case_entitlement(use_case_id uuid) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF require_use_case_entitlement.use_case_id IS NULL OR {{ schema }}.entitled_to_all_use_cases()
       OR require_use_case_entitlement.use_case_id = ANY ({{ schema }}.entitled_use_cases())
       OR NOT EXISTS (SELECT 1 FROM {{ schema }}.use_cases u WHERE u.use_case_id = require_use_case_entitlement.use_case_id) THEN
        RETURN;
    END IF;
    RAISE EXCEPTION 'login % is not entitled to use case %', session_user, require_use_case_entitlement.use_case_id
        USING ERRCODE = 'insufficient_privilege',
              HINT = format('an admin entitled to it grants it to a role of yours: SELECT {{ schema }}.grant_use_case(''%s'', '
                            '''<role>''); SET ROLE changes no entitlement', require_use_case_entitlement.use_case_id);
END;
$$;
