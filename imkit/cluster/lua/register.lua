-- register.lua: a node registers (at start, and again after Redis lost it).
-- Runs after prelude.lua as the body of a function of ARGV (imkit.cluster.scripts),
-- alone or in a BATCH. KEYS: none; ARGV[1] is the key prefix (docs/cluster.md, "Keys").
--
-- ARGV: prefix, node, format, epoch if new, node info JSON, members JSON, address
-- secret if new (hex). Registers the node (again), checks the data format, keeps the
-- secret of the pseudonyms (--hide-addresses) if Redis has none, and makes Redis hold exactly this
-- node's current users: users it no longer has are released (and announced offline);
-- users Redis lost or gave away (the node was declared dead, Redis restarted empty) are
-- claimed again, under their own name when it is free, else under their first free
-- default name. A guest does not get back a name that became an account's meanwhile; a
-- user logged in to an account gets back only its account's name: when the account is
-- gone, or another session of it holds the name now, its session is ended (dropped).
-- Returns {status, epoch, secret, renamed, dropped}: renamed is JSON mid -> name of every
-- user claimed again, dropped JSON mid -> the kick event that removes it ({bye =
-- 'account_removed' or 'replaced'}, or {reason = ...} for an administrator's kick held
-- while the node was silent: that user is not claimed again), muted JSON mid -> the
-- mute held for it ({until, reason}: the node puts it in force, again if need be).
-- Users claimed again are put back in their rooms (enter_again).
-- The node's streak of beats starts again (``up``: see beat.lua).
local node = ARGV[2]
local format = redis.call('GET', P .. ':format')
if format and format ~= ARGV[3] then return {'format', format} end
if not format then redis.call('SET', P .. ':format', ARGV[3]) end
redis.call('HSETNX', META, 'epoch', ARGV[4])
local epoch = redis.call('HGET', META, 'epoch')
redis.call('SET', P .. ':secret', ARGV[7], 'NX')
local secret = redis.call('GET', P .. ':secret')
local now = now_ms()
redis.call('ZADD', NODES, now, node)
redis.call('HSET', P .. ':node:' .. node, 'info', ARGV[5], 'up', now)
local members = cjson.decode(ARGV[6])
local wanted = {}
for _, m in ipairs(members) do wanted[node .. '/' .. m.mid] = true end
for _, conn in ipairs(redis.call('SMEMBERS', node_conns(node))) do
  if not wanted[conn] then release(conn, true) end
end
local held = {}
local pairs_held = redis.call('HGETALL', node_held(node))
for i = 1, #pairs_held, 2 do held[pairs_held[i]] = cjson.decode(pairs_held[i + 1]) end
-- A user claimed again is put back in its rooms (m.rooms: [key, name] pairs) and told
-- apart from the lobby as it was (m.lobby), as the node still has it: its rooms' members
-- see it join again (a room that ended meanwhile is made again, the user its operator).
local function enter_again(conn, m, node)
  local c = load_conn(conn)
  for _, pair in ipairs(m.rooms or {}) do
    local key = pair[1]
    if redis.call('HEXISTS', room_members(key), conn) == 0 then
      local r, op = load_room(key), false
      if not r then
        r, op = {name = pair[2], flags = 'nt', registered = false, retain = 0}, true
        redis.call('PERSIST', room_log(key))
        save_room(key, r)
      end
      enter_room(conn, c, key, op)
      emit(room_log(key), {t = 'join', room = key, name = c.name, addr = c.addr,
                           node = node, mid = m.mid})
    end
  end
  if m.lobby == false and c.lobby ~= false then
    c.lobby = false
    redis.call('HINCRBY', META, 'outside', 1)
  end
  redis.call('HSET', CONNS, conn, cjson.encode(c))
end
local renamed, dropped, muted = {}, {}, {}
for _, m in ipairs(members) do
  local conn = node .. '/' .. m.mid
  local c = load_conn(conn)
  local holds = c and redis.call('HGET', NAMES, c.key) == conn
  local account = m.account
  if account == '' then account = nil end
  local action = held[m.mid]
  if action and action.t == 'k' then
    if c then release(conn, holds) end
    redis.call('HDEL', node_held(node), m.mid)
    dropped[m.mid] = {reason = action.reason}
  elseif account and redis.call('HEXISTS', ACCOUNTS, m.key) == 0 then
    if c then release(conn, holds) end
    dropped[m.mid] = {bye = 'account_removed'}
  elseif not holds then
    if c then release(conn, false) end
    local candidates = {}
    if account or redis.call('HEXISTS', ACCOUNTS, m.key) == 0 then
      candidates = {m.name, m.key}
    end
    if not account then
      for _, x in ipairs(m.defaults) do table.insert(candidates, x) end
    end
    local name = claim(conn, candidates, m.addr, m.mode, m.since, m.mid, node, 1,
                       m.real or '', account, m.about)
    if name then
      renamed[m.mid] = name
      enter_again(conn, m, node)
    elseif account then
      dropped[m.mid] = {bye = 'replaced'}
    end
  end
  if action and action.t == 'mute' and not dropped[m.mid] then
    muted[m.mid] = {['until'] = action['until'], reason = action.reason}
  end
end
for mid, _ in pairs(held) do
  if not wanted[node .. '/' .. mid] then redis.call('HDEL', node_held(node), mid) end
end
-- (an empty Lua table is encoded as {}: an empty object, as wanted)
return {'ok', epoch, secret, cjson.encode(renamed), cjson.encode(dropped),
        cjson.encode(muted)}
