-- depends: 0005_fact_loads
-- The close (contract §7): a sign-off policy and a locked-through watermark per use case, who executed
-- each run, the per-use-case check settings, and close_events, the append-only log every unit's status
-- is derived from. close_events has no foreign keys on purpose: it outlives the use cases and runs it
-- names.
ALTER TABLE {{ schema }}.use_cases
    ADD COLUMN signoff_policy text NOT NULL DEFAULT 'FOUR_EYES' CHECK (signoff_policy IN ('FOUR_EYES', 'SIMPLE')),
    ADD COLUMN locked_through date;

-- Runs taken before this migration keep executed_by NULL: nobody recorded who ran them (triggered_by is
-- free text), so four-eyes cannot be proven for them. The default is set after the column exists, so
-- existing rows are not stamped with the migrating user.
ALTER TABLE {{ schema }}.calculation_runs ADD COLUMN executed_by text;
ALTER TABLE {{ schema }}.calculation_runs ALTER COLUMN executed_by SET DEFAULT session_user;

CREATE TABLE {{ schema }}.close_checks (
    use_case_id uuid NOT NULL REFERENCES {{ schema }}.use_cases (use_case_id) ON DELETE CASCADE,
    code        text NOT NULL,
    severity    text NOT NULL CHECK (severity IN ('ERROR', 'WARNING', 'OFF')),
    params      jsonb NOT NULL DEFAULT '{}',
    set_by      text NOT NULL DEFAULT session_user,
    set_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (use_case_id, code)
);

CREATE TABLE {{ schema }}.close_events (
    event_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at            timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor         text NOT NULL DEFAULT session_user,
    use_case_id   uuid NOT NULL,
    use_case_name text NOT NULL,
    pnl_date      date,
    run_id        uuid,
    action        text NOT NULL,
    comment       text,
    details       jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX ix_close_events_unit ON {{ schema }}.close_events (use_case_id, pnl_date, event_id);
