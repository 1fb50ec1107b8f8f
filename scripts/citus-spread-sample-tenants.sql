-- The sample's tenants one worker after another (a tenant's shards move together, colocated): hashed,
-- all three may land on one worker, which would then do every write while the other idles.
WITH sample_tenants AS (
    SELECT tenant, row_number() OVER (ORDER BY tenant) - 1 AS position
    FROM (VALUES ('00000000-0000-4000-8000-000000000001'::uuid), ('00000000-0000-4000-8000-000000000002'::uuid),
                 ('00000000-0000-4000-8000-000000000003'::uuid)) AS t (tenant)
), workers AS (
    SELECT nodeid, row_number() OVER (ORDER BY nodeid) - 1 AS position, count(*) OVER () AS workers
    FROM pg_dist_node WHERE noderole = 'primary' AND shouldhaveshards AND groupid <> 0
), placed AS (
    SELECT t.tenant, p.shardid, n.nodeid AS now_on, w.nodeid AS goes_to
    FROM sample_tenants t
    JOIN pg_dist_placement p ON p.shardid = get_shard_id_for_distribution_column('tenants', t.tenant)
    JOIN pg_dist_node n ON n.groupid = p.groupid
    JOIN workers w ON w.position = t.position % w.workers
)
SELECT tenant, citus_move_shard_placement(shardid, now_on, goes_to, 'block_writes')
FROM placed WHERE now_on <> goes_to;
