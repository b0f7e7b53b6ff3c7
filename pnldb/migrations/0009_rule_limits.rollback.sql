DELETE FROM {{ schema }}.limits WHERE name IN ('max_rule_conditions', 'max_in_list');
