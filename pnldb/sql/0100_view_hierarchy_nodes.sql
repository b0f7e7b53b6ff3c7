-- Every node with what derives from the parent links: depth (root = 0), path from the root, leafness.
CREATE OR REPLACE VIEW {{ schema }}.v_hierarchy_nodes AS
WITH RECURSIVE tree AS (
    SELECT h.structure_id, h.node_id, h.parent_node_id, h.node_name, 0 AS depth, ARRAY[h.node_id] AS path
    FROM {{ schema }}.dim_hierarchy h
    WHERE h.parent_node_id IS NULL
    UNION ALL
    SELECT c.structure_id, c.node_id, c.parent_node_id, c.node_name, t.depth + 1, t.path || c.node_id
    FROM {{ schema }}.dim_hierarchy c
    JOIN tree t ON t.structure_id = c.structure_id AND t.node_id = c.parent_node_id
)
SELECT t.structure_id, t.node_id, t.parent_node_id, t.node_name, t.depth, t.path,
       array_to_string(t.path, ' > ') AS path_text,
       NOT EXISTS (SELECT 1 FROM {{ schema }}.dim_hierarchy c
                   WHERE c.structure_id = t.structure_id AND c.parent_node_id = t.node_id) AS is_leaf
FROM tree t;

COMMENT ON VIEW {{ schema }}.v_hierarchy_nodes IS 'Nodes of every structure with derived depth (root = 0), path from the root and leafness.';
COMMENT ON COLUMN {{ schema }}.v_hierarchy_nodes.depth IS 'Distance from the root; the root has depth 0.';
COMMENT ON COLUMN {{ schema }}.v_hierarchy_nodes.path IS 'Node ids from the root down to this node, inclusive.';
COMMENT ON COLUMN {{ schema }}.v_hierarchy_nodes.is_leaf IS 'True when no node names this node as its parent.';
