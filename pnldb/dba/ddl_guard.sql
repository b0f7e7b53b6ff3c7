-- The DDL guard (issue 18, item 2), installed by pnldb roles create when a superuser runs it (an event
-- trigger needs one): its function is the superuser's, never the owner's, as an event trigger runs for every
-- role, superusers included. Outside a transaction holding pnldb's migrate lock of the schema (which
-- migrate, rollback, install_sql, uninstall_sql and roles create take) it refuses DDL on the protected
-- tables, on the triggers, rules and policies on them, on their trigger functions and the functions named
-- below, and on the schema's name. The owner can take that lock too: what it then changes, verify detects.
-- Dropping the whole schema (DROP SCHEMA ... CASCADE) is let through: it destroys the history rather than
-- forges it, and leaves nothing to be believed (backups, and the chain's head kept elsewhere, are the
-- defence).
DO $install$
BEGIN
    -- An event trigger's function runs as the role whose command fires it, any role's DDL anywhere in the
    -- database (an admin loader's temporary table, a user's view in a schema of theirs): every role uses
    -- the guard's schema and reads its one row; only its superuser owner writes them.
    CREATE SCHEMA IF NOT EXISTS {{ schema }}_guard;
    GRANT USAGE ON SCHEMA {{ schema }}_guard TO PUBLIC;
    -- The schema guarded, by oid (a renamed schema is still found); the names of its protected tables; and
    -- the oids of those it has, which pnldb's installer records after each migrate or rollback, so that a
    -- renamed table is still found and a schema rolled back to an older version is guarded as it stands.
    CREATE TABLE IF NOT EXISTS {{ schema }}_guard.home (nsp oid NOT NULL);
    ALTER TABLE {{ schema }}_guard.home ADD COLUMN IF NOT EXISTS protected text[] NOT NULL DEFAULT '{}',
                                        ADD COLUMN IF NOT EXISTS tables oid[] NOT NULL DEFAULT '{}';
    GRANT SELECT ON {{ schema }}_guard.home TO PUBLIC;
    GRANT UPDATE (tables) ON {{ schema }}_guard.home TO {{ roles.owner }};
    DELETE FROM {{ schema }}_guard.home;
    INSERT INTO {{ schema }}_guard.home (nsp, protected, tables)
    SELECT n.oid, p.names, ARRAY(SELECT c.oid FROM pg_class c WHERE c.relnamespace = n.oid AND c.relname = ANY (p.names))
    FROM pg_namespace n,
         (SELECT ARRAY['calculation_runs', 'fact_calculated_results', 'calculation_run_rules', 'calculation_run_inputs',
                       'calculation_run_fx', 'fact_loads', 'fact_load_slices', 'fact_pnl_entries', 'close_events',
                       'runs_being_purged', 'use_cases_being_deleted'] AS names) p
    WHERE n.nspname = '{{ schema }}';
    CREATE OR REPLACE FUNCTION {{ schema }}_guard.refuse_protected_ddl() RETURNS event_trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $guard$
    DECLARE
        guarded   CONSTANT text[] := ARRAY['run_digest', 'run_chain', 'verify_run', 'verify_chain', 'delete_use_case',
                                           'purge_runs'];
        home      oid := (SELECT h.nsp FROM {{ schema }}_guard.home h);
        protected text[] := (SELECT h.protected FROM {{ schema }}_guard.home h);
        recorded  oid[] := (SELECT h.tables FROM {{ schema }}_guard.home h);
        hit       text;
    BEGIN
        IF EXISTS (SELECT 1 FROM pg_locks l
                   WHERE l.locktype = 'advisory' AND l.pid = pg_backend_pid() AND l.granted AND l.objsubid = 1
                     AND l.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
                     AND ((l.classid::bigint << 32) | l.objid::bigint)
                         = hashtextextended('pnldb.migrate:{{ schema }}', 0)) THEN
            RETURN;  -- pnldb's installer
        END IF;
        IF NOT EXISTS (SELECT 1 FROM pg_namespace n WHERE n.oid = home) THEN
            RETURN;  -- the whole schema dropped (DROP SCHEMA ... CASCADE): nothing is left to forge
        ELSIF (SELECT n.nspname FROM pg_namespace n WHERE n.oid = home) <> '{{ schema }}' THEN
            hit := 'schema {{ schema }} renamed';
        ELSIF TG_EVENT = 'sql_drop' THEN
            SELECT string_agg(d.object_type || ' ' || d.object_identity, ', ') INTO hit
            FROM pg_event_trigger_dropped_objects() d
            WHERE (d.object_type = 'schema' AND d.object_identity = '{{ schema }}_guard')
               OR d.schema_name = '{{ schema }}_guard'
               OR (d.schema_name = '{{ schema }}' AND d.object_type IN ('table', 'trigger', 'rule', 'policy')
                   AND d.address_names[2] = ANY (protected))
               OR (d.classid = 'pg_class'::regclass AND d.objid = ANY (recorded))
               OR (d.schema_name = '{{ schema }}' AND d.object_type IN ('function', 'procedure')
                   AND d.address_names[2] = ANY (guarded));
        ELSE
            WITH tables AS (
                SELECT c.oid FROM pg_class c
                WHERE c.relnamespace = home AND (c.relname = ANY (protected) OR c.oid = ANY (recorded))
            )
            SELECT string_agg(e.command_tag || ' ' || coalesce(e.object_identity, ''), ', ') INTO hit
            FROM pg_event_trigger_ddl_commands() e
            WHERE e.command_tag NOT IN ('GRANT', 'REVOKE', 'COMMENT')
              AND ((e.classid = 'pg_class'::regclass AND e.objid IN (SELECT oid FROM tables))
                   OR (e.classid = 'pg_trigger'::regclass
                       AND (SELECT t.tgrelid FROM pg_trigger t WHERE t.oid = e.objid) IN (SELECT oid FROM tables))
                   OR (e.classid = 'pg_rewrite'::regclass
                       AND (SELECT r.ev_class FROM pg_rewrite r WHERE r.oid = e.objid) IN (SELECT oid FROM tables))
                   OR (e.classid = 'pg_policy'::regclass
                       AND (SELECT p.polrelid FROM pg_policy p WHERE p.oid = e.objid) IN (SELECT oid FROM tables))
                   OR (e.classid = 'pg_proc'::regclass
                       AND (e.objid IN (SELECT t.tgfoid FROM pg_trigger t WHERE t.tgrelid IN (SELECT oid FROM tables))
                            OR EXISTS (SELECT 1 FROM pg_proc p WHERE p.oid = e.objid AND p.pronamespace = home
                                                                 AND p.proname = ANY (guarded))))
                   OR (e.classid = 'pg_namespace'::regclass AND e.objid = home)
                   OR e.schema_name = '{{ schema }}_guard');
        END IF;
        IF hit IS NOT NULL THEN
            RAISE EXCEPTION '% refused: % protects the history of schema {{ schema }} (%)', TG_TAG,
                            'pnldb''s DDL guard', hit
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'the runs, results, facts, loads and close events change only through pnldb''s '
                             'functions; the schema changes only through pnldb migrate or pnldb rollback';
        END IF;
    END;
    $guard$;
    GRANT EXECUTE ON FUNCTION {{ schema }}_guard.refuse_protected_ddl() TO PUBLIC;
    IF NOT EXISTS (SELECT 1 FROM pg_event_trigger e WHERE e.evtname = '{{ schema }}_guard_ddl') THEN
        CREATE EVENT TRIGGER {{ schema }}_guard_ddl ON ddl_command_end
            EXECUTE FUNCTION {{ schema }}_guard.refuse_protected_ddl();
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_event_trigger e WHERE e.evtname = '{{ schema }}_guard_drop') THEN
        CREATE EVENT TRIGGER {{ schema }}_guard_drop ON sql_drop
            EXECUTE FUNCTION {{ schema }}_guard.refuse_protected_ddl();
    END IF;
    -- also in session_replication_role = replica, which silences the row triggers
    ALTER EVENT TRIGGER {{ schema }}_guard_ddl ENABLE ALWAYS;
    ALTER EVENT TRIGGER {{ schema }}_guard_drop ENABLE ALWAYS;
END;
$install$;
