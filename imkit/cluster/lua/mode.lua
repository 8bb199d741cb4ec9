-- mode.lua: a connection's mode.
-- Runs after prelude.lua as the body of a function of ARGV (imkit.cluster.scripts),
-- alone or in a BATCH. KEYS: none; ARGV[1] is the key prefix (docs/cluster.md, "Keys").
--
-- ARGV: prefix, node, mid, mode. A connection's mode, once its first line decided it.
local conn = ARGV[2] .. '/' .. ARGV[3]
local c = load_conn(conn)
if not c then return 0 end
c.mode = ARGV[4]
redis.call('HSET', CONNS, conn, cjson.encode(c))
return 1
