-- The confirmation rules of the close for one run (contract §7), read-only and deterministic:
--   {"run_id", "use_case_id", "pnl_date", "passed", "checks": [{"code", "severity", "passed", "observed",
--    "limit", "message"}, ...]}
-- in the fixed order of close_check_settings; "passed" means no ERROR check fails. A check set OFF is not
-- evaluated ("passed": null). What each observes:
--   RUN_COMPLETED        the run's status
--   FACTS_UNCHANGED      the unit's current slices (fact_load_slices) against calculation_run_inputs:
--                        the loads added or gone since the run
--   NO_UNMAPPED          the largest |natural value| of the run's __UNMAPPED__ rows, any measure, ACTUAL
--                        or PRIOR, against params.tolerance
--   RULES_UNCHANGED      the nodes whose rules in force differ from those the run recorded
--   RULE_FIELDS_PRESENT  the run's rules with missing_fields (run_rule_stats)
--   PLUG_LIMIT           the largest |plug| of the ACTUAL row of params.node_id against params.abs
-- SECURITY DEFINER: approvers are readers, and a check reads the facts' loads and the rules in force.
CREATE OR REPLACE FUNCTION {{ schema }}.check_run(run_id uuid) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    run        record;
    cfg        jsonb;
    completed  boolean;
    facts_diff jsonb;
    facts_msg  text;
    worst      record;
    tolerance  numeric;
    rules_diff text[];
    missing    text[];
    plug       numeric;
    plug_found boolean;
    checks     jsonb;
