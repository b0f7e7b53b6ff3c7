DELETE FROM {{ schema }}.limits WHERE name = 'fact_load_work_mem_mb';
ALTER TABLE {{ schema }}.fact_pnl_entries ADD CONSTRAINT fact_pnl_entries_use_case_id_fkey
    FOREIGN KEY (use_case_id) REFERENCES {{ schema }}.use_cases (use_case_id) ON DELETE CASCADE;
