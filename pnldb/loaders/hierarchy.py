"""A hierarchy structure from a CSV of node_id,parent_node_id,node_name: checked to be one tree no deeper
than the limit max_hierarchy_depth, then its nodes replaced in one transaction, and the table analysed
when the load changed many rows."""
from __future__ import annotations

import csv
import shlex

import psycopg

from pnldb.errors import PnlError
from pnldb.loaders.reading import (
    MAX_REPORTED,
    BadLine,
    id_problem,
    is_blank_row,
    nul_column,
    open_source,
    plural,
    problems_error,
    quoted,
    read_header,
    read_lines,
    source_name,
)
from pnldb.vocabulary import UNMAPPED

HIERARCHY_COLUMNS = ("node_id", "parent_node_id", "node_name")
# A load that inserts and removes this many nodes together has the table analysed before it commits: the
# planner's first snapshot on a fresh 30,000-node tree took 19.9 s on its default guesses, 1.3 s analysed.
# ANALYZE samples at most 30,000 rows (a fraction of a second), so smaller loads are left to autovacuum.
ANALYZE_AFTER_ROWS = 1_000


def load_hierarchy(conn: psycopg.Connection, source, structure_id: str, name: str | None = None) -> dict:
    """Create or replace structure `structure_id` from a CSV of node_id,parent_node_id,node_name.

    Rows may come in any order; a blank parent marks the root. The structure row is upserted (its
    name set to `name` when given, else kept, else the id) and its nodes replaced, in one transaction.
    Refuses, changing nothing, when the file is not one tree or when a rule sits on a node the file
    drops.
    """
    structure_id = (structure_id or "").strip()
    if not structure_id:
        raise PnlError("--structure must not be blank")
    nodes, lines = _read_hierarchy(source)
    problems = _check_tree(nodes, lines)
    fname = source_name(source)
    if problems:
        raise problems_error(fname, "problems", problems, len(problems))
    depths = _depths(nodes)

    with conn.transaction():
        limit = conn.execute("SELECT limit_value('max_hierarchy_depth')").fetchone()[0]
        too_deep = [n for n, d in depths.items() if d > limit]
        if too_deep:
            deepest = max(too_deep, key=lambda n: (depths[n], -lines[n]))
            raise PnlError(f"{fname}: line {lines[deepest]}: node {quoted(deepest)} is at depth {depths[deepest]} "
                           f"(the root is at 0), deeper than the limit of {limit} levels"
                           + (f"; {len(too_deep)} nodes are deeper than the limit" if len(too_deep) > 1 else "")
                           + "; make the tree shallower, or have an admin raise the limit (UPDATE limits SET value = "
                           f"{depths[deepest]} WHERE name = 'max_hierarchy_depth'); nothing loaded")
        existed = conn.execute(
            "SELECT name FROM hierarchy_structures WHERE structure_id = %s FOR UPDATE", (structure_id,)).fetchone()
        orphans = conn.execute(
            """SELECT r.node_id, u.name FROM metadata_rules r JOIN use_cases u USING (use_case_id)
               WHERE u.structure_id = %s AND NOT (r.node_id = ANY (%s::text[]))
               ORDER BY r.node_id, u.name""", (structure_id, list(nodes))).fetchall()
        if len(orphans) == 1:
            (node, uc), = orphans
            raise PnlError(f"{fname}: cannot replace structure {structure_id}: a rule sits on node {quoted(node)} "
                           f"(use case {quoted(uc)}), which the file drops; delete that rule "
                           f"(`pnldb rules delete --use-case {shlex.quote(uc)} {shlex.quote(node)}`) or keep the node; "
                           f"nothing loaded")
        if orphans:
            lines = [f"{fname}: cannot replace structure {structure_id}: {len(orphans)} rules sit on nodes the "
                     f"file drops; delete those rules (`pnldb rules delete --use-case U NODE...`) or keep the nodes; "
                     f"nothing loaded",
                     *(f"  node {quoted(n)} (use case {quoted(u)})" for n, u in orphans[:MAX_REPORTED])]
            if len(orphans) > MAX_REPORTED:
                lines.append(f"  and {len(orphans) - MAX_REPORTED} more")
            raise PnlError("\n".join(lines))
        final_name = name if name else (existed[0] if existed else structure_id)
        conn.execute(
            """INSERT INTO hierarchy_structures (structure_id, name) VALUES (%s, %s)
               ON CONFLICT (structure_id) DO UPDATE SET name = EXCLUDED.name""", (structure_id, final_name))
        removed = conn.execute("DELETE FROM dim_hierarchy WHERE structure_id = %s", (structure_id,)).rowcount
        copy_sql = "COPY dim_hierarchy (structure_id, node_id, parent_node_id, node_name) FROM STDIN"
        with conn.cursor() as cur, cur.copy(copy_sql) as cp:
            for node_id, (parent, node_name) in nodes.items():
                cp.write_row((structure_id, node_id, parent, node_name))
        root = next(n for n, (p, _) in nodes.items() if p is None)
        analyzed = len(nodes) + removed >= ANALYZE_AFTER_ROWS
        if analyzed:
            conn.execute("SELECT analyze_hierarchy()")
    return {"structure_id": structure_id, "name": final_name, "nodes_loaded": len(nodes),
            "root": root, "replaced": existed is not None, "nodes_removed": removed,
            "depth": max(depths.values()), "analyzed": analyzed}


