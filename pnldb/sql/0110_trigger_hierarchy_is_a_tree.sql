-- A structure is one tree: one root, no cycles, no node deeper than the limit max_hierarchy_depth.
-- Checked per statement over the whole of every structure the statement wrote to, in time linear in its
-- nodes: a walk down from its tops reaches every node that is in no cycle, once. A load may insert nodes
-- in any order (the parent FK is deferred to commit): a node whose parent is not there yet counts as a top.
-- Edits of one structure serialise on its lock (lock_structure), so two transactions cannot each make
-- half of a cycle (A's parent := B beside B's parent := A) and both commit: under READ COMMITTED the
-- second checks the tree with the first's edit, and under REPEATABLE READ the lock refuses a
-- transaction whose snapshot predates the other edit (take_lock).

{#- Every node of the touched structures reached from a top, with its depth below that top, down to one
    level past the limit at most. -#}
{% macro walk() -%}
walk AS (
        SELECT h.structure_id, h.node_id, 0 AS depth
        FROM {{ schema }}.dim_hierarchy h
        WHERE h.structure_id = ANY (touched)
          AND (h.parent_node_id IS NULL
               OR NOT EXISTS (SELECT 1 FROM {{ schema }}.dim_hierarchy p
                              WHERE p.structure_id = h.structure_id AND p.node_id = h.parent_node_id))
        UNION ALL
        SELECT c.structure_id, c.node_id, w.depth + 1
        FROM walk w
        JOIN {{ schema }}.dim_hierarchy c ON c.structure_id = w.structure_id AND c.parent_node_id = w.node_id
        WHERE w.depth <= max_depth
    )
{%- endmacro %}

CREATE OR REPLACE FUNCTION {{ schema }}.check_hierarchy_is_a_tree() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    max_depth CONSTANT integer := {{ schema }}.limit_value('max_hierarchy_depth');
    touched text[];
    bad record;
    start_node text;
    on_cycle text;
    cycle text[];
BEGIN
    -- ===== SHAPE UNCHANGED =====
    -- An UPDATE that moved no node (a rename) leaves every tree as it was: nothing to lock or walk.
    IF TG_OP = 'UPDATE' THEN  -- only the UPDATE trigger has old_rows
        IF NOT EXISTS (SELECT 1 FROM changed c
                       WHERE NOT EXISTS (SELECT 1 FROM old_rows o
                                         WHERE o.structure_id = c.structure_id AND o.node_id = c.node_id
                                           AND o.parent_node_id IS NOT DISTINCT FROM c.parent_node_id)) THEN
            RETURN NULL;
        END IF;
    END IF;

    -- ===== SERIALISE =====
    SELECT array_agg(DISTINCT c.structure_id ORDER BY c.structure_id) INTO touched FROM changed c;
    IF touched IS NULL THEN
        RETURN NULL;
    END IF;
    PERFORM {{ schema }}.lock_structure(s.structure_id, true)
    FROM unnest(touched) WITH ORDINALITY AS s(structure_id, i) ORDER BY s.i;

    -- ===== ONE ROOT =====
    SELECT h.structure_id, array_agg(h.node_id ORDER BY h.node_id) AS roots INTO bad
    FROM {{ schema }}.dim_hierarchy h
    WHERE h.parent_node_id IS NULL AND h.structure_id = ANY (touched)
    GROUP BY h.structure_id
    HAVING count(*) > 1
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'hierarchy % has more than one root: %', bad.structure_id, array_to_string(bad.roots, ', ')
            USING ERRCODE = 'integrity_constraint_violation',
                  HINT = 'a structure has exactly one node without a parent; give the others a parent_node_id';
    END IF;

    -- ===== WALK =====
    -- A node in a cycle, or below one, is never reached: a structure's nodes minus those reached are its
    -- cycles and what hangs under them.
    WITH RECURSIVE {{ walk() }},
    reached AS (SELECT w.structure_id, count(*) AS reached, max(w.depth) AS deepest FROM walk w GROUP BY 1)
    SELECT n.structure_id, n.nodes - coalesce(r.reached, 0) AS unreached, coalesce(r.deepest, 0) AS deepest INTO bad
    FROM (SELECT h.structure_id, count(*) AS nodes FROM {{ schema }}.dim_hierarchy h
          WHERE h.structure_id = ANY (touched) GROUP BY h.structure_id) n
    LEFT JOIN reached r ON r.structure_id = n.structure_id
    WHERE n.nodes > coalesce(r.reached, 0) OR r.deepest > max_depth
    ORDER BY r.deepest > max_depth DESC NULLS LAST, n.structure_id
    LIMIT 1;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;

    -- ===== DEPTH =====
    IF bad.deepest > max_depth THEN
        WITH RECURSIVE {{ walk() }}
        SELECT min(w.node_id) INTO start_node FROM walk w WHERE w.structure_id = bad.structure_id AND w.depth > max_depth;
        RAISE EXCEPTION 'hierarchy %: node % is at depth % (the root is at 0), deeper than the limit of % levels; nothing written',
                        bad.structure_id, quote_literal(start_node), bad.deepest, max_depth
            USING ERRCODE = 'program_limit_exceeded',
                  HINT = 'make the tree shallower, or have an admin raise the limit: UPDATE {{ schema }}.limits '
                         'SET value = N WHERE name = ''max_hierarchy_depth''';
    END IF;

    -- ===== CYCLES =====
    -- Name one: walk up from an unreached node this statement wrote (every new cycle has one) for as many
    -- steps as there are unreached nodes at most, which ends on the cycle, then once around it.
    WITH RECURSIVE {{ walk() }}
    SELECT coalesce(
        (SELECT min(c.node_id) FROM changed c
         WHERE c.structure_id = bad.structure_id
           AND NOT EXISTS (SELECT 1 FROM walk w WHERE w.structure_id = c.structure_id AND w.node_id = c.node_id)),
        -- a cycle made with the trigger off: any unreached node leads to one
        (SELECT min(h.node_id) FROM {{ schema }}.dim_hierarchy h
         WHERE h.structure_id = bad.structure_id
           AND NOT EXISTS (SELECT 1 FROM walk w WHERE w.structure_id = h.structure_id AND w.node_id = h.node_id)))
    INTO start_node;
    WITH RECURSIVE up AS (
        SELECT start_node AS node_id, 0::bigint AS step
        UNION ALL
        SELECT p.parent_node_id, u.step + 1
        FROM up u JOIN {{ schema }}.dim_hierarchy p ON p.structure_id = bad.structure_id AND p.node_id = u.node_id
        WHERE u.step < bad.unreached AND (u.step = 0 OR u.node_id <> start_node)
    )
    SELECT u.node_id INTO on_cycle FROM up u ORDER BY u.step DESC LIMIT 1;
    WITH RECURSIVE around AS (
        SELECT on_cycle AS node_id, 0::bigint AS step
        UNION ALL
        SELECT p.parent_node_id, a.step + 1
        FROM around a JOIN {{ schema }}.dim_hierarchy p ON p.structure_id = bad.structure_id AND p.node_id = a.node_id
        WHERE a.step = 0 OR a.node_id <> on_cycle
    )
    SELECT array_agg(a.node_id ORDER BY a.step) INTO cycle FROM around a;
    RAISE EXCEPTION 'hierarchy % has a cycle: %', bad.structure_id,
                    CASE WHEN cardinality(cycle) <= 21 THEN array_to_string(cycle, ' -> ')
                         ELSE array_to_string(cycle[1:10], ' -> ') || format(' -> ... %s more -> ', cardinality(cycle) - 20)
                              || array_to_string(cycle[cardinality(cycle) - 9:], ' -> ') END
        USING ERRCODE = 'integrity_constraint_violation',
              HINT = 'every node must lead up to the single root through its parent_node_id';
END;
$$;

CREATE OR REPLACE TRIGGER hierarchy_is_a_tree_on_insert
    AFTER INSERT ON {{ schema }}.dim_hierarchy
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION {{ schema }}.check_hierarchy_is_a_tree();

CREATE OR REPLACE TRIGGER hierarchy_is_a_tree_on_update
    AFTER UPDATE ON {{ schema }}.dim_hierarchy
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION {{ schema }}.check_hierarchy_is_a_tree();
