-- The use cases granted, one by one, to a role the session's login is a member of (see
-- entitled_to_all_use_cases, which covers the rest). Callers wrap it in a scalar sub-select,
-- (SELECT entitled_use_cases()), so a statement computes it once, not per row.
CREATE OR REPLACE FUNCTION {{ schema }}.entitled_use_cases() RETURNS uuid[]
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
SELECT coalesce(array_agg(DISTINCT g.use_case_id), '{}')
FROM {{ schema }}.use_case_grants g JOIN pg_roles r ON r.rolname = g.role_name
WHERE g.use_case_id IS NOT NULL AND pg_has_role(session_user, r.oid, 'MEMBER')
$$;
