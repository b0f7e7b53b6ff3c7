-- The close log is append-only: rolling back would destroy the record of who signed what off.
DO $guard$
BEGIN
    IF EXISTS (SELECT 1 FROM {{ schema }}.close_events) THEN
        RAISE EXCEPTION 'cannot roll back the close: close_events holds the audit trail of sign-offs'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'keep the migration; the close log is append-only';
    END IF;
END;
$guard$;
DROP TABLE {{ schema }}.close_events;
DROP TABLE {{ schema }}.close_checks;
ALTER TABLE {{ schema }}.calculation_runs DROP COLUMN executed_by;
ALTER TABLE {{ schema }}.use_cases DROP COLUMN locked_through, DROP COLUMN signoff_policy;
