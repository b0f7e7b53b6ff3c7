ALTER TABLE {{ schema }}.fact_calculated_results ALTER COLUMN result_id SET CACHE 1;
ALTER TABLE {{ schema }}.fact_pnl_entries ALTER COLUMN id SET CACHE 1;
