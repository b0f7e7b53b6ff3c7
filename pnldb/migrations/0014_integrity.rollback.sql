DO $guard$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_event_trigger e WHERE e.evtname IN ('{{ schema }}_guard_ddl', '{{ schema }}_guard_drop'))
       AND NOT (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = current_user) THEN
        RAISE EXCEPTION 'cannot roll back integrity: the DDL guard of schema {{ schema }} is a superuser''s'
            USING ERRCODE = 'insufficient_privilege', HINT = 'a superuser rolls back past 0014_integrity';
    END IF;
END;
$guard$;
DROP EVENT TRIGGER IF EXISTS {{ schema }}_guard_ddl;
DROP EVENT TRIGGER IF EXISTS {{ schema }}_guard_drop;
DROP SCHEMA IF EXISTS {{ schema }}_guard CASCADE;
DROP TABLE {{ schema }}.use_cases_being_deleted;
DROP INDEX {{ schema }}.calculation_runs_chain;
ALTER TABLE {{ schema }}.calculation_runs
    DROP COLUMN digest, DROP COLUMN previous_digest, DROP COLUMN previous_run_id, DROP COLUMN chain_seq,
    DROP COLUMN txid;
