-- depends: 0009_rule_limits
-- Runs (issue 19): a FAILED run no longer holds its name (a retry may take it), a cap on the runs of one
-- use case and date, the marker through which purge_runs alone gets past the runs' immutability, and no
-- COB date of 'infinity' or '-infinity' in the tables that carry one.

-- Unique among the runs that are not FAILED: a retry of a run that failed takes the same name.
ALTER TABLE {{ schema }}.calculation_runs DROP CONSTRAINT calculation_runs_unique_name;
CREATE UNIQUE INDEX calculation_runs_unique_name ON {{ schema }}.calculation_runs (use_case_id, pnl_date, run_name)
    WHERE status <> 'FAILED';

-- The runs purge_runs is deleting, by the transaction that deletes them: written and emptied inside
-- purge_runs (SECURITY DEFINER; nobody else has any privilege on the table), read by runs_are_immutable.
-- Unlike a session setting, no caller can write it.
CREATE TABLE {{ schema }}.runs_being_purged (
    run_id uuid PRIMARY KEY,
    txid   bigint NOT NULL DEFAULT txid_current()
);

-- NOT VALID: checked for every new or changed row; rows already there are not rescanned (nor refused).
ALTER TABLE {{ schema }}.calculation_runs
    ADD CONSTRAINT calculation_runs_pnl_date_finite CHECK (isfinite(pnl_date)) NOT VALID;
ALTER TABLE {{ schema }}.fact_pnl_entries
    ADD CONSTRAINT fact_pnl_entries_pnl_date_finite CHECK (isfinite(pnl_date)) NOT VALID;
ALTER TABLE {{ schema }}.fx_rates
    ADD CONSTRAINT fx_rates_pnl_date_finite CHECK (isfinite(pnl_date)) NOT VALID;

INSERT INTO {{ schema }}.limits (name, value, description) VALUES
    ('max_runs_per_date', 200,
     'Most runs (of any status) one use case may have for one COB date; purge_runs (pnldb runs purge) '
     'removes trial and FAILED runs.');
