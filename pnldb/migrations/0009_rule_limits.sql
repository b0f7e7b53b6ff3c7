-- depends: 0008_limits
-- Limits on one rule's size (issue 19 item 4): a rule is evaluated against every fact it governs in
-- every snapshot, so its conditions and the values of an in/not_in list are bounded when it is written
-- (rule_is_valid). At these defaults a snapshot of the sample data stays well under a second.
INSERT INTO {{ schema }}.limits (name, value, description) VALUES
    ('max_rule_conditions', 100, 'conditions in one rule''s predicate_json, refused when the rule is written'),
    ('max_in_list', 1000, 'values in the list of one in/not_in condition of a rule, refused when the rule is written');
