DROP STATISTICS {{ schema }}.fact_pnl_entries_slices;
