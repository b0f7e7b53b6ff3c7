-- The sessions holding one lock row (stage: 'gate' or 'version'; 'create' while its rows are added), for
-- the error of a waiter that gave up: role, pid, state and since when each one's transaction is open.
-- Found two ways: the row's xmax, the transaction that locked it or a multixact of several share
-- lockers, each running one holding a lock on its own xid in pg_locks (not so a subtransaction's); and
-- the marker the holders take (lock_marker), from sessions of pnldb's roles only. A schema owner that is
-- not a superuser nor in pg_read_all_stats sees other roles' pid and role only.
CREATE OR REPLACE FUNCTION {{ schema }}.lock_holders(lock_kind text, lock_key text, stage text) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    locker xid;
    lockers xid[];
    marker CONSTANT bigint := {{ schema }}.lock_marker(lock_kind, lock_key,
                                                       CASE WHEN stage = 'gate' THEN 'gate' ELSE 'version' END);
    found text;
BEGIN
    SELECT r.xmax INTO locker FROM {{ schema }}.lock_rows r
    WHERE r.lock_kind = lock_holders.lock_kind AND r.lock_key = lock_holders.lock_key AND r.gate = (stage = 'gate');
    lockers := ARRAY[locker];
    IF NOT EXISTS (SELECT 1 FROM pg_locks l
                   WHERE l.locktype = 'transactionid' AND l.granted AND l.transactionid = locker) THEN
        BEGIN
            lockers := ARRAY(SELECT m.xid FROM pg_get_multixact_members(locker) m);
        EXCEPTION WHEN OTHERS THEN
            NULL;  -- not a multixact: a subtransaction's xid, or a holder that has ended meanwhile
        END;
    END IF;
    WITH holders AS (
        SELECT l.pid FROM pg_locks l
        WHERE l.locktype = 'transactionid' AND l.mode = 'ExclusiveLock' AND l.granted
          AND l.transactionid = ANY (lockers)
        UNION
        SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'advisory' AND l.granted
          AND l.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
          AND ((l.classid::bigint << 32) | l.objid::bigint) = marker AND l.objsubid = 1
          AND pg_has_role(a.usesysid, '{{ roles.reader }}', 'MEMBER')
    )
    SELECT string_agg(format('role %s (pid %s, %s since %s)',
                             coalesce(a.usename::text, '?'), h.pid, coalesce(a.state, 'in a transaction'),
                             coalesce(to_char(a.xact_start AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC, '
                                      || round(extract(epoch FROM now() - a.xact_start)) || ' s ago',
                                      'a time hidden from the schema owner (grant it pg_read_all_stats)')),
                      '; ' ORDER BY h.pid)
    INTO found
    FROM holders h LEFT JOIN pg_stat_activity a ON a.pid = h.pid
    WHERE h.pid <> pg_backend_pid();
    RETURN coalesce(found, CASE WHEN stage = 'create' THEN 'a session adding it that has not committed yet'
                                ELSE 'a session that has ended since' END);
END;
$$;
