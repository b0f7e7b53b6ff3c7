-- Entitles a role (and every member of it, through any chain) to a use case, or to all use cases, present
-- and future, when use_case_id is NULL. Returns true, or false when the role held the grant already
-- (nothing changes). Admins call it; each grants only what it is itself entitled to, all only when it
-- holds all, so an admin of one desk cannot grant itself another. Stamped with the session's login.
CREATE OR REPLACE FUNCTION {{ schema }}.grant_use_case(use_case_id uuid, role name) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    added integer;
BEGIN
    -- ===== GUARDS =====
    PERFORM {{ schema }}.use_case_grant_guards(grant_use_case.use_case_id, grant_use_case.role, 'grant_use_case');
    -- ===== GRANT =====
    INSERT INTO {{ schema }}.use_case_grants (use_case_id, role_name)
    VALUES (grant_use_case.use_case_id, grant_use_case.role)
    ON CONFLICT ON CONSTRAINT use_case_grants_one_per_role DO NOTHING;
    GET DIAGNOSTICS added = ROW_COUNT;
    RETURN added = 1;
END;
$$;
