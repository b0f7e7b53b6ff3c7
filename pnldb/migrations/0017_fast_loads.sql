-- depends: 0016_fact_cents
-- Fast fact loads (issue 15): the foreign key from the facts to their use case checked every row of a
-- load on its own (about 40% of a million-row INSERT). The guarantee stays, set-based: every fact belongs
-- to a load of its own use case (fact_loads_count_their_slices checks the statement's distinct loads),
-- and the load references its use case (fact_loads_use_case_id_fkey, KEY SHARE on the use case row
-- until the loading transaction ends). A use case's facts go with its loads (fact_loads_take_their_facts,
-- pnldb/sql/0125), as the cascade took them before.
ALTER TABLE {{ schema }}.fact_pnl_entries DROP CONSTRAINT fact_pnl_entries_use_case_id_fkey;

INSERT INTO {{ schema }}.limits (name, value, description)
VALUES ('fact_load_work_mem_mb', 256,
        'work_mem (MB) of a fact load''s transaction, when the session''s is lower: the checks of the staged file '
        'hash in memory, and the new facts the slice counting reads stay in memory');
