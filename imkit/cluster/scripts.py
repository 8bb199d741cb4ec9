"""The cluster's state changes, as Lua scripts that Redis runs atomically.

Every change to shared state is one script, so two nodes never see half of one: a name
is claimed and announced, or neither; a dead node's users are released and their
"user offline" events written by exactly one reaper. Each script takes the key prefix
(the cluster's name) as ``ARGV[1]``; imkit runs on one Redis (not Redis Cluster), so
the keys are not declared in ``KEYS`` (docs/cluster.md, "Keys").

Events that everyone must see in one order (public messages, presence, renames) are
appended to the stream ``P:log``; those for one node (private messages, kicks) to
``P:node:ID:log``. Both take their ids from one counter (``P:meta`` ``seq``, which
follows Redis' clock: see ``emit``), so a node that reads both streams merges them into
the order in which Redis ran the scripts.
Each entry also carries ``p``, the id of the entry before it in its stream: a reader
that finds another ``p`` than the last id it read knows that entries were trimmed past
it.

Accounts (docs/cluster.md, "Accounts") live in ``P:accounts``; the private messages
waiting for an account that is offline in ``P:mail:KEY``; the private conversation
between two accounts in the stream ``P:conv:PAIR``. Name keys (imkit.names) are
computed in Python only: a script that must make a new name (a guest evicted from a
name that became an account's) builds its key from the keys of its characters, which
the node passes (:func:`imkit.cluster.hub.ascii_keys`; addresses are ASCII).
"""

from __future__ import annotations

from imkit.cluster.account_scripts import (
    ACCOUNT_ADD,
    ACCOUNT_LIST,
    ACCOUNT_REMOVE,
    ACCOUNT_UPDATE,
    LOGIN,
    MAIL_DONE,
)

# How many entries each event stream keeps (approximately: MAXLEN ~). A node whose
# reader falls further behind than this misses messages and its users are told.
LOG_LENGTH = 10_000

# How long a kick or mute held for the users of a silent node is kept after that node's
# last beat: a node paused (a VM suspended) for up to a day still applies it when it
# comes back; one that never does leaves nothing behind for longer than that.
HELD_MS = 24 * 3600 * 1000

# Shared by every script: the prefix, the clock, and appending to an event stream.
_PRELUDE = (
    f"local LOG_LENGTH = {LOG_LENGTH}\n"
    + f"local HELD_MS = {HELD_MS}\n"
    + """
local P = ARGV[1]
local META = P .. ':meta'
local NAMES = P .. ':names'
local CONNS = P .. ':conns'
local NODES = P .. ':nodes'
local LOG = P .. ':log'
local READS = P .. ':reads'
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
-- A msgid: Redis' clock in ms * 1000 + a count, never below the last one given.
local function new_msgid(ms)
  local last = tonumber(redis.call('HGET', META, 'lastmsgid') or '0')
  local id = math.max(ms * 1000, last + 1)
  local text = string.format('%.0f', id)
  redis.call('HSET', META, 'lastmsgid', text)
  return id, string.rep('0', 16 - #text) .. text
end
local function release(conn, announce)
  local c = load_conn(conn)
  redis.call('HDEL', CONNS, conn)
  local node, mid = conn_node(conn)
  redis.call('SREM', node_conns(node), conn)
  if not c then return nil end
  if redis.call('HGET', NAMES, c.key) == conn then redis.call('HDEL', NAMES, c.key) end
  if announce then
    emit(LOG, {t = 'off', name = c.name, addr = c.addr, node = node, mid = mid})
  end
  return c
end
-- Claim the first free name among candidates (a flat list: name, key, name, key ...).
-- addr is the address as shown to users; real (--hide-addresses: the real address, for
-- the operator's `imkit who` only; else '') is kept beside it when there is one;
-- account (nil for a guest) is the name of the account the user is logged in to.
local function claim(conn, candidates, addr, mode, since, mid, node, back, real, account)
  for i = 1, #candidates, 2 do
    local name, key = candidates[i], candidates[i + 1]
    local holder = redis.call('HGET', NAMES, key)
    if not holder or holder == conn then
      local arrival = redis.call('HINCRBY', META, 'arrivals', 1)
      redis.call('HSET', NAMES, key, conn)
      if real == '' then real = nil end
      redis.call('HSET', CONNS, conn, cjson.encode({name = name, key = key, addr = addr,
        mode = mode, since = since, arrival = arrival, node = node, mid = mid,
        real = real, account = account}))
      redis.call('SADD', node_conns(node), conn)
      emit(LOG, {t = 'on', name = name, addr = addr, node = node, mid = mid, back = back})
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
  emit(LOG, {t = 'rn', old = old, new = new, addr = c.addr, node = node, mid = mid,
             reason = reason})
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
"""
)

