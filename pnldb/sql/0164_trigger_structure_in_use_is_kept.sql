-- A structure that use cases are on is not deleted: the foreign key refuses it anyway, this says which
-- use cases and how many runs were taken on it (issue 18). Its nodes may still be edited: each run keeps
-- the tree it was taken on in its result rows (node, parent, name, depth).
CREATE OR REPLACE FUNCTION {{ schema }}.structure_in_use_is_kept() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    users text;
    runs  bigint;
BEGIN
    SELECT string_agg(format('"%s" (%s run(s))', u.name, u.runs), ', ' ORDER BY u.name), sum(u.runs)
    INTO users, runs
    FROM (SELECT c.name,
                 (SELECT count(*) FROM {{ schema }}.calculation_runs r WHERE r.use_case_id = c.use_case_id)
                 + (SELECT count(*) FROM {{ schema }}.use_case_runs r WHERE r.use_case_id = c.use_case_id) AS runs
          FROM {{ schema }}.use_cases c WHERE c.structure_id = OLD.structure_id) u;
    IF users IS NOT NULL THEN
        RAISE EXCEPTION 'structure % cannot be deleted: use case(s) % are on it', OLD.structure_id, users
            USING ERRCODE = 'foreign_key_violation',
                  HINT = CASE WHEN runs > 0 THEN 'a structure keeps the runs taken on it; delete_use_case removes a use case with its runs first'
                              ELSE 'delete those use cases first (delete_use_case)' END;
    END IF;
    RETURN OLD;
END;
$$;

CREATE OR REPLACE TRIGGER structure_in_use_is_kept
    BEFORE DELETE ON {{ schema }}.hierarchy_structures
    FOR EACH ROW EXECUTE FUNCTION {{ schema }}.structure_in_use_is_kept();
