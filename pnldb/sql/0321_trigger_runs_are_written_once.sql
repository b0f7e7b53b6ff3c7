-- A run is written once, by the transaction that opened it (issue 18): its header is inserted
-- IN_PROGRESS, unchained, and stamped with the inserting top-level transaction (pg_current_xact_id():
-- create_snapshot's EXCEPTION blocks are subtransactions, whose own ids differ), whatever the caller
-- sends; its results, recorded rules, inputs and rates are added only by that transaction while the run
-- is IN_PROGRESS. The rows are checked once per statement, over the statement's new rows.
-- (Result rows of a legacy run, without calculation_run_id, are not runs' rows.)
CREATE OR REPLACE FUNCTION {{ schema }}.runs_are_written_once() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    forged text;
BEGIN
    IF TG_TABLE_NAME = 'calculation_runs' THEN
        IF NEW.status IS DISTINCT FROM 'IN_PROGRESS'
           OR num_nonnulls(NEW.chain_seq, NEW.previous_run_id, NEW.previous_digest, NEW.digest) > 0 THEN
            RAISE EXCEPTION 'a run is inserted IN_PROGRESS, without a digest, not %', coalesce(NEW.status, 'NULL')
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'take a snapshot ({{ schema }}.create_snapshot): it completes the run it opened';
        END IF;
        NEW.txid := pg_current_xact_id();
        RETURN NEW;
    END IF;
    SELECT string_agg(DISTINCT format('%s (%s)', a.calculation_run_id,
                                      CASE WHEN r.id IS NULL THEN 'no such run'
                                           WHEN r.status <> 'IN_PROGRESS' THEN r.status
                                           ELSE 'IN_PROGRESS in another transaction' END), ', ')
    INTO forged
    FROM added a LEFT JOIN {{ schema }}.calculation_runs r ON r.id = a.calculation_run_id
    WHERE a.calculation_run_id IS NOT NULL
      AND (r.id IS NULL OR r.status <> 'IN_PROGRESS' OR r.txid <> pg_current_xact_id());
    IF forged IS NOT NULL THEN
        RAISE EXCEPTION 'rows of a run are added only by the snapshot that opened it, while it runs: INSERT into %.% '
                        'for run %', TG_TABLE_SCHEMA, TG_TABLE_NAME, forged
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'a finished run is history: take a new snapshot instead';
    END IF;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE TRIGGER calculation_runs_are_written_once
    BEFORE INSERT ON {{ schema }}.calculation_runs
    FOR EACH ROW EXECUTE FUNCTION {{ schema }}.runs_are_written_once();
{% for table in ["fact_calculated_results", "calculation_run_rules", "calculation_run_inputs", "calculation_run_fx"] %}
CREATE OR REPLACE TRIGGER {{ table }}_are_written_once
    AFTER INSERT ON {{ schema }}.{{ table }} REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION {{ schema }}.runs_are_written_once();
{% endfor %}