BEGIN
    -- ===== GUARDS =====
    SELECT r.id, r.use_case_id, r.pnl_date, r.status, r.run_name INTO run
    FROM {{ schema }}.calculation_runs r WHERE r.id = check_run.run_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown run %', coalesce(check_run.run_id::text, 'NULL')
            USING ERRCODE = 'no_data_found', HINT = 'run_id must be a {{ schema }}.calculation_runs.id';
    END IF;
    PERFORM {{ schema }}.require_use_case_entitlement(run.use_case_id);
    SELECT jsonb_object_agg(s.code, jsonb_build_object('severity', s.severity, 'params', s.params)) INTO cfg
    FROM {{ schema }}.close_check_settings(run.use_case_id) s;
    completed := run.status = 'COMPLETED';

    -- ===== FACTS_UNCHANGED =====
    SELECT jsonb_build_object(
               'loads_added', coalesce(jsonb_agg(jsonb_build_object('load_id', d.load_id, 'scenario', d.scenario,
                                                                    'rows', d.rows) ORDER BY d.load_id, d.scenario)
                                       FILTER (WHERE d.facts IS NULL OR d.rows IS NOT NULL), '[]'),
               'loads_gone', coalesce(jsonb_agg(jsonb_build_object('load_id', d.load_id, 'scenario', d.scenario,
                                                                   'facts', d.facts) ORDER BY d.load_id, d.scenario)
                                      FILTER (WHERE d.rows IS NULL OR d.facts IS NOT NULL), '[]')),
           string_agg(CASE WHEN d.facts IS NULL THEN format('load %s (%s, %s facts) added', d.load_id, d.scenario, d.rows)
                           WHEN d.rows IS NULL THEN format('load %s (%s) no longer current', d.load_id, d.scenario)
                           ELSE format('load %s (%s) has %s facts, the run read %s', d.load_id, d.scenario, d.rows, d.facts)
                      END, '; ' ORDER BY d.load_id, d.scenario)
    INTO facts_diff, facts_msg
    FROM (SELECT coalesce(s.load_id, i.load_id) AS load_id, coalesce(s.scenario, i.scenario) AS scenario,
                 s.rows, i.facts
          FROM (SELECT s.load_id, s.scenario, s.rows FROM {{ schema }}.fact_load_slices s
                WHERE s.use_case_id = run.use_case_id AND s.pnl_date = run.pnl_date AND s.superseded_at IS NULL) s
          FULL JOIN (SELECT i.load_id, i.scenario, i.facts FROM {{ schema }}.calculation_run_inputs i
                     WHERE i.calculation_run_id = run.id) i ON i.load_id = s.load_id AND i.scenario = s.scenario
          WHERE s.load_id IS NULL OR i.load_id IS NULL OR s.rows <> i.facts) d;

    -- ===== NO_UNMAPPED =====
    tolerance := (cfg -> 'NO_UNMAPPED' -> 'params' ->> 'tolerance')::numeric;
    SELECT x.scenario, u.measure, u.amount INTO worst
    FROM {{ schema }}.fact_calculated_results x
    CROSS JOIN LATERAL (VALUES {% for m in measures %}('{{ m }}', x.{{ m }}_natural){{ ", " if not loop.last }}{% endfor %}) AS u(measure, amount)
    WHERE x.calculation_run_id = run.id AND x.node_id = '__UNMAPPED__' AND x.scenario IN ('ACTUAL', 'PRIOR')
    ORDER BY abs(u.amount) DESC, x.scenario, u.measure LIMIT 1;

    -- ===== RULES_UNCHANGED =====
    SELECT array_agg(DISTINCT d.node_id ORDER BY d.node_id) INTO rules_diff
    FROM ((SELECT m.rule_id, m.node_id, m.predicate_json FROM {{ schema }}.metadata_rules m
           JOIN {{ schema }}.use_cases u ON u.use_case_id = m.use_case_id
           JOIN {{ schema }}.dim_hierarchy h ON h.structure_id = u.structure_id AND h.node_id = m.node_id
           WHERE m.use_case_id = run.use_case_id
           EXCEPT
           SELECT rr.rule_id, rr.node_id, rr.predicate_json FROM {{ schema }}.calculation_run_rules rr
           WHERE rr.calculation_run_id = run.id)
          UNION ALL
          (SELECT rr.rule_id, rr.node_id, rr.predicate_json FROM {{ schema }}.calculation_run_rules rr
           WHERE rr.calculation_run_id = run.id
           EXCEPT
           SELECT m.rule_id, m.node_id, m.predicate_json FROM {{ schema }}.metadata_rules m
           JOIN {{ schema }}.use_cases u ON u.use_case_id = m.use_case_id
           JOIN {{ schema }}.dim_hierarchy h ON h.structure_id = u.structure_id AND h.node_id = m.node_id
           WHERE m.use_case_id = run.use_case_id)) d;

    -- ===== RULE_FIELDS_PRESENT (reads the run's facts: only when it counts) =====
    IF completed AND cfg -> 'RULE_FIELDS_PRESENT' ->> 'severity' <> 'OFF'
       AND EXISTS (SELECT 1 FROM {{ schema }}.calculation_run_inputs i WHERE i.calculation_run_id = run.id) THEN
        SELECT array_agg(format('rule %s on %s: %s', s.rule_id, s.rule_node_id, array_to_string(s.missing_fields, ', '))
                         ORDER BY s.rule_node_id, s.rule_id)
        INTO missing
        FROM {{ schema }}.run_rule_stats(run.id) s WHERE cardinality(s.missing_fields) > 0;
    END IF;

    -- ===== PLUG_LIMIT =====
    IF cfg -> 'PLUG_LIMIT' ->> 'severity' <> 'OFF' THEN
        SELECT greatest({% for m in measures %}abs(x.{{ m }}_plug){{ ", " if not loop.last }}{% endfor %}), true INTO plug, plug_found
        FROM {{ schema }}.fact_calculated_results x
        WHERE x.calculation_run_id = run.id AND x.node_id = cfg -> 'PLUG_LIMIT' -> 'params' ->> 'node_id'
          AND x.scenario = 'ACTUAL';
    END IF;

    -- ===== RESULT =====
    SELECT jsonb_agg(
               CASE WHEN s.severity = 'OFF'
                    THEN jsonb_build_object('code', s.code, 'severity', s.severity, 'passed', NULL, 'observed', NULL,
                                            'limit', NULL, 'message', 'not checked (OFF)')
                    ELSE jsonb_build_object('code', s.code, 'severity', s.severity, 'passed', o.passed,
                                            'observed', o.observed, 'limit', o.lim, 'message', o.message) END
               ORDER BY s.ord)
    INTO checks
    FROM {{ schema }}.close_check_settings(run.use_case_id) s
    JOIN (VALUES
        ('RUN_COMPLETED', completed, to_jsonb(run.status), to_jsonb('COMPLETED'::text),
         CASE WHEN completed THEN 'the run completed'
              ELSE format('run %s (%s) is %s, not COMPLETED', run.id, run.run_name, run.status) END),
        ('FACTS_UNCHANGED', facts_msg IS NULL, facts_diff, NULL::jsonb,
         coalesce('the facts changed since the run: ' || facts_msg || '; take a new snapshot',
                  'the unit''s current facts are exactly those the run read')),
        ('NO_UNMAPPED', coalesce(abs(worst.amount), 0) <= tolerance, to_jsonb(coalesce(abs(worst.amount), 0)),
         to_jsonb(tolerance),
         CASE WHEN coalesce(abs(worst.amount), 0) <= tolerance
              THEN format('no unmapped amount above %s', tolerance)
              ELSE format('unmapped facts of %s (%s %s), above the tolerance %s: map their category codes',
                          worst.amount, worst.scenario, worst.measure, tolerance) END),
        ('RULES_UNCHANGED', rules_diff IS NULL, to_jsonb(coalesce(rules_diff, '{}')), NULL,
         coalesce('the rules in force differ from those the run applied on ' || array_to_string(rules_diff, ', '),
                  'the rules in force are those the run applied')),
        ('RULE_FIELDS_PRESENT', completed AND missing IS NULL, to_jsonb(coalesce(missing, '{}')), NULL,
         CASE WHEN NOT completed THEN 'the run did not complete'
              WHEN missing IS NULL THEN 'every rule''s fields are carried by the facts it governs'
              ELSE 'rules whose fields none of their facts carries: ' || array_to_string(missing, '; ') END),
        ('PLUG_LIMIT', coalesce(plug <= (cfg -> 'PLUG_LIMIT' -> 'params' ->> 'abs')::numeric, false), to_jsonb(plug),
         cfg -> 'PLUG_LIMIT' -> 'params' -> 'abs',
         CASE WHEN plug_found IS NULL
              THEN format('node %s is not in the run', cfg -> 'PLUG_LIMIT' -> 'params' ->> 'node_id')
              ELSE format('largest |plug| at %s: %s (limit %s)', cfg -> 'PLUG_LIMIT' -> 'params' ->> 'node_id', plug,
                          cfg -> 'PLUG_LIMIT' -> 'params' ->> 'abs') END)
    ) AS o(code, passed, observed, lim, message) ON o.code = s.code;

    RETURN jsonb_build_object(
        'run_id', run.id, 'use_case_id', run.use_case_id, 'pnl_date', run.pnl_date,
        'passed', NOT jsonb_path_exists(checks, '$[*] ? (@.severity == "ERROR" && @.passed == false)'),
        'checks', checks);
END;
$$;
