DROP TABLE {{ schema }}.use_cases_being_deleted;
DROP INDEX {{ schema }}.calculation_runs_chain;
ALTER TABLE {{ schema }}.calculation_runs
    DROP COLUMN digest, DROP COLUMN previous_digest, DROP COLUMN previous_run_id, DROP COLUMN chain_seq,
    DROP COLUMN txid;
