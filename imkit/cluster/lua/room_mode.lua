-- room_mode.lua: a room's operator changes its settings (IRC's channel modes).
-- Runs after prelude.lua as the body of a function of ARGV (imkit.cluster.scripts),
-- alone or in a BATCH. KEYS: none; ARGV[1] is the key prefix (docs/cluster.md, "Keys").
--
-- ARGV: prefix, node, mid, room key, the changes as JSON: a list of {f = flag, on =
-- true/false, a = its argument, tk = the name key of the member named by +o/+v, mask =
-- imkit.rules.rooms.mask_fields for the lists +b/-b, +e/-e, +I/-I}, parsed and checked
-- by the node. Every
-- member named must be in the room (all the changes, or none); then each is made as
-- RoomState.apply does and those that changed something are told in one mode event
-- (changes as '+kl-m', args). {'ok', room name}, {'none'}, {'refused', code, room name},
-- {'too_many_bans', room name, the list's letter}, {'no_user', the name given}, {'not_member', its name, room name}, {'gone'}.
local node, mid, key = ARGV[2], ARGV[3], ARGV[4]
local conn = node .. '/' .. mid
local c = load_conn(conn)
if not c then return {'gone'} end
local r, m = visible_room(conn, key)
if not r then return {'none'} end
if not m then return {'refused', 'not_in_room', r.name} end
if not m.o then return {'refused', 'not_room_operator', r.name} end
local changes = cjson.decode(ARGV[5])
local targets = {}
for i, ch in ipairs(changes) do
  if ch.f == 'o' or ch.f == 'v' then
    local target = redis.call('HGET', NAMES, ch.tk)
    local t = target and load_conn(target)
    if not t then return {'no_user', ch.a} end
    if redis.call('HEXISTS', room_members(key), target) == 0 then
      return {'not_member', t.name, r.name}
    end
    targets[i] = {conn = target, name = t.name}
  end
end
-- As RoomState.bans_problem: at most MAX_ROOM_BANS masks in each list.
for _, f in ipairs({'b', 'e', 'I'}) do
  local list = mask_list(r, f)
  local added, count = {}, #list
  for _, ch in ipairs(changes) do
    if ch.f == f and ch.on then
      local known = false
      for _, b in ipairs(list) do if b.mask == ch.mask.mask then known = true end end
      if not known and not added[ch.mask.mask] then
        added[ch.mask.mask] = true
        count = count + 1
      end
    end
  end
  if count > MAX_ROOM_BANS then return {'too_many_bans', r.name, f} end
end
local told = {letters = '', args = {}}
for i, ch in ipairs(changes) do
  local t = targets[i]
  if t then  -- +o, +v: the member's place in the room
    local place = cjson.decode(redis.call('HGET', room_members(key), t.conn))
    local changed = (place[ch.f] == true) ~= ch.on
    if changed then
      place[ch.f] = ch.on
      redis.call('HSET', room_members(key), t.conn, cjson.encode(place))
    end
    tell_mode(told, ch, changed, t.name)
  else
    tell_mode(told, ch, apply_setting(r, ch, c.name))
  end
end
save_room(key, r)
if told.letters ~= '' then
  emit(room_log(key), {t = 'mode', room = key, by = c.name, changes = told.letters,
                       args = told.args})
end
return {'ok', r.name}
