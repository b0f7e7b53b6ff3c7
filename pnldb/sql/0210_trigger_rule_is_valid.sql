-- A rule is checked when written: its node exists in the use case's structure and its predicate is
-- valid; sql_where is derived here and cannot be set by hand. Writing or deleting a rule takes its use
-- case's lock exclusively: it waits for running snapshots, and they for it. A rule's size is bounded
-- (limits max_rule_conditions and max_in_list): every snapshot evaluates it on every fact it governs.
-- Who wrote it and when are stamped by stamp_audit_columns (sql/0215).
CREATE OR REPLACE FUNCTION {{ schema }}.rule_is_valid() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    structure  text;
    conditions integer;
    longest    record;
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

    -- ===== LIMITS =====
    -- before the predicate is parsed, so an oversized rule is refused at once
    IF jsonb_typeof(NEW.predicate_json) = 'object' AND jsonb_typeof(NEW.predicate_json -> 'conditions') = 'array' THEN
        conditions := jsonb_array_length(NEW.predicate_json -> 'conditions');
        IF conditions > {{ schema }}.limit_value('max_rule_conditions') THEN
            RAISE EXCEPTION 'rule on node %: predicate has % conditions; at most % are allowed (limit max_rule_conditions)',
                left(quote_literal(NEW.node_id), 120), conditions, {{ schema }}.limit_value('max_rule_conditions')
                USING ERRCODE = 'program_limit_exceeded',
                      HINT = 'split the rule, or test one field against a list with in/not_in; an admin may raise the '
                             'limit (UPDATE {{ schema }}.limits SET value = ... WHERE name = ''max_rule_conditions'')';
        END IF;
        SELECT c.n, jsonb_array_length(c.condition -> 'value') AS list_length INTO longest
        FROM jsonb_array_elements(NEW.predicate_json -> 'conditions') WITH ORDINALITY AS c (condition, n)
        WHERE jsonb_typeof(c.condition) = 'object' AND jsonb_typeof(c.condition -> 'value') = 'array'
        ORDER BY 2 DESC, 1 LIMIT 1;
        IF longest.list_length > {{ schema }}.limit_value('max_in_list') THEN
            RAISE EXCEPTION 'rule on node %: predicate condition %: its list has % values; at most % are allowed (limit max_in_list)',
                left(quote_literal(NEW.node_id), 120), longest.n, longest.list_length, {{ schema }}.limit_value('max_in_list')
                USING ERRCODE = 'program_limit_exceeded',
                      HINT = 'split the list over rules on the nodes below, or map the values to a node of the hierarchy; '
                             'an admin may raise the limit (UPDATE {{ schema }}.limits SET value = ... WHERE name = ''max_in_list'')';
        END IF;
    END IF;
    BEGIN
        NEW.sql_where := {{ schema }}.predicate_sql(NEW.predicate_json);
    EXCEPTION WHEN invalid_parameter_value THEN
        -- 'rule on node 'A': predicate condition 1: ...', not '... : rule predicate condition 1: ...'
        RAISE EXCEPTION 'rule on node %: %', left(quote_literal(NEW.node_id), 120), regexp_replace(SQLERRM, '^rule ', '')
            USING ERRCODE = 'invalid_parameter_value';
    END;
    RETURN NEW;
END;
$$;

CREATE OR REPLACE TRIGGER rule_is_valid
    BEFORE INSERT OR UPDATE OR DELETE ON {{ schema }}.metadata_rules
    FOR EACH ROW EXECUTE FUNCTION {{ schema }}.rule_is_valid();