# ARGV: prefix, node, format, epoch if new, node info JSON, members JSON, address
# secret if new (hex). Registers the node (again), checks the data format, keeps the
# secret of the pseudonyms (--hide-addresses) if Redis has none, and makes Redis hold exactly this
# node's current users: users it no longer has are released (and announced offline);
# users Redis lost or gave away (the node was declared dead, Redis restarted empty) are
# claimed again, under their own name when it is free, else under their first free
# default name. A guest does not get back a name that became an account's meanwhile; a
# user logged in to an account gets back only its account's name: when the account is
# gone, or another session of it holds the name now, its session is ended (dropped).
# Returns {status, epoch, secret, renamed, dropped}: renamed is JSON mid -> name of every
# user claimed again, dropped JSON mid -> the kick event that removes it ({bye =
# 'account_removed' or 'replaced'}, or {reason = ...} for an administrator's kick held
# while the node was silent: that user is not claimed again), muted JSON mid -> the
# mute held for it ({until, reason}: the node puts it in force, again if need be).
# The node's streak of beats starts again (``up``: see BEAT).
REGISTER = """
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
                       m.real or '', account)
    if name then
      renamed[m.mid] = name
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
"""

# ARGV: prefix, node, epoch, info JSON, timeout ms.
# The heartbeat: {'lost'} when Redis no longer holds this cluster's epoch (restarted
# empty), {'reaped'} when this node was declared dead, else {'ok', reaped} after
# declaring dead every node silent for longer than the timeout. Releasing a dead
# node's users writes their "user offline" events: only the beat that removes the
# node from P:nodes does it, so they are written exactly once.
# A node vouches for another's silence only while it was beating itself: it reaps
# only once its own streak of beats (``up``, from its last REGISTER, or from a beat
# that came after half the timeout of silence) has lasted the timeout. So when every
# node's beats were refused (Redis full or unreachable for all), none reaps the others
# on its first beats afterwards: they all get the timeout to register again.
# A dead node's held kicks and mutes (node_held) stay, to expire HELD_MS after its
# last beat; a live node's are kept alive by its beats.
BEAT = """
local node = ARGV[2]
if redis.call('HGET', META, 'epoch') ~= ARGV[3] then return {'lost', 0} end
local last = redis.call('ZSCORE', NODES, node)
if not last then return {'reaped', 0} end
local now = now_ms()
local timeout = tonumber(ARGV[5])
local info = P .. ':node:' .. node
local up = tonumber(redis.call('HGET', info, 'up') or now)
if now - tonumber(last) > timeout / 2 then up = now end
redis.call('ZADD', NODES, now, node)
redis.call('HSET', info, 'info', ARGV[4], 'up', up)
redis.call('PEXPIRE', node_held(node), HELD_MS)
local reaped = 0
local dead = {}
if now - up >= timeout then
  dead = redis.call('ZRANGEBYSCORE', NODES, '-inf', '(' .. (now - timeout))
end
for _, d in ipairs(dead) do
  redis.call('ZREM', NODES, d)
  for _, conn in ipairs(redis.call('SMEMBERS', node_conns(d))) do
    release(conn, true)
    reaped = reaped + 1
  end
  redis.call('DEL', node_conns(d), P .. ':node:' .. d, node_log(d))
  redis.call('HDEL', META, 'last:' .. node_log(d))
end
return {'ok', reaped}
"""

# ARGV: prefix, node, mid, addr (as shown), mode, since, real address ('' unless
# hidden), how to number more names ('' or JSON: imkit.cluster.hub.numbered_names), then
# candidate name, key pairs. A new connection's default name (ADDR, ADDR#2 ...: the
# first free one), announced. With --hide-addresses every connection from one IP shares
# ADDR (a pseudonym): past the candidates it goes on with ADDR#N, N = 17, 18 ...
JOIN = """
local node, mid = ARGV[2], ARGV[3]
if not redis.call('ZSCORE', NODES, node) then return {'reaped'} end
local conn = node .. '/' .. mid
local candidates = {}
for i = 9, #ARGV do table.insert(candidates, ARGV[i]) end
local name = claim(conn, candidates, ARGV[4], ARGV[5], ARGV[6], mid, node, 0, ARGV[7])
if not name and ARGV[8] ~= '' then
  local more = cjson.decode(ARGV[8])
  for n = #candidates / 2 + 1, 1000000 do
    local digits, key = tostring(n), more.key
    for i = 1, #digits do key = key .. more.digits[string.byte(digits, i) - 47] end
    local numbered = {more.name .. '#' .. digits, key}
    name = claim(conn, numbered, ARGV[4], ARGV[5], ARGV[6], mid, node, 0, ARGV[7])
    if name then break end
  end
end
if not name then return {'full'} end
return {'ok', name}
"""

