-- A snapshot's guard: the structure is one tree, every node reached from its single root. The tree
-- trigger keeps it so; a writer with the triggers off (a superuser, session_replication_role = replica)
-- can leave a cycle or a second root behind, whose nodes a snapshot would silently show as Unmapped.
-- Linear in the nodes: one walk down from the root.
CREATE OR REPLACE FUNCTION {{ schema }}.check_structure_is_one_tree(structure text, use_case_name text) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    roots text[];
    unreached bigint;
    shown text;
BEGIN
    SELECT array_agg(h.node_id ORDER BY h.node_id) INTO roots
    FROM {{ schema }}.dim_hierarchy h WHERE h.structure_id = structure AND h.parent_node_id IS NULL;
    IF cardinality(roots) > 1 THEN
        RAISE EXCEPTION 'use case "%": its structure % has % roots (%), a tree has one; nothing written',
                        use_case_name, structure, cardinality(roots), array_to_string(roots, ', ')
            USING ERRCODE = 'data_corrupted',
                  HINT = 'load the hierarchy again (pnldb load hierarchy FILE --structure ' || structure || ')';
    END IF;

    WITH RECURSIVE walk AS (
        SELECT h.node_id FROM {{ schema }}.dim_hierarchy h
        WHERE h.structure_id = structure AND h.parent_node_id IS NULL
        UNION ALL
        SELECT c.node_id FROM walk w
        JOIN {{ schema }}.dim_hierarchy c ON c.structure_id = structure AND c.parent_node_id = w.node_id
    ),
    unreached_nodes AS (
        SELECT h.node_id FROM {{ schema }}.dim_hierarchy h
        WHERE h.structure_id = structure AND NOT EXISTS (SELECT 1 FROM walk w WHERE w.node_id = h.node_id)
    )
    SELECT (SELECT count(*) FROM unreached_nodes),
           (SELECT string_agg(u.node_id, ', ' ORDER BY u.node_id)
            FROM (SELECT n.node_id FROM unreached_nodes n ORDER BY n.node_id LIMIT 5) u)
    INTO unreached, shown;
    IF unreached > 0 THEN
        RAISE EXCEPTION 'use case "%": % node% of structure % cannot be reached from its root %: %; nothing written',
                        use_case_name, unreached, CASE WHEN unreached > 1 THEN 's' ELSE '' END, structure,
                        coalesce(roots[1], '(none)'),
                        shown || CASE WHEN unreached > 5 THEN format(' and %s more', unreached - 5) ELSE '' END
            USING ERRCODE = 'data_corrupted',
                  HINT = 'their parent links go round in a cycle, written with the tree checks off; fix the '
                         'parent_node_id of those nodes or load the hierarchy again (pnldb load hierarchy FILE '
                         '--structure ' || structure || ')';
    END IF;
END;
$$;
