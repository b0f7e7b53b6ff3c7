-- The confirmation rules of a use case's close (contract §7), in their fixed order: the built-in codes
-- with their default severity and params, overridden by what set_check stored (params are merged over
-- the defaults). Data, never SQL text.
CREATE OR REPLACE FUNCTION {{ schema }}.close_check_settings(use_case_id uuid)
RETURNS TABLE (ord integer, code text, severity text, params jsonb)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT d.ord, d.code, coalesce(c.severity, d.severity), d.params || coalesce(c.params, '{}')
    FROM (VALUES (1, 'RUN_COMPLETED', 'ERROR', '{}'::jsonb),
                 (2, 'FACTS_UNCHANGED', 'ERROR', '{}'),
                 (3, 'NO_UNMAPPED', 'ERROR', '{"tolerance": 0}'),
                 (4, 'RULES_UNCHANGED', 'WARNING', '{}'),
                 (5, 'RULE_FIELDS_PRESENT', 'WARNING', '{}'),
                 (6, 'PLUG_LIMIT', 'OFF', '{}')) AS d(ord, code, severity, params)
    LEFT JOIN {{ schema }}.close_checks c ON c.use_case_id = $1 AND c.code = d.code
    ORDER BY d.ord
$$;
