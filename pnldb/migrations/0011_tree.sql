-- depends: 0010_runs
-- Trees of bounded depth (contract: robustness): the depth a load may reach, and the stamp every edit of
-- a structure's nodes writes on its structure row, so that two edits of one tree conflict even under
-- REPEATABLE READ (the second cannot commit a tree it checked on a snapshot without the first).
INSERT INTO {{ schema }}.limits (name, value, description)
VALUES ('max_hierarchy_depth', 64,
        'deepest node of a structure, counted from its root (depth 0); a load or edit reaching deeper is refused');

ALTER TABLE {{ schema }}.hierarchy_structures
    ADD COLUMN tree_changed_at timestamptz NOT NULL DEFAULT now();
COMMENT ON COLUMN {{ schema }}.hierarchy_structures.tree_changed_at
    IS 'Start of the transaction that last inserted or updated nodes of the structure (written by the tree check).';
