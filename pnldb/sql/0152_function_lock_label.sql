-- What a lock row stands for, as error messages name it: a use case by its name, a structure by its id,
-- the runs of a use case and date by both.
CREATE OR REPLACE FUNCTION {{ schema }}.lock_label(lock_kind text, lock_key text) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE lock_kind
        WHEN 'use case' THEN format('use case %s',
            coalesce((SELECT format('"%s"', left(u.name, 80)) FROM {{ schema }}.use_cases u
                      WHERE u.use_case_id::text = lock_key), lock_key))
        WHEN 'structure' THEN format('structure %s', left(quote_literal(lock_key), 80))
        ELSE format('the runs of use case %s for %s',
            coalesce((SELECT format('"%s"', left(u.name, 80)) FROM {{ schema }}.use_cases u
                      WHERE u.use_case_id::text = split_part(lock_key, ':', 1)), split_part(lock_key, ':', 1)),
            split_part(lock_key, ':', 2))
    END
$$;
