-- nodes.lua: the live nodes.
-- Runs after prelude.lua as the body of a function of ARGV (imkit.cluster.scripts),
-- alone or in a BATCH. KEYS: none; ARGV[1] is the key prefix (docs/cluster.md, "Keys").
--
-- ARGV: prefix. The live nodes: node, last beat ms, info JSON ...; then Redis' now.
local result = {tostring(now_ms())}
local nodes = redis.call('ZRANGE', NODES, 0, -1, 'WITHSCORES')
for i = 1, #nodes, 2 do
  table.insert(result, nodes[i])
  table.insert(result, nodes[i + 1])
  table.insert(result, redis.call('HGET', P .. ':node:' .. nodes[i], 'info') or '{}')
end
return result
