-- Every insert, update and delete of a rule is recorded in rule_versions as the rule then read (after
-- the change; for a delete, as it was), with who and when. The function runs as the owner: nobody else
-- may write rule_versions, so rule writers cannot write history of their own.
CREATE OR REPLACE FUNCTION {{ schema }}.record_rule_version() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r record;
BEGIN
    IF TG_OP = 'DELETE' THEN
        r := OLD;
    ELSE
        r := NEW;
    END IF;
    INSERT INTO {{ schema }}.rule_versions (rule_id, use_case_id, operation, node_id, predicate_json, sql_where,
                                            logic_en, changed_by, changed_at)
    VALUES (r.rule_id, r.use_case_id, TG_OP, r.node_id, r.predicate_json, r.sql_where, r.logic_en, session_user,
            now());
    RETURN NULL;
END;
$$;

CREATE OR REPLACE TRIGGER rules_keep_history
    AFTER INSERT OR UPDATE OR DELETE ON {{ schema }}.metadata_rules
    FOR EACH ROW EXECUTE FUNCTION {{ schema }}.record_rule_version();

-- rule_versions is history: append-only for everybody, owner included, and written only by the
-- trigger above (a direct INSERT is refused).
CREATE OR REPLACE FUNCTION {{ schema }}.rule_versions_are_append_only() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' AND pg_trigger_depth() > 1 THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'rule_versions is the rules'' history: % on %.% is not allowed', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'object_not_in_prerequisite_state',
              HINT = 'it is written by the rules'' own trigger: insert, update or delete the rule in metadata_rules';
END;
$$;

CREATE OR REPLACE TRIGGER rule_versions_are_append_only
    BEFORE INSERT OR UPDATE OR DELETE ON {{ schema }}.rule_versions
    FOR EACH ROW EXECUTE FUNCTION {{ schema }}.rule_versions_are_append_only();

CREATE OR REPLACE TRIGGER rule_versions_are_not_truncated
    BEFORE TRUNCATE ON {{ schema }}.rule_versions
    FOR EACH STATEMENT EXECUTE FUNCTION {{ schema }}.rule_versions_are_append_only();

COMMENT ON TABLE {{ schema }}.rule_versions IS
    'Every insert, update and delete of a rule (metadata_rules), as the rule then read, with who and when; append-only.';
COMMENT ON COLUMN {{ schema }}.rule_versions.operation IS
    'INSERT, UPDATE or DELETE; MIGRATED: the rule as it stood when history began (migration 0013_audit), who and when as the rule row said.';
COMMENT ON COLUMN {{ schema }}.rule_versions.changed_by IS 'Database login (session user) that made the change.';
