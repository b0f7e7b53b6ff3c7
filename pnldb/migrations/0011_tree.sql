-- depends: 0010_runs
-- Trees of bounded depth (contract: robustness): the depth a load or an edit may reach.
INSERT INTO {{ schema }}.limits (name, value, description)
VALUES ('max_hierarchy_depth', 64,
        'deepest node of a structure, counted from its root (depth 0); a load or edit reaching deeper is refused');
