-- Takes a grant back (use_case_id NULL: the grant of all use cases), effective from the next statement.
-- Revoking what the role was never granted is an error, not a silent no-op: a misspelt revoke must not
-- leave an entitlement in place unnoticed. Members keep what other grants give them. The same callers
-- as grant_use_case.
CREATE OR REPLACE FUNCTION {{ schema }}.revoke_use_case(use_case_id uuid, role name) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    removed integer;
BEGIN
    -- ===== GUARDS =====
    PERFORM {{ schema }}.use_case_grant_guards(revoke_use_case.use_case_id, revoke_use_case.role, 'revoke_use_case');
    -- ===== REVOKE =====
    DELETE FROM {{ schema }}.use_case_grants g
    WHERE g.use_case_id IS NOT DISTINCT FROM revoke_use_case.use_case_id AND g.role_name = revoke_use_case.role;
    GET DIAGNOSTICS removed = ROW_COUNT;
    IF removed = 0 THEN
        RAISE EXCEPTION 'revoke_use_case: role % holds no grant of %', revoke_use_case.role,
                        coalesce('use case ' || revoke_use_case.use_case_id, 'all use cases')
            USING ERRCODE = 'no_data_found',
                  HINT = 'nothing was revoked; SELECT * FROM {{ schema }}.list_use_case_grants() shows the grants';
    END IF;
END;
$$;