# ARGV: prefix, node, mid. A user left: released and announced offline; a kick or
# mute held for it is done with.
LEAVE = """
release(ARGV[2] .. '/' .. ARGV[3], true)
redis.call('HDEL', node_held(ARGV[2]), ARGV[3])
return 1
"""

# ARGV: prefix, node (leaving the cluster: SIGTERM). Every user of the node released and
# announced offline at once; the node is forgotten.
DEPART = """
local node = ARGV[2]
for _, conn in ipairs(redis.call('SMEMBERS', node_conns(node))) do release(conn, true) end
redis.call('ZREM', NODES, node)
redis.call('DEL', node_conns(node), P .. ':node:' .. node, node_log(node), node_held(node))
redis.call('HDEL', META, 'last:' .. node_log(node))
return 1
"""

# ARGV: prefix, node, mid, text, history cutoff ms (0: keep all).
# A public message: stored in P:hist (the history) and appended to P:log. Both carry the
# sender's account (``ac`` in P:hist) when it is logged in.
PUBLISH = """
local c = load_conn(ARGV[2] .. '/' .. ARGV[3])
if not c then return {'gone'} end
local ms = now_ms()
local number, msgid = new_msgid(ms)
local fields = {'n', c.name, 'a', c.addr, 't', ARGV[4], 'ms', ms}
if c.account then
  table.insert(fields, 'ac')
  table.insert(fields, c.account)
end
add_message(P .. ':hist', entry_id(number), tonumber(ARGV[5]), fields)
local id = emit(LOG, {t = 'm', name = c.name, addr = c.addr, text = ARGV[4], ms = ms,
                      msgid = msgid, node = ARGV[2], mid = ARGV[3], account = c.account})
-- How far the slowest live reader is behind (READ_MARK keeps its place in P:meta low).
local low = redis.call('HGET', META, 'low')
local behind = 0
if low then behind = math.max(0, tonumber(string.match(id, '%d+$')) - tonumber(low)) end
return {'ok', msgid, behind}
"""

# ARGV: prefix, node, the count (N of SEQ-N) of the last P:log entry its reader read,
# how long (ms) a node may go without beating and still be waited for.
# Keeps each node's place in P:log (P:reads: node -> N) and the place of the slowest
# reader that is waited for (P:meta low): a node that is gone is forgotten, one that
# has not beaten for that long is not waited for. Returns how many entries that reader
# is behind the last one written.
READ_MARK = """
local node, now = ARGV[2], now_ms()
if redis.call('ZSCORE', NODES, node) then
  redis.call('ZADD', READS, tonumber(ARGV[3]), node)
end
local low
local marks = redis.call('ZRANGE', READS, 0, -1, 'WITHSCORES')
for i = 1, #marks, 2 do
  local beat = redis.call('ZSCORE', NODES, marks[i])
  if not beat then
    redis.call('ZREM', READS, marks[i])
  elseif now - tonumber(beat) <= tonumber(ARGV[4]) then
    low = tonumber(marks[i + 1])
    break
  end
end
if not low then
  redis.call('HDEL', META, 'low')
  return 0
end
redis.call('HSET', META, 'low', low)
local top = redis.call('HGET', META, 'last:' .. LOG) or '0-0'
return math.max(0, tonumber(string.match(top, '%d+$')) - low)
"""

