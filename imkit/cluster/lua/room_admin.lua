-- room_admin.lua: the administrator's rooms (imkit rooms, imkit room add|remove|op|deop|set,
-- who/kick/ban/unban --room), for RedisDirectory (imkit.cluster.admin_answers).
-- Runs after prelude.lua as the body of a function of ARGV (imkit.cluster.scripts),
-- alone or in a BATCH. KEYS: none; ARGV[1] is the key prefix (docs/cluster.md, "Keys").
--
-- ARGV: prefix, action, room key, by (who the users are told made it: "the
-- administrator"), then the action's own. Replies {'none'} when there is no such room
-- (but for add and rooms), else:
--   rooms                                   -> JSON list of [settings, members, operators' names]
--   add NAME TOPIC SWITCHES CHANGES RETAIN -> {'ok', settings JSON, members, letters, args JSON}
--                                              or {'exists', name}
--   set '' TOPIC '' CHANGES                 -> the same as add (the room must exist)
--   remove REASON                           -> {'ok', name, registered 0/1, members removed}
--   op ACCOUNTKEY ON                        -> {'ok', name}, {'not_registered', name},
--                                              {'not_op', name}
--   who                                     -> {'ok', name, then conn record, membership ...}
--   kick NAMEKEY REASON                     -> {'ok', its name, room name}, {'no_user'},
--                                              {'not_member', its name, room name}
--   ban MASK ON                             -> {'ok', name, then the members' conn records},
--                                              {'no_such_ban', name}, {'too_many_bans', name}
-- TOPIC is JSON: null leaves it, "" clears it. CHANGES is JSON [{f, on, a}] of switches,
-- k and l (checked by the node). Each change the members must know of is an event in the
-- room's stream, by BY, as a member operator's would be.
local action, key, by = ARGV[2], ARGV[3], ARGV[4]
local r = load_room(key)
if action == 'rooms' then
  local out = {}
  local all = redis.call('HGETALL', ROOMS)
  for i = 1, #all, 2 do
    local room = cjson.decode(all[i + 1])
    local names = {}
    for _, akey in ipairs(room.operators or {}) do
      local raw = redis.call('HGET', ACCOUNTS, akey)
      table.insert(names, raw and cjson.decode(raw).name or akey)
    end
    table.insert(out, {all[i + 1], redis.call('HLEN', room_members(all[i])), names})
  end
  return cjson.encode(out)
end
if action == 'add' then
  if r and r.registered then return {'exists', r.name} end
  if not r then
    r = {name = ARGV[5], flags = 'nt', retain = tonumber(ARGV[9])}
    redis.call('PERSIST', room_hist(key))
    redis.call('PERSIST', room_log(key))
  end
  r.registered = true
elseif not r then
  return {'none'}
end
if action == 'add' or action == 'set' then
  local topic = cjson.decode(ARGV[6])
  if topic ~= cjson.null and (topic ~= '' and topic or nil) ~= r.topic then
    if topic == '' then topic = nil end
    r.topic, r.topic_by, r.topic_time = topic, by, now_ms() / 1000
    emit(room_log(key), {t = 'topic', room = key, topic = topic, by = by, time = r.topic_time})
  end
  local told = {letters = '', args = {}}
  for _, ch in ipairs(cjson.decode(ARGV[8])) do
    tell_mode(told, ch, apply_setting(r, ch, by))
  end
  save_room(key, r)
  if told.letters ~= '' then
    emit(room_log(key), {t = 'mode', room = key, by = by, changes = told.letters,
                         args = told.args})
  end
  return {'ok', cjson.encode(r), redis.call('HLEN', room_members(key)), told.letters,
          cjson.encode(told.args)}
end
if action == 'remove' then
  local all = redis.call('HKEYS', room_members(key))
  for _, conn in ipairs(all) do
    local c = load_conn(conn)
    if c then
      local node, mid = conn_node(conn)
      emit(room_log(key), {t = 'kick', room = key, name = c.name, by = by, reason = ARGV[5],
                           node = node, mid = mid, alone = true})
      local i = index_of(c.rooms, key)
      if i then table.remove(c.rooms, i) end
      redis.call('HSET', CONNS, conn, cjson.encode(c))
    end
  end
  for _, akey in ipairs(redis.call('SMEMBERS', room_accounts(key))) do
    redis.call('HDEL', account_rooms(akey), key)
  end
  local registered = r.registered and 1 or 0
  redis.call('HDEL', ROOMS, key)
  redis.call('DEL', room_members(key), room_accounts(key))
  redis.call('HDEL', META, 'last:' .. room_log(key))
  redis.call('PEXPIRE', room_log(key), ROOM_LOG_GRACE_MS)
  if (r.retain or 0) > 0 then redis.call('PEXPIRE', room_hist(key), r.retain) end
  return {'ok', r.name, registered, #all}
end
if action == 'op' then
  local akey, on = ARGV[5], ARGV[6] == '1'
  if not r.registered then return {'not_registered', r.name} end
  if type(r.operators) ~= 'table' or r.operators[1] == nil then r.operators = {} end
  local i = index_of(r.operators, akey)
  if not on and not i then return {'not_op', r.name} end
  if on and not i then table.insert(r.operators, akey) end
  if not on then table.remove(r.operators, i) end
  table.sort(r.operators)
  save_room(key, r)
  local names = {}
  local all = redis.call('HGETALL', room_members(key))
  for j = 1, #all, 2 do
    local c, place = load_conn(all[j]), cjson.decode(all[j + 1])
    if c and c.account and c.key == akey and (place.o == true) ~= on then
      place.o = on
      redis.call('HSET', room_members(key), all[j], cjson.encode(place))
      table.insert(names, c.name)
    end
  end
  if #names > 0 then
    emit(room_log(key), {t = 'mode', room = key, by = by,
                         changes = (on and '+' or '-') .. string.rep('o', #names), args = names})
  end
  return {'ok', r.name}
end
if action == 'who' or action == 'ban' then
  local reply = {'ok', r.name}
  if action == 'ban' then
    local mask, on = cjson.decode(ARGV[5]), ARGV[6] == '1'
    if type(r.bans) ~= 'table' or r.bans[1] == nil then r.bans = {} end
    local found = nil
    for j, b in ipairs(r.bans) do if b.mask == mask.mask then found = j end end
    if not on and not found then return {'no_such_ban', r.name} end
    if on and not found and #r.bans >= MAX_ROOM_BANS then return {'too_many_bans', r.name} end
    if on and not found then table.insert(r.bans, mask) end
    if not on then table.remove(r.bans, found) end
    save_room(key, r)
    if on ~= (found ~= nil) then
      emit(room_log(key), {t = 'mode', room = key, by = by, changes = (on and '+b' or '-b'),
                           args = {mask.mask}})
    end
  end
  local all = redis.call('HGETALL', room_members(key))
  for j = 1, #all, 2 do
    local raw = redis.call('HGET', CONNS, all[j])
    if raw then
      table.insert(reply, raw)
      table.insert(reply, all[j + 1])
    end
  end
  return reply
end
if action == 'kick' then
  local target, t, refusal = room_target(key, r, ARGV[5])
  if refusal then return refusal end
  local reason = ARGV[6]
  if reason == '' then reason = nil end
  kick_member(key, target, t, reason, by)
  return {'ok', t.name, r.name}
end
return {'unknown'}
