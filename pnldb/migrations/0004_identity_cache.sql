-- depends: 0003_run_rules
-- Ids come from their sequences a thousand at a time per session, not one at a time: a snapshot writes
-- three result rows per node and a load writes every fact, and a sequence call per row was a tenth of
-- a snapshot's write. Ids stay unique; a session that ends leaves a gap.
ALTER TABLE {{ schema }}.fact_calculated_results ALTER COLUMN result_id SET CACHE 1000;
ALTER TABLE {{ schema }}.fact_pnl_entries ALTER COLUMN id SET CACHE 1000;
