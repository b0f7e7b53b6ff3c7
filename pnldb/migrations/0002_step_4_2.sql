-- depends: 0001_baseline
-- Step 4.2: explicit daily/WTD/YTD measures, calculation_runs as the run header, results per measure.

ALTER TABLE {{ schema }}.fact_pnl_entries
    ADD COLUMN daily_amount numeric(18, 2),
    ADD COLUMN wtd_amount numeric(18, 2),
    ADD COLUMN ytd_amount numeric(18, 2);

-- Back-fill: daily is the legacy amount; WTD and YTD are running sums of the daily amounts within the
-- ISO week and the calendar year of each series. A series is (use case, scenario, category_code,
-- attributes): facts that differ only in their dimensions are separate positions, not one.
WITH running AS (
    SELECT id,
           sum(amount) OVER (PARTITION BY use_case_id, scenario, category_code, attributes, date_trunc('week', pnl_date)
                             ORDER BY pnl_date, id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS wtd,
           sum(amount) OVER (PARTITION BY use_case_id, scenario, category_code, attributes, date_trunc('year', pnl_date)
                             ORDER BY pnl_date, id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS ytd
    FROM {{ schema }}.fact_pnl_entries
)
UPDATE {{ schema }}.fact_pnl_entries f
SET daily_amount = f.amount, wtd_amount = r.wtd, ytd_amount = r.ytd
FROM running r
WHERE r.id = f.id;

ALTER TABLE {{ schema }}.fact_pnl_entries
    ALTER COLUMN daily_amount SET NOT NULL,
    ALTER COLUMN wtd_amount SET NOT NULL,
    ALTER COLUMN ytd_amount SET NOT NULL;

CREATE INDEX ix_fact_pnl_entries_series
    ON {{ schema }}.fact_pnl_entries (use_case_id, scenario, category_code, pnl_date);

CREATE TABLE {{ schema }}.calculation_runs (
    id                      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    pnl_date                date NOT NULL,
    use_case_id             uuid NOT NULL REFERENCES {{ schema }}.use_cases ON DELETE CASCADE,
    run_name                varchar(200) NOT NULL CONSTRAINT calculation_runs_run_name_not_blank CHECK (btrim(run_name) <> ''),
    executed_at             timestamptz NOT NULL DEFAULT now(),
    status                  varchar(20) NOT NULL DEFAULT 'IN_PROGRESS'
        CONSTRAINT calculation_runs_status_valid CHECK (status IN ('IN_PROGRESS', 'COMPLETED', 'FAILED')),
    triggered_by            varchar(100) NOT NULL DEFAULT session_user,
    calculation_duration_ms integer CONSTRAINT calculation_runs_duration_not_negative CHECK (calculation_duration_ms >= 0),
    error_message           text,
    rules_applied           integer NOT NULL DEFAULT 0,
    CONSTRAINT calculation_runs_unique_name UNIQUE (use_case_id, pnl_date, run_name),
    CONSTRAINT calculation_runs_failed_has_error CHECK ((status = 'FAILED') = (error_message IS NOT NULL))
);
CREATE INDEX ix_calculation_runs_pnl_date ON {{ schema }}.calculation_runs (pnl_date);
CREATE INDEX ix_calculation_runs_use_case_id ON {{ schema }}.calculation_runs (use_case_id);
CREATE INDEX ix_calculation_runs_date_use_case ON {{ schema }}.calculation_runs (pnl_date, use_case_id);

-- Legacy results were computed on `amount`, i.e. the daily measure: their values become the daily
-- columns; their WTD and YTD were never computed and stay NULL. Sums of millions of numeric(18,2)
-- facts need more than 18 digits.
ALTER TABLE {{ schema }}.fact_calculated_results RENAME COLUMN natural_value TO daily_natural;
ALTER TABLE {{ schema }}.fact_calculated_results RENAME COLUMN adjusted_value TO daily_adjusted;
ALTER TABLE {{ schema }}.fact_calculated_results RENAME COLUMN plug_value TO daily_plug;
ALTER TABLE {{ schema }}.fact_calculated_results
    ALTER COLUMN run_id DROP NOT NULL,
    ADD COLUMN calculation_run_id uuid REFERENCES {{ schema }}.calculation_runs (id) ON DELETE CASCADE,
    ALTER COLUMN daily_natural TYPE numeric(38, 2),
    ALTER COLUMN daily_adjusted TYPE numeric(38, 2),
    ALTER COLUMN daily_plug TYPE numeric(38, 2),
    ADD COLUMN wtd_natural numeric(38, 2),
    ADD COLUMN wtd_adjusted numeric(38, 2),
    ADD COLUMN wtd_plug numeric(38, 2),
    ADD COLUMN ytd_natural numeric(38, 2),
    ADD COLUMN ytd_adjusted numeric(38, 2),
    ADD COLUMN ytd_plug numeric(38, 2),
    ADD CONSTRAINT fact_calculated_results_belongs_to_a_run CHECK (run_id IS NOT NULL OR calculation_run_id IS NOT NULL);
CREATE INDEX ix_fact_calculated_results_calc_run_id
    ON {{ schema }}.fact_calculated_results (calculation_run_id);
