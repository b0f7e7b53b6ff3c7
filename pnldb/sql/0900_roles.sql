-- Group roles (NOLOGIN) for people and tools; grant them to login roles:
--   {{ schema }}_reader    reads runs: the views, get_run, list_runs, compare_runs
--   {{ schema }}_operator  a reader that also takes snapshots
--   {{ schema }}_admin     an operator that also writes hierarchies, use cases, facts and rules, and
--                          deletes use cases (through delete_use_case only)
-- Roles belong to the cluster, not the database: created once, kept across re-installs.
DO $roles$
DECLARE
    role_name text;
BEGIN
    FOREACH role_name IN ARRAY ARRAY['{{ schema }}_reader', '{{ schema }}_operator', '{{ schema }}_admin'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role_name) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', role_name);
            EXCEPTION WHEN duplicate_object THEN
                NULL;  -- another migrate created it meanwhile
            END;
        END IF;
    END LOOP;
END;
$roles$;

GRANT {{ schema }}_reader TO {{ schema }}_operator;
GRANT {{ schema }}_operator TO {{ schema }}_admin;
