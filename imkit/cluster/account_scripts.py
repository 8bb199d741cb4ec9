"""The cluster's scripts for accounts (docs/cluster.md, "Accounts"): Lua bodies that
:mod:`imkit.cluster.scripts` runs after its prelude (its ``P``, ``META``, ``ACCOUNTS``,
``mailbox``, ``claim``, ``emit``, ... are theirs)."""

# ------------------------------------------------------------------------- accounts
#
# P:accounts: name key -> the account as JSON (imkit.accounts.Account.fields).
# P:mail:KEY: the private messages waiting for the account KEY (JSON, oldest first).
# P:conv:PAIR: the conversation between two accounts; P:convs:KEY: its index.

# ARGV: prefix, node, mid, account key, account name, login token, mail cutoff (msgid
# number), character keys (JSON: imkit.cluster.hub.ascii_keys), and '' for a user online
# or, for one that is not (--accounts-only), JSON {addr, mode, since, real} to join with.
# The user proved it knows the account's password: another session of the account is
# ended (bye 'replaced'), a guest holding the name (an account added meanwhile) gets its
# default name, and the user takes the account's name (rn), or comes online with it
# (on). Then its node is told (li, with the token: the node answers the login) and every
# waiting message within the cutoff is copied to its node's stream, oldest first, as a
# private message marked kept; they stay in the mailbox until the node has written them
# to the client (MAIL_DONE), so that a client dropped before gets them at its next
# login. Expired ones are dropped; the login time is kept.
# {'ok', kept}, or {'none'}: the account was removed meanwhile.
LOGIN = """
local node, mid, key, name = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local conn = node .. '/' .. mid
local c = load_conn(conn)
if ARGV[9] ~= '' then
  if not redis.call('ZSCORE', NODES, node) then return {'reaped'} end
elseif not c then
  return {'gone'}
end
local raw = redis.call('HGET', ACCOUNTS, key)
if not raw then return {'none'} end
local holder = redis.call('HGET', NAMES, key)
if holder and holder ~= conn then
  local h = load_conn(holder)
  if h and h.account then
    log_out(holder, 'replaced')
  elseif h then
    evict_guest(holder, h, cjson.decode(ARGV[8]))
  else
    redis.call('HDEL', NAMES, key)
  end
end
if c then
  c.account = name
  if c.name ~= name then
    rename_conn(conn, c, name, key, nil)
  else
    redis.call('HSET', CONNS, conn, cjson.encode(c))
  end
else
  local j = cjson.decode(ARGV[9])
  claim(conn, {name, key}, j.addr, j.mode, j.since, mid, node, 0, j.real, name)
end
emit(node_log(node), {t = 'li', mid = mid, account = name, token = ARGV[6]})
local box = mailbox(key)
local kept = trim_mail(box, tonumber(ARGV[7]))
for _, entry in ipairs(redis.call('LRANGE', box, 0, -1)) do
  local m = cjson.decode(entry)
  m.t, m.mid, m.kept = 'p', mid, 1
  emit(node_log(node), m)
end
local account = cjson.decode(raw)
account.last_login = now_ms() / 1000
redis.call('HSET', ACCOUNTS, key, cjson.encode(account))
return {'ok', kept}
"""

# ARGV: prefix, account key, msgid. The kept messages up to that msgid were written to
# the account's client: they leave its mailbox (msgids are compared as strings: all
# have 16 digits). {'ok', how many are left}.
MAIL_DONE = """
local box, last = mailbox(ARGV[2]), ARGV[3]
while true do
  local first = redis.call('LINDEX', box, 0)
  if not first or cjson.decode(first).msgid > last then break end
  redis.call('LPOP', box)
end
return {'ok', redis.call('LLEN', box)}
"""

