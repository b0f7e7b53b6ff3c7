-- The rules in force for a use case, by node_id: a JSON list of objects with the metadata_rules columns
-- (contract §1), timestamps in UTC, ISO 8601. The list is the layout `pnldb load rules` reads, so the
-- output of `pnldb rules list --json` loads back. An unknown use case is an error, not an empty list.
CREATE OR REPLACE FUNCTION {{ schema }}.list_rules(use_case_id uuid) RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p_use_case CONSTANT uuid := list_rules.use_case_id;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM {{ schema }}.use_cases u WHERE u.use_case_id = p_use_case) THEN
        RAISE EXCEPTION 'unknown use case %', coalesce(p_use_case::text, 'NULL')
            USING ERRCODE = 'no_data_found', HINT = 'use_case_id must be a {{ schema }}.use_cases.use_case_id';
    END IF;
    RETURN coalesce((
        SELECT jsonb_agg(jsonb_build_object(
                   'rule_id', r.rule_id,
                   'use_case_id', r.use_case_id,
                   'node_id', r.node_id,
                   'predicate_json', r.predicate_json,
                   'sql_where', r.sql_where,
                   'logic_en', r.logic_en,
                   'created_at', to_char(r.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') || '+00:00',
                   'last_modified_by', r.last_modified_by,
                   'last_modified_at', to_char(r.last_modified_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') || '+00:00')
               ORDER BY r.node_id COLLATE "C")
        FROM {{ schema }}.metadata_rules r
        WHERE r.use_case_id = p_use_case), '[]'::jsonb);
END;
$$;

COMMENT ON FUNCTION {{ schema }}.list_rules(uuid) IS
    'The rules in force for a use case, by node_id, as a JSON list of their metadata_rules columns (the layout pnldb load rules reads).';
