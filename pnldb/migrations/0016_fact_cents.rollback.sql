-- The cents are derived from the amounts: dropping them loses nothing.
ALTER TABLE {{ schema }}.fact_pnl_entries DROP COLUMN daily_cents, DROP COLUMN wtd_cents, DROP COLUMN ytd_cents;
