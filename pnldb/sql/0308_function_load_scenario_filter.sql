-- The condition a fact scan adds when one of the loads it reads lost one scenario of the date to a
-- replacement but not the other: each load id only with the scenarios read from it. Literals only
-- (numbers and scenario names from the slices table), so the scan stays one plain statement.
CREATE OR REPLACE FUNCTION {{ schema }}.load_scenario_filter(load_ids bigint[], scenarios text[]) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT ' AND (' || string_agg(format('f.scenario = %L AND f.load_id = ANY (%L::bigint[])', s.scenario, s.loads),
                                  ' OR ' ORDER BY s.scenario) || ')'
    FROM (SELECT i.scenario, array_agg(i.load_id ORDER BY i.load_id) AS loads
          FROM unnest(load_ids, scenarios) AS i(load_id, scenario) GROUP BY i.scenario) s
$$;
