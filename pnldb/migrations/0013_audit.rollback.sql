-- The rule history goes with it: `pnldb migrate --rollback-to` counts its rows among what would be lost
-- and refuses without --force.
DROP TABLE {{ schema }}.rule_versions;
