-- depends: 0011_tree
-- The rows pnldb's locks are taken on (contract: robustness). Row locks, not advisory locks: nobody
-- without a privilege on this table can take or queue for them, and a snapshot that predates a writer's
-- commit fails on the version row the writer updated instead of running on superseded data. Per lock
-- (use case, structure, run date) a gate row, held by a writer while it waits so that later readers
-- queue behind it, and a version row, updated by every writer. Rows are added by triggers on
-- use_cases, hierarchy_structures and fact_load_slices, or else by the first lock.
CREATE TABLE {{ schema }}.lock_rows (
    lock_kind    text NOT NULL
                 CONSTRAINT lock_rows_kind_valid CHECK (lock_kind IN ('use case', 'structure', 'run date')),
    lock_key     text NOT NULL,
    gate         boolean NOT NULL,
    version      bigint NOT NULL DEFAULT 0,
    changed_xact xid8,
    changed_by   text,
    changed_at   timestamptz,
    PRIMARY KEY (lock_kind, lock_key, gate)
);

INSERT INTO {{ schema }}.lock_rows (lock_kind, lock_key, gate)
SELECT 'use case', u.use_case_id::text, g FROM {{ schema }}.use_cases u, (VALUES (true), (false)) v (g)
UNION ALL
SELECT 'structure', s.structure_id, g FROM {{ schema }}.hierarchy_structures s, (VALUES (true), (false)) v (g)
UNION
SELECT 'run date', f.use_case_id || ':' || to_char(f.pnl_date, 'YYYY-MM-DD'), g
FROM {{ schema }}.fact_load_slices f, (VALUES (true), (false)) v (g);

INSERT INTO {{ schema }}.limits (name, value, description) VALUES
    ('lock_wait_ms', 10000, 'how long (milliseconds) a snapshot, load, rule write or close step waits for a lock '
                            'another session holds before it fails naming that session');
