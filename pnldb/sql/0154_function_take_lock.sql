-- Takes one of pnldb's locks (a use case's, a structure's, or the runs of a use case and date), held to
-- the end of the transaction; behind lock_use_case and lock_structure, and called by nobody else.
--   exclusive: the gate row FOR UPDATE, then an UPDATE of the version row (waits for the readers).
--   shared:    the gate row FOR SHARE in a subtransaction rolled back at once (waits for a writer that
--              holds the gate, so a stream of readers cannot starve a writer waiting its turn), then the
--              version row FOR SHARE.
-- Row locks rather than advisory locks, for two reasons. No role without a privilege on lock_rows can
-- take them or queue for them (any login may take any advisory lock, its key read from pg_locks). And in
-- REPEATABLE READ or SERIALIZABLE, or on an exported snapshot, locking a version row that a writer
-- updated after the transaction's snapshot raises serialization_failure: the caller is refused, with
-- what changed, instead of running on superseded data. READ COMMITTED locks the latest version.
-- The wait is bounded by the limit lock_wait_ms (or the caller's lock_timeout, if shorter), after which
-- the waiter fails naming the sessions that hold the lock.
CREATE OR REPLACE FUNCTION {{ schema }}.take_lock(lock_kind text, lock_key text, exclusive boolean) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    kind CONSTANT text := take_lock.lock_kind;
    key CONSTANT text := take_lock.lock_key;
    limit_ms CONSTANT integer := {{ schema }}.limit_value('lock_wait_ms');
    caller_timeout CONSTANT text := current_setting('lock_timeout');
    caller_ms CONSTANT integer := (SELECT s.setting::integer FROM pg_settings s WHERE s.name = 'lock_timeout');
    wait_ms CONSTANT integer := CASE WHEN caller_ms > 0 THEN least(caller_ms, limit_ms) ELSE limit_ms END;
    stage text := 'create';
BEGIN
    -- ===== ALREADY HELD =====
    -- A writer takes it once per transaction (a rule trigger asks for every row); only take_lock writes
    -- changed_xact, and a rolled-back subtransaction takes its row version (and lock) with it.
    IF exclusive AND EXISTS (SELECT 1 FROM {{ schema }}.lock_rows r
                             WHERE r.lock_kind = kind AND r.lock_key = key AND NOT r.gate
                               AND r.changed_xact = pg_current_xact_id()) THEN
        RETURN;
    END IF;

    -- ===== BOUNDED WAIT =====
    BEGIN
        PERFORM set_config('lock_timeout', wait_ms || 'ms', true);
        IF (SELECT count(*) FROM {{ schema }}.lock_rows r WHERE r.lock_kind = kind AND r.lock_key = key) < 2 THEN
            -- not added by its use case's, structure's or facts' trigger (see lock_rows): the first lock does
            INSERT INTO {{ schema }}.lock_rows (lock_kind, lock_key, gate) VALUES (kind, key, true), (kind, key, false)
            ON CONFLICT DO NOTHING;
        END IF;
        stage := 'gate';
        IF exclusive THEN
            PERFORM FROM {{ schema }}.lock_rows r WHERE r.lock_kind = kind AND r.lock_key = key AND r.gate FOR UPDATE;
            stage := 'version';
            UPDATE {{ schema }}.lock_rows r
            SET version = r.version + 1, changed_xact = pg_current_xact_id(), changed_by = session_user,
                changed_at = clock_timestamp()
            WHERE r.lock_kind = kind AND r.lock_key = key AND NOT r.gate;
        ELSE
            BEGIN
                PERFORM FROM {{ schema }}.lock_rows r WHERE r.lock_kind = kind AND r.lock_key = key AND r.gate FOR SHARE;
                RAISE SQLSTATE 'PNLGP';  -- past the gate: roll the subtransaction back, releasing it
            EXCEPTION WHEN SQLSTATE 'PNLGP' THEN
                NULL;
            END;
            stage := 'version';
            PERFORM FROM {{ schema }}.lock_rows r WHERE r.lock_kind = kind AND r.lock_key = key AND NOT r.gate FOR SHARE;
        END IF;
        PERFORM set_config('lock_timeout', caller_timeout, true);
    EXCEPTION
        WHEN lock_not_available THEN  -- the subtransaction's rollback restored the caller's lock_timeout
            RAISE EXCEPTION '% is locked by another session: %; gave up after % ms',
                            {{ schema }}.lock_label(kind, key), {{ schema }}.lock_holders(kind, key, stage), wait_ms
                USING ERRCODE = 'lock_not_available',
                      HINT = 'nothing was written. Ask that session to commit or roll back (or end it with '
                             'pg_terminate_backend(pid)), then try again; the wait is the limit lock_wait_ms '
                             '(see the limits table) or your lock_timeout, whichever is shorter';
        WHEN serialization_failure THEN
            RAISE EXCEPTION '% changed after this transaction''s snapshot was taken: % committed since, so it would work on superseded data',
                            {{ schema }}.lock_label(kind, key),
                            CASE kind WHEN 'use case' THEN 'a write of its facts, rules or close'
                                      WHEN 'structure' THEN 'an edit of its hierarchy'
                                      ELSE 'another run' END
                USING ERRCODE = 'serialization_failure',
                      HINT = 'nothing was written. Start a new transaction and try again: a REPEATABLE READ or '
                             'SERIALIZABLE transaction (or one that SET TRANSACTION SNAPSHOT) reads the data as '
                             'of its snapshot, which must not predate the latest change';
    END;
END;
$fn$;
