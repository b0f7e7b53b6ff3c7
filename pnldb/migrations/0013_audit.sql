-- depends: 0012_locks
-- Rule history (issue 18): every insert, update and delete of a rule, as the rule then read, with who
-- (session_user) and when. Written by the rules' trigger only and append-only for everybody, owner
-- included. No foreign key on purpose: like close_events it outlives the rules and use cases it names.
CREATE TABLE {{ schema }}.rule_versions (
    version_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule_id        bigint NOT NULL,
    use_case_id    uuid NOT NULL,
    operation      text NOT NULL CONSTRAINT rule_versions_operation_valid
        CHECK (operation IN ('INSERT', 'UPDATE', 'DELETE', 'MIGRATED')),
    node_id        text NOT NULL,
    predicate_json jsonb NOT NULL,
    sql_where      text,
    logic_en       text,
    changed_by     text NOT NULL,
    changed_at     timestamptz NOT NULL
);
CREATE INDEX ix_rule_versions_rule ON {{ schema }}.rule_versions (use_case_id, rule_id, version_id);

-- The rules already there start their history as they stand: who and when are what the rule row said
-- (operation MIGRATED), not what anyone saw.
INSERT INTO {{ schema }}.rule_versions (rule_id, use_case_id, operation, node_id, predicate_json, sql_where, logic_en,
                                        changed_by, changed_at)
SELECT r.rule_id, r.use_case_id, 'MIGRATED', r.node_id, r.predicate_json, r.sql_where, r.logic_en,
       r.last_modified_by, r.last_modified_at
FROM {{ schema }}.metadata_rules r
ORDER BY r.rule_id;
