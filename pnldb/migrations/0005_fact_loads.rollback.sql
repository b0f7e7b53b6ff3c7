-- Before loads, every fact was current: superseded facts would silently rejoin their slices. Refuse
-- rather than double a day's P&L; purge_superseded_facts() removes what no run read.
DO $guard$
BEGIN
    IF EXISTS (SELECT 1 FROM {{ schema }}.fact_load_slices s WHERE s.superseded_at IS NOT NULL AND s.purged_at IS NULL) THEN
        RAISE EXCEPTION 'cannot roll back fact loads: superseded facts exist, and without loads they would count again'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'remove them first (SELECT {{ schema }}.purge_superseded_facts(now())), or keep the migration';
    END IF;
END;
$guard$;
DROP INDEX {{ schema }}.ix_fact_pnl_entries_load;
ALTER TABLE {{ schema }}.fact_pnl_entries DROP COLUMN load_id;
DROP TABLE {{ schema }}.calculation_run_inputs;
DROP TABLE {{ schema }}.fact_load_slices;
DROP TABLE {{ schema }}.fact_loads;
