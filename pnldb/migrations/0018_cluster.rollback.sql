DROP TABLE {{ schema }}.shard_purges;
DROP TABLE {{ schema }}.cluster_shards;
