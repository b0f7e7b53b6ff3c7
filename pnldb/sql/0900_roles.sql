-- Group roles (NOLOGIN) for people and tools; grant them to login roles:
--   {{ roles.reader }}    reads runs: the views, get_run, list_runs, compare_runs
--   {{ roles.operator }}  a reader that also takes snapshots
--   {{ roles.admin }}     an operator that also writes hierarchies, use cases, facts and rules, and
--                          deletes use cases (through delete_use_case only)
--   {{ roles.approver }}  a reader that also approves, rejects, signs off, reopens and locks COB dates and
--                          sets the close's checks and policy (contract §7); not granted to admin:
--                          loading facts and editing rules does not make anyone an approver
-- Roles belong to the cluster, not the database: created once, kept across re-installs.
DO $roles$
DECLARE
    role_name text;
BEGIN
    FOREACH role_name IN ARRAY ARRAY['{{ roles.reader }}', '{{ roles.operator }}', '{{ roles.admin }}',
                                        '{{ roles.approver }}'] LOOP
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

GRANT {{ roles.reader }} TO {{ roles.operator }};
GRANT {{ roles.operator }} TO {{ roles.admin }};
GRANT {{ roles.reader }} TO {{ roles.approver }};
