-- No fact that a run read is ever changed or removed while the run exists (contract §6). Facts are
-- never updated, by anyone, owner included; they are deleted only with their use case (delete_use_case:
-- the cascade, at trigger depth > 1, while use_cases_being_deleted marks the use case it deletes) or by
-- purge_superseded_facts, once their slice is marked purged, which fact_loads_are_history allows only
-- for a superseded slice that no existing run read.{% if sharded %} On a coordinator, the rows its
-- trigger facts_go_to_their_shards has just sent to the shards are deleted here by that trigger.{% endif %}
CREATE OR REPLACE FUNCTION {{ schema }}.facts_are_immutable() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
{%- if sharded %}
        IF pg_trigger_depth() > 1
           AND current_setting('{{ schema }}.facts_sent_to_shards', true) = pg_current_xact_id()::text THEN
            RETURN OLD;
        END IF;
{%- endif %}
        IF pg_trigger_depth() > 1
           AND EXISTS (SELECT 1 FROM {{ schema }}.use_cases_being_deleted d WHERE d.txid = pg_current_xact_id()) THEN
            RETURN OLD;
        END IF;
        IF EXISTS (SELECT 1 FROM {{ schema }}.fact_load_slices s
                   WHERE s.load_id = OLD.load_id AND s.pnl_date = OLD.pnl_date AND s.scenario = OLD.scenario
                     AND s.purged_at IS NOT NULL) THEN
            RETURN OLD;
        END IF;
    END IF;
    RAISE EXCEPTION 'facts are immutable: % on %.% is not allowed', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'object_not_in_prerequisite_state',
              HINT = 'to correct a slice, load its facts again with --replace (or {{ schema }}.replace_facts() in SQL): '
                     'the old facts are superseded, kept for the runs that read them; '
                     '{{ schema }}.purge_superseded_facts() removes what no run read; delete_use_case() removes a use case with its facts';
END;
$$;

CREATE OR REPLACE TRIGGER facts_are_immutable
    BEFORE UPDATE OR DELETE ON {{ schema }}.fact_pnl_entries
    FOR EACH ROW EXECUTE FUNCTION {{ schema }}.facts_are_immutable();

CREATE OR REPLACE TRIGGER facts_are_not_truncated
    BEFORE TRUNCATE ON {{ schema }}.fact_pnl_entries
    FOR EACH STATEMENT EXECUTE FUNCTION {{ schema }}.facts_are_immutable();
