-- A finished run is history: its header, results and recorded rules cannot be updated or deleted, by
-- anyone, owner included. The only way out is delete_use_case(): it marks the use case it deletes in
-- use_cases_being_deleted (a table only it writes) under the current transaction id, and the cascade
-- reaches these tables through the foreign keys' own triggers, i.e. at trigger depth > 1. A plain DELETE
-- of the use case, or of a run, is refused.
-- purge_runs() deletes the runs it lists in runs_being_purged (a table only it writes) under the current
-- transaction id: exactly those runs, and their rows, are let through.
-- The transaction that opened a run (runs_are_written_once) finishes it, COMPLETED or FAILED, changing
-- nothing that says which run it is; a COMPLETED run is then linked and digested once, at commit, by
-- runs_are_chained.
CREATE OR REPLACE FUNCTION {{ schema }}.runs_are_immutable() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    purged_run uuid;
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF TG_TABLE_NAME = 'calculation_runs' THEN
            purged_run := OLD.id;
        ELSE
            purged_run := OLD.calculation_run_id;
        END IF;
        IF EXISTS (SELECT 1 FROM {{ schema }}.runs_being_purged p
                   WHERE p.run_id = purged_run AND p.txid = txid_current()) THEN
            RETURN OLD;
        END IF;
    END IF;
    IF TG_OP = 'DELETE' AND pg_trigger_depth() > 1
       AND EXISTS (SELECT 1 FROM {{ schema }}.use_cases_being_deleted d WHERE d.txid = pg_current_xact_id()) THEN
        RETURN OLD;
    END IF;
    IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'calculation_runs' THEN
        IF OLD.status = 'IN_PROGRESS' AND OLD.txid = pg_current_xact_id()
           AND (NEW.id, NEW.use_case_id, NEW.pnl_date, NEW.run_name, NEW.executed_at, NEW.triggered_by,
                NEW.executed_by, NEW.txid)
               IS NOT DISTINCT FROM (OLD.id, OLD.use_case_id, OLD.pnl_date, OLD.run_name, OLD.executed_at,
                                     OLD.triggered_by, OLD.executed_by, OLD.txid)
           AND num_nonnulls(NEW.chain_seq, NEW.previous_run_id, NEW.previous_digest, NEW.digest) = 0 THEN
            RETURN NEW;  -- the snapshot finishing its own run
        END IF;
        IF OLD.status = 'COMPLETED' AND OLD.chain_seq IS NULL AND OLD.txid = pg_current_xact_id()
           AND pg_trigger_depth() > 1 AND NEW.chain_seq IS NOT NULL AND NEW.digest IS NOT NULL
           AND (NEW.id, NEW.use_case_id, NEW.pnl_date, NEW.run_name, NEW.executed_at, NEW.triggered_by,
                NEW.executed_by, NEW.txid, NEW.status, NEW.reporting_currency, NEW.rules_applied,
                NEW.calculation_duration_ms, NEW.error_message)
               IS NOT DISTINCT FROM (OLD.id, OLD.use_case_id, OLD.pnl_date, OLD.run_name, OLD.executed_at,
                                     OLD.triggered_by, OLD.executed_by, OLD.txid, OLD.status,
                                     OLD.reporting_currency, OLD.rules_applied, OLD.calculation_duration_ms,
                                     OLD.error_message) THEN
            RETURN NEW;  -- runs_are_chained linking it, as its transaction commits
        END IF;
    END IF;
    RAISE EXCEPTION 'calculation runs are immutable: % on %.% is not allowed', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'object_not_in_prerequisite_state',
              HINT = 'take a new snapshot instead; purge_runs() removes trial and FAILED runs, delete_use_case() a use '
                     'case with all its runs';
END;
$$;

{% for table in ["calculation_runs", "fact_calculated_results", "calculation_run_rules", "calculation_run_inputs",
              "calculation_run_fx"] %}
CREATE OR REPLACE TRIGGER {{ table }}_are_immutable
    BEFORE UPDATE OR DELETE ON {{ schema }}.{{ table }}
    FOR EACH ROW EXECUTE FUNCTION {{ schema }}.runs_are_immutable();

CREATE OR REPLACE TRIGGER {{ table }}_are_not_truncated
    BEFORE TRUNCATE ON {{ schema }}.{{ table }}
    FOR EACH STATEMENT EXECUTE FUNCTION {{ schema }}.runs_are_immutable();
{% endfor %}
