-- Entitlements (issue 18, item 7): whether the session's login sees and acts on every use case, present
-- and future: a superuser, or a member (through any chain of membership) of a role granted all
-- (use_case_grants, use_case_id NULL). session_user, not current_user: inside a SECURITY DEFINER function
-- current_user is the owner, and SET ROLE changes no entitlement. The same rule as the tables' policies
-- (migration 0015_entitlements), for the SECURITY DEFINER functions, which bypass them.
CREATE OR REPLACE FUNCTION {{ schema }}.entitled_to_all_use_cases() RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
SELECT coalesce((SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = session_user), false)
    OR EXISTS (SELECT 1 FROM {{ schema }}.use_case_grants g JOIN pg_roles r ON r.rolname = g.role_name
               WHERE g.use_case_id IS NULL AND pg_has_role(session_user, r.oid, 'MEMBER'))
$$;
