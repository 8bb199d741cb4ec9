-- room_list.lua: the rooms (docs/rooms.md, `rooms`).
-- Runs after prelude.lua as the body of a function of ARGV (imkit.cluster.scripts),
-- alone or in a BATCH. KEYS: none; ARGV[1] is the key prefix (docs/cluster.md, "Keys").
--
-- ARGV: prefix, node, mid. JSON {lobby = how many are in the lobby, rooms = a list of
-- [name, members, topic or '', 1 when listed to this user]} (a secret room only to its
-- members). One read of every room's settings: O(rooms).
local conn = ARGV[2] .. '/' .. ARGV[3]
local lobby = redis.call('HLEN', CONNS) - tonumber(redis.call('HGET', META, 'outside') or '0')
local rooms = {}
local all = redis.call('HGETALL', ROOMS)
for i = 1, #all, 2 do
  local key, r = all[i], cjson.decode(all[i + 1])
  if not has_flag(r, 's') or redis.call('HEXISTS', room_members(key), conn) == 1 then
    table.insert(rooms, {r.name, redis.call('HLEN', room_members(key)), r.topic or ''})
  end
end
return cjson.encode({lobby = lobby, rooms = rooms})
