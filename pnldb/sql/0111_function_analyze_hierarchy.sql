-- Fresh planner statistics for dim_hierarchy, for the loader after a large load: ANALYZE needs the
-- table's owner, which admins are not. Runs inside the load's transaction (its own rows are sampled).
CREATE OR REPLACE FUNCTION {{ schema }}.analyze_hierarchy() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    ANALYZE {{ schema }}.dim_hierarchy;
END;
$$;
