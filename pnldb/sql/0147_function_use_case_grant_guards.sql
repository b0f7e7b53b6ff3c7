-- The guards of grant_use_case and revoke_use_case: a role that exists, a use case that exists, and a
-- caller entitled to what it hands out or takes back (all of them for NULL). Called by nobody else.
CREATE OR REPLACE FUNCTION {{ schema }}.use_case_grant_guards(use_case_id uuid, role name, action text) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF role IS NULL OR btrim(role) = '' THEN
        RAISE EXCEPTION '% needs a role', action
            USING ERRCODE = 'null_value_not_allowed', HINT = 'give a role name, e.g. {{ roles.reader }} or a login';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = role) THEN
        RAISE EXCEPTION '%: unknown role %', action, quote_ident(role)
            USING ERRCODE = 'undefined_object', HINT = 'role names are case-sensitive; \du lists the roles';
    END IF;
    IF use_case_id IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM {{ schema }}.use_cases u WHERE u.use_case_id = use_case_grant_guards.use_case_id) THEN
        RAISE EXCEPTION '%: unknown use case %', action, use_case_id
            USING ERRCODE = 'no_data_found', HINT = 'use_case_id must be a {{ schema }}.use_cases.use_case_id, or NULL for all';
    END IF;
    IF use_case_id IS NULL AND NOT {{ schema }}.entitled_to_all_use_cases() THEN
        RAISE EXCEPTION '%: login % is not entitled to all use cases, so it cannot % all', action, session_user,
                        CASE action WHEN 'grant_use_case' THEN 'grant' ELSE 'revoke' END
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'name one use case you are entitled to, or ask an admin entitled to all';
    END IF;
    PERFORM {{ schema }}.require_use_case_entitlement(use_case_id);
END;
$$;
