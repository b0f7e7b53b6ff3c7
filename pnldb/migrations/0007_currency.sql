-- depends: 0006_close
-- Currency (contract §8): each use case reports in one currency, each fact may carry its own (NULL: the
-- use case's reporting currency, so every fact already there keeps its numbers), and fx_rates holds
-- the rates per COB date. Each run records its reporting currency and the rates it used.
ALTER TABLE {{ schema }}.use_cases
    ADD COLUMN reporting_currency text NOT NULL DEFAULT 'USD'
        CONSTRAINT use_cases_reporting_currency_valid CHECK (reporting_currency ~ '^[A-Z]{3}$');

ALTER TABLE {{ schema }}.fact_pnl_entries
    ADD COLUMN currency text
        CONSTRAINT fact_pnl_entries_currency_valid CHECK (currency ~ '^[A-Z]{3}$');
-- A use case books in a handful of currencies. Without this, ANALYZE of a column of NULLs (every fact in
-- the reporting currency, as after this migration) leaves the planner guessing 200 distinct values, and
-- it would plan the snapshot's grouping by currency for 200 times the groups: serially, not in parallel.
ALTER TABLE {{ schema }}.fact_pnl_entries ALTER COLUMN currency SET (n_distinct = 5);
-- Which currencies a date's facts are in, found by skipping through this index (the snapshot's
-- missing-rate guard, the rate freeze); facts in the reporting currency (NULL) are left out of it.
CREATE INDEX ix_fact_pnl_entries_currency ON {{ schema }}.fact_pnl_entries (use_case_id, pnl_date, currency)
    WHERE currency IS NOT NULL;

CREATE TABLE {{ schema }}.fx_rates (
    pnl_date           date NOT NULL,
    currency           text NOT NULL CONSTRAINT fx_rates_currency_valid CHECK (currency ~ '^[A-Z]{3}$'),
    reporting_currency text NOT NULL CONSTRAINT fx_rates_reporting_currency_valid CHECK (reporting_currency ~ '^[A-Z]{3}$'),
    rate               numeric NOT NULL CONSTRAINT fx_rates_rate_positive CHECK (rate > 0),
    loaded_by          text NOT NULL DEFAULT session_user,
    loaded_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (pnl_date, currency, reporting_currency),
    CONSTRAINT fx_rates_not_to_itself CHECK (currency <> reporting_currency)
);

-- The run's reporting currency; runs before this migration reported in their use case's (USD).
ALTER TABLE {{ schema }}.calculation_runs ADD COLUMN reporting_currency text;
UPDATE {{ schema }}.calculation_runs r SET reporting_currency = u.reporting_currency
FROM {{ schema }}.use_cases u WHERE u.use_case_id = r.use_case_id;
ALTER TABLE {{ schema }}.calculation_runs ALTER COLUMN reporting_currency SET NOT NULL,
    ALTER COLUMN reporting_currency SET DEFAULT 'USD';

-- The rates a run used: one row per currency of its facts other than its reporting currency.
CREATE TABLE {{ schema }}.calculation_run_fx (
    calculation_run_id uuid NOT NULL REFERENCES {{ schema }}.calculation_runs (id) ON DELETE CASCADE,
    currency           text NOT NULL,
    rate               numeric NOT NULL CHECK (rate > 0),
    PRIMARY KEY (calculation_run_id, currency)
);
