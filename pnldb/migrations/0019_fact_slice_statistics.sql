-- depends: 0018_cluster
-- The planner's estimate of a snapshot's facts (issue 15). A snapshot reads its use case and date by
-- load id (use_case_id = $1 AND pnl_date = $2 AND load_id = ANY ($5)), three columns a load ties
-- together: a load belongs to one use case and a daily load to one date. Taken as independent, their
-- selectivities multiplied gave 4,501 rows of a 2,000,000-fact slice among 20 other dates; the plan
-- then joined each fact to the tree's 10,111 nodes by a nested loop, 20 minutes instead of 3 seconds.
-- The statistics of the column combinations (their most common values and functional dependencies)
-- give the planner the slice's real size, which ANALYZE (analyze_facts, after every load) keeps fresh.
CREATE STATISTICS {{ schema }}.fact_pnl_entries_slices (mcv, dependencies)
    ON use_case_id, pnl_date, load_id FROM {{ schema }}.fact_pnl_entries;
