-- The one place a rule's predicate_json becomes SQL: validates it (contract §2 Predicates) and returns a
-- boolean expression over a fact row (category_code, currency, the measures, attributes) that is never
-- NULL: currency is the fact's, or the reporting currency for NULL (contract §8), as the reader supplies it.
-- Fields must be plain identifiers and every val becomes a quoted literal, so no rule text reaches
-- SQL unquoted.
CREATE OR REPLACE FUNCTION {{ schema }}.predicate_sql(p_predicate jsonb) RETURNS text
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    measures   CONSTANT text[] := ARRAY[{% for m in measures %}'{{ m }}_amount'{{ ", " if not loop.last }}{% endfor %}];
    operators  CONSTANT text[] := ARRAY['equals', 'not_equals', 'in', 'not_in', 'greater_than', 'less_than'];
    shape      CONSTANT text := 'expected {"conditions": [{"field": F, "operator": OP, "value": V}, ...], "conjunction": "AND" | "OR"}';
    conjunction text;
    condition  jsonb;
    cond_no   integer := 0;
    parts      text[] := '{}';
    fld      text;
    op   text;
    val      jsonb;
    vals      jsonb;
    v       jsonb;
    is_measure boolean;
    lhs        text;
    literals   text[];
    expr       text;
    extra      text;
BEGIN
    IF p_predicate IS NULL OR jsonb_typeof(p_predicate) <> 'object' THEN
        RAISE EXCEPTION 'rule predicate must be a JSON object; %', shape USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT string_agg(k, ', ') INTO extra FROM jsonb_object_keys(p_predicate) k WHERE k NOT IN ('conditions', 'conjunction');
    IF extra IS NOT NULL THEN
        RAISE EXCEPTION 'rule predicate has unknown key(s): %; %', left(extra, 80), shape USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_predicate ? 'conjunction' AND jsonb_typeof(p_predicate -> 'conjunction') IS DISTINCT FROM 'string' THEN
        RAISE EXCEPTION 'rule predicate conjunction must be "AND" or "OR", got %', left((p_predicate -> 'conjunction')::text, 80)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    conjunction := coalesce(p_predicate ->> 'conjunction', 'AND');
    IF conjunction NOT IN ('AND', 'OR') THEN
        RAISE EXCEPTION 'rule predicate conjunction must be "AND" or "OR", got %', left(quote_literal(conjunction), 80)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF jsonb_typeof(p_predicate -> 'conditions') IS DISTINCT FROM 'array' OR jsonb_array_length(p_predicate -> 'conditions') = 0 THEN
        RAISE EXCEPTION 'rule predicate needs a non-empty "conditions" list; %', shape USING ERRCODE = 'invalid_parameter_value';
    END IF;

    FOR condition IN SELECT c FROM jsonb_array_elements(p_predicate -> 'conditions') c LOOP
        cond_no := cond_no + 1;
        IF jsonb_typeof(condition) <> 'object' THEN
            RAISE EXCEPTION 'rule predicate condition %: must be an object {"field", "operator", "value"}, got %',
                cond_no, left(condition::text, 80) USING ERRCODE = 'invalid_parameter_value';
        END IF;
        SELECT string_agg(k, ', ') INTO extra FROM jsonb_object_keys(condition) k WHERE k NOT IN ('field', 'operator', 'value');
        IF extra IS NOT NULL THEN
            RAISE EXCEPTION 'rule predicate condition %: unknown key(s) %; a condition has exactly "field", "operator" and "value"',
                cond_no, left(extra, 80) USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF NOT (condition ? 'field' AND condition ? 'operator' AND condition ? 'value') THEN
            RAISE EXCEPTION 'rule predicate condition %: needs "field", "operator" and "value"', cond_no
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF jsonb_typeof(condition -> 'field') <> 'string'
           OR (condition ->> 'field') !~ '^[A-Za-z_][A-Za-z0-9_]*$' OR length(condition ->> 'field') > 63 THEN
            RAISE EXCEPTION 'rule predicate condition %: field % is not a plain identifier (letters, digits, _; at most 63)',
                cond_no, left((condition -> 'field')::text, 80) USING ERRCODE = 'invalid_parameter_value';
        END IF;
        fld := condition ->> 'field';
        IF jsonb_typeof(condition -> 'operator') <> 'string' OR NOT (condition ->> 'operator') = ANY (operators) THEN
            RAISE EXCEPTION 'rule predicate condition %: unknown operator %; use one of %', cond_no,
                left((condition -> 'operator')::text, 80), array_to_string(operators, ', ') USING ERRCODE = 'invalid_parameter_value';
        END IF;
        op := condition ->> 'operator';
        val := condition -> 'value';
        is_measure := fld = ANY (measures);
        lhs := CASE WHEN fld IN ('category_code', 'currency') OR is_measure THEN fld ELSE format('(attributes ->> %L)', fld) END;

        IF op IN ('greater_than', 'less_than') AND NOT is_measure THEN
            RAISE EXCEPTION 'rule predicate condition %: % applies to measures only (%), not to %', cond_no, op,
                array_to_string(measures, ', '), fld USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF op IN ('in', 'not_in') THEN
            IF jsonb_typeof(val) <> 'array' OR jsonb_array_length(val) = 0 THEN
                RAISE EXCEPTION 'rule predicate condition %: % needs a non-empty list as value, got %', cond_no, op,
                    left(val::text, 80) USING ERRCODE = 'invalid_parameter_value';
            END IF;
            vals := val;
        ELSE
            IF jsonb_typeof(val) = 'array' THEN
                RAISE EXCEPTION 'rule predicate condition %: % takes a single value, got a list', cond_no, op
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            vals := jsonb_build_array(val);
        END IF;
        literals := '{}';
        FOR v IN SELECT i FROM jsonb_array_elements(vals) i LOOP
            IF is_measure AND jsonb_typeof(v) <> 'number' THEN
                RAISE EXCEPTION 'rule predicate condition %: % is a measure and compares with numbers, got %', cond_no, fld,
                    left(v::text, 80) USING ERRCODE = 'invalid_parameter_value';
            ELSIF NOT is_measure AND jsonb_typeof(v) <> 'string' THEN
                RAISE EXCEPTION 'rule predicate condition %: % compares with strings, got %', cond_no, fld,
                    left(v::text, 80) USING ERRCODE = 'invalid_parameter_value';
            END IF;
            literals := literals || CASE WHEN is_measure THEN (v #>> '{}')::numeric::text ELSE quote_literal(v #>> '{}') END;
        END LOOP;

        expr := CASE op
            WHEN 'equals'       THEN format('%s = %s', lhs, literals[1])
            WHEN 'not_equals'   THEN format('%s <> %s', lhs, literals[1])
            WHEN 'in'           THEN format('%s IN (%s)', lhs, array_to_string(literals, ', '))
            WHEN 'not_in'       THEN format('%s NOT IN (%s)', lhs, array_to_string(literals, ', '))
            WHEN 'greater_than' THEN format('%s > %s', lhs, literals[1])
            WHEN 'less_than'    THEN format('%s < %s', lhs, literals[1])
        END;
        -- A fact without the attribute: equals/in are false, not_equals/not_in true.
        IF fld NOT IN ('category_code', 'currency') AND NOT is_measure THEN
            expr := format('coalesce(%s, %s)', expr, CASE WHEN op IN ('not_equals', 'not_in') THEN 'true' ELSE 'false' END);
        END IF;
        parts := parts || expr;
    END LOOP;
    RETURN '(' || array_to_string(parts, ' ' || conjunction || ' ') || ')';
END;
$$;
