-- depends: 0017_fast_loads
-- Past one machine (issue 16): a coordinator's shards, and the shard purges it owes. An installation with
-- no row in cluster_shards is a single server, as before; `pnldb cluster init` fills the table, and the SQL
-- layer of a coordinator is rendered for its shards (pnldb/cluster.py). The shards' credentials are never
-- here: they are in the user mapping of the PL/Proxy server, which only its owner and superusers can read.
CREATE TABLE {{ schema }}.cluster_shards (
    shard_no   integer PRIMARY KEY CHECK (shard_no >= 0),
    server     text NOT NULL,  -- libpq key=value pairs without user or password: host, port, dbname
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Facts to delete from the shards, queued in the coordinator transaction that made them unreachable (a
-- use case deleted, superseded slices purged) and deleted by `pnldb cluster purge` after it commits, so a
-- rolled-back delete never loses a shard's facts. pnl_date and scenario NULL: every fact of the load.
CREATE TABLE {{ schema }}.shard_purges (
    purge_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    load_id   bigint NOT NULL,
    pnl_date  date,
    scenario  text,
    queued_at timestamptz NOT NULL DEFAULT now()
);
