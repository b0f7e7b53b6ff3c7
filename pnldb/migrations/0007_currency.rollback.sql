-- Facts in another currency than their use case's would count at face value without it: refuse rather
-- than add yen to dollars.
DO $guard$
BEGIN
    IF EXISTS (SELECT 1 FROM {{ schema }}.fact_pnl_entries f
               JOIN {{ schema }}.use_cases u ON u.use_case_id = f.use_case_id
               WHERE f.currency IS NOT NULL AND f.currency <> u.reporting_currency) THEN
        RAISE EXCEPTION 'cannot roll back currency: some facts are in another currency than their use case reports in'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'delete those use cases first (delete_use_case), or keep the migration';
    END IF;
END;
$guard$;
DROP TABLE {{ schema }}.calculation_run_fx;
ALTER TABLE {{ schema }}.calculation_runs DROP COLUMN reporting_currency;
DROP TABLE {{ schema }}.fx_rates;
DROP INDEX {{ schema }}.ix_fact_pnl_entries_currency;
ALTER TABLE {{ schema }}.fact_pnl_entries DROP COLUMN currency;
ALTER TABLE {{ schema }}.use_cases DROP COLUMN reporting_currency;
