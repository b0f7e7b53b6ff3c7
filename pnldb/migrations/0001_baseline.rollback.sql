DROP TABLE {{ schema }}.fact_calculated_results;
DROP TABLE {{ schema }}.use_case_runs;
DROP TABLE {{ schema }}.fact_pnl_entries;
DROP TABLE {{ schema }}.metadata_rules;
DROP TABLE {{ schema }}.use_cases;
DROP TABLE {{ schema }}.dim_hierarchy;
DROP TABLE {{ schema }}.hierarchy_structures;
