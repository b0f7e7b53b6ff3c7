-- Whether a fact is included, as one SQL expression over `governing_rule` (the id of the rule that
-- governs the fact; NULL: none does, so it is included). rule_ids ascending, predicates[i] the compiled
-- predicate (predicate_sql) of rule rule_ids[i].
CREATE OR REPLACE FUNCTION {{ schema }}.rules_included(rule_ids bigint[], predicates text[]) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN cardinality(rule_ids) IS NULL OR cardinality(rule_ids) = 0 THEN 'true'
                ELSE 'governing_rule IS NULL OR ' || {{ schema }}.rule_case_tree(rule_ids, predicates, 1, cardinality(rule_ids)) END
$$;
