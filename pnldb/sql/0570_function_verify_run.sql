-- Recomputes a finished run from the inputs it recorded (contract §6): the facts of its loads, its
-- rules and its tree, with the very statement create_snapshot ran (sql/_fact_pipeline.sql), and compares
-- every result row, column by column, in the reporting currency and with the rates the run recorded
-- (never today's):
--   {"run_id", "reproduced", "rows_checked", "mismatch_count",
--    "mismatches": [{"node_id", "scenario", "column", "stored", "recomputed"}, ...]}  (at most 20 listed)
-- A row on one side only is a mismatch of column "row" (stored or recomputed NULL). Read-only. No nested
-- loops, for the reason given in sql/0520 (run_facts).
-- Tamper evidence (issue 18, item 3), also in the verdict:
--   "digest" (hex, as stored), "digest_ok" (the stored digest is that of the run's rows now: run_digest),
--   "chain_seq", "previous_run_id", "chain_ok" (its link to the previous run of its use case holds:
--   chain_problems), "chain_problem" (text or null)
-- digest_ok and chain_ok are null for a run taken before migration 0014_integrity, which has no digest.
-- "tree_problem": null, or why the run's recorded tree is no tree (its result rows changed behind the
-- triggers: not one root); then nothing is recomputed and every stored row is a mismatch.
{%- import "_fact_pipeline.sql" as pipeline with context %}
{%- set compared = ["parent_node_id", "node_name", "depth"] %}
{%- for m in measures %}{% for k in kinds %}{% set _ = compared.append(m ~ "_" ~ k) %}{% endfor %}{% endfor %}
{%- set _ = compared.extend(["is_override", "is_reconciled"]) %}
CREATE OR REPLACE FUNCTION {{ schema }}.verify_run(run_id uuid) RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET enable_nestloop = off SET jit = off AS $fn$
DECLARE
    source       record;  -- from open_run_reading
    settings_was text[];
    node_rows    {{ schema }}.snapshot_node[];
    applied      bigint[];
    converted    text[];
    reporting    text;
    rates        jsonb;
    verdict      jsonb;
    header       {{ schema }}.calculation_runs;
    link_problem text;
    roots        text[];
    read_root    text;  -- the root the read found: roots[1], for the recorded tree cannot change
    tree_problem text;
    rule_ids     bigint[];
    rule_json    jsonb[];
    slice_loads  bigint[];
    slice_scens  text[];
BEGIN
    source := {{ schema }}.open_run_reading(run_id, 'verify_run');
    {{ pipeline.run_fx("verify_run.run_id") | indent(4) }}
    INTO reporting, rates;

    -- ===== THE RECORDED TREE =====
    SELECT array_agg(r.node_id ORDER BY r.node_id) INTO roots
    FROM {{ schema }}.fact_calculated_results r
    WHERE r.calculation_run_id = verify_run.run_id AND r.scenario = '{{ scenarios[0] }}'
      AND r.parent_node_id IS NULL AND r.node_id <> '{{ unmapped }}';
    IF cardinality(roots) IS DISTINCT FROM 1 THEN
        tree_problem := format('the run''s recorded tree has %s roots (%s), not one: its result rows were changed',
                               coalesce(cardinality(roots), 0), coalesce(array_to_string(roots, ', '), 'none'));
    ELSE
        -- The recorded rules and inputs as the pipeline's $8 to $11 (what a coordinator's shards compile).
        SELECT array_agg(rr.rule_id ORDER BY rr.rule_id), array_agg(rr.predicate_json ORDER BY rr.rule_id)
        INTO rule_ids, rule_json
        FROM {{ schema }}.calculation_run_rules rr WHERE rr.calculation_run_id = verify_run.run_id;
        IF source.load_filter <> '' THEN
            SELECT array_agg(i.load_id ORDER BY i.load_id, i.scenario), array_agg(i.scenario ORDER BY i.load_id, i.scenario)
            INTO slice_loads, slice_scens
            FROM {{ schema }}.calculation_run_inputs i WHERE i.calculation_run_id = verify_run.run_id;
        END IF;
        {{ pipeline.planner_settings_on() | indent(8) }}
        EXECUTE format($sql${{ pipeline.snapshot_read(pipeline.run_nodes()) }}$sql$,
                       source.included, source.load_filter)
        INTO node_rows, applied, converted, read_root
        USING source.use_case_id, source.pnl_date, run_id, source.rule_by_node, source.loads, reporting, rates,
              rule_ids, rule_json, slice_loads, slice_scens, (source.rule_by_node ->> roots[1])::bigint;
        {{ pipeline.planner_settings_off() | indent(8) }}
    END IF;

    WITH recomputed AS ({{ pipeline.result_rows('node_rows') | indent(8) }}),
    stored AS (
        SELECT r.node_id, r.parent_node_id, r.node_name, r.depth, r.scenario,
{%- for m in measures %}
               r.{{ m }}_natural, r.{{ m }}_adjusted, r.{{ m }}_plug,
{%- endfor %}
               r.is_override, r.is_reconciled
        FROM {{ schema }}.fact_calculated_results r WHERE r.calculation_run_id = verify_run.run_id
    ),
    -- the pairs that differ at all, compared field by field; only they are taken apart column by column
    differing AS (
        SELECT s.node_id AS s_node, c.node_id AS c_node, coalesce(s.node_id, c.node_id) AS node_id,
               coalesce(s.scenario, c.scenario) AS scenario{% for column in compared %},
               s.{{ column }} AS s_{{ column }}, c.{{ column }} AS c_{{ column }}{% endfor %}
        FROM stored s
        FULL JOIN recomputed c ON c.node_id = s.node_id AND c.scenario = s.scenario
        WHERE s.node_id IS NULL OR c.node_id IS NULL
           OR ({% for column in compared %}s.{{ column }}{{ ", " if not loop.last }}{% endfor %})
              IS DISTINCT FROM ({% for column in compared %}c.{{ column }}{{ ", " if not loop.last }}{% endfor %})
    ),
    mismatch AS (
        SELECT p.node_id, p.scenario, d.column_name, d.stored, d.recomputed
        FROM differing p
        CROSS JOIN LATERAL (VALUES
            ('row', CASE WHEN p.s_node IS NOT NULL THEN 'present' END, CASE WHEN p.c_node IS NOT NULL THEN 'present' END,
             p.s_node IS NULL OR p.c_node IS NULL)
{%- for column in compared %},
            ('{{ column }}', p.s_{{ column }}::text, p.c_{{ column }}::text,
             p.s_node IS NOT NULL AND p.c_node IS NOT NULL AND p.s_{{ column }} IS DISTINCT FROM p.c_{{ column }})
{%- endfor %}
        ) AS d(column_name, stored, recomputed, differs)
        WHERE d.differs
    )
    SELECT jsonb_build_object(
        'run_id', verify_run.run_id,
        'reproduced', NOT EXISTS (SELECT 1 FROM mismatch),
        'rows_checked', (SELECT count(*) FROM stored),
        'mismatch_count', (SELECT count(*) FROM mismatch),
        'mismatches', coalesce((SELECT jsonb_agg(jsonb_build_object('node_id', m.node_id, 'scenario', m.scenario,
                                                                    'column', m.column_name, 'stored', m.stored,
                                                                    'recomputed', m.recomputed)
                                                 ORDER BY m.node_id, m.scenario, m.column_name)
                                FROM (SELECT * FROM mismatch ORDER BY node_id, scenario, column_name LIMIT 20) m), '[]'))
    INTO verdict;

    -- ===== DIGEST AND CHAIN =====
    SELECT r.* INTO header FROM {{ schema }}.calculation_runs r WHERE r.id = verify_run.run_id;
    SELECT p.problem INTO link_problem
    FROM {{ schema }}.chain_problems(header.use_case_id, false) p WHERE p.run_id = verify_run.run_id LIMIT 1;
    RETURN verdict || jsonb_build_object(
        'digest', encode(header.digest, 'hex'),
        'digest_ok', CASE WHEN header.digest IS NOT NULL THEN header.digest = {{ schema }}.run_digest(header) END,
        'chain_seq', header.chain_seq,
        'previous_run_id', header.previous_run_id,
        'chain_ok', CASE WHEN header.chain_seq IS NOT NULL OR link_problem IS NOT NULL THEN link_problem IS NULL END,
        'chain_problem', link_problem,
        'tree_problem', tree_problem);
END;
$fn$;
