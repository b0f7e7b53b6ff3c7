-- The roles of one pnldb installation (pnldb roles create, a DBA's step), all NOLOGIN:
--   {{ roles.owner }}     owns every object of schema {{ schema }}; pnldb migrate acts as it through SET ROLE,
--                          nobody logs in as it, and it holds nothing else (no CREATEROLE; of the roles,
--                          pg_read_all_stats only)
--   {{ roles.reader }}    reads runs: the views, get_run, list_runs, compare_runs
--   {{ roles.operator }}  a reader that also takes snapshots
--   {{ roles.admin }}     an operator that also writes hierarchies, use cases, facts and rules, and
--                          deletes use cases (through delete_use_case only)
--   {{ roles.approver }}  a reader that also approves, rejects, signs off, reopens and locks COB dates and
--                          sets the close's checks and policy (contract §7); not granted to admin:
--                          loading facts and editing rules does not make anyone an approver
-- Roles belong to the cluster: created once, kept as they are when they exist (another database of the
-- same prefix shares them), except that the owner is made login-less and powerless again.
DO $roles$
DECLARE
    role_name text;
    held      text;
BEGIN
    FOREACH role_name IN ARRAY ARRAY['{{ roles.owner }}', '{{ roles.reader }}', '{{ roles.operator }}',
                                        '{{ roles.admin }}', '{{ roles.approver }}'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role_name) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', role_name);
            EXCEPTION WHEN duplicate_object THEN
                NULL;  -- another roles create made it meanwhile
            END;
        END IF;
    END LOOP;
    SELECT string_agg(quote_ident(g.rolname), ', ' ORDER BY g.rolname) INTO held
    FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
    WHERE m.member = '{{ roles.owner }}'::regrole AND g.rolname <> 'pg_read_all_stats';
    IF held IS NOT NULL THEN
        RAISE EXCEPTION 'role {{ roles.owner }} is a member of %: the owner of pnldb''s objects must hold nothing '
                        'else, or whoever acts as it holds that too', held
            USING ERRCODE = 'insufficient_privilege',
                  HINT = format('REVOKE %s FROM {{ roles.owner }}, then run pnldb roles create again', held);
    END IF;
END;
$roles$;
ALTER ROLE {{ roles.owner }} NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
-- The one role the owner holds: reading other sessions' activity, so that a lock refusal (lock_holders) and
-- migrate name who holds the lock and since when.
GRANT pg_read_all_stats TO {{ roles.owner }};

GRANT {{ roles.reader }} TO {{ roles.operator }};
GRANT {{ roles.operator }} TO {{ roles.admin }};
GRANT {{ roles.reader }} TO {{ roles.approver }};

CREATE SCHEMA IF NOT EXISTS {{ schema }} AUTHORIZATION {{ roles.owner }};

-- An installation from before the owner role (objects of whoever ran pnldb migrate) is handed to the owner,
-- every object of the schema at once, keeping its data and grants.
DO $adopt$
DECLARE
    statement text;
BEGIN
    FOR statement IN
        SELECT format('ALTER SCHEMA %I OWNER TO {{ roles.owner }}', n.nspname)
        FROM pg_namespace n WHERE n.oid = '{{ schema }}'::regnamespace AND n.nspowner <> '{{ roles.owner }}'::regrole
        UNION ALL
        -- tables, views and free sequences; a table's own sequences and indexes follow it
        SELECT format('ALTER %s %s OWNER TO {{ roles.owner }}',
                      CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE'
                                     WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END, c.oid::regclass)
        FROM pg_class c
        WHERE c.relnamespace = '{{ schema }}'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
          AND c.relowner <> '{{ roles.owner }}'::regrole
          AND NOT (c.relkind = 'S' AND EXISTS (SELECT 1 FROM pg_depend d
                                               WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                                                 AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')))
        UNION ALL
        SELECT format('ALTER ROUTINE %s OWNER TO {{ roles.owner }}', p.oid::regprocedure)
        FROM pg_proc p WHERE p.pronamespace = '{{ schema }}'::regnamespace AND p.proowner <> '{{ roles.owner }}'::regrole
        UNION ALL
        -- enums, domains and free composite types; a table's row type and arrays follow their owner
        SELECT format('ALTER TYPE %s OWNER TO {{ roles.owner }}', t.oid::regtype)
        FROM pg_type t
        WHERE t.typnamespace = '{{ schema }}'::regnamespace AND t.typowner <> '{{ roles.owner }}'::regrole
          AND t.typelem = 0
          AND (t.typtype IN ('e', 'd')
               OR (t.typtype = 'c' AND (SELECT c.relkind FROM pg_class c WHERE c.oid = t.typrelid) = 'c'))
        UNION ALL
        -- the old owner's default privileges in the schema (functions closed to PUBLIC) go back to the default
        SELECT format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I GRANT EXECUTE ON FUNCTIONS TO PUBLIC',
                      pg_get_userbyid(a.defaclrole), n.nspname)
        FROM pg_default_acl a JOIN pg_namespace n ON n.oid = a.defaclnamespace
        WHERE n.oid = '{{ schema }}'::regnamespace AND a.defaclrole <> '{{ roles.owner }}'::regrole
          AND a.defaclobjtype = 'f'
    LOOP
        EXECUTE statement;
    END LOOP;
END;
$adopt$;
