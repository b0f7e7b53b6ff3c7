-- Who wrote a row, and when, is the database's to say (issue 18): the session's login (session_user,
-- also inside SECURITY DEFINER functions) and the clock, whatever an INSERT or UPDATE sends. An UPDATE
-- keeps a row's creation time; a limit is stamped when an admin changes its value. Runs and loads are
-- stamped when inserted; their immutability triggers (runs_are_immutable, fact_loads_are_history)
-- refuse any later change of these columns. A run's
-- executed_at may be any moment of the transaction that inserts it (create_snapshot's start), no other.
CREATE OR REPLACE FUNCTION {{ schema }}.stamp_audit_columns() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    CASE TG_TABLE_NAME
    WHEN 'metadata_rules' THEN
        NEW.last_modified_by := session_user;
        NEW.last_modified_at := now();
        NEW.created_at := CASE WHEN TG_OP = 'INSERT' THEN now() ELSE OLD.created_at END;
    WHEN 'calculation_runs' THEN
        NEW.executed_by := session_user;
        NEW.executed_at := least(greatest(coalesce(NEW.executed_at, now()), now()), clock_timestamp());
    WHEN 'fact_loads', 'fx_rates' THEN
        NEW.loaded_by := session_user;
        NEW.loaded_at := now();
    WHEN 'close_checks' THEN
        NEW.set_by := session_user;
        NEW.set_at := now();
    WHEN 'limits' THEN
        NEW.changed_by := session_user;
        NEW.changed_at := now();
    WHEN 'close_events' THEN
        NEW.actor := session_user;
        NEW.at := clock_timestamp();
    WHEN 'use_case_grants' THEN
        NEW.granted_by := session_user;
        NEW.granted_at := now();
    WHEN 'use_cases', 'hierarchy_structures' THEN
        NEW.created_at := CASE WHEN TG_OP = 'INSERT' THEN now() ELSE OLD.created_at END;
    END CASE;
    RETURN NEW;
END;
$$;

{% for table, events in [("metadata_rules", "INSERT OR UPDATE"), ("calculation_runs", "INSERT"),
                         ("fact_loads", "INSERT"), ("fx_rates", "INSERT OR UPDATE"),
                         ("close_checks", "INSERT OR UPDATE"), ("close_events", "INSERT"),
                         ("use_cases", "INSERT OR UPDATE"), ("hierarchy_structures", "INSERT OR UPDATE"),
                         ("limits", "UPDATE"), ("use_case_grants", "INSERT OR UPDATE")] %}
CREATE OR REPLACE TRIGGER {{ table }}_audit_columns
    BEFORE {{ events }} ON {{ schema }}.{{ table }}
    FOR EACH ROW EXECUTE FUNCTION {{ schema }}.stamp_audit_columns();
{% endfor %}
