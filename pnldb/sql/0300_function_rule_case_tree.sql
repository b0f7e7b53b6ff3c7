-- Rule predicates as one expression: a balanced CASE over the governing rule's id, so a fact evaluates
-- about log2(rules) integer comparisons and then only its own rule's predicate. p_rule_ids is sorted
-- ascending and p_predicates[i] is the predicate of rule p_rule_ids[i].
CREATE OR REPLACE FUNCTION {{ schema }}.rule_case_tree(p_rule_ids bigint[], p_predicates text[], p_low integer,
                                                       p_high integer) RETURNS text
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    middle integer;
BEGIN
    IF p_low = p_high THEN
        RETURN p_predicates[p_low];
    END IF;
    middle := (p_low + p_high) / 2;
    RETURN format(E'CASE WHEN governing_rule <= %s\n THEN %s\n ELSE %s END', p_rule_ids[middle],
                  {{ schema }}.rule_case_tree(p_rule_ids, p_predicates, p_low, middle),
                  {{ schema }}.rule_case_tree(p_rule_ids, p_predicates, middle + 1, p_high));
END;
$$;
