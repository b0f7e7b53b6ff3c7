DELETE FROM {{ schema }}.limits WHERE name = 'max_hierarchy_depth';
