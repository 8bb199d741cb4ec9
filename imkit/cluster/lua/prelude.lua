-- prelude.lua: shared by every script (imkit.cluster.scripts puts it first in each):
-- the key prefix and key names, the clock, appending to an event stream, and the
-- helpers the operations call (claim, release, rename_conn, evict_guest, ...).
-- KEYS: none; ARGV[1] is the key prefix (docs/cluster.md, "Keys"). In a BATCH each
-- operation's own ARGV shadows this one; its prefix is the same.
--
-- The values of LOG_LENGTH and HELD_MS below are placeholders: the loader puts in those
-- of the constants of imkit.cluster.scripts (and MAX_ROOM_BANS, MAX_INVITES), where they are defined (a '$' is not Lua:
-- a placeholder left in fails to load).

-- How many entries each event stream keeps (approximately: XADD MAXLEN ~).
local LOG_LENGTH = ${LOG_LENGTH}
-- How long (ms) a kick or mute held for the users of a silent node is kept.
local HELD_MS = ${HELD_MS}

local P = ARGV[1]
local META = P .. ':meta'
local NAMES = P .. ':names'
local CONNS = P .. ':conns'
local NODES = P .. ':nodes'
local LOG = P .. ':log'
local READS = P .. ':reads'
-- Accounts (docs/cluster.md, "Accounts"). P:accounts: name key -> the account as JSON
-- (imkit.rules.accounts.Account.fields). P:mail:KEY: the private messages waiting for the
-- account KEY (JSON, oldest first). P:conv:PAIR: the conversation between two accounts;
-- P:convs:KEY: its index.
local ACCOUNTS = P .. ':accounts'
local function mailbox(key) return P .. ':mail:' .. key end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- An event's id is SEQ-N. SEQ, one counter for every event stream, follows Redis' clock
-- like a msgid (ms * 1000, never below the last one given + 1): events written after
-- Redis came back with older data (a snapshot, an AOF that lost its last second, a
-- promoted replica that lacked the last writes) are numbered above every event a node
-- read before, so that no reader skips them. (Numbers stay exact: about 1.8e15, below
-- 2^53.) N counts the stream's entries, so that how far a reader is behind is N - N.
local function emit(stream, event)
  local last = tonumber(redis.call('HGET', META, 'seq') or '0')
  local seq = string.format('%.0f', math.max(last + 1, now_ms() * 1000))
  local prev = redis.call('HGET', META, 'last:' .. stream) or '0-0'
  local id = seq .. '-' .. (tonumber(string.match(prev, '%d+$')) + 1)
  redis.call('HSET', META, 'seq', seq)
  redis.call('XADD', stream, 'MAXLEN', '~', LOG_LENGTH, id, 'd', cjson.encode(event),
             'p', prev)
  redis.call('HSET', META, 'last:' .. stream, id)
  return id
end
local function node_log(node) return P .. ':node:' .. node .. ':log' end
local function node_conns(node) return P .. ':node:' .. node .. ':conns' end
-- The kicks and mutes of a node's users not yet known to be applied (mid -> JSON), kept
-- past the node being declared dead: its REGISTER applies them when it comes back.
local function node_held(node) return P .. ':node:' .. node .. ':held' end
local function hold(node, mid, action)
  redis.call('HSET', node_held(node), mid, cjson.encode(action))
  redis.call('PEXPIRE', node_held(node), HELD_MS)
end
local function conn_node(conn)
  local slash = string.find(conn, '/', 1, true)
  return string.sub(conn, 1, slash - 1), string.sub(conn, slash + 1)
end
local function load_conn(conn)
  local raw = redis.call('HGET', CONNS, conn)
  if not raw then return nil end
  return cjson.decode(raw)