# ARGV: prefix, node, mid, recipient's name key, text, node timeout ms, conversation
# (the conversation_key of the sender's account and the recipient's name, computed in
# Python; '' when the sender is not logged in), the sender's account key, mail cutoff
# (msgid number: older waiting messages are dropped), history cutoff ms (0: keep all),
# the most messages a mailbox holds.
# A private message. To a user online on a live node: appended to that node's log,
# {'ok', msgid}. Else, to an account: kept in its mailbox until it logs in,
# {'queued', msgid, account name}, or {'full', account name}. Else {'none'}. Between
# two accounts it is also kept in their conversation, P:conv:PAIR (and each account's
# index of its conversations, P:convs:KEY: other key -> PAIR, to delete them with it).
PRIVATE = """
local c = load_conn(ARGV[2] .. '/' .. ARGV[3])
if not c then return {'gone'} end
local key, text = ARGV[4], ARGV[5]
local target = redis.call('HGET', NAMES, key)
local t = target and load_conn(target)
local ms = now_ms()
local tnode, tmid, beat
if t then
  tnode, tmid = conn_node(target)
  beat = redis.call('ZSCORE', NODES, tnode)
end
local pair, akey = ARGV[7], ARGV[8]
local function converse(number, to)
  add_message(P .. ':conv:' .. pair, entry_id(number), tonumber(ARGV[10]),
              {'n', c.name, 'a', c.addr, 'to', to, 't', text, 'ms', ms, 'ac', c.account})
  redis.call('HSET', P .. ':convs:' .. akey, key, pair)
  redis.call('HSET', P .. ':convs:' .. key, akey, pair)
end
if not t or not beat or ms - tonumber(beat) > tonumber(ARGV[6]) then
  local raw = redis.call('HGET', ACCOUNTS, key)
  if not raw then return {'none'} end
  local to = cjson.decode(raw).name
  local box = mailbox(key)
  if trim_mail(box, tonumber(ARGV[9])) >= tonumber(ARGV[11]) then return {'full', to} end
  local number, msgid = new_msgid(ms)
  -- ak: the sender's account key, to find the message when that account is removed.
  redis.call('RPUSH', box, cjson.encode({name = c.name, addr = c.addr, account = c.account,
                                         ak = c.account and akey or nil,
                                         to = to, text = text, ms = ms, msgid = msgid}))
  if c.account and pair ~= '' then converse(number, to) end
  return {'queued', msgid, to}
end
local number, msgid = new_msgid(ms)
emit(node_log(tnode), {t = 'p', name = c.name, addr = c.addr, to = t.name, mid = tmid,
                       text = text, ms = ms, msgid = msgid, account = c.account})
if c.account and t.account and pair ~= '' then converse(number, t.name) end
return {'ok', msgid}
"""

# ARGV: prefix, node, mid, new name, its key. {'taken'}, {'same'} or {'ok'}; refused
# {'logged_in', account} for a user logged in (it keeps its account's name) and
# {'reserved', account name} for a name that is an account's but not the user's.
RENAME = """
local conn = ARGV[2] .. '/' .. ARGV[3]
local c = load_conn(conn)
if not c then return {'gone'} end
local new, key = ARGV[4], ARGV[5]
if c.account and c.name ~= new then return {'logged_in', c.account} end
local account = redis.call('HGET', ACCOUNTS, key)
if account and not (c.account and c.key == key) then
  return {'reserved', cjson.decode(account).name}
end
local holder = redis.call('HGET', NAMES, key)
if holder and holder ~= conn then return {'taken'} end
if c.name == new then return {'same'} end
rename_conn(conn, c, new, key, nil)
return {'ok'}
"""

# ARGV: prefix, node, mid, mode. A connection's mode, once its first line decided it.
MODE = """
local conn = ARGV[2] .. '/' .. ARGV[3]
local c = load_conn(conn)
if not c then return 0 end
c.mode = ARGV[4]
redis.call('HSET', CONNS, conn, cjson.encode(c))
return 1
"""

# ARGV: prefix, name key, reason. Asks the user's node to remove it (the 'k' event; the
# scripts of accounts add ``bye``, a reason of imkit.hub's: replaced, account_removed),
# and holds the kick until the user has left: a node that is silent now may be declared
# dead, its stream deleted with the event, and come back; its REGISTER then applies the
# kick instead of bringing the user back. {'ok', name, addr, node, ms since the node's
# last beat} or {'none'}.
KICK = """
local conn = redis.call('HGET', NAMES, ARGV[2])
if not conn then return {'none'} end
local c = load_conn(conn)
local node, mid = conn_node(conn)
emit(node_log(node), {t = 'k', mid = mid, reason = ARGV[3]})
hold(node, mid, {t = 'k', reason = ARGV[3]})
local beat = redis.call('ZSCORE', NODES, node)
local silent = beat and now_ms() - tonumber(beat) or -1
return {'ok', c and c.name or '', c and c.addr or '', node, silent}
"""

# ARGV: prefix, target, the ban as JSON. Kept in P:bans and put in force on every node.
BAN = """
redis.call('HSET', P .. ':bans', ARGV[2], ARGV[3])
emit(LOG, {t = 'ban', ban = cjson.decode(ARGV[3])})
return {'ok'}
"""