# ARGV: prefix, account key, the account as JSON, character keys (JSON). A new account:
# {'exists', name} when there is one of that name already; else {'ok', renamed}, where
# renamed is the new name of the guest who held the name ('' when none did).
ACCOUNT_ADD = """
local key = ARGV[2]
local existing = redis.call('HGET', ACCOUNTS, key)
if existing then return {'exists', cjson.decode(existing).name} end
redis.call('HSET', ACCOUNTS, key, ARGV[3])
local holder = redis.call('HGET', NAMES, key)
if not holder then return {'ok', ''} end
local h = load_conn(holder)
if not h then
  redis.call('HDEL', NAMES, key)
  return {'ok', ''}
end
if h.account then return {'ok', ''} end
return {'ok', evict_guest(holder, h, cjson.decode(ARGV[4])) or ''}
"""

# ARGV: prefix, account key, the fields to change as JSON (Account.fields names: a
# password, a mute). Only those change, so that changes made at once never undo one
# another: {'ok'}, or {'none'} when there is no such account (removed meanwhile).
ACCOUNT_UPDATE = """
local raw = redis.call('HGET', ACCOUNTS, ARGV[2])
if not raw then return {'none'} end
local account = cjson.decode(raw)
for field, value in pairs(cjson.decode(ARGV[3])) do account[field] = value end
redis.call('HSET', ACCOUNTS, ARGV[2], cjson.encode(account))
return {'ok'}
"""

# ARGV: prefix, account key, mail cutoff (msgid number). The account is removed with its
# waiting messages, those it sent that wait for other accounts, and its conversations;
# its user, if one is logged in, is told (bye 'account_removed') and goes. {'none'} or
# {'ok', name, logged out (0 or 1), waiting messages discarded}.
ACCOUNT_REMOVE = """
local key = ARGV[2]
local raw = redis.call('HGET', ACCOUNTS, key)
if not raw then return {'none'} end
redis.call('HDEL', ACCOUNTS, key)
local box = mailbox(key)
local discarded = trim_mail(box, tonumber(ARGV[3]))
redis.call('DEL', box)
local index = P .. ':convs:' .. key
local others = redis.call('HGETALL', index)
local name = cjson.decode(raw).name
for i = 1, #others, 2 do
  redis.call('DEL', P .. ':conv:' .. others[i + 1])
  redis.call('HDEL', P .. ':convs:' .. others[i], key)
  -- What it sent that still waits for the other account goes too: whoever is given the
  -- name next must not be taken for its sender (every message from an account to an
  -- account is in this index). Messages kept before 'ak' existed match by the name.
  local other = mailbox(others[i])
  local entries = redis.call('LRANGE', other, 0, -1)
  local kept = {}
  for _, entry in ipairs(entries) do
    local m = cjson.decode(entry)
    if not (m.ak == key or (m.ak == nil and m.account == name)) then
      table.insert(kept, entry)
    end
  end
  if #kept < #entries then
    redis.call('DEL', other)
    if #kept > 0 then redis.call('RPUSH', other, unpack(kept)) end
  end
end
redis.call('DEL', index)
local logged_out = 0
local holder = redis.call('HGET', NAMES, key)
if holder then
  local h = load_conn(holder)
  if h and h.account then
    log_out(holder, 'account_removed')
    logged_out = 1
  end
end
return {'ok', name, logged_out, discarded}
"""

# ARGV: prefix, mail cutoff (msgid number). Every account: its JSON and how many
# messages wait for it (within the cutoff), flat.
ACCOUNT_LIST = """
local result = {}
local all = redis.call('HGETALL', ACCOUNTS)
local cutoff = tonumber(ARGV[2])
for i = 1, #all, 2 do
  local box = mailbox(all[i])
  local waiting = redis.call('LLEN', box)
  for n = 0, waiting - 1 do
    if tonumber(cjson.decode(redis.call('LINDEX', box, n)).msgid) >= cutoff then break end
    waiting = waiting - 1
  end
  table.insert(result, all[i + 1])
  table.insert(result, waiting)
end
return result
"""
