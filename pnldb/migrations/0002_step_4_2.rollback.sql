-- Back to the baseline. Results of calculation runs have no legacy run to hang off and go with them.
DELETE FROM {{ schema }}.fact_calculated_results WHERE run_id IS NULL;
DROP INDEX {{ schema }}.ix_fact_calculated_results_calc_run_id;
ALTER TABLE {{ schema }}.fact_calculated_results
    DROP CONSTRAINT fact_calculated_results_belongs_to_a_run,
    DROP COLUMN calculation_run_id,
    DROP COLUMN wtd_natural,
    DROP COLUMN wtd_adjusted,
    DROP COLUMN wtd_plug,
    DROP COLUMN ytd_natural,
    DROP COLUMN ytd_adjusted,
    DROP COLUMN ytd_plug,
    ALTER COLUMN daily_natural TYPE numeric(18, 2),
    ALTER COLUMN daily_adjusted TYPE numeric(18, 2),
    ALTER COLUMN daily_plug TYPE numeric(18, 2),
    ALTER COLUMN run_id SET NOT NULL;
ALTER TABLE {{ schema }}.fact_calculated_results RENAME COLUMN daily_natural TO natural_value;
ALTER TABLE {{ schema }}.fact_calculated_results RENAME COLUMN daily_adjusted TO adjusted_value;
ALTER TABLE {{ schema }}.fact_calculated_results RENAME COLUMN daily_plug TO plug_value;
DROP TABLE {{ schema }}.calculation_runs;
DROP INDEX {{ schema }}.ix_fact_pnl_entries_series;
ALTER TABLE {{ schema }}.fact_pnl_entries
    DROP COLUMN daily_amount,
    DROP COLUMN wtd_amount,
    DROP COLUMN ytd_amount;
