DROP TABLE {{ schema }}.calculation_run_rules;