end
-- A msgid number's text as imkit.rules.msgid writes it: 16 digits.
local function msgid_text(digits) return string.rep('0', 16 - #digits) .. digits end
-- A msgid: Redis' clock in ms * 1000 + a count, never below the last one given.
local function new_msgid(ms)
  local last = tonumber(redis.call('HGET', META, 'lastmsgid') or '0')
  local id = math.max(ms * 1000, last + 1)
  local text = string.format('%.0f', id)
  redis.call('HSET', META, 'lastmsgid', text)
  return id, msgid_text(text)
end
-- Rooms (docs/cluster.md, "Rooms"). P:rooms: room key -> its settings as JSON
-- (imkit.rules.rooms.RoomState.fields, with invited name keys, registered, and retain:
-- the history's retention in ms when it was made). P:room:KEY:members: conn -> JSON
-- {n = join order, o = operator, v = voice}. P:room:KEY:log: its events (emit).
-- P:room:KEY:hist: its messages. P:aroom:ACCOUNTKEY: room key -> name, the rooms an
-- account is in; P:room:KEY:accounts the other way round. A conn's record keeps its
-- room keys (rooms) and lobby = false once it left the lobby (P:meta outside counts
-- those).
local ROOMS = P .. ':rooms'
-- How long (ms) the event stream of a room that ended is kept, for the readers that
-- have not read its last events yet; a room made again under the key goes on with it.
local ROOM_LOG_GRACE_MS = 600000
-- At most this many bans and pending invites a room (imkit.rules.rooms).
local MAX_ROOM_BANS = ${MAX_ROOM_BANS}
local MAX_INVITES = ${MAX_INVITES}
local function room_members(key) return P .. ':room:' .. key .. ':members' end
local function room_log(key) return P .. ':room:' .. key .. ':log' end
local function room_hist(key) return P .. ':room:' .. key .. ':hist' end
local function account_rooms(akey) return P .. ':aroom:' .. akey end
-- The accounts that remember the room key (for imkit room remove to make them forget).
local function room_accounts(key) return P .. ':room:' .. key .. ':accounts' end
local function remember_room(akey, key, name)
  redis.call('HSET', account_rooms(akey), key, name)
  redis.call('SADD', room_accounts(key), akey)
end
local function forget_room(akey, key)
  redis.call('HDEL', account_rooms(akey), key)
  redis.call('SREM', room_accounts(key), akey)
end
local function load_room(key)
  local raw = redis.call('HGET', ROOMS, key)
  if not raw then return nil end
  return cjson.decode(raw)
end
local function save_room(key, r) redis.call('HSET', ROOMS, key, cjson.encode(r)) end
-- The index of x in the list t (nil: not in it).
local function index_of(t, x)
  for i, y in ipairs(t or {}) do if y == x then return i end end
  return nil
end
-- As RoomState.invite: the name key may pass +i; the oldest invite goes past MAX_INVITES.
local function invite(r, key)
  if type(r.invited) ~= 'table' or r.invited[1] == nil then r.invited = {} end
  local i = index_of(r.invited, key)
  if i then table.remove(r.invited, i) end
  table.insert(r.invited, key)
  while #r.invited > MAX_INVITES do table.remove(r.invited, 1) end
end
local function has_flag(r, f) return string.find(r.flags or '', f, 1, true) ~= nil end
-- A room's lists of masks by letter (imkit.rules.rooms.LIST_NAMES): bans, ban exceptions
-- (+e), invite exceptions (+I); each a list of imkit.rules.rooms.mask_fields.
local MASK_LISTS = {b = 'bans', e = 'exceptions', I = 'invite_exceptions'}
-- The list of masks f of r, made a list when it is none yet (or cjson's empty object).
local function mask_list(r, f)
  local field = MASK_LISTS[f]
  if type(r[field]) ~= 'table' or r[field][1] == nil then r[field] = {} end
  return r[field]
end
-- As RoomState.apply for one setting: a switch of 'imnst', +k, +l, or a mask of +b +e +I
-- (a new one made by BY). Changes r; whether that changed something, and the argument
-- the mode event tells (a key, a limit, a mask).
local function apply_setting(r, ch, by)
  if string.find('imnst', ch.f, 1, true) then
    local changed, out = has_flag(r, ch.f) ~= ch.on, {}
    for s in string.gmatch('imnst', '.') do  -- sorted as RoomState.modes shows them
      local now = has_flag(r, s)
      if s == ch.f then now = ch.on end
      if now then table.insert(out, s) end
    end
    r.flags = table.concat(out)
    return changed, nil
  elseif ch.f == 'k' or ch.f == 'l' then
    local new, arg = nil, nil
    if ch.on then new, arg = ch.a, ch.a end
    if ch.f == 'l' and new then new = tonumber(new) end
    local field = ch.f == 'k' and 'key' or 'limit'
    local changed = r[field] ~= new
    r[field] = new
    return changed, arg
  elseif MASK_LISTS[ch.f] then
    local list, found = mask_list(r, ch.f), nil
    for j, b in ipairs(list) do if b.mask == ch.mask.mask then found = j end end
    if ch.on and not found then
      ch.mask.by = by
      table.insert(list, ch.mask)
      return true, ch.a
    elseif not ch.on and found then
      table.remove(list, found)
      return true, ch.a
    end
    return false, ch.a
  end
  return false, nil
end
-- Adds a change that changed something to told ({letters = '', args = {}}), as
-- RoomState.apply tells them: '+kl-m' and its arguments in order.
local function tell_mode(told, ch, changed, arg)
  if not changed then return end
  if told.sign ~= ch.on then
    told.letters = told.letters .. (ch.on and '+' or '-')
    told.sign = ch.on
  end
  told.letters = told.letters .. ch.f
  if arg then table.insert(told.args, arg) end
end
-- The member of room KEY whose name key is NKEY: its connection and record; or the reply
-- that ends the request ({'no_user'}, {'not_member', its name, room name}).
local function room_target(key, r, nkey)
  local target = redis.call('HGET', NAMES, nkey)
  local t = target and load_conn(target)
  if not t then return nil, nil, {'no_user'} end
  if redis.call('HEXISTS', room_members(key), target) == 0 then
    return nil, nil, {'not_member', t.name, r.name}
  end
  return target, t, nil
end
-- As imkit.rules.rooms.glob_matches: text matches pattern whole, '*' any run of
-- letters, '?' one letter; a letter is a UTF-8 character with the combining marks
-- U+0300-U+036F after it (bytes CC 80 to CD AF), as keys are decomposed.
local function letters(s)
  local out = {}
  for ch in string.gmatch(s, '[%z\1-\127\192-\255][\128-\191]*') do
    local a, b = string.byte(ch, 1, 2)
    if #out > 0 and ((a == 204 and b >= 128) or (a == 205 and b <= 175)) then
      out[#out] = out[#out] .. ch
    else
      out[#out + 1] = ch
    end
  end
  return out
end
local function glob(pattern, text)
  local p, t = letters(pattern), letters(text)
  local i, j, star, mark = 1, 1, nil, 0
  while j <= #t do
    if i <= #p and (p[i] == '?' or (p[i] ~= '*' and p[i] == t[j])) then
      i, j = i + 1, j + 1
    elseif i <= #p and p[i] == '*' then
      star, mark, i = i, j, i + 1
    elseif star then
      i, mark = star + 1, mark + 1
      j = mark
    else
      return false
    end
  end
  while i <= #p and p[i] == '*' do i = i + 1 end
  return i > #p
end
-- Whether the mask b (mask_fields) matches c (a logged-in user's name key is its
-- account's key), whose address is v and bits (address_fields; nil: none).
local function mask_matches(b, c, v, bits)
  return (b.kind == 'name' and b.key == c.key)
      or (b.kind == 'glob' and glob(b.key, c.key))
      or (b.kind == 'account' and c.account and b.key == c.key)
      or (b.kind == 'net' and bits and tostring(b.v) == v
          and string.sub(bits, 1, #b.bits) == b.bits)
end
local function any_matches(list, c, v, bits)
  for _, b in ipairs(list or {}) do
    if mask_matches(b, c, v, bits) then return true end
  end
  return false
end
-- conn (record c, saved by the caller) leaves the room key; an unregistered room left
-- empty ends: its settings and members go, its event stream expires after a grace, its
-- history stays within the retention it was made with (then expires as a whole).
local function leave_room(conn, c, key)
  redis.call('HDEL', room_members(key), conn)
  local i = index_of(c.rooms, key)
  if i then table.remove(c.rooms, i) end
  local r = load_room(key)
  if r and not r.registered and redis.call('EXISTS', room_members(key)) == 0 then
    redis.call('HDEL', ROOMS, key)
    redis.call('HDEL', META, 'last:' .. room_log(key))
    redis.call('PEXPIRE', room_log(key), ROOM_LOG_GRACE_MS)
    if (r.retain or 0) > 0 then redis.call('PEXPIRE', room_hist(key), r.retain) end
  end
end
-- TARGET (its record t) is kicked out of room KEY by BY: every member is told (the
-- target's node takes it out there), and its account forgets the room.
local function kick_member(key, target, t, reason, by)
  local tnode, tmid = conn_node(target)
  emit(room_log(key), {t = 'kick', room = key, name = t.name, by = by, reason = reason,
                       node = tnode, mid = tmid})
  leave_room(target, t, key)
  redis.call('HSET', CONNS, target, cjson.encode(t))
  if t.account then forget_room(t.key, key) end
end
-- conn (record c, saved by the caller) enters the room key (op: as an operator).
local function enter_room(conn, c, key, op)
  local n = redis.call('HINCRBY', META, 'joins', 1)
  redis.call('HSET', room_members(key), conn, cjson.encode({n = n, o = op, v = false}))
  if type(c.rooms) ~= 'table' or c.rooms[1] == nil then c.rooms = {} end
  table.insert(c.rooms, key)
end
-- The room key as conn may see it: nil when there is none or it is secret and conn is
-- not in it; else the settings and conn's membership (nil: not a member).
local function visible_room(conn, key)
  local r = load_room(key)
  if not r then return nil, nil end
  local raw = redis.call('HGET', room_members(key), conn)
  local m = raw and cjson.decode(raw)
  if not m and has_flag(r, 's') then return nil, nil end
  return r, m
end
-- As RoomState.admission: why c may not join r (an error code), or nil. addr is
-- imkit.rules.rooms.address_fields of its address ('4:0101...'); given the key it gave.
-- A logged-in user's name key is its account's key.
local function admission(r, c, addr, given, remembered, count)
  local v, bits = string.match(addr, '^(%d):([01]+)$')
  if any_matches(r.bans, c, v, bits) and not any_matches(r.exceptions, c, v, bits) then
    return 'banned_from_room'
  end
  if remembered or (c.account and index_of(r.operators, c.key)) then return nil end
  if has_flag(r, 'i') and not index_of(r.invited, c.key)
      and not any_matches(r.invite_exceptions, c, v, bits) then
    return 'invite_only'
  end
  if r.key and given ~= r.key then return 'bad_key' end
  if r.limit and count >= r.limit then return 'room_full' end
  return nil
end
local function release(conn, announce)
  local c = load_conn(conn)
  redis.call('HDEL', CONNS, conn)
  local node, mid = conn_node(conn)
  redis.call('SREM', node_conns(node), conn)
  if not c then return nil end
  if redis.call('HGET', NAMES, c.key) == conn then redis.call('HDEL', NAMES, c.key) end
  -- out of its rooms, in the same step as its offline event (which names them)
  local rooms = {}
  for _, key in ipairs(c.rooms or {}) do table.insert(rooms, key) end
  for _, key in ipairs(rooms) do leave_room(conn, c, key) end
  if c.lobby == false then redis.call('HINCRBY', META, 'outside', -1) end
  if announce then
    -- lobby = false: it was outside the lobby, whose members never saw it come
    local lobby = nil
    if c.lobby == false then lobby = false end
    emit(LOG, {t = 'off', name = c.name, addr = c.addr, node = node, mid = mid,
               rooms = rooms, lobby = lobby})
  end
  return c
end
-- Claim the first free name among candidates (a flat list: name, key, name, key ...).
-- addr is the address as shown to users; real (--hide-addresses: the real address, for
-- the operator's `imkit who` only; else '') is kept beside it when there is one;
-- account (nil for a guest) is the name of the account the user is logged in to.
-- about (nil or a table, imkit.cluster.people.about): what an IRC client said of itself
-- (ident, realname, away, modes), kept in the record for WHO and WHOIS on every node, and
-- lobby = false for a user that starts outside the lobby (an IRC user): counted in
-- P:meta outside, and its online event says so (lobby = false), so that no lobby is told.
local function claim(conn, candidates, addr, mode, since, mid, node, back, real, account,
                     about)
  for i = 1, #candidates, 2 do
    local name, key = candidates[i], candidates[i + 1]
    local holder = redis.call('HGET', NAMES, key)
    if not holder or holder == conn then
      local arrival = redis.call('HINCRBY', META, 'arrivals', 1)
      redis.call('HSET', NAMES, key, conn)
      if real == '' then real = nil end
      local c = {name = name, key = key, addr = addr, mode = mode, since = since,
                 arrival = arrival, node = node, mid = mid, real = real, account = account}
      local lobby = nil
      if type(about) == 'table' then
        for _, field in ipairs({'ident', 'realname', 'away', 'modes'}) do
          if type(about[field]) == 'string' then c[field] = about[field] end
        end
        if about.lobby == false then
          c.lobby, lobby = false, false
          redis.call('HINCRBY', META, 'outside', 1)
        end
      end
      redis.call('HSET', CONNS, conn, cjson.encode(c))
      redis.call('SADD', node_conns(node), conn)
      emit(LOG, {t = 'on', name = name, addr = addr, node = node, mid = mid, back = back,
                 lobby = lobby})
      return name
    end
  end
  return nil
end
-- A connection takes the name new (key: its key), announced (reason: why, when the user
-- did not ask for it; nil when it did).
local function rename_conn(conn, c, new, key, reason)
  if redis.call('HGET', NAMES, c.key) == conn then redis.call('HDEL', NAMES, c.key) end
  redis.call('HSET', NAMES, key, conn)
  local old = c.name
  c.name, c.key = new, key
  redis.call('HSET', CONNS, conn, cjson.encode(c))
  local node, mid = conn_node(conn)
  local lobby = nil  -- false: outside the lobby, whose members are not told
  if c.lobby == false then lobby = false end
  emit(LOG, {t = 'rn', old = old, new = new, addr = c.addr, node = node, mid = mid,
             reason = reason, rooms = c.rooms, lobby = lobby})
end
-- The key of an ASCII name: the keys of its characters end to end (chars: character ->
-- its key, from the node); nil when a character is not in chars.
local function key_of(text, chars)
  local parts = {}
  for i = 1, #text do
    local part = chars[string.sub(text, i, i)]
    if not part then return nil end
    parts[i] = part
  end
  return table.concat(parts)
end
-- A guest holds a name that is now an account's: it gets its first free default name
-- (ADDR, ADDR#2 ...) and is told why (reason 'reserved'). Returns that name. An address
-- is ASCII; should one not be, the guest is removed instead (nil).
local function evict_guest(conn, c, chars)
  for n = 1, 1000000 do
    local name = c.addr
    if n > 1 then name = c.addr .. '#' .. n end
    local key = key_of(name, chars)
    if not key then break end
    local holder = redis.call('HGET', NAMES, key)
    if not holder or holder == conn then
      rename_conn(conn, c, name, key, 'reserved')
      return name
    end
  end
  local node, mid = conn_node(conn)
  emit(node_log(node), {t = 'k', mid = mid, reason = 'the name ' .. c.name ..
                        ' is now reserved for an account'})
  release(conn, true)
  return nil
end
-- The session of conn, logged in to an account, is ended: its node says bye (the reason,
-- imkit.hub: 'replaced', 'account_removed') and closes it; its name is free now.
local function log_out(conn, bye)
  local node, mid = conn_node(conn)
  emit(node_log(node), {t = 'k', mid = mid, bye = bye})
  release(conn, true)
end
-- The id of a msgid's entry in a stream of messages (P:hist, P:conv:PAIR): ms-count.
local function entry_id(number)
  return string.format('%.0f-%d', (number - number % 1000) / 1000, number % 1000)
end
-- Add an entry to a stream of messages, trimmed to the history's retention (cutoff ms;
-- 0 keeps everything).
local function add_message(stream, id, cutoff, fields)
  if cutoff > 0 then
    redis.call('XADD', stream, 'MINID', '~', cutoff, id, unpack(fields))
  else
    redis.call('XADD', stream, id, unpack(fields))
  end
end
-- The messages of a mailbox older than cutoff (a msgid number) are dropped; how many
-- are left.
local function trim_mail(box, cutoff)
  while true do
    local first = redis.call('LINDEX', box, 0)
    if not first or tonumber(cjson.decode(first).msgid) >= cutoff then break end
    redis.call('LPOP', box)
  end
  return redis.call('LLEN', box)
end
