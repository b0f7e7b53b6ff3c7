{#- A shard's SQL (issue 16): installed by `pnldb cluster init` into each shard database, after its fact
    table (pnldb/cluster.py copies the coordinator's columns) and the rule compiler (schema.SHARD_SHARED_FILES).
    The coordinator reaches these functions only through its PL/Proxy functions (sql/_shard_proxies.sql),
    logged in as the shard link role, which may execute these and nothing else. Every call carries the
    coordinator's shard layer version, and a shard of another version refuses it. -#}
{%- import "_fact_pipeline.sql" as pipeline with context %}
{%- import "_shard_calls.sql" as calls with context %}
CREATE TABLE IF NOT EXISTS {{ schema }}.shard_identity (
    shard_no    integer NOT NULL,
    shard_count integer NOT NULL
);

-- The version check of every call, and for rows sent to one shard (shard_no not NULL) that they were sent
-- to the right one.
CREATE OR REPLACE FUNCTION {{ schema }}.shard_check(layer_version text, shard_no integer) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    me record;
BEGIN
    IF layer_version IS DISTINCT FROM '{{ shard_layer_version }}' THEN
        RAISE EXCEPTION 'this shard runs pnldb shard layer {{ shard_layer_version }}, the coordinator %: a shard '
                        'answers only a coordinator of its own version', coalesce(layer_version, 'NULL')
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'install the same pnldb everywhere, then run pnldb cluster init again on the coordinator';
    END IF;
    SELECT * INTO me FROM {{ schema }}.shard_identity;
    IF shard_check.shard_no IS NOT NULL AND shard_check.shard_no <> me.shard_no THEN
        RAISE EXCEPTION 'rows of shard % reached shard % of %', shard_check.shard_no, me.shard_no, me.shard_count
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'the coordinator''s servers are listed in another order than the shards were made in';
    END IF;
END;
$$;

-- The snapshot's fact aggregate over this shard's facts: create_snapshot's own statement (the fact
-- pipeline's fact_groups), over the tree's nodes with their governing rules and the rules' predicates,
-- each compiled here from its predicate_json. rule_ids ascending, predicates[i] that of rule_ids[i];
-- slice_loads and slice_scenarios: the (load, scenario) pairs read, when some load is read for one
-- scenario only (else NULL).
CREATE OR REPLACE FUNCTION {{ schema }}.shard_fact_groups(
    layer_version text, {{ calls.fact_groups_parameters() }}
) RETURNS {{ calls.fact_groups_rows() }}
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET jit = off AS $fn$
DECLARE
    included_sql text;
    load_filter  text;
    settings_was text[];
BEGIN
    PERFORM {{ schema }}.shard_check(layer_version, NULL);
    included_sql := {{ schema }}.rules_included(rule_ids, ARRAY(
        SELECT {{ schema }}.predicate_sql(p.predicate) FROM unnest(predicates) WITH ORDINALITY AS p(predicate, i)
        ORDER BY p.i));
    load_filter := CASE WHEN slice_loads IS NULL THEN ''
                        ELSE {{ schema }}.load_scenario_filter(slice_loads, slice_scenarios) END;
    {{ pipeline.planner_settings_on() | indent(4) }}
    RETURN QUERY EXECUTE format($sql$
WITH tree AS (
    SELECT n.node_id, n.governing_rule, CASE WHEN n.node_id = $3 THEN 0 ELSE 1 END AS depth
    FROM unnest($4::text[], $7::bigint[]) AS n(node_id, governing_rule)
)
{{ pipeline.fact_groups("$8") }}
$sql$, included_sql, load_filter)
    USING use_case_id, pnl_date, root_node, node_ids, load_ids, reporting_currency, governing_rules,
          governing_rules[array_position(node_ids, root_node)];
    {{ pipeline.planner_settings_off() | indent(4) }}
END;
$fn$;

-- Facts sent by the coordinator (its trigger facts_go_to_their_shards), each to the shard of its
-- category_code. Returns how many were added.
CREATE OR REPLACE FUNCTION {{ schema }}.shard_add_facts(layer_version text, shard_no integer,
                                                        facts {{ schema }}.fact_pnl_entries[]) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    added bigint;
BEGIN
    PERFORM {{ schema }}.shard_check(layer_version, shard_no);
    IF EXISTS (SELECT 1 FROM unnest(facts) f, {{ schema }}.shard_identity me
               WHERE hashtext(f.category_code) & (me.shard_count - 1) <> me.shard_no) THEN
        RAISE EXCEPTION 'facts of another shard sent to shard %', shard_no USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    INSERT INTO {{ schema }}.fact_pnl_entries SELECT f.* FROM unnest(facts) f;
    GET DIAGNOSTICS added = ROW_COUNT;
    RETURN added;
END;
$$;

-- The facts of a use case on a date (NULL: every date) in the given loads (NULL: every load).
CREATE OR REPLACE FUNCTION {{ schema }}.shard_fact_rows(layer_version text, use_case_id uuid, pnl_date date,
                                                        load_ids bigint[]) RETURNS SETOF {{ schema }}.fact_pnl_entries
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM {{ schema }}.shard_check(layer_version, NULL);
    RETURN QUERY SELECT f.* FROM {{ schema }}.fact_pnl_entries f
                 WHERE f.use_case_id = shard_fact_rows.use_case_id
                   AND (shard_fact_rows.pnl_date IS NULL OR f.pnl_date = shard_fact_rows.pnl_date)
                   AND (load_ids IS NULL OR f.load_id = ANY (load_ids));
END;
$$;

-- The currencies (not NULL) of a use case's facts of a date in the given (load, scenario) slices.
CREATE OR REPLACE FUNCTION {{ schema }}.shard_fact_currencies(layer_version text, use_case_id uuid, pnl_date date,
                                                              slice_loads bigint[], slice_scenarios text[])
RETURNS SETOF text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM {{ schema }}.shard_check(layer_version, NULL);
    RETURN QUERY SELECT DISTINCT f.currency
                 FROM {{ schema }}.fact_pnl_entries f
                 JOIN unnest(slice_loads, slice_scenarios) AS s(load_id, scenario)
                   ON s.load_id = f.load_id AND s.scenario = f.scenario
                 WHERE f.use_case_id = shard_fact_currencies.use_case_id
                   AND f.pnl_date = shard_fact_currencies.pnl_date AND f.currency IS NOT NULL;
END;
$$;

-- Deletes the facts of the given loads: of load_ids[i] on pnl_dates[i] in scenarios[i], NULL date and
-- scenario meaning all of the load's. Idempotent. Returns how many facts were deleted.
CREATE OR REPLACE FUNCTION {{ schema }}.shard_purge(layer_version text, load_ids bigint[], pnl_dates date[],
                                                    scenarios text[]) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    deleted bigint;
BEGIN
    PERFORM {{ schema }}.shard_check(layer_version, NULL);
    DELETE FROM {{ schema }}.fact_pnl_entries f
    USING unnest(load_ids, pnl_dates, scenarios) AS p(load_id, pnl_date, scenario)
    WHERE f.load_id = p.load_id AND (p.pnl_date IS NULL OR f.pnl_date = p.pnl_date)
      AND (p.scenario IS NULL OR f.scenario = p.scenario);
    GET DIAGNOSTICS deleted = ROW_COUNT;
    RETURN deleted;
END;
$$;

-- The loads this shard holds facts of, with their use case and count of facts.
CREATE OR REPLACE FUNCTION {{ schema }}.shard_loads(layer_version text)
RETURNS TABLE (shard_no integer, load_id bigint, use_case_id uuid, facts bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM {{ schema }}.shard_check(layer_version, NULL);
    RETURN QUERY SELECT me.shard_no, f.load_id, f.use_case_id, count(*)
                 FROM {{ schema }}.fact_pnl_entries f, {{ schema }}.shard_identity me
                 GROUP BY me.shard_no, f.load_id, f.use_case_id;
END;
$$;

-- Fresh planner statistics for this shard's facts, after a large load through the coordinator.
CREATE OR REPLACE FUNCTION {{ schema }}.shard_analyze(layer_version text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM {{ schema }}.shard_check(layer_version, NULL);
    ANALYZE {{ schema }}.fact_pnl_entries;
END;
$$;

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA {{ schema }} FROM PUBLIC;
