-- room_join.lua: a user joins a room (docs/rooms.md), making it if there is none.
-- Runs after prelude.lua as the body of a function of ARGV (imkit.cluster.scripts),
-- alone or in a BATCH. KEYS: none; ARGV[1] is the key prefix (docs/cluster.md, "Keys").
--
-- ARGV: prefix, node, mid, room key, room name (as spelled), key given ('' none),
-- address fields (imkit.rules.rooms.address_fields), '1' when an account is put back in
-- a room it remembers (past a key, an invite-only room or a limit, never a ban),
-- --max-rooms, --max-rooms-per-user, --room-creation, the history's retention in ms
-- (0: all). The same decisions as RoomState.admission; a refused remembered room is
-- forgotten. Its join event goes to the room's stream (the joiner's node reads on from
-- there). Replies: {'ok', join event id, settings JSON, members, operator 0/1};
-- {'member', settings JSON, members, operator 0/1} when it is in already;
-- {'refused', code, room name}: code an error code, or 'too_many_server' /
-- 'too_many_user'; {'gone'}.
local node, mid, key, name = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local conn = node .. '/' .. mid
local c = load_conn(conn)
if not c then return {'gone'} end
local remembered = ARGV[8] == '1'
local r = load_room(key)
local function refuse(code)
  if remembered and c.account then forget_room(c.key, key) end
  return {'refused', code, r and r.name or name}
end
local count = redis.call('HLEN', room_members(key))
local mine = redis.call('HGET', room_members(key), conn)
if r and mine then
  return {'member', cjson.encode(r), count, cjson.decode(mine).o and 1 or 0}
end
if #(c.rooms or {}) >= tonumber(ARGV[10]) then return refuse('too_many_user') end
local op
if not r then
  if ARGV[11] == 'admin' then return refuse('no_such_room') end
  if ARGV[11] == 'accounts' and not c.account then return refuse('login_required') end
  if redis.call('HLEN', ROOMS) >= tonumber(ARGV[9]) then return refuse('too_many_server') end
  r = {name = name, flags = 'nt', registered = false, retain = tonumber(ARGV[12])}
  op = true  -- its maker is its operator
  redis.call('PERSIST', room_hist(key))
  redis.call('PERSIST', room_log(key))
  save_room(key, r)
else
  local code = admission(r, c, ARGV[7], ARGV[6], remembered, count)
  if code then return refuse(code) end
  op = (c.account and index_of(r.operators, c.key)) and true or false
end
enter_room(conn, c, key, op)
redis.call('HSET', CONNS, conn, cjson.encode(c))
if c.account then remember_room(c.key, key, r.name) end
local id = emit(room_log(key), {t = 'join', room = key, name = c.name, addr = c.addr,
                                node = node, mid = mid})
return {'ok', id, cjson.encode(r), count + 1, op and 1 or 0}
