-- The advisory lock a holder of a lock row takes beside it, shared and never waiting (take_lock), only
-- so that lock_holders can name it from pg_locks when the row lock is held under a subtransaction's xid
-- (a caller's savepoint). It locks nothing: pnldb never waits on it, and a login outside pnldb's roles
-- that takes it too is not named (nor can it keep a holder from taking it: the holder is then named
-- only from the row's xmax).
CREATE OR REPLACE FUNCTION {{ schema }}.lock_marker(lock_kind text, lock_key text, stage text) RETURNS bigint
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT hashtextextended('pnldb.lock_rows:' || lock_kind || ':' || lock_key || ':' || stage, 0)
$$;
