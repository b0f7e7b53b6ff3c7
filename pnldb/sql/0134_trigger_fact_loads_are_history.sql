-- A load's record changes only in ways that keep history: the transaction that opened it counts its
-- rows and names its source; a current slice is superseded once, by another load; a superseded slice
-- that no existing run read is marked purged once. Nothing is deleted but with the use case (the cascade of
-- delete_use_case, at trigger depth > 1, while use_cases_being_deleted marks it).
CREATE OR REPLACE FUNCTION {{ schema }}.fact_loads_are_history() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'DELETE' AND pg_trigger_depth() > 1
       AND EXISTS (SELECT 1 FROM {{ schema }}.use_cases_being_deleted d WHERE d.txid = pg_current_xact_id()) THEN
        RETURN OLD;
    END IF;
    IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'fact_loads' THEN
        IF OLD.txid = pg_current_xact_id()
           AND (NEW.load_id, NEW.use_case_id, NEW.loaded_at, NEW.loaded_by, NEW.txid)
               IS NOT DISTINCT FROM (OLD.load_id, OLD.use_case_id, OLD.loaded_at, OLD.loaded_by, OLD.txid) THEN
            RETURN NEW;
        END IF;
    ELSIF TG_OP = 'UPDATE' THEN
        IF (NEW.load_id, NEW.use_case_id, NEW.pnl_date, NEW.scenario)
           IS NOT DISTINCT FROM (OLD.load_id, OLD.use_case_id, OLD.pnl_date, OLD.scenario) THEN
            -- the opening transaction counting its rows
            IF (NEW.superseded_at, NEW.superseded_by, NEW.purged_at) IS NOT DISTINCT FROM (OLD.superseded_at, OLD.superseded_by, OLD.purged_at)
               AND EXISTS (SELECT 1 FROM {{ schema }}.fact_loads l WHERE l.load_id = OLD.load_id AND l.txid = pg_current_xact_id()) THEN
                RETURN NEW;
            END IF;
            IF (NEW.rows, NEW.daily_sum, NEW.wtd_sum, NEW.ytd_sum) IS NOT DISTINCT FROM (OLD.rows, OLD.daily_sum, OLD.wtd_sum, OLD.ytd_sum) THEN
                -- superseded, once, by another load
                IF OLD.superseded_at IS NULL AND NEW.superseded_at IS NOT NULL AND NEW.superseded_by <> OLD.load_id
                   AND NEW.purged_at IS NULL THEN
                    RETURN NEW;
                END IF;
                -- purged, once, when no existing run read it
                IF OLD.superseded_at IS NOT NULL AND OLD.purged_at IS NULL AND NEW.purged_at IS NOT NULL
                   AND (NEW.superseded_at, NEW.superseded_by) IS NOT DISTINCT FROM (OLD.superseded_at, OLD.superseded_by)
                   AND NOT EXISTS (SELECT 1 FROM {{ schema }}.calculation_run_inputs i
                                   JOIN {{ schema }}.calculation_runs r ON r.id = i.calculation_run_id
                                   WHERE i.load_id = OLD.load_id AND i.scenario = OLD.scenario AND r.pnl_date = OLD.pnl_date) THEN
                    RETURN NEW;
                END IF;
            END IF;
        END IF;
    END IF;
    RAISE EXCEPTION 'fact loads are history: % on %.% is not allowed', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'object_not_in_prerequisite_state',
              HINT = 'replace a slice with {{ schema }}.replace_facts(); {{ schema }}.purge_superseded_facts() removes what no run read';
END;
$$;

{% for table in ["fact_loads", "fact_load_slices"] %}
CREATE OR REPLACE TRIGGER {{ table }}_are_history
    BEFORE UPDATE OR DELETE ON {{ schema }}.{{ table }}
    FOR EACH ROW EXECUTE FUNCTION {{ schema }}.fact_loads_are_history();

CREATE OR REPLACE TRIGGER {{ table }}_are_not_truncated
    BEFORE TRUNCATE ON {{ schema }}.{{ table }}
    FOR EACH STATEMENT EXECUTE FUNCTION {{ schema }}.fact_loads_are_history();
{% endfor %}
