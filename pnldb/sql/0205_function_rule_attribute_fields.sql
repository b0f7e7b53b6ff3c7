-- The attribute keys a rule predicate's conditions name (contract §2: a field that is not category_code,
-- currency (§8) or a measure is looked up in the fact's attributes), each once, in alphabetical order.
CREATE OR REPLACE FUNCTION {{ schema }}.rule_attribute_fields(predicate_json jsonb) RETURNS text[]
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(array_agg(DISTINCT c.condition ->> 'field' ORDER BY c.condition ->> 'field'), '{}')
    FROM jsonb_array_elements(predicate_json -> 'conditions') AS c(condition)
    WHERE (c.condition ->> 'field') NOT IN ('category_code', 'currency'{% for m in measures %}, '{{ m }}_amount'{% endfor %})
$$;
