-- depends: 0015_entitlements
-- Each measure the snapshot sums, also as integer cents, stored (issue 15): PostgreSQL sums bigint in
-- an int128 state, and three such sums per fact cost the snapshot's fact pipeline far less than three
-- numeric sums; converting on the fly, (x * 100)::bigint per fact, costs more than it saves, so the
-- cents are stored. numeric(18,2) times 100 is an exact integer of at most 18 digits, below 10^18 and
-- inside bigint (9.22 * 10^18): the cast never rounds and never overflows. Generated, so no writer can
-- store them inconsistent with the amounts, and computed after the BEFORE INSERT triggers (a legacy
-- row's measures filled by fact_measures_follow_amount get their cents too). One ALTER: the table is
-- rewritten once, and a rewrite fires no row trigger (facts_are_immutable is not involved).
ALTER TABLE {{ schema }}.fact_pnl_entries
    ADD COLUMN daily_cents bigint GENERATED ALWAYS AS ((daily_amount * 100)::bigint) STORED,
    ADD COLUMN wtd_cents bigint GENERATED ALWAYS AS ((wtd_amount * 100)::bigint) STORED,
    ADD COLUMN ytd_cents bigint GENERATED ALWAYS AS ((ytd_amount * 100)::bigint) STORED;
