-- The grants (use_case_id NULL: every use case's, and the grants of all), of the use cases the session's
-- login is entitled to, and the grants of all, which name roles and no use case. Ordered: grants of all
-- first, then by use case name and role.
CREATE OR REPLACE FUNCTION {{ schema }}.list_use_case_grants(use_case_id uuid DEFAULT NULL)
RETURNS TABLE (use_case_id uuid, use_case_name text, role_name name, granted_by text, granted_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
SELECT g.use_case_id, u.name, g.role_name, g.granted_by, g.granted_at
FROM {{ schema }}.use_case_grants g
LEFT JOIN {{ schema }}.use_cases u ON u.use_case_id = g.use_case_id
WHERE (g.use_case_id IS NULL OR (SELECT {{ schema }}.entitled_to_all_use_cases())
       OR g.use_case_id = ANY ((SELECT {{ schema }}.entitled_use_cases())::uuid[]))
  AND ($1 IS NULL OR g.use_case_id = $1 OR g.use_case_id IS NULL)
ORDER BY g.use_case_id IS NOT NULL, u.name, g.role_name
$$;
