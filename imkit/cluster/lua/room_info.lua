-- room_info.lua: a room's settings, as a user asks for them (topic, mode, who).
-- Runs after prelude.lua as the body of a function of ARGV (imkit.cluster.scripts),
-- alone or in a BATCH. KEYS: none; ARGV[1] is the key prefix (docs/cluster.md, "Keys").
--
-- ARGV: prefix, node, mid, room key, '1' for its members too. {'none'} when there is
-- no such room (or it is secret and the user is not in it); else {'ok', settings JSON,
-- the user's membership JSON ('' none), members, then with '1' each member's conn
-- record JSON and membership JSON}.
local conn = ARGV[2] .. '/' .. ARGV[3]
local key = ARGV[4]
local r, m = visible_room(conn, key)
if not r then return {'none'} end
local reply = {'ok', cjson.encode(r), m and cjson.encode(m) or '',
               redis.call('HLEN', room_members(key))}
if ARGV[5] == '1' then
  local all = redis.call('HGETALL', room_members(key))
  for i = 1, #all, 2 do
    local record = redis.call('HGET', CONNS, all[i])
    if record then
      table.insert(reply, record)
      table.insert(reply, all[i + 1])
    end
  end
end
return reply
