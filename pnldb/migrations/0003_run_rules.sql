-- depends: 0002_step_4_2
-- Each run keeps the rules it applied, as they were, so editing rules later never changes how it reads.
CREATE TABLE {{ schema }}.calculation_run_rules (
    calculation_run_id uuid NOT NULL REFERENCES {{ schema }}.calculation_runs (id) ON DELETE CASCADE,
    rule_id            bigint NOT NULL,
    node_id            text NOT NULL,
    predicate_json     jsonb NOT NULL,
    sql_where          text NOT NULL,
    logic_en           text,
    PRIMARY KEY (calculation_run_id, rule_id)
);
