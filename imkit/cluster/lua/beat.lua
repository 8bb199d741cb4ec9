-- beat.lua: a node's heartbeat; declares dead the nodes silent too long.
-- Runs after prelude.lua as the body of a function of ARGV (imkit.cluster.scripts),
-- alone or in a BATCH. KEYS: none; ARGV[1] is the key prefix (docs/cluster.md, "Keys").
--
-- ARGV: prefix, node, epoch, info JSON, timeout ms.
-- The heartbeat: {'lost'} when Redis no longer holds this cluster's epoch (restarted
-- empty), {'reaped'} when this node was declared dead, else {'ok', reaped} after
-- declaring dead every node silent for longer than the timeout. Releasing a dead
-- node's users writes their "user offline" events: only the beat that removes the
-- node from P:nodes does it, so they are written exactly once.
-- A node vouches for another's silence only while it was beating itself: it reaps
-- only once its own streak of beats (``up``, from its last register, or from a beat
-- that came after half the timeout of silence) has lasted the timeout. So when every
-- node's beats were refused (Redis full or unreachable for all), none reaps the others
-- on its first beats afterwards: they all get the timeout to register again.
-- A dead node's held kicks and mutes (node_held) stay, to expire HELD_MS after its
-- last beat; a live node's are kept alive by its beats.
local node = ARGV[2]
if redis.call('HGET', META, 'epoch') ~= ARGV[3] then return {'lost', 0} end
local last = redis.call('ZSCORE', NODES, node)
if not last then return {'reaped', 0} end
local now = now_ms()
local timeout = tonumber(ARGV[5])
local info = P .. ':node:' .. node
local up = tonumber(redis.call('HGET', info, 'up') or now)
if now - tonumber(last) > timeout / 2 then up = now end
redis.call('ZADD', NODES, now, node)
redis.call('HSET', info, 'info', ARGV[4], 'up', up)
redis.call('PEXPIRE', node_held(node), HELD_MS)
local reaped = 0
local dead = {}
if now - up >= timeout then
  dead = redis.call('ZRANGEBYSCORE', NODES, '-inf', '(' .. (now - timeout))
end
for _, d in ipairs(dead) do
  redis.call('ZREM', NODES, d)
  for _, conn in ipairs(redis.call('SMEMBERS', node_conns(d))) do
    release(conn, true)
    reaped = reaped + 1
  end
  redis.call('DEL', node_conns(d), P .. ':node:' .. d, node_log(d))
  redis.call('HDEL', META, 'last:' .. node_log(d))
end
return {'ok', reaped}