def _read_hierarchy(source) -> tuple[dict[str, tuple[str | None, str]], dict[str, int]]:
    """{node_id: (parent or None, name)} and {node_id: line}; row-level problems raise at once."""
    binary, fname, owned = open_source(source)
    problems: list[str] = []
    nodes: dict[str, tuple[str | None, str]] = {}
    lines: dict[str, int] = {}
    header: list[str] = []
    try:
        reader = csv.reader(read_lines(binary, None))
        try:
            header = read_header(reader, fname, HIERARCHY_COLUMNS)
            extra = [c for c in header if c not in HIERARCHY_COLUMNS]
            if extra:
                raise PnlError(f"{fname}: line 1: unexpected column{'s' if len(extra) > 1 else ''} "
                               f"{', '.join(extra)}; the header is node_id,parent_node_id,node_name")
            i_node, i_parent, i_name = (header.index(c) for c in HIERARCHY_COLUMNS)
            for row in reader:
                line = reader.line_num
                if not row or is_blank_row(row):
                    continue  # a blank line, or Excel's empty trailing rows
                if len(row) != len(header):
                    problems.append(f"line {line}: {plural(len(row), 'cell')}, expected {len(header)}")
                    continue
                node_id, parent, node_name = row[i_node].strip(), row[i_parent].strip(), row[i_name].strip()
                if not node_id:
                    problems.append(f"line {line}: node_id is blank")
                    continue
                if node_id == UNMAPPED:
                    problems.append(f"line {line}: node_id {UNMAPPED} is reserved for unmapped facts")
                    continue
                too_long = [(column, problem) for column, value in (("node_id", node_id), ("parent_node_id", parent))
                            if (problem := id_problem(value))]
                if too_long:
                    problems += [f"line {line}, column {column}: {problem}" for column, problem in too_long]
                    continue
                if not node_name:
                    problems.append(f"line {line}: node_name of node {quoted(node_id)} is blank")
                if node_id in nodes:
                    problems.append(f"line {line}: node {quoted(node_id)} already defined on line {lines[node_id]}")
                    continue
                nodes[node_id] = (parent or None, node_name)
                lines[node_id] = line
        except BadLine as exc:
            col = nul_column(exc.text, header) if exc.text is not None else ""
            problems.append(f"line {reader.line_num + 1}{col}: {exc}")
        except csv.Error as exc:
            problems.append(f"line {reader.line_num}: {exc}")
    finally:
        if owned:
            binary.close()
    if problems:
        raise problems_error(fname, "problems", problems, len(problems))
    if not nodes:
        raise PnlError(f"{fname}: no nodes; a structure needs at least a root")
    return nodes, lines


def _check_tree(nodes: dict[str, tuple[str | None, str]], lines: dict[str, int]) -> list[str]:
    """Unknown parents, roots other than exactly one, cycles; each problem names its line(s)."""
    problems: list[str] = []
    roots = [n for n, (p, _) in nodes.items() if p is None]
    for node_id, (parent, _) in nodes.items():
        if parent is not None and parent not in nodes:
            problems.append(f"line {lines[node_id]}: parent_node_id {quoted(parent)} of node {quoted(node_id)} "
                            f"is not a node of the file")
    if len(roots) > 1:
        first = roots[0]
        for other in roots[1:]:
            problems.append(f"line {lines[other]}: node {quoted(other)} has no parent, but {quoted(first)} "
                            f"(line {lines[first]}) is already the root")
    # cycles: walk up from every node; a walk that meets its own trail has found a cycle
    state: dict[str, int] = {}  # 1 = on the current trail, 2 = leads to a root or a dead end
    for start in nodes:
        if start in state:
            continue
        trail = []
        node = start
        while node is not None and node in nodes and node not in state:
            state[node] = 1
            trail.append(node)
            node = nodes[node][0]
        if node is not None and state.get(node) == 1:
            cycle = trail[trail.index(node):]
            shown = " -> ".join(f"{quoted(n)} (line {lines[n]})" for n in cycle)
            problems.append(f"cycle: {shown} -> {quoted(node)}")
        for n in trail:
            state[n] = 2
    if not roots and not any(p.startswith("cycle") for p in problems):
        problems.append("no root: every node has a parent")
    return problems


def _depths(nodes: dict[str, tuple[str | None, str]]) -> dict[str, int]:
    """The depth of every node of a tree (the root at 0), each node's parent link followed once."""
    depths: dict[str, int] = {}
    for start in nodes:
        trail = []
        node = start
        while node is not None and node not in depths:
            trail.append(node)
            node = nodes[node][0]
        depth = depths[node] if node is not None else -1
        for n in reversed(trail):
            depth += 1
            depths[n] = depth
    return depths
