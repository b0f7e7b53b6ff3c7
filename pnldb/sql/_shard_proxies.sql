{#- A coordinator's PL/Proxy functions (issue 16), in schema {{ schema }}_shards: installed by `pnldb cluster
    init` (PL/Proxy is a language only a superuser may create functions in), executable only by the
    installation's owner, whose SECURITY DEFINER functions call them. Each has the signature of the shard
    function it calls (sql/_shard_layer.sql) and runs on every shard, or on the one shard_no names. -#}
{%- import "_shard_calls.sql" as calls with context %}
{%- set cluster = schema ~ "_shards" %}
CREATE OR REPLACE FUNCTION {{ cluster }}.shard_fact_groups(
    layer_version text, {{ calls.fact_groups_parameters() }}
) RETURNS {{ calls.fact_groups_rows() }}
LANGUAGE plproxy AS $$
    CLUSTER '{{ cluster }}';
    RUN ON ALL;
    TARGET {{ schema }}.shard_fact_groups;
$$;

CREATE OR REPLACE FUNCTION {{ cluster }}.shard_add_facts(layer_version text, shard_no integer,
                                                         facts {{ schema }}.fact_pnl_entries[]) RETURNS bigint
LANGUAGE plproxy AS $$
    CLUSTER '{{ cluster }}';
    RUN ON shard_no;
    TARGET {{ schema }}.shard_add_facts;
$$;

CREATE OR REPLACE FUNCTION {{ cluster }}.shard_fact_rows(layer_version text, use_case_id uuid, pnl_date date,
                                                         load_ids bigint[]) RETURNS SETOF {{ schema }}.fact_pnl_entries
LANGUAGE plproxy AS $$
    CLUSTER '{{ cluster }}';
    RUN ON ALL;
    TARGET {{ schema }}.shard_fact_rows;
$$;

CREATE OR REPLACE FUNCTION {{ cluster }}.shard_fact_currencies(layer_version text, use_case_id uuid, pnl_date date,
                                                               slice_loads bigint[], slice_scenarios text[])
RETURNS SETOF text
LANGUAGE plproxy AS $$
    CLUSTER '{{ cluster }}';
    RUN ON ALL;
    TARGET {{ schema }}.shard_fact_currencies;
$$;

CREATE OR REPLACE FUNCTION {{ cluster }}.shard_purge(layer_version text, load_ids bigint[], pnl_dates date[],
                                                     scenarios text[]) RETURNS SETOF bigint
LANGUAGE plproxy AS $$
    CLUSTER '{{ cluster }}';
    RUN ON ALL;
    TARGET {{ schema }}.shard_purge;
$$;

CREATE OR REPLACE FUNCTION {{ cluster }}.shard_loads(layer_version text)
RETURNS TABLE (shard_no integer, load_id bigint, use_case_id uuid, facts bigint)
LANGUAGE plproxy AS $$
    CLUSTER '{{ cluster }}';
    RUN ON ALL;
    TARGET {{ schema }}.shard_loads;
$$;

CREATE OR REPLACE FUNCTION {{ cluster }}.shard_analyze(layer_version text) RETURNS SETOF void
LANGUAGE plproxy AS $$
    CLUSTER '{{ cluster }}';
    RUN ON ALL;
    TARGET {{ schema }}.shard_analyze;
$$;

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA {{ cluster }} FROM PUBLIC;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA {{ cluster }} TO {{ roles.owner }};
