-- depart.lua: a node leaves the cluster with all its users.
-- Runs after prelude.lua as the body of a function of ARGV (imkit.cluster.scripts),
-- alone or in a BATCH. KEYS: none; ARGV[1] is the key prefix (docs/cluster.md, "Keys").
--
-- ARGV: prefix, node (leaving the cluster: SIGTERM). Every user of the node released and
-- announced offline at once; the node is forgotten.
local node = ARGV[2]
for _, conn in ipairs(redis.call('SMEMBERS', node_conns(node))) do release(conn, true) end
redis.call('ZREM', NODES, node)
redis.call('DEL', node_conns(node), P .. ':node:' .. node, node_log(node), node_held(node))
redis.call('HDEL', META, 'last:' .. node_log(node))
return 1
