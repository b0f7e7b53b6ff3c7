ALTER TABLE {{ schema }}.hierarchy_structures DROP COLUMN tree_changed_at;
DELETE FROM {{ schema }}.limits WHERE name = 'max_hierarchy_depth';
