-- The digest of a run (issue 18, item 3): sha256 of its header, result rows, recorded rules, inputs and
-- rates as text, each part counted and in a fixed order (byte order, COLLATE "C": the database's collation,
-- or an upgrade of its library, must not reorder it), with the text forms pinned (time zone, date
-- style, bytea as hex) so that every session computes the same bytes. The header includes its link to
-- the previous run of its use case (chain_seq, previous_run_id, previous_digest), so the digests chain.
-- Version 1 of the text form; a change to it is a new version, never a rewrite of stored digests.
CREATE OR REPLACE FUNCTION {{ schema }}.run_digest(run {{ schema }}.calculation_runs) RETURNS bytea
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp SET TimeZone = 'UTC' SET DateStyle = 'ISO, YMD' SET bytea_output = 'hex'
AS $$
SELECT sha256(convert_to(concat_ws(E'\n',
    'pnldb run digest 1',
    ROW(run.id, run.use_case_id, run.pnl_date, run.run_name, run.executed_at, run.executed_by, run.triggered_by,
        run.status, run.reporting_currency, run.rules_applied, run.calculation_duration_ms, run.error_message,
        run.chain_seq, run.previous_run_id, encode(run.previous_digest, 'hex'))::text,
    (SELECT 'results ' || count(*) || E'\n'
            || coalesce(string_agg(ROW(x.node_id, x.parent_node_id, x.node_name, x.depth, x.scenario,
{%- for m in measures %}
                                       x.{{ m }}_natural, x.{{ m }}_adjusted, x.{{ m }}_plug,
{%- endfor %}
                                       x.is_override, x.is_reconciled, x.run_id)::text,
                                   E'\n' ORDER BY x.node_id COLLATE "C", x.scenario COLLATE "C"), '')
     FROM {{ schema }}.fact_calculated_results x WHERE x.calculation_run_id = run.id),
    (SELECT 'rules ' || count(*) || E'\n'
            || coalesce(string_agg(ROW(x.rule_id, x.node_id, x.predicate_json, x.sql_where, x.logic_en)::text,
                                   E'\n' ORDER BY x.rule_id, x.node_id COLLATE "C"), '')
     FROM {{ schema }}.calculation_run_rules x WHERE x.calculation_run_id = run.id),
    (SELECT 'inputs ' || count(*) || E'\n'
            || coalesce(string_agg(ROW(x.load_id, x.scenario, x.facts{% for m in measures %}, x.{{ m }}_sum{% endfor %})::text,
                                   E'\n' ORDER BY x.load_id, x.scenario COLLATE "C"), '')
     FROM {{ schema }}.calculation_run_inputs x WHERE x.calculation_run_id = run.id),
    (SELECT 'rates ' || count(*) || E'\n'
            || coalesce(string_agg(ROW(x.currency, x.rate)::text, E'\n' ORDER BY x.currency COLLATE "C"), '')
     FROM {{ schema }}.calculation_run_fx x WHERE x.calculation_run_id = run.id)
), 'UTF8'))
$$;
