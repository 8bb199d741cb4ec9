-- people.lua: who users are, as IRC's WHOIS, WHO, ISON and USERHOST ask (the whole
-- cluster's, not only the asking node's: imkit.cluster.people).
-- Runs after prelude.lua as the body of a function of ARGV (imkit.cluster.scripts),
-- alone or in a BATCH. KEYS: none; ARGV[1] is the key prefix (docs/cluster.md, "Keys").
--
-- ARGV: prefix, node, mid (the asker), what, then: for 'names' the name keys asked; for
-- 'room' the room key; nothing for 'lobby' (the lobby's members) and 'all' (everyone).
-- JSON {room = the room's name (for 'room'; absent when there is none, or it is secret
-- and the asker is not in it), people = [{c = the conn's record, rooms = [[room name,
-- 'o' operator / 'v' voice / '' / 'ov', secret (1/0), the asker is in it too (1/0)]
-- ...]} ...]}: 'names' in the order asked (those online only), 'room' in order of
-- joining, the others in order of arrival. {'gone'}: the asker is no longer online.
local asker = ARGV[2] .. '/' .. ARGV[3]
if redis.call('HEXISTS', CONNS, asker) == 0 then return {'gone'} end
local what = ARGV[4]
local function person(conn, c)
  local rooms = {}
  for _, key in ipairs(c.rooms or {}) do
    local r = load_room(key)
    local raw = redis.call('HGET', room_members(key), conn)
    if r and raw then
      local m = cjson.decode(raw)
      local standing = (m.o and 'o' or '') .. (m.v and 'v' or '')
      local shared = redis.call('HEXISTS', room_members(key), asker)
      table.insert(rooms, {r.name, standing, has_flag(r, 's') and 1 or 0, shared})
    end
  end
  return {c = c, rooms = rooms}
end
local found, reply = {}, {}
if what == 'names' then
  for i = 5, #ARGV do
    local conn = redis.call('HGET', NAMES, ARGV[i])
    local c = conn and load_conn(conn)
    if c then table.insert(found, person(conn, c)) end
  end
elseif what == 'room' then
  local key = ARGV[5]
  local r = visible_room(asker, key)
  if r then
    reply.room = r.name
    local members = redis.call('HGETALL', room_members(key))
    local order = {}
    for i = 1, #members, 2 do
      local c = load_conn(members[i])
      if c then
        table.insert(order, {cjson.decode(members[i + 1]).n or 0, members[i], c})
      end
    end
    table.sort(order, function(a, b) return a[1] < b[1] end)
    for _, entry in ipairs(order) do table.insert(found, person(entry[2], entry[3])) end
  end
else
  local all = redis.call('HGETALL', CONNS)
  local order = {}
  for i = 1, #all, 2 do
    local c = cjson.decode(all[i + 1])
    if what == 'all' or c.lobby ~= false then
      table.insert(order, {tonumber(c.arrival) or 0, all[i], c})
    end
  end
  table.sort(order, function(a, b) return a[1] < b[1] end)
  for _, entry in ipairs(order) do table.insert(found, person(entry[2], entry[3])) end
end
reply.people = found
return cjson.encode(reply)
