-- close_events is the audit trail of the close and the source of every unit's status (contract §7):
-- append-only for everybody, owner included. Unlike the runs, no path deletes it: it outlives
-- delete_use_case.
CREATE OR REPLACE FUNCTION {{ schema }}.close_events_are_append_only() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION 'close events are append-only: % on %.% is not allowed', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'object_not_in_prerequisite_state',
              HINT = 'a close step is undone by another step (withdraw_run, reject_run, reopen_cob), which is recorded too';
END;
$$;

CREATE OR REPLACE TRIGGER close_events_are_append_only
    BEFORE UPDATE OR DELETE ON {{ schema }}.close_events
    FOR EACH ROW EXECUTE FUNCTION {{ schema }}.close_events_are_append_only();

CREATE OR REPLACE TRIGGER close_events_are_not_truncated
    BEFORE TRUNCATE ON {{ schema }}.close_events
    FOR EACH STATEMENT EXECUTE FUNCTION {{ schema }}.close_events_are_append_only();
