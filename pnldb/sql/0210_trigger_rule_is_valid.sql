-- A rule is checked when written: its node exists in the use case's structure and its predicate is
-- valid; sql_where is derived here and cannot be set by hand. Writing or deleting a rule takes its use
-- case's lock exclusively: it waits for running snapshots, and they for it.
CREATE OR REPLACE FUNCTION {{ schema }}.rule_is_valid() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    structure text;
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM {{ schema }}.lock_use_case(OLD.use_case_id, true);
        RETURN OLD;
    END IF;
    PERFORM {{ schema }}.lock_use_case(NEW.use_case_id, true);
    SELECT u.structure_id INTO structure FROM {{ schema }}.use_cases u WHERE u.use_case_id = NEW.use_case_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'rule on node %: unknown use case %', left(quote_literal(NEW.node_id), 120), NEW.use_case_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM {{ schema }}.dim_hierarchy h WHERE h.structure_id = structure AND h.node_id = NEW.node_id) THEN
        RAISE EXCEPTION 'rule on node %: no such node in structure % of the use case', left(quote_literal(NEW.node_id), 120), structure
            USING ERRCODE = 'foreign_key_violation', HINT = 'a rule sits on a node_id of the use case''s hierarchy';
    END IF;
    BEGIN
        NEW.sql_where := {{ schema }}.predicate_sql(NEW.predicate_json);
    EXCEPTION WHEN invalid_parameter_value THEN
        -- 'rule on node 'A': predicate condition 1: ...', not '... : rule predicate condition 1: ...'
        RAISE EXCEPTION 'rule on node %: %', left(quote_literal(NEW.node_id), 120), regexp_replace(SQLERRM, '^rule ', '')
            USING ERRCODE = 'invalid_parameter_value';
    END;
    IF TG_OP = 'UPDATE' THEN
        NEW.last_modified_at := now();
        IF NEW.last_modified_by IS NOT DISTINCT FROM OLD.last_modified_by THEN
            NEW.last_modified_by := session_user;
        END IF;
    END IF;
    RETURN NEW;
END;
$$;

CREATE OR REPLACE TRIGGER rule_is_valid
    BEFORE INSERT OR UPDATE OR DELETE ON {{ schema }}.metadata_rules
    FOR EACH ROW EXECUTE FUNCTION {{ schema }}.rule_is_valid();
