-- One node of a snapshot as create_snapshot's one read returns it: the node, then the values summed
-- for each fact scenario, side by side. A type has no CREATE OR REPLACE: it is created when missing and
-- built again when its attributes are not these (the vocabulary gained a measure, say). Only function
-- bodies use it, and they are installed again after this file; anything else built on it makes the
-- DROP fail rather than vanish with it.
{%- set attributes %}node_id text, parent_node_id text, node_name text, depth integer, is_override boolean
{%- for v in node_values %}, {{ v.column }} numeric{% endfor %}{% endset %}
DO $type$
DECLARE
    installed text;
BEGIN
    SELECT string_agg(format('%I %s', a.attname, format_type(a.atttypid, a.atttypmod)), ', ' ORDER BY a.attnum)
    INTO installed
    FROM pg_type t
    JOIN pg_attribute a ON a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped
    WHERE t.oid = to_regtype('{{ schema }}.snapshot_node');
    IF installed IS DISTINCT FROM '{{ attributes }}' THEN
        DROP TYPE IF EXISTS {{ schema }}.snapshot_node;
        CREATE TYPE {{ schema }}.snapshot_node AS ({{ attributes }});
    END IF;
END;
$type$;
