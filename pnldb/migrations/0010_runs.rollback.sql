-- A retry that took the name of a FAILED run would break the old unique constraint: refuse rather than
-- rename runs.
DO $guard$
BEGIN
    IF EXISTS (SELECT 1 FROM {{ schema }}.calculation_runs r
               GROUP BY r.use_case_id, r.pnl_date, r.run_name HAVING count(*) > 1) THEN
        RAISE EXCEPTION 'cannot roll back runs: a FAILED run shares its name with another run of its use case and date'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'remove the FAILED runs first (pnldb runs purge), or keep the migration';
    END IF;
END;
$guard$;
DELETE FROM {{ schema }}.limits WHERE name = 'max_runs_per_date';
ALTER TABLE {{ schema }}.fx_rates DROP CONSTRAINT fx_rates_pnl_date_finite;
ALTER TABLE {{ schema }}.fact_pnl_entries DROP CONSTRAINT fact_pnl_entries_pnl_date_finite;
ALTER TABLE {{ schema }}.calculation_runs DROP CONSTRAINT calculation_runs_pnl_date_finite;
DROP TABLE {{ schema }}.runs_being_purged;
DROP INDEX {{ schema }}.calculation_runs_unique_name;
ALTER TABLE {{ schema }}.calculation_runs
    ADD CONSTRAINT calculation_runs_unique_name UNIQUE (use_case_id, pnl_date, run_name);
