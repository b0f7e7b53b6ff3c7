-- Group roles (NOLOGIN) for people and tools; grant them to login roles:
--   {{ schema }}_reader    reads runs: the views, get_run, list_runs, compare_runs
--   {{ schema }}_operator  a reader that also takes snapshots
--   {{ schema }}_admin     an operator that also writes hierarchies, use cases, facts and rules, and
--                          deletes use cases (through delete_use_case only)
--   {{ schema }}_approver  a reader that also approves, rejects, signs off, reopens and locks COB dates and
--                          sets the close's checks and policy (contract §7); not granted to admin:
--                          loading facts and editing rules does not make anyone an approver
-- Roles belong to the cluster, not the database: created once, kept across re-installs.
DO $roles$
DECLARE
    role_name text;
BEGIN
    FOREACH role_name IN ARRAY ARRAY['{{ schema }}_reader', '{{ schema }}_operator', '{{ schema }}_admin',
                                        '{{ schema }}_approver'] LOOP
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
GRANT {{ schema }}_reader TO {{ schema }}_approver;
