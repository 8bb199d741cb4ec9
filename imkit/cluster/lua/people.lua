-- people.lua: who users are, as IRC's WHOIS, WHO, ISON and USERHOST ask (the whole
-- cluster's, not only the asking node's: imkit.cluster.people).
-- Runs after prelude.lua as the body of a function of ARGV (imkit.cluster.scripts),
-- alone or in a BATCH. KEYS: none; ARGV[1] is the key prefix (docs/cluster.md, "Keys").
--
-- ARGV: prefix, node, mid (the asker), what, then: for 'names' the name keys asked; for
-- 'room' the room key; nothing for 'lobby' (the lobby's members) and 'all' (everyone).
-- JSON {room = the room's name (for 'room'; absent when there is none, or it is secret
-- and the asker is not in it), people = [{c = the conn's record (its fields a WHOIS
-- shows), rooms = [[room name, 'o' operator / 'v' voice / '' / 'ov' (see person()),
-- secret (1/0), the asker is in it too (1/0)] ...]} ...]}: 'names' in the order asked (those online only), 'room' in order of
-- joining, the others in order of arrival. {'gone'}: the asker is no longer online.
local asker = ARGV[2] .. '/' .. ARGV[3]
if redis.call('HEXISTS', CONNS, asker) == 0 then return {'gone'} end
local what = ARGV[4]
-- Each room once: its name, whether it is secret, whether the asker is in it (a WHO of
-- everyone reads each user's rooms: the same few rooms many times).
local seen = {}
local function room(key)
  local known = seen[key]
  if known == nil then
    local r = load_room(key)
    known = false
    if r then
      known = {r.name, has_flag(r, 's') and 1 or 0,
               redis.call('HEXISTS', room_members(key), asker)}
    end
    seen[key] = known
  end
  return known
end
-- A user's rooms as the request needs them: each with its standing for a WHOIS
-- ('names'); only the room asked for, with its standing, for a WHO of a room (standing:
-- that membership's JSON); without standings for a WHO of everyone (a mask only needs
-- which rooms it shares with the asker).
local function person(conn, c, standing)
  local rooms = {}
  local keys = c.rooms or {}
  if what == 'room' then keys = {ARGV[5]} end
  for _, key in ipairs(keys) do
    local r = room(key)
    local raw = standing
    if r and what == 'names' then raw = redis.call('HGET', room_members(key), conn) end
    if r and (raw or what ~= 'names') then
      local m = raw and cjson.decode(raw) or {}
      table.insert(rooms, {r[1], (m.o and 'o' or '') .. (m.v and 'v' or ''), r[2], r[3]})
    end
  end
  -- what a Person needs of the record (not the real address of --hide-addresses)
  return {c = {name = c.name, addr = c.addr, account = c.account, ident = c.ident,
               realname = c.realname, away = c.away, modes = c.modes, since = c.since,
               node = c.node, mid = c.mid, lobby = c.lobby}, rooms = rooms}
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
        table.insert(order, {cjson.decode(members[i + 1]).n or 0, members[i], c,
                             members[i + 1]})
      end
    end
    table.sort(order, function(a, b) return a[1] < b[1] end)
    for _, entry in ipairs(order) do
      table.insert(found, person(entry[2], entry[3], entry[4]))
    end
  end
else
  -- Everyone ('all'), or the lobby: every record as it is, for the node to read and
  -- order (decoding and encoding thousands of records here would hold Redis up), and
  -- each room once: {room key = [name, secret (1/0), the asker is in it (1/0)]}.
  local rooms = {}
  local all = redis.call('HGETALL', ROOMS)
  for i = 1, #all, 2 do
    local r = cjson.decode(all[i + 1])
    rooms[all[i]] = {r.name, has_flag(r, 's') and 1 or 0,
                     redis.call('HEXISTS', room_members(all[i]), asker)}
  end
  local out = {cjson.encode({rooms = rooms})}
  for _, raw in ipairs(redis.call('HVALS', CONNS)) do table.insert(out, raw) end
  return out
end
reply.people = found
return cjson.encode(reply)
