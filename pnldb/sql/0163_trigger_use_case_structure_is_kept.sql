-- A use case's runs were taken on its structure and are read with it: once it has runs, its structure
-- stays (issue 18). Runs record no structure of their own, so this is what keeps the runs of one use case
-- on one structure (compare_runs relies on it). Its name and status may change: the run header names the
-- use case by id, and close_events keep the name it had at each step.
CREATE OR REPLACE FUNCTION {{ schema }}.use_case_structure_is_kept() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    runs bigint;
BEGIN
    IF NEW.structure_id IS DISTINCT FROM OLD.structure_id THEN
        SELECT (SELECT count(*) FROM {{ schema }}.calculation_runs r WHERE r.use_case_id = OLD.use_case_id)
             + (SELECT count(*) FROM {{ schema }}.use_case_runs r WHERE r.use_case_id = OLD.use_case_id)
        INTO runs;
        IF runs > 0 THEN
            RAISE EXCEPTION 'use case "%" has % run(s) taken on structure %: its structure cannot change to %',
                            OLD.name, runs, OLD.structure_id, NEW.structure_id
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = format('runs stay with the structure they were taken on; create a new use case on '
                                    'structure %s instead', NEW.structure_id);
        END IF;
    END IF;
    RETURN NEW;
END;
$$;

CREATE OR REPLACE TRIGGER use_case_structure_is_kept
    BEFORE UPDATE OF structure_id ON {{ schema }}.use_cases
    FOR EACH ROW EXECUTE FUNCTION {{ schema }}.use_case_structure_is_kept();