# ARGV: prefix, target. {'none'} when there is no such ban.
UNBAN = """
if redis.call('HDEL', P .. ':bans', ARGV[2]) == 0 then return {'none'} end
emit(LOG, {t = 'unban', target = ARGV[2]})
return {'ok'}
"""

# ARGV: prefix, name key, until (seconds; '' while connected; '0' unmute), reason.
# Asks the user's node to mute it, and holds the mute (as KICK does, unless a kick is
# held already) for as long as the user is connected: a node that comes back after
# being declared dead puts it in force again. {'ok', name, node, ms since the node's
# last beat} or {'none'}.
MUTE = """
local conn = redis.call('HGET', NAMES, ARGV[2])
if not conn then return {'none'} end
local c = load_conn(conn)
local node, mid = conn_node(conn)
emit(node_log(node), {t = 'mute', mid = mid, ['until'] = ARGV[3], reason = ARGV[4]})
local held = redis.call('HGET', node_held(node), mid)
if not (held and cjson.decode(held).t == 'k') then
  hold(node, mid, {t = 'mute', ['until'] = ARGV[3], reason = ARGV[4]})
end
local beat = redis.call('ZSCORE', NODES, node)
local silent = beat and now_ms() - tonumber(beat) or -1
return {'ok', c and c.name or '', node, silent}
"""

# ARGV: prefix, JSON list of msgid numbers (as strings). Deletes those messages from
# P:hist (imkit history delete) and tells every node to drop them from its replay;
# returns the numbers that were there.
FORGET = """
local deleted = {}
for _, n in ipairs(cjson.decode(ARGV[2])) do
  local number = tonumber(n)
  local id = string.format('%.0f-%d', (number - number % 1000) / 1000, number % 1000)
  if redis.call('XDEL', P .. ':hist', id) == 1 then table.insert(deleted, n) end
end
if #deleted > 0 then emit(LOG, {t = 'forget', ids = deleted}) end
return deleted
"""

# ARGV: prefix. Everyone online: a list of the conns' JSON records.
WHO = """
return redis.call('HVALS', CONNS)
"""

# ARGV: prefix. The live nodes: node, last beat ms, info JSON ...; then Redis' now.
NODES_INFO = """
local result = {tostring(now_ms())}
local nodes = redis.call('ZRANGE', NODES, 0, -1, 'WITHSCORES')
for i = 1, #nodes, 2 do
  table.insert(result, nodes[i])
  table.insert(result, nodes[i + 1])
  table.insert(result, redis.call('HGET', P .. ':node:' .. nodes[i], 'info') or '{}')
end
return result
"""

# Each operation's body runs as a function of ARGV (the prefix, then its arguments), so
# that it can run alone (one EVALSHA) or with others in one BATCH.
OPERATIONS = {
    "register": REGISTER,
    "beat": BEAT,
    "join": JOIN,
    "leave": LEAVE,
    "depart": DEPART,
    "publish": PUBLISH,
    "read_mark": READ_MARK,
    "private": PRIVATE,
    "rename": RENAME,
    "kick": KICK,
    "ban": BAN,
    "unban": UNBAN,
    "mute": MUTE,
    "forget": FORGET,
    "mode": MODE,
    "who": WHO,
    "nodes": NODES_INFO,
    "login": LOGIN,
    "mail_done": MAIL_DONE,
    "account_add": ACCOUNT_ADD,
    "account_update": ACCOUNT_UPDATE,
    "account_remove": ACCOUNT_REMOVE,
    "accounts": ACCOUNT_LIST,
}


def _alone(body: str) -> str:
    return f"{_PRELUDE}\nlocal function operation(ARGV)\n{body}\nend\nreturn operation(ARGV)\n"


# ARGV: prefix, JSON list of operation names, JSON list of their ARGV lists (each with
# the prefix first). Runs them in order, atomically, and returns their replies. The
# node's writer sends the operations queued together as one BATCH: one script call
# instead of many, and a reader blocked in XREAD gets all their events at once (Redis
# serves blocked readers after each command, so separate calls would wake it for each).
BATCH = (
    _PRELUDE
    + "\nlocal OPERATIONS = {}\n"
    + "".join(
        f"OPERATIONS['{name}'] = function(ARGV)\n{body}\nend\n" for name, body in OPERATIONS.items()
    )
    + """
local names, arguments = cjson.decode(ARGV[2]), cjson.decode(ARGV[3])
local replies = {}
for i, name in ipairs(names) do replies[i] = OPERATIONS[name](arguments[i]) end
return replies
"""
)

ALL = {name: _alone(body) for name, body in OPERATIONS.items()} | {"batch": BATCH}
