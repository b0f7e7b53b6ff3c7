-- A structure is one tree: no cycles, one root. Checked per statement over the rows it wrote, so a
-- load may insert nodes in any order (the parent FK is deferred to commit).
CREATE OR REPLACE FUNCTION {{ schema }}.check_hierarchy_is_a_tree() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    bad record;
BEGIN
    WITH RECURSIVE walk AS (
        SELECT n.structure_id, n.node_id AS start_node, n.parent_node_id AS next_node,
               ARRAY[n.node_id] AS path, false AS is_cycle
        FROM changed n
        WHERE n.parent_node_id IS NOT NULL
        UNION ALL
        SELECT w.structure_id, w.start_node, p.parent_node_id, w.path || p.node_id, p.node_id = ANY (w.path)
        FROM walk w
        JOIN {{ schema }}.dim_hierarchy p ON p.structure_id = w.structure_id AND p.node_id = w.next_node
        WHERE NOT w.is_cycle
    )
    SELECT structure_id, path INTO bad FROM walk WHERE is_cycle LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'hierarchy % has a cycle: %', bad.structure_id, array_to_string(bad.path, ' -> ')
            USING ERRCODE = 'integrity_constraint_violation',
                  HINT = 'every node must lead up to the single root through its parent_node_id';
    END IF;

    SELECT h.structure_id, array_agg(h.node_id ORDER BY h.node_id) AS roots INTO bad
    FROM {{ schema }}.dim_hierarchy h
    WHERE h.parent_node_id IS NULL AND h.structure_id IN (SELECT structure_id FROM changed)
    GROUP BY h.structure_id
    HAVING count(*) > 1
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'hierarchy % has more than one root: %', bad.structure_id, array_to_string(bad.roots, ', ')
            USING ERRCODE = 'integrity_constraint_violation',
                  HINT = 'a structure has exactly one node without a parent; give the others a parent_node_id';
    END IF;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE TRIGGER hierarchy_is_a_tree_on_insert
    AFTER INSERT ON {{ schema }}.dim_hierarchy
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION {{ schema }}.check_hierarchy_is_a_tree();

CREATE OR REPLACE TRIGGER hierarchy_is_a_tree_on_update
    AFTER UPDATE ON {{ schema }}.dim_hierarchy
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION {{ schema }}.check_hierarchy_is_a_tree();
