-- room_lobby.lua: a user leaves the lobby (part|#lobby) or comes back to it.
-- Runs after prelude.lua as the body of a function of ARGV (imkit.cluster.scripts),
-- alone or in a BATCH. KEYS: none; ARGV[1] is the key prefix (docs/cluster.md, "Keys").
--
-- ARGV: prefix, node, mid, '1' to come back ('' to leave). The conn's lobby flag (who.lua
-- skips those outside; P:meta outside counts them), and an lj or lp event in P:log for
-- the lobby's members on every node. {'ok'}, {'same'}, {'gone'}.
local node, mid = ARGV[2], ARGV[3]
local conn = node .. '/' .. mid
local c = load_conn(conn)
if not c then return {'gone'} end
local inside = ARGV[4] == '1'
if (c.lobby ~= false) == inside then return {'same'} end
if inside then
  c.lobby = nil
  redis.call('HINCRBY', META, 'outside', -1)
else
  c.lobby = false
  redis.call('HINCRBY', META, 'outside', 1)
end
redis.call('HSET', CONNS, conn, cjson.encode(c))
emit(LOG, {t = inside and 'lj' or 'lp', name = c.name, addr = c.addr, node = node, mid = mid})
return {'ok'}
