-- The close's audit trail for readers (contract §7); close_events itself is append-only. Only the use
-- cases the session's login is entitled to (a deleted use case's events: those entitled to all).
CREATE OR REPLACE VIEW {{ schema }}.v_close_events AS
SELECT e.event_id, e.at, e.actor, e.use_case_id, e.use_case_name, e.pnl_date, e.run_id, e.action, e.comment, e.details
FROM {{ schema }}.close_events e
WHERE ((SELECT {{ schema }}.entitled_to_all_use_cases()) OR e.use_case_id = ANY ((SELECT {{ schema }}.entitled_use_cases())::uuid[]));

COMMENT ON VIEW {{ schema }}.v_close_events IS
    'Every step of the close, oldest first by event_id, append-only and kept after its use case is deleted.';
COMMENT ON COLUMN {{ schema }}.v_close_events.event_id IS 'Order of the events.';
COMMENT ON COLUMN {{ schema }}.v_close_events.at IS 'When the step was taken.';
COMMENT ON COLUMN {{ schema }}.v_close_events.actor IS 'Database login (session user) that took the step.';
COMMENT ON COLUMN {{ schema }}.v_close_events.use_case_id IS 'Use case (no foreign key: it may be deleted since).';
COMMENT ON COLUMN {{ schema }}.v_close_events.use_case_name IS 'Name of the use case at the time.';
COMMENT ON COLUMN {{ schema }}.v_close_events.pnl_date IS 'COB date of the unit; for LOCKED the new watermark; NULL for use-case-wide events.';
COMMENT ON COLUMN {{ schema }}.v_close_events.run_id IS 'Run the step concerns, if any.';
COMMENT ON COLUMN {{ schema }}.v_close_events.action IS 'SUBMITTED, APPROVED, REJECTED, WITHDRAWN, SIGNED_OFF, REOPENED, LOCKED, USE_CASE_DELETED, RUNS_PURGED, POLICY_SET or CHECK_SET.';
COMMENT ON COLUMN {{ schema }}.v_close_events.comment IS 'Comment or reason given.';
COMMENT ON COLUMN {{ schema }}.v_close_events.details IS 'What the actor saw: the check results, acknowledgements, counts.';
