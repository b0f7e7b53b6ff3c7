-- Takes one of pnldb's locks (a use case's, a structure's, or the runs of a use case and date), held to
-- the end of the transaction; behind lock_use_case and lock_structure, and called by nobody else.
--   exclusive: the gate row FOR NO KEY UPDATE, then the version row, updated (waits for the readers).
--   shared:    passes the gate row FOR SHARE (waits for a writer that holds the gate, so a stream of
--              readers cannot starve a writer waiting its turn), then the version row FOR SHARE.
-- Row locks rather than advisory locks, for two reasons. No role without a privilege on lock_rows can
-- take them or queue for them (any login may take any advisory lock, its key read from pg_locks). And in
-- REPEATABLE READ or SERIALIZABLE, or on an exported snapshot, locking a version row that a writer
-- updated after the transaction's snapshot raises serialization_failure: the caller is refused, with
-- what changed, instead of running on superseded data. READ COMMITTED locks the latest version.
-- The wait is bounded by the limit lock_wait_ms (or the caller's lock_timeout, if shorter), after which
-- the waiter fails naming the sessions that hold the lock (lock_holders). It waits in a subtransaction
-- rolled back at once (a probe), then takes the lock in the transaction itself without waiting (SKIP
-- LOCKED), again if another session took it in between: a row lock held by a subtransaction carries
-- the subtransaction's xid, which pg_locks does not show, and the holder could not be named. For a
-- caller in a savepoint (the same thing), the holder also takes a marker (lock_marker), never waiting.
CREATE OR REPLACE FUNCTION {{ schema }}.take_lock(lock_kind text, lock_key text, exclusive boolean) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    kind CONSTANT text := take_lock.lock_kind;
    key CONSTANT text := take_lock.lock_key;
    limit_ms CONSTANT integer := {{ schema }}.limit_value('lock_wait_ms');
    caller_timeout CONSTANT text := current_setting('lock_timeout');
    caller_ms CONSTANT integer := (SELECT s.setting::integer FROM pg_settings s WHERE s.name = 'lock_timeout');
    wait_ms CONSTANT integer := CASE WHEN caller_ms > 0 THEN least(caller_ms, limit_ms) ELSE limit_ms END;
    deadline CONSTANT timestamptz := clock_timestamp() + wait_ms * interval '1 millisecond';
    stage text := 'create';
    have_gate boolean := false;
    taken boolean := false;
BEGIN
    -- ===== ALREADY HELD =====
    -- A writer takes it once per transaction (a rule trigger asks for every row); only take_lock writes
    -- changed_xact, and a rolled-back subtransaction takes its row version (and lock) with it.
    IF exclusive AND EXISTS (SELECT 1 FROM {{ schema }}.lock_rows r
                             WHERE r.lock_kind = kind AND r.lock_key = key AND NOT r.gate
                               AND r.changed_xact = pg_current_xact_id()) THEN
        RETURN;
    END IF;

    -- A reader that holds it already (its marker says so) takes it again without queueing at the gate: a
    -- writer waiting there for this very transaction would wait for ever (a deadlock).
    IF NOT exclusive AND EXISTS (SELECT 1 FROM pg_locks l
                                 WHERE l.pid = pg_backend_pid() AND l.locktype = 'advisory' AND l.granted
                                   AND l.objsubid = 1 AND ((l.classid::bigint << 32) | l.objid::bigint)
                                                          = {{ schema }}.lock_marker(kind, key, 'version')) THEN
        PERFORM FROM {{ schema }}.lock_rows r
        WHERE r.lock_kind = kind AND r.lock_key = key AND NOT r.gate FOR SHARE;
        RETURN;
    END IF;

    -- ===== THE LOCK'S ROWS =====
    -- not added by its use case's, structure's or facts' trigger (see lock_rows): the first lock does
    IF (SELECT count(*) FROM {{ schema }}.lock_rows r WHERE r.lock_kind = kind AND r.lock_key = key) < 2 THEN
        BEGIN
            PERFORM set_config('lock_timeout', wait_ms || 'ms', true);
            INSERT INTO {{ schema }}.lock_rows (lock_kind, lock_key, gate)
            VALUES (kind, key, true), (kind, key, false) ON CONFLICT DO NOTHING;
            PERFORM set_config('lock_timeout', caller_timeout, true);
        EXCEPTION WHEN lock_not_available OR serialization_failure THEN
            PERFORM {{ schema }}.lock_refused(kind, key, stage, SQLSTATE, wait_ms);
        END;
    END IF;

    -- ===== BOUNDED WAIT =====
    FOR attempt IN 1..1000 LOOP
        BEGIN  -- the probe: its rollback releases what it waited for, and restores lock_timeout
            PERFORM set_config('lock_timeout',
                               greatest(1, ceil(1000 * extract(epoch FROM deadline - clock_timestamp())))::integer || 'ms',
                               true);
            stage := 'gate';
            IF NOT exclusive THEN
                PERFORM FROM {{ schema }}.lock_rows r
                WHERE r.lock_kind = kind AND r.lock_key = key AND r.gate FOR SHARE;
                stage := 'version';
                PERFORM FROM {{ schema }}.lock_rows r
                WHERE r.lock_kind = kind AND r.lock_key = key AND NOT r.gate FOR SHARE;
            ELSIF NOT have_gate THEN
                PERFORM FROM {{ schema }}.lock_rows r
                WHERE r.lock_kind = kind AND r.lock_key = key AND r.gate FOR NO KEY UPDATE;
            ELSE
                stage := 'version';
                PERFORM FROM {{ schema }}.lock_rows r
                WHERE r.lock_kind = kind AND r.lock_key = key AND NOT r.gate FOR NO KEY UPDATE;
            END IF;
            RAISE SQLSTATE 'PNLPB';
        EXCEPTION
            WHEN SQLSTATE 'PNLPB' THEN
                NULL;
            WHEN lock_not_available OR serialization_failure THEN
                PERFORM {{ schema }}.lock_refused(kind, key, stage, SQLSTATE, wait_ms);
        END;
        -- the lock itself, in the transaction, without waiting
        IF NOT exclusive THEN
            PERFORM FROM {{ schema }}.lock_rows r
            WHERE r.lock_kind = kind AND r.lock_key = key AND NOT r.gate FOR SHARE SKIP LOCKED;
            taken := FOUND;
        ELSIF NOT have_gate THEN
            PERFORM FROM {{ schema }}.lock_rows r
            WHERE r.lock_kind = kind AND r.lock_key = key AND r.gate FOR NO KEY UPDATE SKIP LOCKED;
            have_gate := FOUND;
            IF have_gate THEN
                PERFORM pg_try_advisory_xact_lock_shared({{ schema }}.lock_marker(kind, key, 'gate'));
            END IF;
        ELSE
            PERFORM FROM {{ schema }}.lock_rows r
            WHERE r.lock_kind = kind AND r.lock_key = key AND NOT r.gate FOR NO KEY UPDATE SKIP LOCKED;
            taken := FOUND;
        END IF;
        IF taken THEN
            PERFORM pg_try_advisory_xact_lock_shared({{ schema }}.lock_marker(kind, key, 'version'));
            EXIT;
        END IF;
    END LOOP;
    IF NOT taken THEN  -- taken by others between probes a thousand times: a wait given up
        PERFORM {{ schema }}.lock_refused(kind, key, stage, '55P03', wait_ms);
    END IF;

    IF exclusive THEN
        UPDATE {{ schema }}.lock_rows r
        SET version = r.version + 1, changed_xact = pg_current_xact_id(), changed_by = session_user,
            changed_at = clock_timestamp()
        WHERE r.lock_kind = kind AND r.lock_key = key AND NOT r.gate;
    END IF;
END;
$fn$;
