-- depends: 0013_audit
-- Integrity (issue 18, items 2 and 3): the transaction that opened a run, its place in its use case's
-- chain of digests, the marker through which delete_use_case alone gets past the immutability of runs,
-- facts and loads, and the event trigger refusing DDL on the protected tables outside pnldb's installer.

-- The top-level transaction that inserted the run: only it adds rows under the run while IN_PROGRESS.
-- Runs already there keep this migration's id: no transaction adds to them again.
ALTER TABLE {{ schema }}.calculation_runs
    ADD COLUMN txid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    ADD COLUMN chain_seq bigint,
    ADD COLUMN previous_run_id uuid,
    ADD COLUMN previous_digest bytea,
    ADD COLUMN digest bytea;
-- One link per place: two runs of a use case can never claim the same predecessor.
CREATE UNIQUE INDEX calculation_runs_chain ON {{ schema }}.calculation_runs (use_case_id, chain_seq);

-- The use case delete_use_case is deleting, by the transaction that deletes it: written and emptied
-- inside delete_use_case (SECURITY DEFINER; nobody else has any privilege on the table), read by the
-- immutability triggers of runs, facts and loads. Unlike a session setting, no caller can write it.
CREATE TABLE {{ schema }}.use_cases_being_deleted (
    use_case_id uuid PRIMARY KEY,
    txid        xid8 NOT NULL DEFAULT pg_current_xact_id()
);
CREATE INDEX use_cases_being_deleted_txid ON {{ schema }}.use_cases_being_deleted (txid);
