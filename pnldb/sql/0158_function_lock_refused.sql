-- The one error of a lock not taken (take_lock): a wait given up (55P03), naming who holds the lock, or
-- a transaction whose snapshot predates the lock's latest writer (40001), saying what changed.
CREATE OR REPLACE FUNCTION {{ schema }}.lock_refused(lock_kind text, lock_key text, stage text, failure text,
                                                     wait_ms integer) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF failure = '55P03' THEN
        RAISE EXCEPTION '% is locked by another session: %; gave up after % ms',
                        {{ schema }}.lock_label(lock_kind, lock_key),
                        {{ schema }}.lock_holders(lock_kind, lock_key, stage), wait_ms
            USING ERRCODE = 'lock_not_available',
                  HINT = 'nothing was written. Ask that session to commit or roll back (or end it with '
                         'pg_terminate_backend(pid)), then try again; the wait is the limit lock_wait_ms '
                         '(see the limits table) or your lock_timeout, whichever is shorter';
    END IF;
    RAISE EXCEPTION '% changed after this transaction''s snapshot was taken: % committed since, so it would '
                    'work on superseded data',
                    {{ schema }}.lock_label(lock_kind, lock_key),
                    CASE lock_kind WHEN 'use case' THEN 'a write of its facts, rules or close'
                                   WHEN 'structure' THEN 'an edit of its hierarchy'
                                   ELSE 'another run' END
        USING ERRCODE = 'serialization_failure',
              HINT = 'nothing was written. Start a new transaction and try again: a REPEATABLE READ or '
                     'SERIALIZABLE transaction (or one that SET TRANSACTION SNAPSHOT) reads the data as '
                     'of its snapshot, which must not predate the latest change';
END;
$$;
