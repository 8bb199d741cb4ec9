-- room_part.lua: a user leaves a room (a part: its account forgets the room).
-- Runs after prelude.lua as the body of a function of ARGV (imkit.cluster.scripts),
-- alone or in a BATCH. KEYS: none; ARGV[1] is the key prefix (docs/cluster.md, "Keys").
--
-- ARGV: prefix, node, mid, room key, reason ('' none). The part event goes to the
-- room's stream before the room may end (leave_room). {'ok', room name},
-- {'not_in'}, {'gone'}.
local node, mid, key = ARGV[2], ARGV[3], ARGV[4]
local conn = node .. '/' .. mid
local c = load_conn(conn)
if not c then return {'gone'} end
if redis.call('HEXISTS', room_members(key), conn) == 0 then return {'not_in'} end
local r = load_room(key)
local reason = ARGV[5]
if reason == '' then reason = nil end
emit(room_log(key), {t = 'part', room = key, name = c.name, addr = c.addr, node = node,
                     mid = mid, reason = reason})
leave_room(conn, c, key)
redis.call('HSET', CONNS, conn, cjson.encode(c))
if c.account then forget_room(c.key, key) end
return {'ok', r and r.name or key}
